"""The Celery app. ``celery -A engarde worker`` with no other arguments consumes every queue.

Queues: ``webhooks`` (latency: incoming deliveries), ``sync`` (outbound API work), ``reports``
(weekly reports) and ``default``. With no ``CELERY_BROKER_URL`` tasks run in-process.
"""

import os

from celery import Celery
from celery.schedules import crontab
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "engarde.settings")

app = Celery("engarde")
app.config_from_object("django.conf:settings", namespace="CELERY")

QUEUES = ("webhooks", "sync", "reports", "default")
app.conf.task_queues = [Queue(name) for name in QUEUES]
app.conf.task_default_queue = "default"
app.conf.task_routes = {
    "webhooks.*": {"queue": "webhooks"},
    "integrations.*": {"queue": "sync"},
    "reports.*": {"queue": "reports"},
}
app.conf.beat_schedule = {
    "sweep-webhooks": {"task": "webhooks.sweep_webhooks", "schedule": 60.0},
    # Retention (WEBHOOK_RETENTION_DAYS, WEBHOOK_REJECTED_RETENTION_DAYS): daily, in batches.
    "prune-webhooks": {"task": "webhooks.prune_webhooks", "schedule": crontab(hour=3, minute=17)},
}
app.autodiscover_tasks()
app.autodiscover_tasks(["webhooks"], related_name="retention")
