import json

from integrations.providers.base import body_hash
from webhooks.models import WebhookLog
from webhooks.testing import WebhookSecuritySuite, fixture_bytes, fixture_names, rows


class TestEasyAppointments(WebhookSecuritySuite):
    source = "easyappointments"
    valid_fixture = "appointment_save"
    extra_values = {"url": "https://booking.example.com"}

    def test_every_fixture_is_accepted(self, hooks):
        for name in fixture_names("easyappointments"):
            self.deliver(name)
        statuses = {r.event_type: r.status for r in rows(self.world.acme, source="easyappointments")}
        assert statuses == {"appointment_save": "processed", "appointment_delete": "processed", "customer_save": "processed"}

    def test_appointment_save(self, hooks):
        self.deliver("appointment_save")
        (row,) = rows(self.world.acme, source="easyappointments")
        assert row.event_id == f"appointment_save:1042:{body_hash(fixture_bytes('easyappointments', 'appointment_save'))}"
        contact = self.contact(self.world.acme, "jordan.blake@example.com")
        assert (contact.first_name, contact.last_name, contact.phone) == ("Jordan", "Blake", "+441632960001")
        (entry,) = contact.activity
        assert {k: entry[k] for k in ("kind", "appointment_id", "start", "end", "service", "provider", "key")} == {
            "kind": "appointment", "appointment_id": "1042", "start": "2025-11-27 10:00:00",
            "end": "2025-11-27 10:30:00", "service": "Initial consultation", "provider": "Dana Kim",
            "key": "easyappointments:1042:2025-11-27 10:00:00",
        }
        assert self.contact(self.world.globex, "jordan.blake@example.com") is None

    def test_a_reschedule_is_a_new_entry_a_redelivery_is_not(self, hooks):
        self.deliver("appointment_save")
        moved = json.loads(fixture_bytes("easyappointments", "appointment_save"))
        moved["payload"]["start"], moved["payload"]["end"] = "2025-11-28 09:00:00", "2025-11-28 09:30:00"
        self.deliver(json.dumps(moved).encode())
        self.deliver(json.dumps(moved, indent=1).encode())  # other bytes, same appointment and start
        contact = self.contact(self.world.acme, "jordan.blake@example.com")
        assert [e["start"] for e in contact.activity] == ["2025-11-27 10:00:00", "2025-11-28 09:00:00"]

    def test_appointment_delete(self, hooks):
        self.deliver("appointment_save", tenant=self.world.globex)
        self.deliver("appointment_delete", tenant=self.world.globex)
        contact = self.contact(self.world.globex, "jordan.blake@example.com")
        assert [e["kind"] for e in contact.activity] == ["appointment", "appointment_cancelled"]
        assert contact.activity[1]["key"] == "easyappointments:1042:cancelled"
        assert self.contact(self.world.acme, "jordan.blake@example.com") is None

    def test_customer_save(self, hooks):
        """The database spellings (first_name, phone_number) are read too."""
        self.deliver("customer_save")
        contact = self.contact(self.world.acme, "casey.morgan@example.com")
        assert (contact.first_name, contact.last_name, contact.phone) == ("Casey", "Morgan", "+441632960002")
        assert (contact.source, contact.activity) == ("easyappointments", [])
        assert self.contact(self.world.globex, "casey.morgan@example.com") is None

    def test_appointment_without_a_customer_is_malformed_with_a_reason(self, hooks):
        """Upstream E!A may send the bare database row (only id_users_customer)."""
        body = json.dumps({"action": "appointment_save", "payload": {
            "id": 7, "start_datetime": "2025-11-27 10:00:00", "id_users_customer": 311}}).encode()
        self.deliver(body)
        (row,) = rows(self.world.acme, source="easyappointments")
        assert row.status == WebhookLog.Status.MALFORMED and row.attempts == 1, row.error
        assert row.error.startswith("the Easy!Appointments payload has no `payload.customer.email`")

    def test_other_actions_are_stored_as_ignored(self, hooks):
        self.deliver(b'{"action": "service_save", "payload": {"id": 1, "name": "Massage"}}')
        (row,) = rows(self.world.acme, source="easyappointments")
        assert (row.status, row.error, row.event_type) == (WebhookLog.Status.IGNORED, "", "service_save")

    def test_token_in_the_query_string_is_accepted(self, hooks):
        body = fixture_bytes("easyappointments", "customer_save")
        assert self.post(self.world.acme, body, {"query": {"token": self.secret_a}}).status_code == 200
        assert self.contact(self.world.acme, "casey.morgan@example.com") is not None
