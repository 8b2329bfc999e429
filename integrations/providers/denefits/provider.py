"""Denefits (payment plans), through Make.com: nothing is signed or published, so the scenario's
HTTP module sends the tenant's token in ``X-Webhook-Token`` (never in the URL: Make can set headers) and a body of our
documented shape (see ``handlers.py``). The event id is ``<event>:<id>`` when the scenario sends a
unique ``id``, else the body's hash, so a scenario re-run of the same bytes is one event.
"""

from integrations.providers.base import CredentialField, Provider, WebhookAuth
from integrations.providers.denefits.handlers import HANDLERS, IGNORED_EVENTS
from integrations.providers.denefits.schemas import SCHEMAS


class DenefitsProvider(Provider):
    name = "denefits"
    label = "Denefits"
    webhook_auth = WebhookAuth.TOKEN
    webhook_secret_label = "Webhook token (X-Webhook-Token header)"
    credential_fields = (CredentialField("api_key", "API key", required=False),)
    handlers = HANDLERS
    schemas = SCHEMAS
    ignored_events = IGNORED_EVENTS

    def event_type(self, payload, request):
        return str(payload.get("event") or payload.get("type") or "")

    def event_id(self, payload, request):
        own_id = payload.get("id")
        if own_id not in (None, ""):
            return f"{self.event_type(payload, request)}:{own_id}"
        return super().event_id(payload, request)

    def setup_steps(self, webhook_url):
        return [
            "Denefits publishes no webhook format (unconfirmed), so the events travel through a Make.com "
            "scenario: trigger on the Denefits event (contract created, payment received, payment failed).",
            f"Add an HTTP “Make a request” module: method POST, URL {webhook_url}, body type raw, "
            "content type application/json.",
            "Headers: X-Webhook-Token = the webhook token shown on this page. Only this header is accepted: "
            "a token in the URL is refused, because URLs end up in logs.",
            "Body: {\"event\": \"contract.created\" | \"payment.received\" | \"payment.failed\", "
            "\"id\": <unique per event, optional>, \"customer\": {\"email\", \"first_name\", \"last_name\", \"phone\"}, "
            "\"contract\": {\"id\", \"amount\", \"currency\", \"installments\", \"status\"}, "
            "\"payment\": {\"id\", \"amount\", \"currency\", \"paid_at\"}}.",
            "Amounts are in major units (199.00, not 19900); the currency defaults to USD. Leave \"id\" out "
            "unless it is unique per event: two events with the same event and id count as one.",
            "contract.created adds the customer and a sign-up to approve; payment.received records the payment; "
            "payment.failed records a failed payment. Run the scenario once and check this tenant's webhook log.",
        ]
