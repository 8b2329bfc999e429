"""Eventbrite: no signing, and no way to set a header, so the tenant's token is only accepted in
the URL (``?token=``), as Eventbrite advises for a private URL; a token in a header is ignored.

The body is a pointer, ``{"config": {"action", "webhook_id", …}, "api_url"}``: the handlers fetch
``api_url`` with the tenant's private token. The event id is Eventbrite's ``X-Eventbrite-Delivery``
header when present, else ``<action>:<api_url>`` (PROVIDERS.md). Eventbrite deletes a webhook that
is answered 410, so nothing here may produce one (the receiver view never does).
"""

import uuid
from datetime import timedelta

from django.conf import settings

from integrations.http import get_with_bearer
from integrations.providers.base import TEST_EVENT_TYPE, CredentialField, Provider, WebhookAuth
from integrations.providers.eventbrite.handlers import EVENT_DOCS, FETCHERS, HANDLERS, IGNORED_EVENTS
from integrations.providers.eventbrite.schemas import SCHEMAS


class EventbriteProvider(Provider):
    name = "eventbrite"
    label = "Eventbrite"
    webhook_auth = WebhookAuth.TOKEN
    webhook_secret_label = "Webhook URL token (?token=)"
    docs_url = "https://www.eventbrite.com/platform/docs/webhooks"
    credential_fields = (
        CredentialField("api_key", "API key", secret=False, required=False),
        CredentialField("client_secret", "Client secret", required=False),
        CredentialField("private_token", "Private token",
                        help_text="Used to fetch each delivery's api_url, and by the hourly attendee sync."),
    )
    handlers = HANDLERS
    schemas = SCHEMAS
    fetchers = FETCHERS
    ignored_events = IGNORED_EVENTS
    event_docs = EVENT_DOCS
    token_in_header = False
    token_in_query = True

    def event_type(self, payload, request):
        config = payload.get("config")
        return str(config.get("action") or "") if isinstance(config, dict) else ""

    def event_id(self, payload, request):
        """``X-Eventbrite-Delivery`` when Eventbrite sends it. Otherwise ``order.placed`` is
        ``<action>:<api_url>`` (an order is placed once). Every other action may come again for the
        same object with a new change behind the very same body (an attendee updated twice), so
        no key made from the body can tell a retry from a new change: each delivery gets its own
        key and is stored. The handler tells them apart on the fetched object's ``changed`` time
        (see ``handlers.py``): a retry of a change already handled writes nothing."""
        delivery = request.headers.get("X-Eventbrite-Delivery", "").strip()
        if delivery:
            return delivery
        action = self.event_type(payload, request)
        key = f"{action}:{payload.get('api_url') or ''}"
        return key if action == "order.placed" else f"{key}:{uuid.uuid4().hex}"

    def test_event(self, integration, event_id, sent_at):
        # A pointer like Eventbrite's, under the API base (never fetched: the type is ignored).
        return {"config": {"action": TEST_EVENT_TYPE, "webhook_id": "engarde-test"},
                "api_url": f"{settings.EVENTBRITE_API_BASE}/engarde-test/{event_id}/"}

    def setup_steps(self, webhook_url):
        return [
            "In Eventbrite open Account Settings → Developer Links → API Keys and copy your private token "
            "into “Private token” here: each delivery is fetched with it.",
            "Open Developer Links → Webhooks and click “Add Webhook”.",
            f"Payload URL: {webhook_url}?token=<your webhook token> — the token must be in the URL, because "
            "Eventbrite cannot send headers. Treat the whole URL as a secret.",
            "Actions: order.placed, order.updated, order.refunded, attendee.updated, attendee.checked_in and "
            "attendee.checked_out (what each does is listed below; others are stored and marked ignored). "
            "Choose the event, or all events.",
            "Use Eventbrite's “Test” button, then check this tenant's webhook log.",
            f"With the private token, attendees are also synced every {settings.EVENTBRITE_SYNC_INTERVAL_MINUTES:g} "
            "minutes (every organization the token belongs to; live events and those ended in the last "
            f"{settings.EVENTBRITE_ENDED_DAYS} days), so what a webhook missed still arrives, once.",
        ]

    # --- the attendee sync (integrations/providers/eventbrite/sync.py) --------------------------
    @property
    def sync_interval(self):
        return timedelta(minutes=settings.EVENTBRITE_SYNC_INTERVAL_MINUTES)

    def sync(self, integration, since=None):
        """Attendees of live and recently ended events, changed since the last run → contacts,
        sign-ups, payments and check-ins, through the webhook handlers' own ``record_attendee``."""
        from integrations.providers.eventbrite.sync import EventbriteSync

        return EventbriteSync(integration, since=since).run()

    def check_connection(self, integration) -> str:
        """GET /users/me/ with the tenant's private token."""
        token = integration.value("private_token")
        if not token:
            raise ValueError("enter the private token first")
        me = get_with_bearer(f"{settings.EVENTBRITE_API_BASE}/users/me/", token, platform="Eventbrite")
        return f"signed in as {me.get('name') or me.get('id', 'a user')}"
