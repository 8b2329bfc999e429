"""An operator's "send a test event": one delivery through the whole receiving path, in-process,
authenticated with the tenant's current secret the way the platform would, so it proves that the
stored secret (and, for GoHighLevel, the location id) lets real deliveries in.

The body is the provider's own (``Provider.test_event``), with the event type ``engarde.test``
where that provider reads its type: it is stored as ``ignored`` and creates no contact, payment or
sign-up in the tenant's data.
"""

import json
import uuid

from django.utils import timezone
from django.utils.datastructures import CaseInsensitiveMapping

from integrations.providers.base import WebhookRequest
from tenants.context import tenant_context
from webhooks.ingest import Outcome, receive


class CannotTest(Exception):
    pass


def test_body(integration) -> bytes:
    sent_at = timezone.now()
    payload = integration.provider_obj.test_event(integration, f"engarde-test-{uuid.uuid4().hex}", sent_at)
    payload.update(sent_at=sent_at.isoformat(), note="A test event sent by an En Garde operator. Nothing is created from it.")
    return json.dumps(payload).encode()


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
