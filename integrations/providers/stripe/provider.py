"""Stripe: ``Stripe-Signature: t=<unix>,v1=<hex>[,v1=…]``, HMAC-SHA256 of ``"<t>.<raw body>"`` with
the endpoint's signing secret; any ``v1`` may match; a ``t`` more than 300 s away from our clock,
either way, is refused. Checked with the official SDK (``stripe.WebhookSignature``), for each
secret the tenant has in force; the SDK checks the past only, so the future is checked here."""

import time
from datetime import timedelta

from django.conf import settings
# Bound once: ``stripe.WebhookSignature`` is a lazy attribute of the package, an import per access.
from stripe import SignatureVerificationError, WebhookSignature

from integrations.http import get_with_bearer
from integrations.providers.base import CredentialField, Provider, VerificationFailed, WebhookAuth, hmac_sha256_hex
from integrations.providers.stripe.handlers import EVENT_DOCS, HANDLERS, IGNORED_EVENTS
from integrations.providers.stripe.lookups import FETCHERS
from integrations.providers.stripe.schemas import SCHEMAS
from integrations.providers.validators import starts_with

TOLERANCE_SECONDS = 300


class StripeProvider(Provider):
    name = "stripe"
    label = "Stripe"
    webhook_auth = WebhookAuth.SIGNATURE
    webhook_secret_label = "Signing secret (whsec_…)"
    webhook_secret_example = "whsec_"
    webhook_secret_validators = (starts_with("whsec_", what="a Stripe signing secret (Developers → Webhooks → your endpoint → Signing secret)"),)
    docs_url = "https://docs.stripe.com/webhooks"
    credential_fields = (
        CredentialField(
            "secret_key", "Secret key", required=False,
            help_text="A restricted key (rk_…) with read access to Customers, Charges, Invoices and Events (and Balance "
                      "for “check connection”): used to look up the payer when an event does not name one, and to "
                      "backfill events a webhook outage lost, daily.",
            example="sk_live_",
            validators=(starts_with("sk_", "rk_", what="a Stripe secret or restricted key", refused={
                "pk_": "That is a publishable key (pk_…), which cannot read events: "
                       "use a secret key (sk_…) or a restricted key (rk_…).",
                "whsec_": "That is the webhook signing secret: it goes in the signing secret field below.",
            }),),
        ),
    )
    handlers = HANDLERS
    schemas = SCHEMAS
    fetchers = FETCHERS
    ignored_events = IGNORED_EVENTS
    signature_headers = ("Stripe-Signature",)
    event_docs = EVENT_DOCS

    def batch_scope(self, events):
        """The events' payment ids held, and in a drain batch looked up in one query
        (``payments.looked_up_together``)."""
        from integrations.providers.stripe.payments import looked_up_together

        return looked_up_together(events)

    def verify(self, request, integration):
        header = request.headers.get(self.signature_headers[0], "")
        if not header:
            raise VerificationFailed("no Stripe-Signature header")
        if not header.isascii():
            # The SDK compares with hmac.compare_digest, which raises TypeError on non-ASCII text.
            raise VerificationFailed("Stripe-Signature is not ASCII")
        secrets = self.verification_secrets(integration)
        if not secrets:
            raise VerificationFailed("no signing secret is configured for this tenant")
        stale = False
        for secret in secrets:
            try:
                WebhookSignature.verify_header(request.body, header, secret, TOLERANCE_SECONDS)
            except SignatureVerificationError as exc:
                stale |= "tolerance" in str(exc)
                continue
            except UnicodeDecodeError:
                # The SDK decodes the body before it computes anything: Stripe sends UTF-8 JSON,
                # so a body that is not UTF-8 is not Stripe's, whatever its signature says.
                raise VerificationFailed("the body is not UTF-8 text, so it is not a Stripe event") from None
            self._refuse_future(header)
            return
        if stale:
            raise VerificationFailed(f"signature timestamp is older than {TOLERANCE_SECONDS} s")
        raise VerificationFailed("signature does not match")

    @staticmethod
    def _refuse_future(header: str) -> None:
        """The SDK refuses only old timestamps; one beyond the tolerance ahead of our clock is a
        delivery signed for a replay later (or a clock we must not trust), refused the same."""
        timestamp = next(value for key, _, value in (item.partition("=") for item in header.split(",")) if key == "t")
        if int(timestamp) > time.time() + TOLERANCE_SECONDS:
            raise VerificationFailed(f"signature timestamp is more than {TOLERANCE_SECONDS} s in the future")

    def event_type(self, payload, request):
        return str(payload.get("type", ""))

    def event_id(self, payload, request):
        return str(payload.get("id") or super().event_id(payload, request))

    def setup_steps(self, webhook_url):
        return [
            "In the Stripe Dashboard open Developers → Webhooks and click “Add endpoint”.",
            f"Endpoint URL: {webhook_url}",
            "Select the events listed below (what each does is said there), or “all events”: the others are stored "
            "and marked ignored.",
            "Save, then reveal the endpoint's signing secret (whsec_…) and enter it here.",
            "Recommended: create a restricted key (Developers → API keys → Create restricted key) with Read on "
            "Customers, Charges, Invoices, Events and Balance, and enter it as the secret key. Since API version "
            "2022-11-15 a PaymentIntent no longer carries its payer, a subscription names only its customer and, "
            "since 2025-03-31, an invoice no longer names its PaymentIntent: En Garde asks Stripe for them with this "
            "key (never while holding a database lock; each customer is cached for an hour). Without it those "
            "payments are recorded without a contact and a subscription invoice and its PaymentIntent may show as "
            "two payments.",
            "With the key, En Garde also lists your Stripe events once a day (GET /v1/events, the types above) and "
            "processes any it never received, say during an outage: an event that did arrive is recognised by its "
            "id and not processed again. Without a key there is no backfill.",
        ]

    def check_connection(self, integration) -> str:
        """GET /v1/balance with the tenant's secret key: proves the key works, changes nothing."""
        key = integration.value("secret_key")
        if not key:
            raise ValueError("enter the secret key first")
        balance = get_with_bearer(f"{settings.STRIPE_API_BASE}/v1/balance", key, platform="Stripe")
        currencies = sorted({b.get("currency", "").upper() for b in balance.get("available", [])} - {""})
        return "the key works" + (f" (balance in {', '.join(currencies)})" if currencies else "")

    # --- the backfill of missed events (backfill.py) ------------------------------------------
    @property
    def sync_interval(self):
        return timedelta(hours=settings.STRIPE_BACKFILL_INTERVAL_HOURS)

    def sync(self, integration, since=None):
        """List the tenant's events since the last run and store the ones we never received."""
        from integrations.providers.stripe.backfill import StripeBackfill

        return StripeBackfill(integration, since=since).run()

    def sync_notice(self, integration) -> str:
        from integrations.providers.stripe.backfill import notice

        return notice(integration)

    def test_delivery_auth(self, body, secret):
        timestamp = int(time.time())
        return {self.signature_headers[0]: f"t={timestamp},v1={hmac_sha256_hex(secret, f'{timestamp}.'.encode() + body)}"}, {}
