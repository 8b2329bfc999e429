"""The Celery app. ``celery -A engarde worker`` with no other arguments consumes every queue.

Queues: ``webhooks`` (latency: incoming deliveries), ``sync`` (outbound API work), ``reports``
(weekly reports) and ``default``. With no ``CELERY_BROKER_URL`` tasks run in-process.
"""

import os

import environ
from celery import Celery, signals
from celery.schedules import crontab
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "engarde.settings")

app = Celery("engarde")
app.config_from_object("django.conf:settings", namespace="CELERY")

QUEUES = ("webhooks", "sync", "reports", "default")
app.conf.task_queues = [Queue(name) for name in QUEUES]
app.conf.task_default_queue = "default"
app.conf.task_routes = {
    "integrations.notify_operators": {"queue": "default"},  # an e-mail, not outbound API work
    "webhooks.*": {"queue": "webhooks"},
    "integrations.*": {"queue": "sync"},
    "reports.*": {"queue": "reports"},
}
app.conf.beat_schedule = {
    "sweep-webhooks": {"task": "webhooks.sweep_webhooks", "schedule": 60.0},
    # Retention (WEBHOOK_RETENTION_DAYS, WEBHOOK_REJECTED_RETENTION_DAYS): daily, in batches.
    "prune-webhooks": {"task": "webhooks.prune_webhooks", "schedule": crontab(hour=3, minute=17)},
    # One sync task per due integration (integrations/sync.py); each claims its integration.
    # Read from the environment here: Django's settings are not loaded yet when this module is.
    "sync-integrations": {
        "task": "integrations.sync_due_integrations",
        "schedule": environ.Env().float("SYNC_BEAT_SECONDS", default=900.0),
    },
    # Hourly: each tenant's weekly report once it is due (Monday 07:00 in the tenant's time zone).
    "weekly-reports": {"task": "reports.send_due_weekly_reports", "schedule": crontab(minute=5)},
}
app.autodiscover_tasks()
app.autodiscover_tasks(["webhooks"], related_name="retention")
app.autodiscover_tasks(["integrations"], related_name="notifications")


@signals.task_prerun.connect
@signals.task_postrun.connect
def _recycle_database_connections(sender=None, **kwargs) -> None:
    """Around each task in a worker, what Django does around each request: drop a connection that
    is broken, in an unexpected state or older than ``DB_CONN_MAX_AGE``, keep the others (see
    ``CELERY_DB_REUSE_MAX`` in settings). Not for a task run eagerly inside a request or a
    transaction: that connection is the caller's."""
    request = getattr(sender, "request", None)
    if request is None or getattr(request, "is_eager", False):
        return
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close_if_unusable_or_obsolete()

