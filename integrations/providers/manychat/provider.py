"""ManyChat: no signing. The flow's External Request step carries the tenant's token in the
``X-Webhook-Token`` header (never in the URL: the step can set headers), checked in constant time by the base class.

Nothing about the body is ManyChat's own format: the flow author builds it. The shape we read is
documented in ``handlers.py`` and on the setup page; because the same bytes can legitimately be
sent twice for one subscriber (a flow run twice), the event id is the subscriber id plus the body's
hash, as PROVIDERS.md states: an identical repeat is a duplicate, any change is a new event.
"""

from django.conf import settings

from integrations.http import get_with_bearer
from integrations.providers.base import CredentialField, Provider, WebhookAuth, body_hash
from integrations.providers.manychat.handlers import DEFAULT_EVENT, HANDLERS, IGNORED_EVENTS, subscriber_of
from integrations.providers.manychat.schemas import Subscriber


class ManyChatProvider(Provider):
    name = "manychat"
    label = "ManyChat"
    webhook_auth = WebhookAuth.TOKEN
    webhook_secret_label = "Webhook token (X-Webhook-Token header)"
    docs_url = "https://help.manychat.com/hc/en-us/articles/14281285374364"
    credential_fields = (
        CredentialField("api_key", "API key", required=False, help_text="Settings → API; the page-id:key pair."),
    )
    handlers = HANDLERS
    schemas = {event_type: Subscriber for event_type in HANDLERS}
    ignored_events = IGNORED_EVENTS

    def event_type(self, payload, request):
        explicit = payload.get("event") or payload.get("type")
        if explicit:
            return str(explicit)
        return DEFAULT_EVENT if subscriber_of(payload).get("id") else ""

    def event_id(self, payload, request):
        subscriber_id = str(subscriber_of(payload).get("id") or "").strip()
        digest = body_hash(request.body)
        return f"{subscriber_id}:{digest}" if subscriber_id else digest

    def setup_steps(self, webhook_url):
        return [
            "In ManyChat open the flow that should report subscribers and add an Action → “External Request” "
            "(a ManyChat Pro feature).",
            f"Request type: POST. Request URL: {webhook_url}",
            "Headers: add X-Webhook-Token with the webhook token shown on this page. Only this header is "
            "accepted: a token in the URL is refused, because URLs end up in logs.",
            "Body: application/json, and insert “Full Subscriber Data” (id, first_name, last_name, email, phone, "
            "custom_fields). Optionally add \"event\": \"new_subscriber\" or \"subscriber.updated\"; without it the "
            "body is recorded as a \"subscriber\" event. The subscriber may also be wrapped as "
            "{\"subscriber\": {…}}.",
            "The body is built by your flow, not by ManyChat, so this shape is our convention: custom fields are "
            "kept whether they come as an object or as ManyChat's list of {name, value}.",
            "Click “Test the request”: a 200 answer means the delivery was stored; it appears in this tenant's "
            "webhook log.",
        ]

    def check_connection(self, integration) -> str:
        """GET /fb/page/getInfo. ManyChat reports errors in the body, so check ``status`` too."""
        key = integration.value("api_key")
        if not key:
            raise ValueError("enter the API key first")
        answer = get_with_bearer(f"{settings.MANYCHAT_API_BASE}/fb/page/getInfo", key, platform="ManyChat")
        if answer.get("status") != "success":
            raise ValueError("ManyChat refused the key")
        return f"page {(answer.get('data') or {}).get('name', 'found')}"
