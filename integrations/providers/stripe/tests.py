"""Stripe: the security suite, one test per fixture, the join key across events, and the lookups
against a local fake of the Stripe API (``responses``; an unregistered URL fails the test).

Fixtures are of API versions 2025-09-30.clover and 2025-03-31.basil (``*_basil``), and 2020-08-27
(``*_2020``), whose PaymentIntents still carry ``charges`` and whose invoices name their
PaymentIntent and subscription. acme and globex connect the same Stripe ids with their own keys:
every test about data checks the other tenant too.
"""

import json
import time
from decimal import Decimal

import pytest
import responses
from django.core.cache import cache
from responses import matchers

from contacts.models import Contact, Payment
from integrations.models import TenantIntegration
from integrations.providers.base import hmac_sha256_hex
from tenants.context import tenant_context
from webhooks.models import WebhookLog
from webhooks.testing import (
    PROVIDERS_DIR,
    SignedBodyTests,
    SignedTimestampTests,
    WebhookSecuritySuite,
    fixture_bytes,
    fixture_names,
    rows,
)

API = "https://api.stripe.test"
SECRET_KEYS = {"acme": "rk_test_acme_0123456789abcdefghij", "globex": "rk_test_globex_0123456789abcdefgh"}
SUB_INTENT = "pi_3QxSubIntent000017"
SUB_INVOICE = "in_1QxSubInvoice000017"


def stripe_signature(body: bytes, secret: str, timestamp: int | None = None, extra_v1: tuple[str, ...] = ()) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    v1 = [*extra_v1, hmac_sha256_hex(secret, f"{t}.".encode() + body)]
    return f"t={t}," + ",".join(f"v1={sig}" for sig in v1)


def api_object(name: str) -> dict:
    return json.loads((PROVIDERS_DIR / "stripe" / "fixtures" / "api" / f"{name}.json").read_text())


def event_with(name: str, **changes) -> bytes:
    """A fixture with some of its object's fields changed (a fuzz case, an older or newer state)."""
    payload = json.loads(fixture_bytes("stripe", name))
    payload["data"]["object"].update(changes)
    return json.dumps(payload).encode()


