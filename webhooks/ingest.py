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
from django.db.models import F, Subquery
from django.db.models.constants import OnConflict
from django.utils import timezone

from webhooks import ratelimit
from webhooks.contract import TEST_EVENT_TYPE, Connection, Source, VerificationFailed, WebhookRequest, body_hash
from webhooks.drain import hand_off
from webhooks.models import WebhookLog
from webhooks.redaction import redaction

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What to answer. ``body`` is JSON; never a secret."""

    status: int
    body: dict = field(default_factory=dict)
    log_id: int | None = None
    headers: dict = field(default_factory=dict)


# A rejected delivery is kept for operators to see why, not byte for byte at any size: a forger
# must not be able to fill the table. Headers and body are cut, and only a sample of rejections
# per tenant and window is stored at all (``WEBHOOK_REJECTED_SAMPLE``); the rest are counted.
REJECTED_BODY_LIMIT = 16 * 1024
REJECTED_HEADERS_LIMIT = 4 * 1024
REJECTED_HEADER_VALUE_LIMIT = 512


def receive(provider: Source, integration: Connection, request: WebhookRequest,
            admit: Callable[[], int | None] | None = None) -> Outcome:
    """``admit`` is asked once the delivery is verified: seconds to wait when the tenant is over
    its limit (429), else None. Forged deliveries never use up a tenant's quota, and nothing
    they do changes the answer to a delivery that verifies."""
    headers, stored_body = redacted(provider, integration, request)
    try:
        provider.verify(request, integration)
    except VerificationFailed as exc:
        return _reject(provider, integration, request, headers, stored_body, str(exc))

    wait = admit() if admit else None
    if wait:
        return Outcome(429, {"status": "rate_limited"}, headers={"Retry-After": str(wait)})

    try:
        payload = provider.parse(request.body)
    except ValueError:
        return _store(provider, request, headers, stored_body, event_id=body_hash(request.body), event_type="",
                      status=WebhookLog.Status.MALFORMED,
                      error="verified, but the body is not a JSON object (or nests too deeply)")

    answer = provider.handshake(request, payload, integration)
    if answer is not None:
        return Outcome(200, answer)

    try:
        event_type = storable(provider.event_type(payload, request))[:128]
        event_id = storable(provider.event_id(payload, request))[:255]
    except (KeyError, TypeError, ValueError, AttributeError):
        # Verified, but not shaped as the platform documents, or naming itself with text the
        # database cannot hold (NUL, a lone surrogate): kept for operators, never a 500.
        return _store(provider, request, headers, stored_body, event_id=body_hash(request.body), event_type="",
                      status=WebhookLog.Status.MALFORMED,
                      error="verified, but its event type or id could not be read or cannot be stored")
    if provider.handler_for(event_type) is None:
        known = event_type in provider.ignored_events or event_type == TEST_EVENT_TYPE
        return _store(provider, request, headers, stored_body, event_id=event_id, event_type=event_type,
                      status=WebhookLog.Status.IGNORED,
                      error="" if known else f"no handler for event type {event_type or '(none)'}")
    return _store(provider, request, headers, stored_body, event_id=event_id, event_type=event_type,
                  status=WebhookLog.Status.RECEIVED, queue=True)


def redacted(provider: Source, integration: Connection, request: WebhookRequest) -> tuple[dict, bytes]:
    """What a stored row keeps of the request: headers and body with the tenant's secrets out
    (``webhooks.redaction``). The one place both the view's path and the fast path redact."""
    plan = redaction(provider.verification_secrets(integration), provider.secret_headers)
    return plan.headers(request.headers), plan.body(request.body)


