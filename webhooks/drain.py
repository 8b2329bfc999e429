"""The stored row is the queue (``WEBHOOK_QUEUE=rows``; issue 11): workers claim ``received`` rows
from PostgreSQL in batches instead of taking one Celery message per row.

- **Hand-off.** After a delivery commits, ``wake()`` publishes one ``webhooks.drain`` task unless one
  was published in the last ``WEBHOOK_WAKE_SECONDS`` (``cache.add``, atomic, on the shared cache):
  a burst of a thousand deliveries sends a handful of messages. The drain clears that key as it
  starts, so a row committed after it started wakes another drain; a row committed before is seen by
  its claim.
- **Claim.** Tenants with waiting rows, oldest waiting row first, are read in an operator context
  (the one cross-tenant read); each tenant's rows are then claimed inside that tenant's own context
  (RLS in force), at most ``WEBHOOK_DRAIN_PER_TENANT`` per tenant and ``WEBHOOK_DRAIN_BATCH`` in
  all: ``SELECT … FOR UPDATE SKIP LOCKED`` oldest first, marked ``processing`` with ``updated_at`` as
  the lease, committed. A flooding tenant gets its share of a batch, not the batch.
- **Process.** Each claimed row goes through ``processing.process`` (its own transaction under the
  row lock, the ``processed`` mark with it), exactly as a ``process_webhook`` task would. A failure
  is counted on the row (``dead`` after ``WEBHOOK_MAX_RETRIES``, as today) and its retry is a
  ``process_webhook`` message with Celery's countdown, so retries and backoff are today's.
- **A worker killed mid-batch.** Rows it had processed are committed; the rest stay ``processing``
  until their lease (``WEBHOOK_CLAIM_LEASE_SECONDS``) runs out, when any drain claims them again.
  The drain message itself is ``acks_late``, so it comes back too. Processing is idempotent (the row
  lock, the ``processed`` check, the upserts' unique keys), so a row is processed once in effect.
- **A broker outage.** Rows are stored either way; the sweeper (every minute) wakes a drain when rows
  wait longer than ``WEBHOOK_SWEEP_AFTER_SECONDS`` or a lease ran out.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.cache import cache
from django.db import OperationalError, connection, transaction
from django.db.models import Min, Q
from django.utils import timezone

from engarde.queue import enqueue
from tenants.context import operator_context, tenant_context
from webhooks.models import WebhookLog

log = logging.getLogger(__name__)

WAKE_KEY = "webhooks:drain:wake"
#: What a drain may take: a new row, or one whose claim's lease ran out.
CLAIMED = (WebhookLog.Status.RECEIVED, WebhookLog.Status.FAILED, WebhookLog.Status.PROCESSING)


def in_process() -> bool:
    """Tasks run inside the caller (the embedded default), not on a worker: Celery's own setting."""
    from celery import current_app  # the project's app (engarde.celery), without importing upwards

    return bool(current_app.conf.task_always_eager)


def rows_mode() -> bool:
    return settings.WEBHOOK_QUEUE == "rows"


def hand_off(log_id: int, tenant_id: str) -> None:
    """After the current transaction commits: wake a drain (rows mode) or publish the row's task."""
    if rows_mode():
        transaction.on_commit(wake)
    else:
        from engarde.queue import enqueue_on_commit
        from webhooks.tasks import process_webhook

        enqueue_on_commit(process_webhook, log_id, str(tenant_id))


def wake(force: bool = False) -> bool:
    """Publish one drain unless one was published a moment ago. True when published.

    In-process mode (``CELERY_TASK_ALWAYS_EAGER``) runs the drain here and now, so there is no
    message to save and nothing is deduplicated. A publish that fails (the broker is down) takes
    its key back, so the next delivery tries again instead of waiting for the sweeper."""
    from webhooks.tasks import drain

    deduplicated = not force and not in_process()
    if deduplicated:
        try:
            if not cache.add(WAKE_KEY, 1, timeout=settings.WEBHOOK_WAKE_SECONDS):
                return False
        except Exception as exc:  # the cache is down: wake anyway (a message more, never a row less)
            log.warning("drain wake-up without deduplication: %s", exc.__class__.__name__)
            deduplicated = False
    published = enqueue(drain)
    if deduplicated and not published:
        try:
            cache.delete(WAKE_KEY)
        except Exception as exc:
            log.warning("drain: could not clear the wake-up key: %s", exc.__class__.__name__)
    return published


def _claimable(now):
    lease_over = now - timezone.timedelta(seconds=settings.WEBHOOK_CLAIM_LEASE_SECONDS)
    return Q(status=WebhookLog.Status.RECEIVED) | Q(status=WebhookLog.Status.PROCESSING, updated_at__lt=lease_over)


def waiting_tenants(now, limit: int) -> list[str]:
    with operator_context("drain: tenants with waiting webhook rows"):
        rows = (
            WebhookLog.objects.filter(_claimable(now)).order_by().values("tenant_id")
            .annotate(first=Min("received_at")).order_by("first").values_list("tenant_id", flat=True)[:limit]
        )
        return [str(tenant_id) for tenant_id in rows]


#: How long the second pass of a claim waits for a row another transaction holds for a moment.
CLAIM_LOCK_TIMEOUT = "2s"


