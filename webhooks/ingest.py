"""Receiving one delivery: verify, store first, de-duplicate on the database's unique key, queue.

``receive()`` is the whole decision of "A webhook's way through" (ARCHITECTURE.md) after the
tenant and the provider are known; the view only does HTTP around it. It runs inside the tenant's
context, so the rows it writes are the tenant's under both walls.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

from django.conf import settings
from django.db import IntegrityError
from django.db.models import F
from django.db.models.constants import OnConflict
from django.utils import timezone

from engarde.queue import enqueue_on_commit
from integrations.models import TenantIntegration
from integrations.providers.base import TEST_EVENT_TYPE, Provider, VerificationFailed, WebhookRequest, body_hash
from webhooks.models import WebhookLog, redact_headers

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What to answer. ``body`` is JSON; never a secret."""

    status: int
    body: dict = field(default_factory=dict)
    log_id: int | None = None
    headers: dict = field(default_factory=dict)

    @property
    def rejected(self) -> bool:
        return self.body.get("status") == "rejected"


# A rejected delivery is kept for operators to see why, not byte for byte at any size: a forger
# must not be able to fill the table with megabytes of junk.
REJECTED_BODY_LIMIT = 64 * 1024


REDACTED_SECRET = b"[redacted]"


def redact_secrets(body: bytes, secrets: list[str]) -> bytes:
    """The body as stored: any of the tenant's secrets in it replaced. Senders such as Eventbrite
    echo the endpoint URL, token included, inside the payload; a stored row must not hold it."""
    for secret in secrets:
        if len(secret) >= 8:
            body = body.replace(secret.encode(), REDACTED_SECRET)
    return body


def receive(provider: Provider, integration: TenantIntegration, request: WebhookRequest,
            admit: Callable[[], int | None] | None = None) -> Outcome:
    """``admit`` is asked once the delivery is verified: seconds to wait when the tenant is over
    its limit (429), else None. Forged deliveries never use up a tenant's quota."""
    headers = redact_headers(request.headers)
    stored_body = redact_secrets(request.body, provider.verification_secrets(integration))
    try:
        provider.verify(request, integration)
    except VerificationFailed as exc:
        error = str(exc)
        if len(stored_body) > REJECTED_BODY_LIMIT:
            stored_body, error = stored_body[:REJECTED_BODY_LIMIT], f"{error} (body cut to {REJECTED_BODY_LIMIT} bytes)"
        row = WebhookLog.objects.create(
            source=provider.name, event_id=body_hash(request.body), status=WebhookLog.Status.REJECTED,
            error=error, headers=headers, body=stored_body, remote_addr=request.remote_addr,
        )
        log.info("webhook %s rejected for tenant %s: %s", provider.name, integration.tenant_id, exc)
        return Outcome(settings.WEBHOOK_REJECTED_STATUS, {"status": "rejected", "reason": str(exc)}, row.pk)

    wait = admit() if admit else None
    if wait:
        return Outcome(429, {"status": "rate_limited"}, headers={"Retry-After": str(wait)})

    try:
        payload = provider.parse(request.body)
    except ValueError:
        return _store(provider, request, headers, stored_body, event_id=body_hash(request.body), event_type="",
                      status=WebhookLog.Status.MALFORMED, error="verified, but the body is not a JSON object")

    answer = provider.handshake(request, payload, integration)
    if answer is not None:
        return Outcome(200, answer)

    try:
        event_type = provider.event_type(payload, request)[:128]
        event_id = provider.event_id(payload, request)[:255]
    except (KeyError, TypeError, ValueError, AttributeError):
        # Verified, but not shaped as the platform documents: keep it for operators, never a 500.
        return _store(provider, request, headers, stored_body, event_id=body_hash(request.body), event_type="",
                      status=WebhookLog.Status.MALFORMED, error="verified, but its event type or id could not be read")
    if provider.handler_for(event_type) is None:
        known = event_type in provider.ignored_events or event_type == TEST_EVENT_TYPE
        return _store(provider, request, headers, stored_body, event_id=event_id, event_type=event_type,
                      status=WebhookLog.Status.IGNORED,
                      error="" if known else f"no handler for event type {event_type or '(none)'}")
    return _store(provider, request, headers, stored_body, event_id=event_id, event_type=event_type,
                  status=WebhookLog.Status.RECEIVED, queue=True)


def _store(provider, request, headers, body, *, event_id, event_type, status, error="", queue=False) -> Outcome:
    row = WebhookLog(
        source=provider.name, event_id=event_id, event_type=event_type, status=status, error=error,
        headers=headers, body=body, remote_addr=request.remote_addr,
    )
    if not _insert_unless_known(row):
        # The unique key (tenant, source, event_id) is taken: a repeat delivery. Count it.
        counted = (
            WebhookLog.objects.filter(source=provider.name, event_id=event_id)
            .exclude(status=WebhookLog.Status.REJECTED)
            .update(delivery_count=F("delivery_count") + 1, last_delivery_at=timezone.now())
        )
        if not counted:
            raise IntegrityError("webhook row neither inserted nor found")
        return Outcome(200, {"status": "duplicate", "event_id": event_id})
    if queue:
        from webhooks.tasks import process_webhook

        enqueue_on_commit(process_webhook, row.pk, str(row.tenant_id))
    return Outcome(200, {"status": status, "event_id": event_id}, row.pk)


def _insert_unless_known(row: WebhookLog) -> bool:
    """``INSERT … ON CONFLICT DO NOTHING RETURNING id``: True and ``row.pk`` set when the row is
    new, False when the database's unique key says the event is known. One statement where
    ``create()`` in a savepoint took three, on the hottest path we have (``make bench``). It is
    the same insert ``Model.save()`` makes (``QuerySet._insert``), plus the conflict clause."""
    row.stamp_tenant()
    meta = row._meta
    fields = [f for f in meta.local_concrete_fields if f is not meta.auto_field]
    returned = WebhookLog.objects._insert(
        [row], fields=fields, returning_fields=[meta.pk], on_conflict=OnConflict.IGNORE
    )
    if not returned:
        return False
    row.pk = returned[0][0]
    row._state.adding = False
    return True
