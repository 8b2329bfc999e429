import json

from conftest import SHARED_EMAIL, SHARED_MC_ID
from contacts.models import Contact
from integrations.providers.base import body_hash
from tenants.context import tenant_context
from webhooks.models import WebhookLog
from webhooks.testing import WebhookSecuritySuite, fixture_bytes, fixture_names, rows


class TestManyChat(WebhookSecuritySuite):
    source = "manychat"
    valid_fixture = "subscriber"

    def test_every_fixture_is_accepted(self, hooks):
        for name in fixture_names("manychat"):
            self.deliver(name)
        statuses = {r.event_type: r.status for r in rows(self.world.acme, source="manychat")}
        assert statuses == {"subscriber": "processed", "new_subscriber": "processed", "subscriber.updated": "processed"}

    def test_subscriber(self, hooks):
        """Full Subscriber Data with no event: the default "subscriber" event, handled."""
        self.deliver("subscriber")
        (row,) = rows(self.world.acme, source="manychat")
        assert row.event_type == "subscriber"
        assert row.event_id == f"7781234560012345:{body_hash(fixture_bytes('manychat', 'subscriber'))}"
        contact = self.contact(self.world.acme, mc_id="7781234560012345")
        assert (contact.email, contact.first_name, contact.last_name) == ("jamie.rivera@example.com", "Jamie", "Rivera")
        assert (contact.phone, contact.source) == ("+15551230001", "manychat")
        assert contact.custom_fields == {"workshop_interest": "Pricing masterclass", "lead_score": 42, "referrer": None}
        assert self.contact(self.world.globex, mc_id="7781234560012345") is None
        assert self.contact(self.world.globex, email="jamie.rivera@example.com") is None

    def test_new_subscriber(self, hooks):
        """Custom fields as an object are kept as they are; WhatsApp is the phone when there is no other."""
        self.deliver("new_subscriber", tenant=self.world.globex)
        contact = self.contact(self.world.globex, mc_id="7781234560098765")
        assert (contact.email, contact.first_name, contact.phone) == ("sam.lee@example.com", "Sam", "+447700900123")
        assert contact.custom_fields == {"source_campaign": "black-friday-dm", "newsletter": True}
        assert self.contact(self.world.acme, mc_id="7781234560098765") is None

    def test_subscriber_updated(self, hooks):
        """A wrapped subscriber with a new body is a new event that fills in the same contact."""
        self.deliver("subscriber")
        self.deliver("subscriber_updated")
        assert [r.status for r in rows(self.world.acme, source="manychat")] == ["processed", "processed"]
        with tenant_context(self.world.acme):
            (contact,) = Contact.objects.filter(mc_id="7781234560012345")
        assert (contact.last_name, contact.phone) == ("Rivera-Cole", "+15551230002")
        assert contact.custom_fields == {
            "workshop_interest": "Growth sprint", "lead_score": 42, "referrer": None, "booked_call": True,
        }
        assert self.contact(self.world.globex, mc_id="7781234560012345") is None

    def test_known_subscriber_id_fills_in_that_tenants_contact_only(self, hooks):
        """Both tenants know subscriber mc-4242 (Pat): a delivery to acme touches acme's Pat alone."""
        self.deliver(json.dumps({"id": SHARED_MC_ID, "email": SHARED_EMAIL, "last_name": "Acme-Side"}).encode())
        with tenant_context(self.world.acme):
            (pat,) = Contact.objects.filter(mc_id=SHARED_MC_ID)
            assert pat.last_name == "Acme-Side" and Contact.objects.filter(email=SHARED_EMAIL).count() == 1
        assert self.contact(self.world.globex, mc_id=SHARED_MC_ID).last_name == ""

    def test_explicit_event_without_a_subscriber_id_is_malformed_with_a_reason(self, hooks):
        self.deliver(b'{"event": "subscriber.updated", "email": "no-id@example.com"}')
        (row,) = rows(self.world.acme, source="manychat")
        assert row.status == WebhookLog.Status.MALFORMED and row.attempts == 1, row.error
        assert row.error == "the ManyChat subscriber.updated event has no `id`"
        assert self.contact(self.world.acme, email="no-id@example.com") is None

    def test_body_without_subscriber_or_event_is_kept_as_unknown(self, hooks):
        self.deliver(b'{"hello": "world"}')
        (row,) = rows(self.world.acme, source="manychat")
        assert row.status == WebhookLog.Status.IGNORED and "no handler" in row.error

    def test_ping_is_ignored_quietly(self, hooks):
        self.deliver(b'{"event": "ping"}')
        (row,) = rows(self.world.acme, source="manychat")
        assert (row.status, row.error) == (WebhookLog.Status.IGNORED, "")