def claim(tenant_id: str, now, limit: int) -> list[int]:
    """Up to ``limit`` of the tenant's oldest claimable rows, marked ``processing`` (the lease).

    First ``SKIP LOCKED``, so drains running side by side take different rows. A row can also be
    locked for a moment by something that is not a drain: a repeat delivery of the same event
    being counted (``delivery_count``), a replay. Skipped, it would wait for the sweeper, minutes
    later; so when the first pass skipped rows and took less than its share, a second pass waits
    for them (at most ``CLAIM_LOCK_TIMEOUT``). PostgreSQL checks each row again once its lock is
    free (READ COMMITTED), so a row another drain claimed meanwhile is left to that drain."""
    ids, skipped = _claim(tenant_id, now, limit, wait=False)
    if skipped and len(ids) < limit:
        try:
            ids += _claim(tenant_id, now, limit - len(ids), wait=True)[0]
        except OperationalError as exc:  # held longer than the timeout: the next drain or the sweeper
            log.info("drain: rows of tenant %s stayed locked: %s", tenant_id, exc.__class__.__name__)
    return ids


def _claim(tenant_id: str, now, limit: int, wait: bool) -> tuple[list[int], bool]:
    """One claim transaction: the ids claimed, and whether claimable rows were left (locked)."""
    with tenant_context(tenant_id):
        claimable = WebhookLog.objects.filter(_claimable(now)).order_by("received_at", "pk")
        if wait and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL lock_timeout = '{CLAIM_LOCK_TIMEOUT}'")
        ids = [row.pk for row in claimable.select_for_update(skip_locked=not wait).only("pk")[:limit]]
        skipped = not wait and len(ids) < limit and claimable.count() > len(ids)
        if ids:
            WebhookLog.objects.filter(pk__in=ids).update(status=WebhookLog.Status.PROCESSING, updated_at=now)
        return ids, skipped


def drain_once() -> tuple[int, bool]:
    """Claim one fair batch across tenants and process it: the number of rows claimed, and whether
    more may be waiting (a tenant filled its share, or more tenants wait than one batch takes)."""
    now = timezone.now()
    per_tenant = max(1, settings.WEBHOOK_DRAIN_PER_TENANT)
    batch = max(per_tenant, settings.WEBHOOK_DRAIN_BATCH)
    claimed: list[tuple[int, str]] = []
    tenants = waiting_tenants(now, limit=batch // per_tenant + 1)
    more = len(tenants) > batch // per_tenant
    active = tenants[: batch // per_tenant]
    # Rounds of one share per tenant: a tenant alone may fill the batch, a flood never crowds out
    # the tenants behind it (each of them gets its share in the first round).
    while active and len(claimed) < batch:
        full = []
        for tenant_id in active:
            take = min(per_tenant, batch - len(claimed))
            if take <= 0:
                full.append(tenant_id)
                continue
            ids = claim(tenant_id, now, take)
            claimed += [(pk, tenant_id) for pk in ids]
            if len(ids) == take:
                full.append(tenant_id)
        active = full
    more = more or bool(active)
    _process_claimed(claimed, now)
    return len(claimed), more


def _process_claimed(claimed: list[tuple[int, str]], now) -> None:
    from webhooks.processing import NothingToDo, process, process_batch, record_failure, retry_delay
    from webhooks.tasks import process_webhook

    # Each tenant's rows in one transaction (``process_batch``); what it did not take, or all of
    # them when the batch rolled back, one by one as a ``process_webhook`` task would.
    by_tenant: dict[str, list[int]] = {}
    for log_id, tenant_id in claimed:
        by_tenant.setdefault(tenant_id, []).append(log_id)
    done = set()
    for tenant_id, ids in by_tenant.items():
        done.update(process_batch(tenant_id, ids, now))
    for log_id, tenant_id in claimed:
        if log_id in done:
            continue
        try:
            process(log_id, tenant_id, states=CLAIMED)
        except NothingToDo:
            continue
        except Exception as exc:
            status = record_failure(log_id, tenant_id, exc, final=None, states=CLAIMED)
            log.warning("webhook %s failed in a drain (now %s): %s", log_id, status, exc.__class__.__name__)
            if status == WebhookLog.Status.FAILED and not in_process():
                # In-process mode does not retry inside a request (as ``process_webhook``): the row
                # stays failed for the sweeper or a replay. A worker's retry is today's: a
                # process_webhook message with backoff, counted as Celery's first retry.
                countdown = max(getattr(exc, "retry_after", None) or 0, retry_delay(0))
                try:
                    process_webhook.apply_async(args=(log_id, tenant_id), countdown=countdown, retries=1)
                except Exception as publish_error:  # the sweeper publishes failed rows later
                    log.warning("could not schedule the retry of %s: %s", log_id, publish_error.__class__.__name__)


def stuck(now=None) -> bool:
    """Rows waiting longer than the sweep delay, or whose lease ran out: a drain is due."""
    now = now or timezone.now()
    received_before = now - timezone.timedelta(seconds=settings.WEBHOOK_SWEEP_AFTER_SECONDS)
    lease_over = now - timezone.timedelta(seconds=settings.WEBHOOK_CLAIM_LEASE_SECONDS)
    with operator_context("beat: webhook rows waiting for a drain"):
        return WebhookLog.objects.filter(
            Q(status=WebhookLog.Status.RECEIVED, updated_at__lt=received_before)
            | Q(status=WebhookLog.Status.PROCESSING, updated_at__lt=lease_over)
        ).exists()
