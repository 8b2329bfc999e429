"""Posh.VIP: ``X-Posh-Signature`` is the hex HMAC-SHA256 of the raw body with the tenant's webhook
secret. No timestamp is signed, so nothing can be called stale: a replay is caught by the event id.

Unconfirmed (from the seed documents only; no public source): the header, the hex encoding, the
payload's shape and the unit of ``total_amount``. What can vary is tolerated (upper-case hex, a
``sha256=`` prefix) or adjustable per tenant (the amount unit), and the setup page says so.
"""

from integrations.providers.base import (
    CredentialField,
    Provider,
    VerificationFailed,
    WebhookAuth,
    body_hash,
    constant_time_in,
    hmac_sha256_hex,
)
from integrations.providers.poshvip.handlers import HANDLERS, IGNORED_EVENTS
from integrations.providers.poshvip.schemas import SCHEMAS

SIGNATURE_HEADER = "X-Posh-Signature"


class PoshVipProvider(Provider):
    name = "poshvip"
    label = "Posh.VIP"
    webhook_auth = WebhookAuth.SIGNATURE
    webhook_secret_label = "Webhook signing secret (X-Posh-Signature)"
    credential_fields = (
        CredentialField(
            "amount_unit", "Amount unit", secret=False, required=False,
            help_text="How Posh.VIP's total_amount counts: currency units (45.00 for $45, the default) or "
                      "whole cents (4500 for $45).",
            example="cents",
            choices=(("", "Currency units (45.00 for $45)"), ("cents", "Whole cents (4500 for $45)")),
        ),
    )
    handlers = HANDLERS
    schemas = SCHEMAS
    ignored_events = IGNORED_EVENTS
    signature_headers = (SIGNATURE_HEADER,)

    def verify(self, request, integration):
        signature = request.headers.get(SIGNATURE_HEADER, "").strip().lower()
        signature = signature.removeprefix("sha256=")
        if not signature:
            raise VerificationFailed(f"no {SIGNATURE_HEADER} header")
        secrets = self.verification_secrets(integration)
        if not secrets:
            raise VerificationFailed("no signing secret is configured for this tenant")
        # Every secret is compared in full, so the timing does not tell which one (if any) matched.
        if not constant_time_in(signature, [hmac_sha256_hex(secret, request.body) for secret in secrets]):
            raise VerificationFailed("signature does not match")

    def event_type(self, payload, request):
        return str(payload.get("event") or "")

    def event_id(self, payload, request):
        """``<purchase id>:<event>``, plus ``:<ticket id>`` for ticket events (one purchase holds
        several tickets, each checked in or transferred on its own), plus a body hash for
        transfers. Without a purchase id, the body's SHA-256."""
        purchase = payload.get("purchase") if isinstance(payload.get("purchase"), dict) else {}
        if not purchase.get("id"):
            return body_hash(request.body)
        ticket = payload.get("ticket") if isinstance(payload.get("ticket"), dict) else {}
        parts = [purchase["id"], payload.get("event") or "", ticket.get("id")]
        if payload.get("event") == "ticket.transferred":
            # One ticket may change hands more than once (A→B, then B→C): each transfer is its own
            # event, and a retry repeats the body, so the body tells them apart.
            parts.append(body_hash(request.body)[:16])
        return ":".join(str(part) for part in parts if part)

    def setup_steps(self, webhook_url):
        return [
            "In Posh, open your organization's settings → Integrations → Webhooks and add a webhook.",
            f"Webhook URL: {webhook_url}",
            "Choose the events purchase.created, purchase.refunded, ticket.checked_in and ticket.transferred.",
            "Copy the webhook's signing secret and enter it here; each delivery must carry its hex "
            "HMAC-SHA256 in the X-Posh-Signature header.",
            "Unconfirmed: no public Posh documentation describes this webhook, so the above follows the "
            "documents Posh gave us. We read total_amount as a price in currency units (45.00 = $45); if "
            "your payments show up 100 times too large, set “Amount unit” to “cents”. If deliveries are "
            "rejected, check the header name and the secret with Posh.",
        ]

    def test_delivery_auth(self, body, secret):
        return {"X-Posh-Signature": hmac_sha256_hex(secret, body)}, {}
