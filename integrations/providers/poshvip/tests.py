import json
from decimal import Decimal

import pytest

from contacts.models import Contact, Payment, PendingSignup
from integrations.models import TenantIntegration
from integrations.providers.base import WebhookRequest, body_hash, hmac_sha256_hex
from integrations.registry import get_provider
from tenants.context import tenant_context
from webhooks.models import WebhookLog
from webhooks.processing import replay
from webhooks.testing import SignedBodyTests, WebhookSecuritySuite, fixture_bytes, rows

PURCHASE = "pur_8f3k2LmQ9xT4"


class TestPoshVip(SignedBodyTests, WebhookSecuritySuite):
    source = "poshvip"
    valid_fixture = "purchase_created"
    secret_a = "posh-whsec-acme-0123456789abcdef"
    secret_b = "posh-whsec-globex-fedcba98765432"

    def sign(self, body, secret, timestamp=None):
        return {"headers": {"X-Posh-Signature": hmac_sha256_hex(secret, body)}}

    def deliver(self, name, tenant=None, body=None):
        tenant = tenant or self.world.acme
        response = self.post_signed(tenant, body or fixture_bytes("poshvip", name))
        assert response.status_code == 200, response.content
        return response

    def set_amount_unit(self, unit):
        with tenant_context(self.world.acme):
            integration = TenantIntegration.objects.get(provider="poshvip")
            integration.set_values({"amount_unit": unit})
            integration.save()

    def contact(self, tenant, email):
        with tenant_context(tenant):
            return Contact.objects.get(email=email)

    # --- one test per fixture ----------------------------------------------------------------
    def test_purchase_created(self, hooks):
        self.deliver("purchase_created")
        with tenant_context(self.world.acme):
            payment = Payment.objects.get(payment_event_id=f"poshvip:{PURCHASE}")
            assert (payment.amount, payment.currency, payment.status) == (Decimal("90.00"), "USD", "succeeded")
            assert (payment.external_id, payment.source, payment.description) == (PURCHASE, "poshvip", "Midnight Masquerade")
            assert payment.occurred_at.isoformat() == "2025-11-22T19:04:11+00:00"
            contact = payment.contact
            assert (contact.email, contact.first_name, contact.last_name, contact.phone) == (
                "jordan.blake@example.com", "Jordan", "Blake", "+13105550142")
            signup = PendingSignup.objects.get(source="poshvip", external_id=PURCHASE)
            assert signup.contact == contact and signup.status == "pending"
            assert signup.metadata["event_name"] == "Midnight Masquerade"
            assert [t["id"] for t in signup.metadata["tickets"]] == ["tkt_Q1a2B3c4", "tkt_Q5d6E7f8"]
        with tenant_context(self.world.globex):
            assert not Payment.objects.filter(source="poshvip").exists()
            assert not PendingSignup.objects.filter(source="poshvip").exists()
            assert not Contact.objects.filter(email="jordan.blake@example.com").exists()

    def test_purchase_refunded(self, hooks):
        self.deliver("purchase_created")
        self.deliver("purchase_refunded")
        with tenant_context(self.world.acme):
            (payment,) = Payment.objects.filter(source="poshvip")
            assert (payment.status, payment.amount_refunded) == ("refunded", Decimal("90.00"))
        with tenant_context(self.world.globex):
            assert not Payment.objects.filter(source="poshvip").exists()

    def test_purchase_refunded_for_an_unseen_purchase_is_recorded(self, hooks):
        self.deliver("purchase_refunded")
        with tenant_context(self.world.acme):
            payment = Payment.objects.get(external_id=PURCHASE)
            assert (payment.status, payment.amount, payment.amount_refunded) == ("refunded", Decimal("90.00"), Decimal("90.00"))
            assert payment.contact.email == "jordan.blake@example.com"

    def test_ticket_checked_in(self, hooks):
        self.deliver("ticket_checked_in")
        (entry,) = self.contact(self.world.acme, "jordan.blake@example.com").activity
        assert entry["kind"] == "checked_in"
        assert (entry["ticket_id"], entry["purchase_id"], entry["event_name"]) == ("tkt_Q1a2B3c4", PURCHASE, "Midnight Masquerade")
        with tenant_context(self.world.globex):
            assert not Contact.objects.filter(email="jordan.blake@example.com").exists()

    def test_ticket_checked_in_replayed_is_recorded_once(self, hooks):
        self.deliver("ticket_checked_in")
        with self._capture(execute=True), tenant_context(self.world.acme):
            assert replay(WebhookLog.objects.get(source="poshvip"))
        (row,) = rows(self.world.acme, source="poshvip")
        assert row.attempts == 2 and row.status == WebhookLog.Status.PROCESSED  # the handler did run again
        assert len(self.contact(self.world.acme, "jordan.blake@example.com").activity) == 1

    def test_the_other_ticket_of_the_purchase_checks_in_separately(self, hooks):
        self.deliver("ticket_checked_in")
        other = fixture_bytes("poshvip", "ticket_checked_in").replace(b'"id": "tkt_Q1a2B3c4"', b'"id": "tkt_Q5d6E7f8"')
        self.deliver("ticket_checked_in", body=other)
        activity = self.contact(self.world.acme, "jordan.blake@example.com").activity
        assert [e["ticket_id"] for e in activity] == ["tkt_Q1a2B3c4", "tkt_Q5d6E7f8"]

    def test_ticket_transferred(self, hooks):
        """The new holder is pat@example.com, who exists at both tenants: only acme's Pat changes."""
        self.deliver("ticket_transferred")
        (out,) = self.contact(self.world.acme, "jordan.blake@example.com").activity
        assert (out["kind"], out["direction"], out["to_email"], out["ticket_id"]) == (
            "transferred", "out", "pat@example.com", "tkt_Q5d6E7f8")
        pat = self.contact(self.world.acme, "pat@example.com")
        (entry,) = pat.activity
        assert (entry["kind"], entry["direction"], entry["from_email"]) == ("transferred", "in", "jordan.blake@example.com")
        assert (pat.last_name, pat.phone) == ("Okafor", "+13105550199")
        globex_pat = self.contact(self.world.globex, "pat@example.com")
        assert (globex_pat.activity, globex_pat.last_name) == ([], "")

    def test_a_second_transfer_of_the_same_ticket_is_its_own_event(self, hooks):
        self.deliver("ticket_transferred")
        onward = fixture_bytes("poshvip", "ticket_transferred").replace(b"Pat@example.com", b"sam.onward@example.com")
        self.deliver("ticket_transferred", body=onward)
        transfers = rows(self.world.acme, source="poshvip")
        assert len(transfers) == 2 and {r.status for r in transfers} == {"processed"}
        assert transfers[0].event_id != transfers[1].event_id
        assert self.contact(self.world.acme, "sam.onward@example.com") is not None
        self.deliver("ticket_transferred", body=onward)  # a retry of the second transfer
        assert [r.delivery_count for r in rows(self.world.acme, source="poshvip")] == [1, 2]

    # --- amounts -----------------------------------------------------------------------------
    @pytest.mark.parametrize(("unit", "total", "expected"), [
        ("", b"90", Decimal("90")),  # the default: currency units, whole or not
        ("cents", b"9000", Decimal("90.00")),  # the tenant said its deliveries carry cents
        ("cents", b'"9000"', Decimal("90.00")),
        ("cents", b"90.50", Decimal("90.50")),  # a fraction cannot be a count of cents
        ("cents", b'"90.00"', Decimal("90.00")),
    ])
    def test_amount_unit(self, hooks, unit, total, expected):
        self.set_amount_unit(unit)
        body = fixture_bytes("poshvip", "purchase_created").replace(b'"total_amount": 90.00', b'"total_amount": ' + total)
        self.deliver("purchase_created", body=body)
        with tenant_context(self.world.acme):
            assert Payment.objects.get(external_id=PURCHASE).amount == expected

    def test_a_free_purchase_is_a_signup_without_a_payment(self, hooks):
        body = fixture_bytes("poshvip", "purchase_created").replace(b'"total_amount": 90.00', b'"total_amount": 0')
        self.deliver("purchase_created", body=body)
        with tenant_context(self.world.acme):
            assert not Payment.objects.filter(source="poshvip").exists()
            assert PendingSignup.objects.filter(source="poshvip", external_id=PURCHASE).exists()

    # --- signature forms and the event id ----------------------------------------------------
    def test_upper_case_hex_and_a_sha256_prefix_are_accepted(self, hooks):
        body = self.body()
        signature = hmac_sha256_hex(self.secret_a, body)
        assert self.post(self.world.acme, body, {"headers": {"X-Posh-Signature": signature.upper()}}).status_code == 200
        with tenant_context(self.world.acme):
            WebhookLog.objects.all().delete()
        assert self.post(self.world.acme, body, {"headers": {"X-Posh-Signature": f"sha256={signature}"}}).status_code == 200

    def test_event_id(self):
        provider = get_provider("poshvip")
        for name, expected in [
            ("purchase_created", f"{PURCHASE}:purchase.created"),
            ("ticket_checked_in", f"{PURCHASE}:ticket.checked_in:tkt_Q1a2B3c4"),
        ]:
            body = fixture_bytes("poshvip", name)
            assert provider.event_id(json.loads(body), WebhookRequest(body=body, headers={}, query={})) == expected
        body = b'{"event": "purchase.created", "purchase": {}}'
        assert provider.event_id(json.loads(body), WebhookRequest(body=body, headers={}, query={})) == body_hash(body)
