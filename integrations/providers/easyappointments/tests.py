import json

import pytest

from integrations.providers.base import body_hash
from integrations.providers.easyappointments.testing import TOKENS, connect_ea, fake_ea  # noqa: F401
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

    def test_appointment_with_only_a_customer_id_and_no_api_access_is_dead_with_a_reason(self, hooks):
        """Upstream E!A may send the bare database row (only id_users_customer); without the API
        password or token there is nobody to look up."""
        body = json.dumps({"action": "appointment_save", "payload": {
            "id": 7, "start_datetime": "2025-11-27 10:00:00", "id_users_customer": 311}}).encode()
        self.deliver(body)
        (row,) = rows(self.world.acme, source="easyappointments")
        assert row.status == WebhookLog.Status.DEAD and row.attempts == 1, row.error
        assert row.error.startswith("the delivery names customer 311 only by id, and Easy!Appointments is not set up")

    def test_appointment_with_neither_customer_nor_id_is_malformed(self, hooks):
        body = json.dumps({"action": "appointment_save", "payload": {"id": 7, "start": "2025-11-27 10:00:00"}}).encode()
        self.deliver(body)
        (row,) = rows(self.world.acme, source="easyappointments")
        assert row.status == WebhookLog.Status.MALFORMED, row.error
        assert row.error == ("the Easy!Appointments payload has no `payload.customer.email` and no customer id to "
                             "look it up by")

    @pytest.mark.parametrize("field", ["id_users_customer", "customerId"])
    def test_a_bare_appointment_looks_its_customer_up_at_its_own_tenant(self, hooks, fake_ea, field):
        connect_ea(self.world.acme, fake_ea)
        connect_ea(self.world.globex, fake_ea)
        body = json.dumps({"action": "appointment_save", "payload": {
            "id": 7, "start_datetime": "2025-12-01 09:00:00", field: 2}}).encode()
        self.deliver(body)
        self.deliver(body, tenant=self.world.globex)
        (row,) = rows(self.world.acme, source="easyappointments")
        assert row.status == WebhookLog.Status.PROCESSED, row.error
        acme = self.contact(self.world.acme, "casey.morgan@acme.example")
        assert (acme.first_name, acme.last_name, acme.phone, acme.source) == ("Casey", "Morgan", "+441632960002",
                                                                             "easyappointments")
        assert [e["appointment_id"] for e in acme.activity] == ["7"]
        assert self.contact(self.world.acme, "casey.morgan@globex.example") is None
        assert self.contact(self.world.globex, "casey.morgan@globex.example") is not None
        assert [(r["path"], r["auth"]) for r in fake_ea.requests] == [
            ("/index.php/api/v1/customers/2", "bearer"), ("/index.php/api/v1/customers/2", "basic")]

    def test_a_customer_save_with_only_an_id_is_looked_up(self, hooks, fake_ea):
        connect_ea(self.world.acme, fake_ea)
        self.deliver(b'{"action": "customer_save", "payload": {"id": 3}}')
        assert self.contact(self.world.acme, "robin.lee@acme.example") is not None

    def test_a_payload_with_its_customer_calls_nobody(self, hooks, fake_ea):
        connect_ea(self.world.acme, fake_ea)
        self.deliver("appointment_save")
        assert fake_ea.requests == []

    @pytest.mark.parametrize("status, outcome, reason", [
        (401, WebhookLog.Status.DEAD, "looking up customer 2: Easy!Appointments refused the API token (401"),
        (404, WebhookLog.Status.DEAD, "looking up customer 2: Easy!Appointments answered 404 to GET "
                                      "/index.php/api/v1/customers/2"),
        (429, WebhookLog.Status.FAILED, "Easy!Appointments is rate-limiting us"),
        (503, WebhookLog.Status.FAILED, "Easy!Appointments answered 503"),
    ])
    def test_a_failed_look_up(self, hooks, fake_ea, status, outcome, reason):
        connect_ea(self.world.acme, fake_ea)
        # Retry-After 1: a 503's is slept on inside the request (up to MAX_INLINE_RETRY_AFTER, each
        # of the session's retries), which 5 made thirty seconds of this suite.
        fake_ea.fail("/customers/", status=status, times=10, headers={"Retry-After": "1"})
        self.deliver(b'{"action": "appointment_save", "payload": {"id": 8, "start": "2025-12-01 09:00:00", "customerId": 2}}')
        (row,) = rows(self.world.acme, source="easyappointments")
        assert row.status == outcome and row.error.startswith(reason), row.error
        assert TOKENS["acme"] not in row.error + row.traceback

    def test_other_actions_are_stored_as_ignored(self, hooks):
        self.deliver(b'{"action": "service_save", "payload": {"id": 1, "name": "Massage"}}')
        (row,) = rows(self.world.acme, source="easyappointments")
        assert (row.status, row.error, row.event_type) == (WebhookLog.Status.IGNORED, "", "service_save")

    def test_token_in_the_query_string_is_accepted(self, hooks):
        body = fixture_bytes("easyappointments", "customer_save")
        assert self.post(self.world.acme, body, {"query": {"token": self.secret_a}}).status_code == 200
        assert self.contact(self.world.acme, "casey.morgan@example.com") is not None
