"""Perspective (funnel builder): nothing public about signing, so the tenant's token rides in
``X-Webhook-Token`` (never in the URL), checked by the base class. The body shape is unconfirmed:
``handlers.py`` documents what we read, and the setup page says so. The event id is the lead's
``id`` when the body has one, else the body's hash (PROVIDERS.md)."""

from integrations.providers.base import CredentialField, Provider, WebhookAuth
from integrations.providers.perspective.handlers import DEFAULT_EVENT, HANDLERS, IGNORED_EVENTS
from integrations.providers.perspective.schemas import SCHEMAS


class PerspectiveProvider(Provider):
    name = "perspective"
    label = "Perspective"
    webhook_auth = WebhookAuth.TOKEN
    webhook_secret_label = "Webhook token (X-Webhook-Token header)"
    credential_fields = (CredentialField("api_key", "API key", required=False),)
    handlers = HANDLERS
    schemas = SCHEMAS
    ignored_events = IGNORED_EVENTS

    def event_type(self, payload, request):
        # A funnel sends leads only; an explicit event lets a relay (Zapier, Make) say more.
        return str(payload.get("event") or payload.get("type") or DEFAULT_EVENT)

    def event_id(self, payload, request):
        own_id = payload.get("id")
        return f"lead:{own_id}" if own_id not in (None, "") else super().event_id(payload, request)

    def setup_steps(self, webhook_url):
        return [
            "In Perspective open the funnel → Integrations → Webhook (or relay the funnel's “new lead” "
            "trigger through Zapier or Make with a POST request).",
            f"URL: {webhook_url} — method POST, JSON body.",
            "Send the webhook token shown on this page in the header X-Webhook-Token. Only this header is "
            "accepted (a token in the URL is refused, because URLs end up in logs): if the funnel's own webhook "
            "cannot set headers, relay it through Zapier or Make, which can.",
            "Perspective's own payload format is unconfirmed, so we read: \"contact\" (or the top level) with "
            "email, firstName/lastName (or name), phone; \"answers\" as {question: answer} or a list of "
            "{question, answer}; optional \"id\", \"funnel\" {name} and \"event\" (default \"lead\").",
            "Every answered field that is not e-mail, name or phone is kept on the contact as a custom field. "
            "Submit the funnel once and check this tenant's webhook log; a lead without an e-mail is marked malformed.",
        ]