def store_fetched(source: str, event_id: str, event_type: str, body: bytes) -> int | None:
    """Store an event a backfill fetched from the platform's own API, the way a verified delivery
    of it is stored: the same row, the same unique key ``(tenant, source, event_id)`` and the same
    processing, published on commit. Returns the new row's id, or ``None`` when the event is known
    (it arrived as a delivery, or an earlier backfill stored it): then nothing changes, since a
    backfill seeing an event is no delivery of it.

    The row says where it came from (``origin`` backfill, no headers, no sender address,
    ``delivery_count`` 0 until the platform's own delivery arrives and is counted on it). Call
    inside the tenant's context, with only event types that have a handler (the caller asks the
    platform for those). ``ValueError`` when the id or type cannot be stored (NUL, lone surrogate)."""
    row = WebhookLog(
        source=source, event_id=storable(event_id)[:255], event_type=storable(event_type)[:128],
        status=WebhookLog.Status.RECEIVED, origin=WebhookLog.Origin.BACKFILL, headers={}, body=body,
        remote_addr=None, delivery_count=0,
    )
    if not _insert_unless_known(row):
        return None
    hand_off(row.pk, str(row.tenant_id))
    return row.pk


def storable(text: str) -> str:
    """``text`` when a text column can hold it; ``ValueError`` for a NUL or a lone surrogate
    (PostgreSQL refuses the one, UTF-8 cannot encode the other)."""
    if "\x00" in text:
        raise ValueError("a NUL character")
    text.encode("utf-8")  # UnicodeEncodeError, a ValueError, for a lone surrogate
    return text


def _reject(provider, integration, request, headers, body, reason: str) -> Outcome:
    """Store a sample of rejections (cut), count the rest on the newest stored one, log only the
    sample: a flood of forgeries costs a bounded number of rows and log lines per window."""
    answer = Outcome(settings.WEBHOOK_REJECTED_STATUS, {"status": "rejected", "reason": reason})
    counted, _ = ratelimit.count(f"rejected:{integration.tenant_id}")
    sample = max(1, settings.WEBHOOK_REJECTED_SAMPLE)
    if counted > sample:
        _count_unstored()
        if counted == sample + 1:
            log.warning("webhook rejections for tenant %s: %d stored this window; the rest are counted, not stored",
                        integration.tenant_id, sample)
        return answer
    headers, headers_cut = _cap_headers(headers)
    notes = [f"headers cut to {REJECTED_HEADERS_LIMIT} bytes"] if headers_cut else []
    if len(body) > REJECTED_BODY_LIMIT:
        body = body[:REJECTED_BODY_LIMIT]
        notes.append(f"body cut to {REJECTED_BODY_LIMIT} bytes")
    row = WebhookLog.objects.create(
        source=provider.name, event_id=body_hash(request.body), status=WebhookLog.Status.REJECTED,
        error=reason + (f" ({'; '.join(notes)})" if notes else ""), headers=headers, body=body,
        remote_addr=request.remote_addr,
    )
    log.info("webhook %s rejected for tenant %s: %s", provider.name, integration.tenant_id, reason)
    answer.log_id = row.pk
    return answer


def _cap_headers(headers: dict[str, str]) -> tuple[dict[str, str], bool]:
    """At most ``REJECTED_HEADERS_LIMIT`` characters of headers, each value cut to
    ``REJECTED_HEADER_VALUE_LIMIT``; and whether anything was cut."""
    kept, used, cut = {}, 0, False
    for name, value in headers.items():
        short = value[:REJECTED_HEADER_VALUE_LIMIT]
        cut |= short != value
        used += len(name) + len(short)
        if used > REJECTED_HEADERS_LIMIT:
            return kept, True
        kept[name[:REJECTED_HEADER_VALUE_LIMIT]] = short
    return kept, cut


def _count_unstored() -> None:
    """One more rejection that was not stored, counted on the tenant's newest rejected row."""
    newest = WebhookLog.objects.filter(status=WebhookLog.Status.REJECTED).order_by("-received_at", "-pk")
    WebhookLog.objects.filter(pk__in=Subquery(newest.values("pk")[:1])).update(
        unstored_rejections=F("unstored_rejections") + 1
    )


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
        hand_off(row.pk, str(row.tenant_id))
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
