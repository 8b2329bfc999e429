"""The stored row is the queue (``WEBHOOK_QUEUE=rows``; issue 11): workers claim ``received`` rows
from PostgreSQL in batches instead of taking one Celery message per row.

- **Hand-off.** After a delivery commits, ``wake()`` publishes one ``webhooks.drain`` task unless one
  was published in the last ``WEBHOOK_WAKE_SECONDS`` (``cache.add``, atomic, on the shared cache):
  a burst of a thousand deliveries sends a handful of messages. The drain clears that key as it
  starts, so a row committed after it started wakes another drain; a row committed before is seen by
  its claim. Each process asks the shared cache at most once per ``WEBHOOK_WAKE_COALESCE_MS``
  (``WakeCoalescer``): a delivery inside that window leaves its wake-up to a trailing one at the
  window's end, so a row waits at most that much longer and a burst costs a cache round trip per
  window, not per delivery.
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

import atexit
import logging
import os
import threading
import time
from typing import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import OperationalError, connection, transaction
from django.db.models import Min, Q
from django.utils import timezone

from engarde.queue import enqueue, in_process  # in_process: tasks run in the caller (the embedded default)
from tenants.context import operator_context, tenant_context
from webhooks.models import WebhookLog

log = logging.getLogger(__name__)

WAKE_KEY = "webhooks:drain:wake"
#: What a drain may take: a new row, or one whose claim's lease ran out.
CLAIMED = (WebhookLog.Status.RECEIVED, WebhookLog.Status.FAILED, WebhookLog.Status.PROCESSING)


def linger(seconds: float) -> None:
    """How a drain woken by a delivery waits for the rows of the next moment (``tasks.drain``);
    tests replace it."""
    time.sleep(seconds)


def rows_mode() -> bool:
    return settings.WEBHOOK_QUEUE == "rows"


def hand_off(log_id: int, tenant_id: str) -> None:
    """After the current transaction commits: wake a drain (rows mode) or publish the row's task."""
    if rows_mode():
        transaction.on_commit(request_wake)
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
    # A forced wake-up (a full batch's follow-up, the sweeper's) has rows waiting: no linger.
    published = enqueue(drain, linger=False) if force else enqueue(drain)
    if deduplicated and not published:
        try:
            cache.delete(WAKE_KEY)
        except Exception as exc:
            log.warning("drain: could not clear the wake-up key: %s", exc.__class__.__name__)
    return published


