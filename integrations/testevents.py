"""An operator's "send a test event": one delivery through the whole receiving path, in-process,
authenticated with the tenant's current secret the way the platform would, so it proves that the
stored secret (and, for GoHighLevel, the location id) lets real deliveries in.

The body uses the event type ``engarde.test`` in every field a provider reads its type from, so
each provider parses it as that type; it is stored as ``ignored`` and creates no contact, payment
or sign-up in the tenant's data.
"""

import json
import uuid

from django.conf import settings
from django.utils import timezone
from django.utils.datastructures import CaseInsensitiveMapping

from integrations.providers.base import TEST_EVENT_TYPE, WebhookRequest
from tenants.context import tenant_context
from webhooks.ingest import Outcome, receive


class CannotTest(Exception):
    pass


def test_body(integration) -> bytes:
    event_id = f"engarde-test-{uuid.uuid4().hex}"
    return json.dumps({
        "id": event_id,
        "type": TEST_EVENT_TYPE, "event": TEST_EVENT_TYPE, "action": TEST_EVENT_TYPE,
        "config": {"action": TEST_EVENT_TYPE, "webhook_id": "engarde-test"},
        "api_url": f"{settings.EVENTBRITE_API_BASE}/engarde-test/",
        "event_ts": int(timezone.now().timestamp() * 1000),
        "locationId": integration.settings.get("location_id", ""),
        "sent_at": timezone.now().isoformat(),
        "note": "A test event sent by an En Garde operator. Nothing is created from it.",
    }).encode()


def send_test_event(integration) -> Outcome:
    provider = integration.provider_obj
    if not provider.receives_webhooks:
        raise CannotTest(f"{provider.label} sends no webhooks")
    secrets = integration.valid_webhook_secrets()
    if not secrets:
        raise CannotTest("no webhook secret is configured")
    body = test_body(integration)
    headers, query = provider.test_delivery_auth(body, secrets[0])
    request = WebhookRequest(
        body=body,
        headers=CaseInsensitiveMapping({"Content-Type": "application/json", "User-Agent": "En Garde test event", **headers}),
        query=query,
        remote_addr=None,
    )
    with tenant_context(integration.tenant_id):
        return receive(provider, integration, request)
