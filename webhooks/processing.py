"""Processing one stored delivery, exactly once in effect.

The claim, the handler's writes and the ``processed`` mark are one transaction under a row lock:
a worker killed half-way rolls all of it back and the redelivered task starts clean; two
deliveries of the same task serialise on the lock and the second finds the row processed.
Side effects outside the database (e-mail, Brevo) are queued on commit, so they follow only a
committed result.
"""

from __future__ import annotations

import logging
import random

from django.conf import settings
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from contacts.provenance import delivery_scope
from integrations.models import TenantIntegration
from integrations.providers.base import Event
from integrations.registry import PROVIDERS, get_provider
from tenants.context import tenant_context
from webhooks.models import WebhookLog

log = logging.getLogger(__name__)

PROCESSABLE = (WebhookLog.Status.RECEIVED, WebhookLog.Status.FAILED)


class NothingToDo(Exception):
    """The row is gone, already processed, or not processable (rejected, ignored, malformed)."""


def process(log_id: int, tenant_id: str) -> str:
    """Run the row's handler. Returns the final status; raises what the handler raised."""
    with tenant_context(tenant_id):
        row = WebhookLog.objects.select_for_update().filter(pk=log_id).first()
        if row is None or row.status not in PROCESSABLE:
            raise NothingToDo(row.status if row else "missing")
        provider = get_provider(row.source)
        integration = TenantIntegration.objects.select_related("tenant").get(provider=row.source)
        handler = provider.handler_for(row.event_type)
        row.status, row.attempts = WebhookLog.Status.PROCESSING, row.attempts + 1
        payload = provider.parse(bytes(row.body))
        with delivery_scope(row.pk, row.source):  # the contact's page lists the deliveries that made it
            handler(Event(payload=payload, log=row, integration=integration))
        now = timezone.now()
        row.status, row.error, row.processed_at = WebhookLog.Status.PROCESSED, "", now
        row.save(update_fields=["status", "attempts", "error", "processed_at", "updated_at"])
        # Throttled: one write a minute per integration, not one per event (a hot row under load).
        TenantIntegration.objects.filter(pk=integration.pk).filter(
            Q(last_event_at__isnull=True) | Q(last_event_at__lt=now - timezone.timedelta(seconds=60))
        ).update(last_event_at=now)
        return row.status


def record_failure(log_id: int, tenant_id: str, error: BaseException, final: bool | None) -> None:
    """After a failed attempt (its transaction rolled back): count it and keep the reason.

    ``final=None`` decides by the row's own count of attempts (in-process mode, where no Celery
    retry counter exists): ``dead`` once it has had ``WEBHOOK_MAX_RETRIES`` + 1 attempts."""
    if final is None:
        status = Case(
            When(attempts__gte=settings.WEBHOOK_MAX_RETRIES, then=Value(WebhookLog.Status.DEAD)),
            default=Value(WebhookLog.Status.FAILED),
        )
    else:
        status = WebhookLog.Status.DEAD if final else WebhookLog.Status.FAILED
    message = f"{error.__class__.__name__}: {error}"[:2000]
    with tenant_context(tenant_id):
        counted = WebhookLog.objects.filter(pk=log_id, status__in=PROCESSABLE).update(
            status=status, attempts=F("attempts") + 1, error=message, updated_at=timezone.now()
        )
        # Nothing counted: another delivery of the task finished the row meanwhile; not a failure.
        row = WebhookLog.objects.filter(pk=log_id).only("source").first() if counted else None
        if row is not None:
            TenantIntegration.objects.filter(provider=row.source).update(
                last_error=message, last_error_at=timezone.now()
            )


def retry_delay(retries: int) -> float:
    """Exponential backoff with jitter: uniform(c/2, c) where c = min(cap, base * 2**retries), so
    retries never bunch up and never come sooner than half the nominal delay."""
    # The exponent is clamped: far past the cap, base * 2**retries would not fit a float
    # (OverflowError from retries ≈ 1020 on), and the cap applies long before 64 anyway.
    exponent = min(max(retries, 0), 64)
    ceiling = min(settings.WEBHOOK_RETRY_MAX_SECONDS, settings.WEBHOOK_RETRY_BASE_SECONDS * (2**exponent))
    return random.uniform(ceiling / 2, ceiling)


def replay(row: WebhookLog) -> bool:
    """Put a stored delivery back in the queue (operators, tenant admins). Rejected rows were
    never verified and stay rejected. Call inside the row's tenant (or operator) context."""
    from engarde.queue import enqueue_on_commit
    from webhooks.tasks import process_webhook

    if row.status == WebhookLog.Status.REJECTED:
        return False
    provider = PROVIDERS.get(row.source)  # a row of a provider removed since: nothing to run it
    if provider is None or provider.handler_for(row.event_type) is None:
        return False
    WebhookLog.objects.filter(pk=row.pk).update(status=WebhookLog.Status.RECEIVED, error="", updated_at=timezone.now())
    enqueue_on_commit(process_webhook, row.pk, str(row.tenant_id))
    return True


def stuck_rows(now=None):
    """Rows a lost publish or a broker outage left behind: ``received`` for too long, or
    ``failed`` for longer than the longest backoff (its retry message was lost).

    Oldest first: the sweeper takes a batch at a time, and with the model's newest-first order a
    backlog larger than one batch would never reach its oldest rows."""
    now = now or timezone.now()
    received_before = now - timezone.timedelta(seconds=settings.WEBHOOK_SWEEP_AFTER_SECONDS)
    failed_before = now - timezone.timedelta(seconds=settings.WEBHOOK_RETRY_MAX_SECONDS * 2)
    return WebhookLog.objects.filter(
        Q(status=WebhookLog.Status.RECEIVED, updated_at__lt=received_before)
        | Q(status=WebhookLog.Status.FAILED, updated_at__lt=failed_before)
    ).order_by("updated_at", "pk")
