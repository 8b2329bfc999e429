"""GoHighLevel signs with its own key pair, not the tenant's secret: these tests make an Ed25519
and an RSA key pair, publish the public halves through the settings, and sign as GoHighLevel
would. What tells acme from globex on the signed path is the location: acme is LOCATION_A,
globex LOCATION_B, and the fixtures are acme's."""

import base64
import json
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contacts.models import Contact, Payment
from integrations.models import TenantIntegration
from integrations.providers.base import WebhookRequest, body_hash
from integrations.registry import get_provider
from tenants.context import tenant_context
from webhooks.models import WebhookLog
from webhooks.processing import replay
from webhooks.testing import SignedBodyTests, WebhookSecuritySuite, connect, fixture_bytes, rows

ED_KEY, OTHER_ED_KEY = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
RSA_KEY, OTHER_RSA_KEY = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2))
LOCATION_A, LOCATION_B = "ve9EPM428h8vShlRW1KT", "Zq7WnT3kLmB5xR2pYc8D"
LOCATIONS = {"acme": LOCATION_A, "globex": LOCATION_B}
CONTACT_ID = "nmFmQEsNgz6AVpgLVUJ0"
MISMATCH = "locationId does not match this tenant's location"


def public_pem(private_key) -> str:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def raw_ed25519(private_key) -> bytes:
    return private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class TestGoHighLevel(SignedBodyTests, WebhookSecuritySuite):
    source = "ghl"
    valid_fixture = "contact_create"
    secret_a = "ghl-workflow-token-acme-0123456789"
    secret_b = "ghl-workflow-token-globex-98765432"
    #: how ``sign`` authenticates: "ed25519" (x-ghl-signature), "rsa" (x-wh-signature) or "token" (workflow)
    mode = "ed25519"

    @pytest.fixture(autouse=True)
    def ghl_keys(self, settings):
        settings.GHL_WEBHOOK_PUBLIC_KEY = public_pem(ED_KEY)
        settings.GHL_WEBHOOK_RSA_PUBLIC_KEY = public_pem(RSA_KEY)
        self.settings = settings

    def connect_tenant(self, tenant, secret):
        return connect(tenant, "ghl", secret, location_id=LOCATIONS[tenant.slug])

    def sign(self, body, secret, timestamp=None):
        """A tenant's own secret stands for GoHighLevel's genuine key; any other for a forger's."""
        if self.mode == "token":
            return {"headers": {"X-Webhook-Token": secret}}
        genuine = secret in (self.secret_a, self.secret_b)
        if self.mode == "rsa":
            key = RSA_KEY if genuine else OTHER_RSA_KEY
            return {"headers": {"x-wh-signature": b64(key.sign(body, padding.PKCS1v15(), hashes.SHA256()))}}
        return {"headers": {"x-ghl-signature": b64((ED_KEY if genuine else OTHER_ED_KEY).sign(body))}}

    def post_signed(self, tenant, body=None, secret=None, **kwargs):
        """The body is rewritten to the location of whoever ``secret`` stands for (secret_a: acme,
        secret_b: globex, anything else: the tenant posted to), then signed. So the suite's
        "other tenant's secret" is a genuine delivery for globex's location posted to acme."""
        body = self.body() if body is None else body
        secret = secret or (self.secret_a if tenant == self.world.acme else self.secret_b)
        location = {self.secret_a: LOCATION_A, self.secret_b: LOCATION_B}.get(secret, LOCATIONS[tenant.slug])
        body = body.replace(LOCATION_A.encode(), location.encode())
        return self.post(tenant, body, self.sign(body, secret), **kwargs)

    def deliver(self, name, tenant=None):
        response = self.post_signed(tenant or self.world.acme, fixture_bytes("ghl", name))
        assert response.status_code == 200, response.content
        return response

    def error_of_last_row(self):
        return rows(self.world.acme, source="ghl")[-1].error

    # --- the suite, where a platform-wide key changes the meaning -----------------------------
    def test_previous_secret_works_during_its_grace_period_only(self, hooks):
        """Only the workflow token is the tenant's and rotates; GoHighLevel's key is a setting."""
        self.mode = "token"
        super().test_previous_secret_works_during_its_grace_period_only(hooks)

    def test_platform_wide_fallback_only_without_a_tenant_secret(self, hooks):
        """``GHL_WEBHOOK_SECRET`` can stand in only for the workflow token."""
        self.mode = "token"
        super().test_platform_wide_fallback_only_without_a_tenant_secret(hooks)

    def test_malformed_but_verified_is_kept_and_marked(self, hooks):
        """On the token path a non-JSON body is kept as malformed, as for every source..."""
        self.mode = "token"
        super().test_malformed_but_verified_is_kept_and_marked(hooks)

    def test_signed_but_not_json_is_rejected(self, hooks):
        """...but a signed one is refused: without a readable locationId, GoHighLevel's signature
        does not say which of its customers sent it, so it is not proven to be this tenant's."""
        body = b"{not json"
        assert self.post(self.world.acme, body, self.sign(body, self.secret_a)).status_code == 401
        assert self.error_of_last_row() == MISMATCH

    # --- one test per fixture ----------------------------------------------------------------
    def test_contact_create(self, hooks):
        self.deliver("contact_create")
        with tenant_context(self.world.acme):
            contact = Contact.objects.get(ghl_id=CONTACT_ID)
            assert (contact.email, contact.first_name, contact.last_name, contact.phone, contact.source) == (
                "riley.chen@example.com", "Riley", "Chen", "+12055550147", "ghl")
        with tenant_context(self.world.globex):
            assert not Contact.objects.filter(ghl_id=CONTACT_ID).exists()
            assert not Contact.objects.filter(email="riley.chen@example.com").exists()

    def test_contact_update(self, hooks):
        self.deliver("contact_create")
        self.deliver("contact_update")
        with tenant_context(self.world.acme):
            (contact,) = Contact.objects.filter(ghl_id=CONTACT_ID)
            assert (contact.last_name, contact.phone) == ("Chen-Park", "+12055550199")

    def test_contact_update_of_an_unseen_contact_creates_it(self, hooks):
        self.deliver("contact_update")
        with tenant_context(self.world.acme):
            assert Contact.objects.get(ghl_id=CONTACT_ID).email == "riley.chen@example.com"

    def test_contact_tag_update(self, hooks):
        self.deliver("contact_create")
        self.deliver("contact_tag_update")
        with tenant_context(self.world.acme):
            (contact,) = Contact.objects.filter(ghl_id=CONTACT_ID)
            assert (contact.last_name, contact.phone) == ("Chen-Park", "+12055550199")
        assert [r.status for r in rows(self.world.acme, source="ghl")] == ["processed"] * 2

    def test_appointment_create(self, hooks):
        self.deliver("contact_create")
        self.deliver("appointment_create")
        with tenant_context(self.world.acme):
            (contact,) = Contact.objects.filter(ghl_id=CONTACT_ID)
            (entry,) = contact.activity
        assert (entry["kind"], entry["change"], entry["appointment_id"], entry["status"]) == (
            "appointment", "AppointmentCreate", "0007BWpSzSwfiuSl0tR2", "confirmed")
        assert entry["start_time"] == "2025-12-02T16:00:00+01:00"
        with tenant_context(self.world.globex):
            assert not Contact.objects.filter(ghl_id=CONTACT_ID).exists()

    def test_appointment_create_replayed_is_recorded_once(self, hooks):
        self.deliver("appointment_create")  # the contact is known by its GoHighLevel id only
        with self._capture(execute=True), tenant_context(self.world.acme):
            assert replay(WebhookLog.objects.get(source="ghl"))
        (row,) = rows(self.world.acme, source="ghl")
        assert row.attempts == 2 and row.status == WebhookLog.Status.PROCESSED
        with tenant_context(self.world.acme):
            contact = Contact.objects.get(ghl_id=CONTACT_ID)
            assert contact.email == "" and len(contact.activity) == 1

    def test_appointment_update(self, hooks):
        self.deliver("appointment_create")
        self.deliver("appointment_update")
        with tenant_context(self.world.acme):
            activity = Contact.objects.get(ghl_id=CONTACT_ID).activity
        assert [(e["change"], e["status"]) for e in activity] == [
            ("AppointmentCreate", "confirmed"), ("AppointmentUpdate", "showed")]

    def test_opportunity_create_is_stored_as_ignored(self, hooks):
        with tenant_context(self.world.acme):
            before = Contact.objects.count()
        self.deliver("opportunity_create")
        (row,) = rows(self.world.acme, source="ghl")
        assert (row.status, row.error) == (WebhookLog.Status.IGNORED, "")
        with tenant_context(self.world.acme):
            assert Contact.objects.count() == before

    def test_workflow_webhook(self, hooks):
        """pat@example.com exists at both tenants: only acme's Pat gets the GoHighLevel id."""
        body = fixture_bytes("ghl", "workflow_webhook")
        assert self.post(self.world.acme, body, {"headers": {"X-Webhook-Token": self.secret_a}}).status_code == 200
        (row,) = rows(self.world.acme, source="ghl")
        assert (row.status, row.event_type) == (WebhookLog.Status.PROCESSED, "WorkflowWebhook")
        with tenant_context(self.world.acme):
            pat = Contact.objects.get(email="pat@example.com")
            assert (pat.ghl_id, pat.last_name, pat.phone) == ("wfK3nTa9Lk2PqR7sXy1Z", "Rivera", "+12055550123")
        with tenant_context(self.world.globex):
            pat = Contact.objects.get(email="pat@example.com")
            assert (pat.ghl_id, pat.last_name) == ("", "")

    # --- keys and signatures -----------------------------------------------------------------
    def test_rsa_legacy_signature(self, hooks):
        self.mode = "rsa"
        assert self.post_signed(self.world.acme).status_code == 200
        assert self.post_signed(self.world.acme, fixture_bytes("ghl", "contact_update"), secret="forger").status_code == 401
        assert self.error_of_last_row() == "signature does not match"

    @pytest.mark.parametrize("form", ["base64", "hex", "pem-one-line", "pem-body"])
    def test_ed25519_key_in_raw_forms(self, hooks, form):
        def encode(key):
            return {"base64": b64(raw_ed25519(key)), "hex": raw_ed25519(key).hex(),
                    "pem-one-line": public_pem(key).replace("\n", "\\n"),
                    "pem-body": "".join(public_pem(key).splitlines()[1:-1])}[form]

        self.settings.GHL_WEBHOOK_PUBLIC_KEY = encode(ED_KEY)
        assert self.post_signed(self.world.acme).status_code == 200
        self.settings.GHL_WEBHOOK_PUBLIC_KEY = encode(OTHER_ED_KEY)  # the setting is what decides
        assert self.post_signed(self.world.acme, fixture_bytes("ghl", "contact_update")).status_code == 401

    def test_a_failed_ed25519_signature_is_not_rescued_by_rsa(self, hooks):
        body = self.body()
        headers = {"x-ghl-signature": b64(OTHER_ED_KEY.sign(body)),
                   "x-wh-signature": b64(RSA_KEY.sign(body, padding.PKCS1v15(), hashes.SHA256()))}
        assert self.post(self.world.acme, body, {"headers": headers}).status_code == 401

    def test_an_unreadable_key_setting_rejects_with_a_reason(self, hooks):
        self.settings.GHL_WEBHOOK_PUBLIC_KEY = public_pem(RSA_KEY)  # a key, but not Ed25519
        assert self.post_signed(self.world.acme).status_code == 401
        assert self.error_of_last_row() == "GHL_WEBHOOK_PUBLIC_KEY is not an Ed25519 key"
        self.settings.GHL_WEBHOOK_PUBLIC_KEY = "not a key at all"
        assert self.post_signed(self.world.acme).status_code == 401
        assert self.error_of_last_row() == "GHL_WEBHOOK_PUBLIC_KEY is not a readable public key"

    def test_signed_delivery_without_a_configured_key_is_rejected(self, hooks):
        self.settings.GHL_WEBHOOK_PUBLIC_KEY = self.settings.GHL_WEBHOOK_RSA_PUBLIC_KEY = ""
        assert self.post_signed(self.world.acme).status_code == 401
        assert "no GoHighLevel public key" in self.error_of_last_row()

    # --- the location --------------------------------------------------------------------------
    def test_genuine_signature_for_another_location_is_rejected(self, hooks):
        response = self.post_signed(self.world.acme, secret=self.secret_b)  # globex's location, to acme
        assert response.status_code == 401 and response.json()["reason"] == MISMATCH
        with tenant_context(self.world.acme):
            assert not Contact.objects.filter(ghl_id=CONTACT_ID).exists()

    def test_genuine_signature_without_a_location_is_rejected(self, hooks):
        body = self.body().replace(f'"locationId": "{LOCATION_A}",'.encode(), b"")
        assert b"locationId" not in body
        assert self.post(self.world.acme, body, self.sign(body, self.secret_a)).status_code == 401
        assert self.error_of_last_row() == MISMATCH

    def test_tenant_without_a_location_accepts_no_signed_delivery(self, hooks):
        with tenant_context(self.world.acme):
            integration = TenantIntegration.objects.get(provider="ghl")
            integration.set_values({"location_id": ""})
            integration.save()
        assert self.post_signed(self.world.acme).status_code == 401
        assert self.error_of_last_row() == "no GoHighLevel location id is configured for this tenant"

    # --- the workflow token path -------------------------------------------------------------
    def test_workflow_with_a_wrong_token_is_rejected(self, hooks):
        body = fixture_bytes("ghl", "workflow_webhook")
        for token in ("not-the-token-000000000000", self.secret_b):
            assert self.post(self.world.acme, body, {"headers": {"X-Webhook-Token": token}}).status_code == 401
        assert [r.error for r in rows(self.world.acme, source="ghl")] == ["token does not match"] * 2
        with tenant_context(self.world.acme):
            assert Contact.objects.get(email="pat@example.com").ghl_id == ""

    def test_workflow_with_the_right_token_for_another_location_is_rejected(self, hooks):
        body = fixture_bytes("ghl", "workflow_webhook").replace(LOCATION_A.encode(), LOCATION_B.encode())
        assert self.post(self.world.acme, body, {"headers": {"X-Webhook-Token": self.secret_a}}).status_code == 401
        assert self.error_of_last_row() == MISMATCH

    def test_workflow_without_a_location_is_accepted_on_the_token(self, hooks):
        body = json.dumps({"contact_id": "wfNoLoc000000000001", "email": "sky@example.com"}).encode()
        assert self.post(self.world.acme, body, {"headers": {"X-Webhook-Token": self.secret_a}}).status_code == 200
        with tenant_context(self.world.acme):
            assert Contact.objects.get(ghl_id="wfNoLoc000000000001").email == "sky@example.com"

    # --- the event id --------------------------------------------------------------------------
    def test_event_id(self):
        provider = get_provider("ghl")

        def event_id(body):
            return provider.event_id(json.loads(body), WebhookRequest(body=body, headers={}, query={}))

        assert event_id(fixture_bytes("ghl", "contact_create")) == "6f1c0b7e-2d4a-4f7e-9a51-3b8e2c9d1a01"
        assert event_id(fixture_bytes("ghl", "appointment_update")) == (
            "AppointmentUpdate:0007BWpSzSwfiuSl0tR2:2025-12-02T16:05:12.774Z")
        workflow = fixture_bytes("ghl", "workflow_webhook")
        assert event_id(workflow) == body_hash(workflow)
        update = b'{"type": "ContactUpdate", "id": "c1", "dateAdded": "2025-01-01T00:00:00Z"}'
        assert event_id(update) == body_hash(update)  # dateAdded does not tell two updates apart

    # --- money and cancellations -------------------------------------------------------------
    def payments(self, tenant):
        with tenant_context(tenant):
            return {p.payment_event_id: p for p in Payment.objects.select_related("contact").filter(source="ghl")}

    def test_invoice_paid(self, hooks):
        """Signed, with the location in altId: accepted (it used to be refused as a location mismatch)."""
        self.deliver("invoice_paid")
        (row,) = rows(self.world.acme, source="ghl")
        assert (row.status, row.error) == (WebhookLog.Status.PROCESSED, "")
        payment = self.payments(self.world.acme)["invoice:6578278e879ad2646715ba9c"]
        assert (payment.amount, payment.currency, payment.status) == (Decimal("250"), "USD", "succeeded")
        assert payment.contact.ghl_id == CONTACT_ID and payment.contact.email == "riley.chen@example.com"
        assert payment.metadata["invoice_status"] == "paid" and payment.description == "Invoice 19"
        assert self.payments(self.world.globex) == {}

    def test_invoice_partially_paid(self, hooks):
        self.deliver("invoice_partially_paid")
        payment = self.payments(self.world.acme)["invoice:6578278e879ad2646715ba9c"]
        assert (payment.amount, payment.status) == (Decimal("100.50"), "succeeded")
        assert payment.metadata["amount_due"] == "149.5"
        self.deliver("invoice_paid")  # the rest: the same payment, now the whole amount
        (payment,) = self.payments(self.world.acme).values()
        assert payment.amount == Decimal("250") and payment.metadata["invoice_status"] == "paid"
        self.deliver("invoice_partially_paid", tenant=self.world.globex)
        (other,) = self.payments(self.world.globex).values()
        assert other.amount == Decimal("100.50")

    def test_a_late_partial_payment_event_does_not_shrink_the_invoice(self, hooks):
        self.deliver("invoice_paid")
        self.deliver("invoice_partially_paid")
        (payment,) = self.payments(self.world.acme).values()
        assert payment.amount == Decimal("250")

    def test_order_create(self, hooks):
        self.deliver("order_create")
        payment = self.payments(self.world.acme)["order:660ed43bfdf9fc05a0de7a40"]
        assert (payment.amount, payment.currency, payment.status) == (Decimal("74.99"), "USD", "succeeded")
        assert (payment.contact.first_name, payment.contact.last_name) == ("Riley", "Chen")
        assert payment.occurred_at.isoformat() == "2025-11-29T18:45:12.511000+00:00"
        assert self.payments(self.world.globex) == {}

    def test_appointment_delete(self, hooks):
        self.deliver("appointment_create")
        self.deliver("appointment_delete")
        with tenant_context(self.world.acme):
            activity = Contact.objects.get(ghl_id=CONTACT_ID).activity
        assert [(e["kind"], e["status"]) for e in activity] == [
            ("appointment", "confirmed"), ("appointment_cancelled", "cancelled")]
        with tenant_context(self.world.globex):
            assert not Contact.objects.filter(ghl_id=CONTACT_ID).exists()

    def test_location_update_is_accepted_on_its_id_and_ignored(self, hooks):
        self.deliver("location_update")
        (row,) = rows(self.world.acme, source="ghl")
        assert (row.status, row.error) == (WebhookLog.Status.IGNORED, "")

    @pytest.mark.parametrize("fixture, field, message", [
        ("invoice_paid", "altId", "altId (altType location) does not match this tenant's location"),
        ("order_create", "locationId", MISMATCH),
        ("location_update", "id", "id does not match this tenant's location"),
    ])
    def test_each_event_types_location_field_is_checked(self, hooks, fixture, field, message):
        """Globex's genuine delivery posted to acme is refused, naming the field that was read."""
        response = self.post_signed(self.world.acme, fixture_bytes("ghl", fixture), secret=self.secret_b)
        assert response.status_code == 401 and response.json()["reason"] == message
        assert self.payments(self.world.acme) == {}

    def test_an_invoice_whose_alt_type_is_not_a_location_is_refused(self, hooks):
        body = fixture_bytes("ghl", "invoice_paid").replace(b'"altType": "location"', b'"altType": "company"')
        assert self.post(self.world.acme, body, self.sign(body, self.secret_a)).status_code == 401
        assert self.payments(self.world.acme) == {}

    # --- odd but signed (issue 7.21) ---------------------------------------------------------
    @pytest.mark.parametrize("fixture, change, sentence", [
        ("invoice_paid", {"amountPaid": "abc"}, "`amountPaid` in the GoHighLevel InvoicePaid event: the amount 'abc' is not a plain decimal number (no exponent, NaN or infinity)"),
        ("invoice_paid", {"amountPaid": "NaN"}, "`amountPaid` in the GoHighLevel InvoicePaid event: the amount 'NaN' is not a plain decimal number (no exponent, NaN or infinity)"),
        ("invoice_paid", {"amountPaid": "Infinity"}, "`amountPaid` in the GoHighLevel InvoicePaid event: the amount 'Infinity' is not a plain decimal number (no exponent, NaN or infinity)"),
        ("invoice_paid", {"amountPaid": "1e1000"}, "`amountPaid` in the GoHighLevel InvoicePaid event: the amount '1e1000' is not a plain decimal number (no exponent, NaN or infinity)"),
        ("invoice_paid", {"amountPaid": 12.705}, "the amountPaid '12.705' is finer than the smallest unit of USD"),
        ("invoice_paid", {"currency": "USDX"}, "`currency` in the GoHighLevel InvoicePaid event: the currency 'USDX' is not a three-letter ISO 4217 code"),
        ("invoice_paid", {"contactDetails": "riley"}, "`contactDetails` in the GoHighLevel InvoicePaid event is not an object"),
        ("order_create", {"_id": None}, "`_id` in the GoHighLevel OrderCreate event is not an id (text or a number)"),
        ("order_create", {"amount": 10**15}, "is too large to store"),
        ("appointment_delete", {"appointment": ["x"]}, "`appointment` in the GoHighLevel AppointmentDelete event is not an object"),
        ("appointment_delete", {"appointment": {"id": "a1"}}, "the GoHighLevel AppointmentDelete event's appointment names no contact"),
    ])
    def test_odd_values_are_malformed_with_a_sentence(self, hooks, fixture, change, sentence):
        payload = json.loads(fixture_bytes("ghl", fixture))
        payload.update(change)
        assert self.post_signed(self.world.acme, json.dumps(payload).encode()).status_code == 200
        (row,) = rows(self.world.acme, source="ghl")
        assert row.status == WebhookLog.Status.MALFORMED and row.attempts == 1, (row.status, row.error)
        assert sentence in row.error
        assert self.payments(self.world.acme) == {}

    def test_nul_in_text_is_cleaned(self, hooks):
        payload = json.loads(fixture_bytes("ghl", "invoice_paid"))
        payload["invoiceNumber"] = "19\u0000"
        assert self.post_signed(self.world.acme, json.dumps(payload).encode()).status_code == 200
        (payment,) = self.payments(self.world.acme).values()
        assert payment.description == "Invoice 19"
