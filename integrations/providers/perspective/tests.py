
from contacts.models import Contact
from integrations.providers.base import body_hash
from tenants.context import tenant_context
from webhooks.models import WebhookLog
from webhooks.testing import WebhookSecuritySuite, fixture_bytes, fixture_names, rows


class TestPerspective(WebhookSecuritySuite):
    source = "perspective"
    valid_fixture = "lead"

    def test_every_fixture_is_accepted(self, hooks):
        for name in fixture_names("perspective"):
            self.deliver(name)
        statuses = {r.event_type: r.status for r in rows(self.world.acme, source="perspective")}
        assert statuses == {"lead": "processed", "form.submitted": "processed", "lead.created": "processed"}

    def test_lead(self, hooks):
        """No event → "lead"; the lead id is the event id; answers and extra fields are kept."""
        self.deliver("lead")
        (row,) = rows(self.world.acme, source="perspective")
        assert (row.event_type, row.event_id) == ("lead", "lead:6740c2f19a3b5e0012ab34cd")
        contact = self.contact(self.world.acme, "alex.nguyen@example.com")
        assert (contact.first_name, contact.last_name, contact.phone) == ("Alex", "Nguyen", "+4915112345678")
        assert contact.source == "perspective"
        assert contact.custom_fields == {
            "company": "Nguyen Bakery GmbH", "consent": True, "funnel": "Free Strategy Call",
            "How many employees do you have?": "11-50",
            "What is your monthly marketing budget?": "€1,000 – €5,000",
            "Biggest challenge": "Finding staff",
        }
        assert self.contact(self.world.globex, "alex.nguyen@example.com") is None

    def test_form_submitted(self, hooks):
        """A flat body without an id: full name split, body-hash event id, envelope keys not kept."""
        self.deliver("form_submitted", tenant=self.world.globex)
        (row,) = rows(self.world.globex, source="perspective")
        assert row.event_id == body_hash(fixture_bytes("perspective", "form_submitted"))
        contact = self.contact(self.world.globex, "riley.park@example.com")
        assert (contact.first_name, contact.last_name, contact.phone) == ("Riley", "Park", "+61412345678")
        assert contact.custom_fields == {
            "utm_source": "instagram", "Preferred start date": "2026-01-15", "Interested in": "Coaching",
        }
        assert self.contact(self.world.acme, "riley.park@example.com") is None

    def test_lead_created(self, hooks):
        """A second lead for the same e-mail fills in the same contact; new answers win."""
        self.deliver("lead")
        self.deliver("lead_created")
        with tenant_context(self.world.acme):
            (contact,) = Contact.objects.filter(email="alex.nguyen@example.com")
        assert (contact.last_name, contact.phone) == ("Nguyen-Berg", "+4915112345679")
        assert contact.custom_fields["How many employees do you have?"] == "51-200"
        assert contact.custom_fields["company"] == "Nguyen Bakery GmbH"
        assert self.contact(self.world.globex, "alex.nguyen@example.com") is None

    def test_lead_without_email_is_malformed_with_a_reason(self, hooks):
        self.deliver(b'{"contact": {"firstName": "Nobody"}}')
        (row,) = rows(self.world.acme, source="perspective")
        assert row.status == WebhookLog.Status.MALFORMED and row.attempts == 1, row.error
        assert row.error.startswith("the Perspective lead has no `contact.email`")
