from datetime import datetime, timezone
from decimal import Decimal

from contacts.models import Contact, Payment, PendingSignup
from integrations.providers.base import body_hash
from tenants.context import tenant_context
from webhooks.models import WebhookLog
from webhooks.testing import WebhookSecuritySuite, fixture_bytes, fixture_names, rows


class TestDenefits(WebhookSecuritySuite):
    source = "denefits"
    valid_fixture = "payment_received"

    def test_every_fixture_is_accepted(self, hooks):
        for name in fixture_names("denefits"):
            self.deliver(name)
        statuses = {r.event_type: r.status for r in rows(self.world.acme, source="denefits")}
        assert statuses == {"contract.created": "processed", "payment.received": "processed", "payment.failed": "processed"}

    def test_contract_created(self, hooks):
        """A contact and a sign-up keyed on the contract; no payment (no money moved yet)."""
        self.deliver("contract_created")
        with tenant_context(self.world.acme):
            signup = PendingSignup.objects.get(source="denefits", external_id="DNF-778120")
            assert signup.contact.email == "morgan.diaz@example.com"
            assert (signup.contact.first_name, signup.contact.phone) == ("Morgan", "+13105550142")
            assert signup.metadata == {"amount": "2400.00", "currency": "USD", "installments": 12, "status": "active"}
            assert not Payment.objects.filter(source="denefits").exists()
        with tenant_context(self.world.globex):
            assert not PendingSignup.objects.filter(source="denefits").exists()
            assert not Contact.objects.filter(email="morgan.diaz@example.com").exists()

    def test_payment_received(self, hooks):
        self.deliver("payment_received")
        (row,) = rows(self.world.acme, source="denefits")
        assert row.event_id == "payment.received:evt_dnf_20251221_001204"
        with tenant_context(self.world.acme):
            payment = Payment.objects.get(payment_event_id="denefits:PMT-5521907")
            assert (payment.amount, payment.currency, payment.status) == (Decimal("200.5"), "USD", "succeeded")
            assert payment.occurred_at == datetime(2025, 12, 21, 9, 30, tzinfo=timezone.utc)
            assert payment.metadata == {"contract_id": "DNF-778120"}
            assert (payment.contact.email, payment.contact.first_name, payment.contact.last_name) == (
                "morgan.diaz@example.com", "Morgan", "Diaz")
        with tenant_context(self.world.globex):
            assert not Payment.objects.filter(source="denefits").exists()
            assert not Contact.objects.filter(email="morgan.diaz@example.com").exists()

    def test_payment_failed(self, hooks):
        """A failure is its own row (own key), in the contract's currency; no id → body-hash event id."""
        self.deliver("payment_failed", tenant=self.world.globex)
        (row,) = rows(self.world.globex, source="denefits")
        assert row.event_id == body_hash(fixture_bytes("denefits", "payment_failed"))
        with tenant_context(self.world.globex):
            payment = Payment.objects.get(payment_event_id="denefits:PMT-5521907:failed")
            assert (payment.amount, payment.currency, payment.status) == (Decimal("200.50"), "CAD", "failed")
            assert payment.metadata == {"contract_id": "DNF-778120", "reason": "card_declined"}
            assert payment.occurred_at == datetime(2025, 12, 20, 9, 30, tzinfo=timezone.utc)
        with tenant_context(self.world.acme):
            assert not Payment.objects.filter(source="denefits").exists()

    def test_a_failure_then_a_success_of_one_payment_are_both_kept(self, hooks):
        self.deliver("payment_failed")
        self.deliver("payment_received")
        with tenant_context(self.world.acme):
            statuses = dict(Payment.objects.filter(source="denefits").values_list("payment_event_id", "status"))
            assert statuses == {"denefits:PMT-5521907:failed": "failed", "denefits:PMT-5521907": "succeeded"}
            assert Contact.objects.filter(email="morgan.diaz@example.com").count() == 1

    def test_a_replayed_payment_is_one_payment(self, hooks):
        """Same payment id under another event id (a scenario re-run with a new id): still one row."""
        self.deliver("payment_received")
        self.deliver(fixture_bytes("denefits", "payment_received").replace(b"001204", b"001299"))
        assert [r.status for r in rows(self.world.acme, source="denefits")] == ["processed", "processed"]
        with tenant_context(self.world.acme):
            assert Payment.objects.filter(external_id="PMT-5521907").count() == 1

    def test_missing_customer_email_is_malformed_with_a_reason(self, hooks):
        self.deliver(b'{"event": "payment.received", "payment": {"id": "PMT-1", "amount": 5}}')
        (row,) = rows(self.world.acme, source="denefits")
        assert row.status == WebhookLog.Status.MALFORMED and row.attempts == 1, row.error
        assert row.error == "the Denefits payment.received event has no `customer`"
        with tenant_context(self.world.acme):
            assert not Payment.objects.filter(source="denefits").exists()

    def test_amount_in_minor_looking_text_is_refused(self, hooks):
        body = fixture_bytes("denefits", "payment_received").replace(b"200.5", b'"$200"')
        self.deliver(body)
        (row,) = rows(self.world.acme, source="denefits")
        assert row.status == WebhookLog.Status.MALFORMED and row.attempts == 1, row.error
        assert row.error == ("`payment.amount` in the Denefits payment.received event: the amount '$200' is not a plain "
                             "decimal number (no exponent, NaN or infinity)")

    def test_known_ignored_event_is_stored_quietly(self, hooks):
        self.deliver(b'{"event": "contract.cancelled", "contract": {"id": "DNF-1"}}')
        (row,) = rows(self.world.acme, source="denefits")
        assert (row.status, row.error) == (WebhookLog.Status.IGNORED, "")
