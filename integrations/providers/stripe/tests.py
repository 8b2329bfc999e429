import time
from decimal import Decimal

from contacts.models import Contact, Payment
from integrations.providers.base import hmac_sha256_hex
from tenants.context import tenant_context
from webhooks.models import WebhookLog
from webhooks.testing import (
    SignedBodyTests,
    SignedTimestampTests,
    WebhookSecuritySuite,
    fixture_bytes,
    fixture_names,
    rows,
)


def stripe_signature(body: bytes, secret: str, timestamp: int | None = None, extra_v1: tuple[str, ...] = ()) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    v1 = [*extra_v1, hmac_sha256_hex(secret, f"{t}.".encode() + body)]
    return f"t={t}," + ",".join(f"v1={sig}" for sig in v1)


class TestStripe(SignedBodyTests, SignedTimestampTests, WebhookSecuritySuite):
    source = "stripe"
    valid_fixture = "checkout_session_completed"
    secret_a = "whsec_tenantA0123456789abcdefghij"
    secret_b = "whsec_tenantB0123456789abcdefghij"

    def sign(self, body, secret, timestamp=None):
        return {"headers": {"Stripe-Signature": stripe_signature(body, secret, timestamp)}}

    def deliver(self, name, tenant=None):
        tenant = tenant or self.world.acme
        response = self.post_signed(tenant, fixture_bytes("stripe", name))
        assert response.status_code == 200, response.content
        return response

    def test_every_fixture_is_accepted(self, hooks):
        for name in fixture_names("stripe"):
            self.deliver(name)
        statuses = {r.event_type: r.status for r in rows(self.world.acme, source="stripe")}
        assert statuses == {
            "checkout.session.completed": "processed", "payment_intent.succeeded": "processed",
            "charge.refunded": "processed", "customer.created": "ignored",
        }

    def test_checkout_session_completed(self, hooks):
        self.deliver("checkout_session_completed")
        with tenant_context(self.world.acme):
            payment = Payment.objects.get(external_id="pi_3QxCheckout00000001")
            assert (payment.amount, payment.currency, payment.status) == (Decimal("49.00"), "EUR", "succeeded")
            assert payment.contact.email == "jamie.rivera@example.com"
            assert (payment.contact.first_name, payment.contact.last_name) == ("Jamie", "Rivera")
        with tenant_context(self.world.globex):
            assert not Payment.objects.filter(external_id="pi_3QxCheckout00000001").exists()

    def test_payment_intent_succeeded(self, hooks):
        self.deliver("payment_intent_succeeded")
        with tenant_context(self.world.acme):
            payment = Payment.objects.get(payment_event_id="pi_3QxIntent00000002")
            assert (payment.amount, payment.currency) == (Decimal("125.50"), "USD")
            assert payment.contact.email == "sam.lee@example.com"

    def test_payment_intent_succeeded_jpy_is_not_divided(self, hooks):
        self.deliver("payment_intent_succeeded_jpy")
        with tenant_context(self.world.acme):
            payment = Payment.objects.get(payment_event_id="pi_3QxIntentJpy000003")
            assert (payment.amount, payment.currency) == (Decimal("5000"), "JPY")

    def test_charge_refunded(self, hooks):
        self.deliver("payment_intent_succeeded")
        self.deliver("charge_refunded")
        with tenant_context(self.world.acme):
            payment = Payment.objects.get(payment_event_id="pi_3QxIntent00000002")
            assert (payment.status, payment.amount_refunded) == ("refunded", Decimal("125.50"))
            assert Payment.objects.filter(external_id="pi_3QxIntent00000002").count() == 1

    def test_charge_refunded_for_an_unseen_payment_is_recorded(self, hooks):
        self.deliver("charge_refunded")
        with tenant_context(self.world.acme):
            payment = Payment.objects.get(external_id="pi_3QxIntent00000002")
            assert payment.status == "refunded" and payment.amount == Decimal("125.50")

    def test_customer_created_is_stored_as_ignored(self, hooks):
        self.deliver("customer_created")
        (row,) = rows(self.world.acme, source="stripe")
        assert row.status == WebhookLog.Status.IGNORED and row.error == ""

    def test_checkout_and_intent_of_one_payment_make_one_row(self, hooks):
        """Both events describe pi_…1; replays and redeliveries must not double the money."""
        self.deliver("checkout_session_completed")
        with tenant_context(self.world.acme):
            assert Payment.objects.filter(external_id="pi_3QxCheckout00000001").count() == 1
            assert Contact.objects.filter(email="jamie.rivera@example.com").count() == 1

    def test_any_v1_may_match(self, hooks):
        body = fixture_bytes("stripe", "payment_intent_succeeded")
        header = stripe_signature(body, self.secret_a, extra_v1=("deadbeef" * 8,))
        assert self.post(self.world.acme, body, {"headers": {"Stripe-Signature": header}}).status_code == 200

    def test_garbage_signature_header_is_rejected(self, hooks):
        body = fixture_bytes("stripe", "payment_intent_succeeded")
        for header in ("nonsense", "t=abc,v1=00", "v1=00", "t=1,v0=00"):
            assert self.post(self.world.acme, body, {"headers": {"Stripe-Signature": header}}).status_code == 401