class TestStripe(SignedBodyTests, SignedTimestampTests, WebhookSecuritySuite):
    source = "stripe"
    valid_fixture = "checkout_session_completed"
    secret_a = "whsec_tenantA0123456789abcdefghij"
    secret_b = "whsec_tenantB0123456789abcdefghij"
    with_keys = True

    def sign(self, body, secret, timestamp=None):
        return {"headers": {"Stripe-Signature": stripe_signature(body, secret, timestamp)}}

    def connect_tenant(self, tenant, secret):
        from webhooks.testing import connect

        return connect(tenant, "stripe", secret, **({"secret_key": SECRET_KEYS[tenant.slug]} if self.with_keys else {}))

    @pytest.fixture(autouse=True)
    def api(self, settings):
        """The local fake of the Stripe API, with what the fixtures' lookups ask for."""
        settings.STRIPE_API_BASE = API
        cache.clear()
        with responses.RequestsMock(assert_all_requests_are_fired=False) as fake:
            for customer in ("customer_rene", "customer_sasha", "customer_rowan", "customer_morgan"):
                body = api_object(customer)
                fake.get(f"{API}/v1/customers/{body['id']}", json=body)
            fake.get(f"{API}/v1/invoice_payments", json=api_object("invoice_payments_sasha"),
                     match=[matchers.query_param_matcher({"invoice": SUB_INVOICE, "limit": "10"})])
            fake.get(f"{API}/v1/charges/ch_3QxIntent00000002", json=api_object("charge_after_failed_refund"))
            self.api = fake
            yield fake

    def drop_secret_key(self, tenant):
        with tenant_context(tenant):
            integration = TenantIntegration.objects.get(provider="stripe")
            integration.credentials = {k: v for k, v in integration.credentials.items() if k != "secret_key"}
            integration.save()

    def payment(self, tenant, key) -> Payment | None:
        with tenant_context(tenant):
            return Payment.objects.select_related("contact").filter(payment_event_id=key).first()

    def stripe_payments(self, tenant) -> list[Payment]:
        with tenant_context(tenant):
            return list(Payment.objects.select_related("contact").filter(source="stripe").exclude(external_id="pi_same"))

    def contact_of(self, tenant, email):
        with tenant_context(tenant):
            return Contact.objects.filter(email=email).first()

    def last_row(self):
        return rows(self.world.acme, source="stripe")[-1]

    def calls(self, path):
        return [c for c in self.api.calls if path in c.request.url]

    def test_every_fixture_is_accepted(self, hooks):
        for name in fixture_names("stripe"):
            self.deliver(name)
        statuses = {r.event_type: r.status for r in rows(self.world.acme, source="stripe")}
        assert statuses.pop("customer.created") == "ignored"
        failing = {r.event_type: r.error for r in rows(self.world.acme, source="stripe") if r.status != "processed"}
        assert set(statuses.values()) == {"processed"}, failing

    # --- checkout sessions -----------------------------------------------------------------------
    def test_checkout_session_completed(self, hooks):
        self.deliver("checkout_session_completed")
        payment = self.payment(self.world.acme, "pi_3QxCheckout00000001")
        assert (payment.amount, payment.currency, payment.status) == (Decimal("49.00"), "EUR", "succeeded")
        assert payment.contact.email == "jamie.rivera@example.com"
        assert (payment.contact.first_name, payment.contact.last_name) == ("Jamie", "Rivera")
        assert payment.contact.stripe_customer_id == "cus_Q1w2E3r4T5y6"
        assert self.payment(self.world.globex, "pi_3QxCheckout00000001") is None

    def test_checkout_session_completed_subscription(self, hooks):
        """No payment_intent in subscription mode: the session joins its invoice."""
        self.deliver("checkout_session_completed_subscription")
        (payment,) = self.stripe_payments(self.world.acme)
        assert (payment.payment_event_id, payment.invoice_id, payment.subscription_id) == (
            SUB_INVOICE, SUB_INVOICE, "sub_1QxSasha00000017")
        assert (payment.amount, payment.currency, payment.contact.email) == (Decimal("29.00"), "USD", "sasha.sub@example.com")
        assert self.stripe_payments(self.world.globex) == []

    def test_checkout_session_completed_setup(self, hooks):
        """Setup mode, no_payment_required: the customer is known, but no money moved."""
        self.deliver("checkout_session_completed_setup")
        assert self.stripe_payments(self.world.acme) == []
        assert self.contact_of(self.world.acme, "sam.setup@example.com").stripe_customer_id == "cus_SetupSam00001"
        assert self.last_row().status == WebhookLog.Status.PROCESSED

    def test_a_free_checkout_records_no_payment(self, hooks):
        self.deliver(event_with("checkout_session_completed", amount_total=0, payment_status="no_payment_required"))
        assert self.stripe_payments(self.world.acme) == []

    def test_an_unpaid_checkout_waits_for_its_async_payment(self, hooks):
        self.deliver(event_with("checkout_session_completed", payment_status="unpaid"))
        assert self.stripe_payments(self.world.acme) == []
        async_paid = json.loads(event_with("checkout_session_completed"))
        async_paid.update(id="evt_1QxCheckoutAsync0000034", type="checkout.session.async_payment_succeeded")
        self.deliver(json.dumps(async_paid).encode())
        (payment,) = self.stripe_payments(self.world.acme)
        assert (payment.payment_event_id, payment.status) == ("pi_3QxCheckout00000001", "succeeded")

    # --- one payment per money movement ------------------------------------------------------------
    def test_checkout_and_intent_of_one_payment_make_one_row(self, hooks):
        self.deliver("checkout_session_completed")
        intent = json.loads(fixture_bytes("stripe", "payment_intent_succeeded"))
        intent["id"] = "evt_3QxCheckoutIntent000035"
        intent["data"]["object"].update(id="pi_3QxCheckout00000001", amount=4900, amount_received=4900, currency="eur")
        self.deliver(json.dumps(intent).encode())
        (payment,) = self.stripe_payments(self.world.acme)
        assert (payment.payment_event_id, payment.amount) == ("pi_3QxCheckout00000001", Decimal("49.00"))

    @pytest.mark.parametrize("order", [
        ("checkout_session_completed_subscription", "invoice_paid", "payment_intent_succeeded_subscription"),
        ("payment_intent_succeeded_subscription", "invoice_payment_succeeded", "checkout_session_completed_subscription"),
        ("invoice_paid", "checkout_session_completed_subscription", "payment_intent_succeeded_subscription",
         "invoice_payment_succeeded"),
    ])
    def test_a_subscription_checkout_its_invoice_and_its_intent_are_one_payment(self, hooks, order):
        for name in order:
            self.deliver(name)
        (payment,) = self.stripe_payments(self.world.acme)
        assert (payment.payment_event_id, payment.external_id, payment.invoice_id, payment.subscription_id) == (
            SUB_INTENT, SUB_INTENT, SUB_INVOICE, "sub_1QxSasha00000017")
        assert (payment.amount, payment.status, payment.contact.email) == (Decimal("29.00"), "succeeded", "sasha.sub@example.com")
        assert self.stripe_payments(self.world.globex) == []

    def test_without_the_secret_key_a_basil_invoice_and_its_intent_cannot_be_joined(self, hooks):
        """What the setup page warns about: basil's invoice does not name its PaymentIntent."""
        self.drop_secret_key(self.world.acme)
        self.deliver("invoice_paid")
        self.deliver("payment_intent_succeeded_subscription")
        assert sorted(p.payment_event_id for p in self.stripe_payments(self.world.acme)) == [SUB_INVOICE, SUB_INTENT]
        assert len(self.api.calls) == 0

    # --- PaymentIntents ---------------------------------------------------------------------------
    def test_payment_intent_succeeded(self, hooks):
        self.deliver("payment_intent_succeeded")
        payment = self.payment(self.world.acme, "pi_3QxIntent00000002")
        assert (payment.amount, payment.currency, payment.description) == (Decimal("125.50"), "USD", "Workshop ticket")
        assert payment.contact.email == "sam.lee@example.com"
        assert [c.request.url for c in self.api.calls] == []  # the event names its payer: nothing to ask

    def test_payment_intent_succeeded_jpy(self, hooks):
        self.deliver("payment_intent_succeeded_jpy")
        payment = self.payment(self.world.acme, "pi_3QxIntentJpy000003")
        assert (payment.amount, payment.currency) == (Decimal("5000"), "JPY")

    def test_payment_intent_succeeded_basil(self, hooks):
        """No charges, no receipt e-mail: the payer is the customer, asked of Stripe with each
        tenant's own key, once per customer."""
        self.deliver("payment_intent_succeeded_basil")
        self.deliver("payment_intent_succeeded_basil", tenant=self.world.globex)
        again = json.loads(fixture_bytes("stripe", "payment_intent_succeeded_basil"))
        again["id"], again["data"]["object"]["id"] = "evt_3RbIntentAgain00000036", "pi_3RbIntentAgain0036"
        self.deliver(json.dumps(again).encode())
        for tenant in (self.world.acme, self.world.globex):
            payment = self.payment(tenant, "pi_3RbIntent00000010")
            assert (payment.amount, payment.currency, payment.metadata["order"]) == (Decimal("89.00"), "EUR", "A-1042")
            contact = payment.contact
            assert (contact.email, contact.first_name, contact.last_name, contact.stripe_customer_id) == (
                "rene.basil@example.com", "René", "Basil", "cus_RbPayer000001")
        assert [c.request.headers["Authorization"] for c in self.calls("/v1/customers/")] == [
            f"Bearer {SECRET_KEYS['acme']}", f"Bearer {SECRET_KEYS['globex']}"]

    def test_a_key_without_customer_permission_records_the_payment_and_says_why(self, hooks):
        self.api.replace(responses.GET, f"{API}/v1/customers/cus_RbPayer000001", status=403,
                         json={"error": {"type": "invalid_request_error"}})
        self.deliver("payment_intent_succeeded_basil")
        payment = self.payment(self.world.acme, "pi_3RbIntent00000010")
        assert payment.contact is None and "403" in payment.metadata["payer_lookup"]
        assert self.last_row().status == WebhookLog.Status.PROCESSED

    def test_a_stripe_outage_during_the_lookup_is_retried_and_writes_nothing(self, hooks):
        self.api.replace(responses.GET, f"{API}/v1/customers/cus_RbPayer000001", status=429, headers={"Retry-After": "2"})
        self.deliver("payment_intent_succeeded_basil")
        row = self.last_row()
        assert row.status == WebhookLog.Status.FAILED and row.error.startswith("the platform is rate-limiting us")
        assert self.payment(self.world.acme, "pi_3RbIntent00000010") is None

    def test_payment_intent_succeeded_2020(self, hooks):
        """2020-08-27: the payer is in ``charges``, the invoice is named: joined with it."""
        self.deliver("payment_intent_succeeded_2020")
        payment = self.payment(self.world.acme, "pi_1HxOld00000000020")
        assert (payment.amount, payment.currency, payment.invoice_id) == (Decimal("45.00"), "GBP", "in_1HxOld00000000020")
        assert (payment.contact.email, payment.contact.last_name) == ("morgan.old@example.com", "Oldfield")
        assert len(self.api.calls) == 0

    def test_payment_intent_payment_failed(self, hooks):
        self.deliver("payment_intent_payment_failed")
        payment = self.payment(self.world.acme, "pi_3QxFailed00000011")
        assert (payment.status, payment.amount) == ("failed", Decimal("120.00"))
        assert payment.failure_reason == "insufficient_funds: Your card has insufficient funds."
        assert payment.contact.email == "dee.clined@example.com"
        assert self.payment(self.world.globex, "pi_3QxFailed00000011") is None

    def test_a_late_failure_never_undoes_a_success(self, hooks):
        self.deliver(event_with("payment_intent_payment_failed", status="succeeded", amount_received=12000))
        late = json.loads(fixture_bytes("stripe", "payment_intent_payment_failed"))
        late["id"] = "evt_3QxFailedLate000000037"
        late["type"] = "payment_intent.succeeded"
        late["data"]["object"]["amount_received"] = 12000
        self.deliver(json.dumps(late).encode())
        self.deliver("charge_failed")
        assert self.payment(self.world.acme, "pi_3QxFailed00000011").status == "succeeded"

    def test_payment_intent_canceled(self, hooks):
        self.deliver("payment_intent_canceled")
        payment = self.payment(self.world.acme, "pi_3QxCancel00000012")
        assert (payment.status, payment.failure_reason) == ("canceled", "canceled: abandoned")

    # --- charges ----------------------------------------------------------------------------------
    def test_charge_failed(self, hooks):
        """The same attempt as payment_intent.payment_failed: one payment, keyed on the intent."""
        self.deliver("payment_intent_payment_failed")
        self.deliver("charge_failed")
        (payment,) = self.stripe_payments(self.world.acme)
        assert (payment.payment_event_id, payment.status) == ("pi_3QxFailed00000011", "failed")
        assert payment.failure_reason == "card_declined: Your card has insufficient funds."

    def test_charge_succeeded_legacy(self, hooks):
        """A charge made without a PaymentIntent (the Charges API) is a payment too, keyed on it."""
        self.deliver("charge_succeeded_legacy")
        payment = self.payment(self.world.acme, "ch_1QxLegacy000000015")
        assert (payment.amount, payment.external_id, payment.contact.email) == (
            Decimal("25.00"), "ch_1QxLegacy000000015", "lee.gacy@example.com")
        assert self.payment(self.world.globex, "ch_1QxLegacy000000015") is None

    def test_charge_refunded(self, hooks):
        self.deliver("payment_intent_succeeded")
        self.deliver("charge_refunded")
        (payment,) = self.stripe_payments(self.world.acme)
        assert (payment.status, payment.amount_refunded) == ("refunded", Decimal("125.50"))

    def test_charge_refunded_for_an_unseen_payment_is_recorded(self, hooks):
        self.deliver("charge_refunded")
        payment = self.payment(self.world.acme, "pi_3QxIntent00000002")
        assert (payment.status, payment.amount, payment.amount_refunded) == ("refunded", Decimal("125.50"), Decimal("125.50"))

    def test_charge_refunded_partial(self, hooks):
        self.deliver("payment_intent_succeeded")
        self.deliver("charge_refunded_partial")
        payment = self.payment(self.world.acme, "pi_3QxIntent00000002")
        assert (payment.status, payment.amount_refunded) == ("partially_refunded", Decimal("25.50"))
        self.deliver("charge_refunded")  # then the rest
        payment = self.payment(self.world.acme, "pi_3QxIntent00000002")
        assert (payment.status, payment.amount_refunded) == ("refunded", Decimal("125.50"))

    def test_charge_refund_updated(self, hooks):
        """The partial refund failed: Stripe's charge (asked with the key) refunds nothing now."""
        self.deliver("payment_intent_succeeded")
        self.deliver("charge_refunded_partial")
        self.deliver("charge_refund_updated")
        payment = self.payment(self.world.acme, "pi_3QxIntent00000002")
        assert (payment.status, payment.amount_refunded) == ("succeeded", Decimal("0"))
        assert len(self.calls("/v1/charges/ch_3QxIntent00000002")) == 1

    def test_charge_refund_updated_without_the_key_takes_the_failed_refund_off_once(self, hooks):
        self.drop_secret_key(self.world.acme)
        self.deliver("payment_intent_succeeded")
        self.deliver("charge_refunded_partial")
        self.deliver("charge_refund_updated")
        with tenant_context(self.world.acme), self._capture(execute=True):
            from webhooks.processing import replay

            replay(WebhookLog.objects.get(event_type="charge.refund.updated"))
        payment = self.payment(self.world.acme, "pi_3QxIntent00000002")
        assert (payment.status, payment.amount_refunded) == ("succeeded", Decimal("0"))
        assert len(self.api.calls) == 0

    # --- invoices ---------------------------------------------------------------------------------
    def test_invoice_paid(self, hooks):
        """basil: the invoice names neither PaymentIntent nor (directly) subscription."""
        self.deliver("invoice_paid")
        (payment,) = self.stripe_payments(self.world.acme)
        assert (payment.payment_event_id, payment.invoice_id, payment.subscription_id) == (
            SUB_INTENT, SUB_INVOICE, "sub_1QxSasha00000017")
        assert (payment.amount, payment.currency, payment.description) == (Decimal("29.00"), "USD", "Invoice A1B2C3D4-0001")
        assert payment.contact.email == "sasha.sub@example.com"
        assert payment.contact.stripe_customer_id == "cus_SubSasha00001"
        assert self.stripe_payments(self.world.globex) == []

    def test_invoice_payment_succeeded(self, hooks):
        self.deliver("invoice_paid")
        self.deliver("invoice_payment_succeeded")
        (payment,) = self.stripe_payments(self.world.acme)
        assert payment.payment_event_id == SUB_INTENT

    def test_invoice_payment_succeeded_2020(self, hooks):
        self.deliver("invoice_payment_succeeded_2020")
        self.deliver("payment_intent_succeeded_2020")
        (payment,) = self.stripe_payments(self.world.acme)
        assert (payment.payment_event_id, payment.invoice_id, payment.subscription_id) == (
            "pi_1HxOld00000000020", "in_1HxOld00000000020", "sub_1HxOld0000000020")
        assert len(self.api.calls) == 0

    def test_invoice_payment_failed(self, hooks):
        self.deliver("invoice_payment_failed")
        payment = self.payment(self.world.acme, "in_1QxSubInvoice000022")
        assert (payment.status, payment.amount) == ("failed", Decimal("29.00"))
        assert payment.failure_reason == "payment attempt 2 failed (subscription_cycle)"
        assert payment.subscription_id == "sub_1QxSasha00000017"

    def test_a_trial_invoice_paid_with_nothing_is_no_payment(self, hooks):
        self.deliver(event_with("invoice_paid", amount_paid=0, amount_due=0))
        assert self.stripe_payments(self.world.acme) == []

    # --- subscriptions ----------------------------------------------------------------------------
    def subscription_of(self, tenant, email):
        contact = self.contact_of(tenant, email)
        return contact and (contact.subscription_id, contact.subscription_status, contact.subscription_plan,
                            contact.subscription_period_end and contact.subscription_period_end.timestamp(),
                            contact.subscription_cancel_at_period_end)

    def test_customer_subscription_created(self, hooks):
        self.deliver("customer_subscription_created")
        assert self.subscription_of(self.world.acme, "sasha.sub@example.com") == (
            "sub_1QxSasha00000017", "active", "Studio membership", 1766412000, False)
        assert self.contact_of(self.world.globex, "sasha.sub@example.com") is None

    def test_customer_subscription_updated(self, hooks):
        self.deliver("customer_subscription_updated")
        self.deliver("customer_subscription_created")  # older: changes nothing
        assert self.subscription_of(self.world.acme, "sasha.sub@example.com") == (
            "sub_1QxSasha00000017", "active", "Studio membership", 1766412000, True)

    def test_customer_subscription_deleted(self, hooks):
        self.deliver("customer_subscription_created")
        self.deliver("customer_subscription_deleted")
        assert self.subscription_of(self.world.acme, "sasha.sub@example.com")[1] == "canceled"

    def test_customer_subscription_trial_will_end(self, hooks):
        self.deliver("customer_subscription_trial_will_end")
        contact = self.contact_of(self.world.acme, "rowan.trial@example.com")
        assert (contact.subscription_status, contact.subscription_trial_end.timestamp()) == ("trialing", 1764244800)

    def test_customer_subscription_updated_2020(self, hooks):
        """2020-08-27: the period end and the plan are on the subscription itself. No key needed:
        the invoice linked the customer to the contact."""
        self.drop_secret_key(self.world.acme)
        self.deliver("invoice_payment_succeeded_2020")
        self.deliver("customer_subscription_updated_2020")
        assert self.subscription_of(self.world.acme, "morgan.old@example.com") == (
            "sub_1HxOld0000000020", "past_due", "Monthly (legacy)", 1602592000, False)
        assert len(self.api.calls) == 0

    def test_a_subscription_of_an_unknown_customer_without_a_key_waits_for_its_invoice(self, hooks):
        self.drop_secret_key(self.world.acme)
        self.deliver("customer_subscription_created")
        row = self.last_row()
        assert row.status == WebhookLog.Status.FAILED and "no contact is linked to Stripe customer" in row.error
        self.deliver("invoice_paid")  # names the customer's e-mail
        with tenant_context(self.world.acme), self._capture(execute=True):
            from webhooks.processing import replay

            assert replay(WebhookLog.objects.get(pk=row.pk))
        assert self.subscription_of(self.world.acme, "sasha.sub@example.com")[1] == "active"

    # --- disputes ---------------------------------------------------------------------------------
    def dispute(self):
        payment = self.payment(self.world.acme, "pi_3QxIntent00000002")
        return payment.dispute, payment.dispute_status, payment.dispute_reason, payment.disputed_amount

    def test_charge_dispute_created(self, hooks):
        self.deliver("payment_intent_succeeded")
        self.deliver("charge_dispute_created")
        assert self.dispute() == ("open", "needs_response", "fraudulent", Decimal("125.50"))
        assert self.payment(self.world.acme, "pi_3QxIntent00000002").status == "succeeded"
        assert self.payment(self.world.globex, "pi_3QxIntent00000002") is None

    def test_charge_dispute_funds_withdrawn(self, hooks):
        self.deliver("payment_intent_succeeded")
        self.deliver("charge_dispute_funds_withdrawn")
        assert self.dispute()[:2] == ("open", "needs_response")

    def test_charge_dispute_updated(self, hooks):
        self.deliver("charge_dispute_created")  # a dispute of a payment we never saw: booked
        self.deliver("charge_dispute_updated")
        assert self.dispute()[:2] == ("open", "under_review")
        (payment,) = self.stripe_payments(self.world.acme)
        assert payment.amount == Decimal("125.50")

    def test_charge_dispute_closed(self, hooks):
        self.deliver("payment_intent_succeeded")
        self.deliver("charge_dispute_closed")
        self.deliver("charge_dispute_updated")  # older: changes nothing
        assert self.dispute()[:2] == ("lost", "lost")

    def test_charge_dispute_funds_reinstated(self, hooks):
        self.deliver("payment_intent_succeeded")
        self.deliver("charge_dispute_created")
        self.deliver("charge_dispute_funds_reinstated")
        assert self.dispute()[:2] == ("won", "won")

    # --- ignored ----------------------------------------------------------------------------------
    def test_customer_created(self, hooks):
        self.deliver("customer_created")
        (row,) = rows(self.world.acme, source="stripe")
        assert row.status == WebhookLog.Status.IGNORED and row.error == ""

    # --- odd but signed (issue 7.21) ---------------------------------------------------------------
    @pytest.mark.parametrize("fixture, change, field", [
        ("payment_intent_succeeded", {"data": {"object": "not an object"}}, "`data.object`"),
        ("payment_intent_succeeded", {"data": {}}, "`data.object`"),
        ("payment_intent_succeeded", {"amount_received": "abc"}, "`data.object.amount_received`"),
        ("payment_intent_succeeded", {"amount_received": "NaN"}, "`data.object.amount_received`"),
        ("payment_intent_succeeded", {"amount_received": "Infinity"}, "`data.object.amount_received`"),
        ("payment_intent_succeeded", {"amount_received": "1e1000"}, "`data.object.amount_received`"),
        ("payment_intent_succeeded", {"amount_received": 12.7}, "`data.object.amount_received`"),
        ("payment_intent_succeeded", {"amount_received": 10**30}, "`data.object.amount_received`"),
        ("payment_intent_succeeded", {"currency": "usdx"}, "`data.object.currency`"),
        ("charge_refunded", {"amount_refunded": True}, "`data.object.amount_refunded`"),
        ("invoice_paid", {"customer_email": "x" * 300 + "@example.com"}, "`data.object.customer_email`"),
        ("customer_subscription_created", {"customer": ["cus_1"]}, "`data.object.customer`"),
        ("charge_dispute_created", {"status": {"a": 1}}, "`data.object.status`"),
        ("payment_intent_succeeded", {"created": 2**63}, "`created`"),
    ])
    def test_odd_values_are_malformed_with_a_sentence(self, hooks, fixture, change, field):
        payload = json.loads(fixture_bytes("stripe", fixture))
        if "data" in change or "created" in change:
            payload.update(change)
        else:
            payload["data"]["object"].update(change)
        self.deliver(json.dumps(payload).encode())
        row = self.last_row()
        assert row.status == WebhookLog.Status.MALFORMED and row.attempts <= 1, (row.status, row.error)
        assert row.error.startswith(field) or field in row.error, row.error
        assert "Error" not in row.error.split(":")[0]  # a sentence, not "KeyError: …"
        assert self.stripe_payments(self.world.acme) == []

    def test_nul_and_overlong_text_are_cleaned_not_refused(self, hooks):
        self.deliver(event_with("payment_intent_succeeded", description="Work\u0000shop " + "x" * 400))
        payment = self.payment(self.world.acme, "pi_3QxIntent00000002")
        assert payment.description.startswith("Workshop x") and len(payment.description) == 255

    # --- the suite, where Stripe differs ----------------------------------------------------------
    def test_any_v1_may_match(self, hooks):
        body = fixture_bytes("stripe", "payment_intent_succeeded")
        header = stripe_signature(body, self.secret_a, extra_v1=("deadbeef" * 8,))
        assert self.post(self.world.acme, body, {"headers": {"Stripe-Signature": header}}).status_code == 200

    def test_a_signed_body_that_is_not_utf8_is_refused_for_that_reason(self, hooks):
        body = b'{"id": "evt_latin1", "type": "payment_intent.succeeded", "note": "caf\xe9"}'
        header = stripe_signature(body, self.secret_a)
        response = self.post(self.world.acme, body, {"headers": {"Stripe-Signature": header}})
        assert response.status_code == 401
        assert "not UTF-8" in response.content.decode() and "does not match" not in response.content.decode()

    def test_garbage_signature_header_is_rejected(self, hooks):
        body = fixture_bytes("stripe", "payment_intent_succeeded")
        for header in ("nonsense", "t=abc,v1=00", "v1=00", "t=1,v0=00"):
            assert self.post(self.world.acme, body, {"headers": {"Stripe-Signature": header}}).status_code == 401
