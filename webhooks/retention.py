"""Retention: what old webhook rows may keep, pruned by the beat job ``webhooks.prune_webhooks``.

* ``WEBHOOK_REJECTED_RETENTION_DAYS`` (default 7): rejected rows are deleted whole. They were
  never verified; they are kept only for operators to see why deliveries fail.
* ``WEBHOOK_RETENTION_DAYS`` (default 90): processed rows lose their body and headers (the
  request as it came); the row itself stays, so duplicates are still recognised by event id and
  the log still tells what happened. Rows that are not processed keep everything: an operator
  may still need to replay them.

``0`` keeps rows for ever. Work is done in batches of ``BATCH_SIZE``, each in its own short
transaction, so the job never holds a long transaction or locks many rows at once.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from tenants.context import operator_context
from webhooks.models import WebhookLog

log = logging.getLogger(__name__)

BATCH_SIZE = 500


def _in_batches(reason: str, select, apply, batch_size: int) -> int:
    """Run ``apply`` on the ids ``select()`` returns, ``batch_size`` at a time, one short
    transaction each, until a batch comes back short. The number of rows done."""
    done = 0
    while True:
        with operator_context(reason):
            ids = list(select().values_list("pk", flat=True)[:batch_size])
            if ids:
                apply(WebhookLog.objects.filter(pk__in=ids))
        done += len(ids)
        if len(ids) < batch_size:
            return done


def prune(now=None, batch_size: int = BATCH_SIZE) -> dict[str, int]:
    """Delete rejected rows and empty processed rows past their retention: how many of each."""
    now = now or timezone.now()
    result = {"rejected_deleted": 0, "bodies_cleared": 0}
    if settings.WEBHOOK_REJECTED_RETENTION_DAYS > 0:
        cutoff = now - timedelta(days=settings.WEBHOOK_REJECTED_RETENTION_DAYS)
        result["rejected_deleted"] = _in_batches(
            "beat: delete rejected webhook rows past retention",
            lambda: WebhookLog.objects.filter(status=WebhookLog.Status.REJECTED, received_at__lt=cutoff),
            lambda rows: rows.delete(), batch_size,
        )
    if settings.WEBHOOK_RETENTION_DAYS > 0:
        cutoff = now - timedelta(days=settings.WEBHOOK_RETENTION_DAYS)
        result["bodies_cleared"] = _in_batches(
            "beat: clear bodies of processed webhook rows past retention",
            lambda: WebhookLog.objects.filter(
                status=WebhookLog.Status.PROCESSED, received_at__lt=cutoff, pruned_at__isnull=True
            ),
            lambda rows: rows.update(body=b"", headers={}, pruned_at=now), batch_size,
        )
    if any(result.values()):
        log.info("webhook retention: %(rejected_deleted)d rejected row(s) deleted, "
                 "%(bodies_cleared)d processed body(ies) cleared", result)
    return result


@shared_task(name="webhooks.prune_webhooks")
def prune_webhooks() -> dict[str, int]:
    """Beat, daily: ``prune()``."""
    return prune()
