import logging

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from engarde.queue import enqueue
from tenants.context import operator_context
from webhooks.models import WebhookLog
from webhooks.processing import NothingToDo, process, record_failure, retry_delay, stuck_rows

log = logging.getLogger(__name__)


@shared_task(name="webhooks.process_webhook", bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def process_webhook(self, log_id: int, tenant_id: str) -> str:
    """Process one stored delivery in its tenant's context; retry with backoff, ``dead`` at the end.

    A failure no retry can fix (``processing.outcome_of``) ends the row ``malformed`` or ``dead``
    on the spot, without a retry. ``acks_late``: the message is acknowledged after the task
    returns, so a worker killed mid-task leaves it to be delivered again; ``processing.process``
    makes that safe.
    """
    try:
        return process(log_id, tenant_id)
    except NothingToDo as exc:
        return f"skipped ({exc})"
    except Exception as exc:
        retries = self.request.retries
        # In-process mode (no broker) does not sleep inside a request: the row stays "failed" for
        # the sweeper or a replay, and is "dead" after as many attempts as a worker would make.
        final = None if self.request.is_eager else retries >= settings.WEBHOOK_MAX_RETRIES
        status = record_failure(log_id, tenant_id, exc, final=final)
        log.warning("webhook %s failed (attempt %d, now %s): %s", log_id, retries + 1, status, exc.__class__.__name__)
        if status != WebhookLog.Status.FAILED or self.request.is_eager:
            return status or "skipped (finished meanwhile)"
        # A platform's own "come back in N seconds" (a 429) wins over our backoff when longer.
        countdown = max(getattr(exc, "retry_after", None) or 0, retry_delay(retries))  # ApiError says None
        raise self.retry(countdown=countdown, exc=exc)


@shared_task(name="webhooks.drain", acks_late=True, reject_on_worker_lost=True)
def drain(linger: bool = True) -> int:
    """``WEBHOOK_QUEUE=rows``: claim and process one fair batch of stored rows (webhooks/drain.py);
    another drain follows while batches come back full.

    A drain woken by a delivery first waits ``WEBHOOK_DRAIN_LINGER_MS`` with the wake-up key still
    held, so the deliveries of that moment publish nothing and are claimed with it: at a steady
    rate each drain takes the rows of the linger instead of the one or two since the last drain,
    and its fixed cost (the reads across tenants, the claim, the transaction, a notice task) is
    shared by them, for that much more lag. A drain that follows a full batch, or the sweeper's,
    does not wait (``linger=False``: rows are waiting already), nor does one run in-process."""
    from django.core.cache import cache

    from webhooks import drain as rows

    wait = settings.WEBHOOK_DRAIN_LINGER_MS / 1000
    if linger and wait > 0 and not rows.in_process():
        rows.linger(wait)
    try:
        cache.delete(rows.WAKE_KEY)  # from now on a new delivery wakes another drain
    except Exception as exc:
        log.warning("drain: could not clear the wake-up key: %s", exc.__class__.__name__)
    claimed, more = rows.drain_once()
    if more:
        rows.wake(force=True)
    return claimed


@shared_task(name="webhooks.sweep_webhooks")
def sweep_webhooks() -> int:
    """Beat: publish again what a lost publish or a broker outage left behind. In rows mode a
    ``received`` row is not a message: one drain is woken for all of them (and for expired claims)."""
    from webhooks import drain as row_queue

    woken = row_queue.rows_mode() and row_queue.stuck() and row_queue.wake(force=True)
    with operator_context("beat: sweep stuck webhook rows"):
        stuck = stuck_rows()
        if row_queue.rows_mode():
            stuck = stuck.filter(status=WebhookLog.Status.FAILED)
        rows = list(stuck.values_list("pk", "tenant_id")[:1000])
    published = [pk for pk, tenant_id in rows if enqueue(process_webhook, pk, str(tenant_id))]
    if published:
        # Start their clock again: a queue that is merely slow must not get the same rows
        # published once more every minute while it catches up.
        with operator_context("beat: mark swept webhook rows"):
            WebhookLog.objects.filter(
                pk__in=published, status__in=[WebhookLog.Status.RECEIVED, WebhookLog.Status.FAILED]
            ).update(updated_at=timezone.now())
    published = len(published) + int(bool(woken))
    if rows:
        log.info("sweeper: %d stuck webhook row(s), %d published", len(rows), published)
    return published