class WakeCoalescer:
    """At most one ``wake()`` per window in this process, and a trailing one for what the window held.

    ``wake()`` costs a round trip to the shared cache (``cache.add``) even when it publishes
    nothing, and a burst asks it once per delivery: about a quarter of the web process's time per
    delivery in ``make bench``'s burst. Here the first request of a window wakes at once; the
    requests inside the window only note that a wake-up is due, and one ``wake()`` runs when the
    window ends, on a thread of this process (a sync gunicorn worker may get no further request to
    run it on). So a row committed while a drain was starting, after the drain cleared its key, is
    woken at most one window later, never left to the sweeper; a process that exits with a
    wake-up due runs it on the way out (``atexit``; a Celery pool process, which leaves with
    ``os._exit``, on ``worker_process_shutdown``: ``webhooks.apps``), and should even that be lost
    (the process killed), the sweeper is the backstop as for a lost message. Where no thread can
    start, each delivery wakes at once, as without a window.

    ``clock`` and ``start_thread`` are for tests: ``flush(now)`` is what the thread runs."""

    def __init__(self, wake: Callable[[], bool], window: Callable[[], float], clock=time.monotonic,
                 start_thread: bool = True):
        self._wake, self._window, self._clock, self._start_thread = wake, window, clock, start_thread
        self._reset()
        if start_thread:
            if hasattr(os, "register_at_fork"):  # a forked child has neither the thread nor the window
                os.register_at_fork(after_in_child=self._reset)
            atexit.register(self.flush_on_exit)

    def _reset(self) -> None:
        self._condition = threading.Condition()
        self._quiet_until = float("-inf")
        self._due: float | None = None
        self._waking = False
        self._thread: threading.Thread | None = None

    def discard(self, wait: float = 5.0) -> None:
        """Forget the window and any wake-up due, once a trailing one in flight has ended (tests:
        a wake-up due in one test must not run in the next one's settings)."""
        deadline = time.monotonic() + wait
        with self._condition:
            self._due, self._quiet_until = None, float("-inf")
            while self._waking and time.monotonic() < deadline:
                self._condition.wait(0.01)

    def request(self) -> bool:
        """Wake now (True when a drain was published), or leave it to the window's trailing wake-up."""
        window = self._window()
        if window <= 0:
            return self._wake()
        now = self._clock()
        with self._condition:
            if now >= self._quiet_until:
                self._quiet_until = now + window
            elif self._ensure_thread():
                if self._due is None:
                    self._due = self._quiet_until
                    self._condition.notify()
                return False
            # else no thread to run a trailing wake-up (it could not start): wake now, as with no window
        return self._wake()

    def trailing_due(self) -> bool:
        """A trailing wake-up is due: a request now would only note what is noted. Read without the
        lock: the thread clears it only to run that wake-up, after this delivery's row committed. Not
        when the thread is gone (``request`` starts it again)."""
        thread = self._thread
        return self._due is not None and thread is not None and thread.is_alive()

    def flush(self, now: float | None = None) -> bool:
        """The trailing wake-up, if one is due by ``now``: True when ``wake()`` ran."""
        now = self._clock() if now is None else now
        with self._condition:
            if self._due is None or now < self._due:
                return False
            self._due, self._waking = None, True
            self._quiet_until = now + self._window()
        self._wake_safely()
        return True

    def flush_on_exit(self) -> None:
        with self._condition:
            due, self._due = self._due, None
            self._waking = due is not None
        if due is not None:
            self._wake_safely()

    def _wake_safely(self) -> None:
        try:
            self._wake()
        except Exception as exc:  # wake() logs its own failures; nothing may end the thread
            log.warning("drain wake-up failed: %s", exc.__class__.__name__)
        finally:
            with self._condition:
                self._waking = False
                self._condition.notify_all()

    def _ensure_thread(self) -> bool:
        """The thread that runs trailing wake-ups is running (started, or started again if it died);
        False when it cannot start (a process out of threads), and the caller wakes at once."""
        if not self._start_thread or (self._thread is not None and self._thread.is_alive()):
            return True
        thread = threading.Thread(target=self._run, name="engarde-drain-wake", daemon=True)
        try:
            thread.start()
        except RuntimeError as exc:  # "can't start new thread"
            log.warning("drain wake-ups not coalesced: %s", exc)
            return False
        self._thread = thread
        return True

    def _run(self) -> None:
        while True:
            with self._condition:
                while self._due is None:
                    self._condition.wait()
                delay = self._due - self._clock()
                if delay > 0:
                    self._condition.wait(delay)
                    continue
            self.flush()


def _trailing_wake() -> bool:
    """The coalescer's wake-up. In-process mode never coalesces (``request_wake``), so a wake-up due
    there is from before the mode changed (tests only): running it would start a drain on the
    coalescer's thread, outside any request."""
    return False if in_process() else wake()


_coalescer = WakeCoalescer(wake=_trailing_wake, window=lambda: settings.WEBHOOK_WAKE_COALESCE_MS / 1000)


def request_wake() -> bool:
    """A delivery's wake-up (``hand_off``): ``wake()``, at most once per ``WEBHOOK_WAKE_COALESCE_MS``
    in this process, and in-process mode (tasks run here, nothing to deduplicate) at once.

    Most deliveries of a busy moment find the window's trailing wake-up already due: they return
    at once (in-process mode never leaves one due, ``discard`` clears it between tests)."""
    if _coalescer.trailing_due():
        return False
    if in_process():
        return wake()
    return _coalescer.request()


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
    # the tenants behind it (each of them gets its share in the first round). A round with one
    # tenant left (the only one waiting, or the others had no more) claims the rest of the batch
    # at once: one claim instead of one per share, and nobody else is owed a share.
    while active and len(claimed) < batch:
        full = []
        for tenant_id in active:
            take = batch - len(claimed) if len(active) == 1 else min(per_tenant, batch - len(claimed))
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
