"""Handing work to Celery without letting a broker outage break the caller.

A webhook row is already stored when its task is published, so a broker that is down must not
turn the answer into an error: we log, the row stays ``received``, and the sweeper publishes it
again later. With no broker configured (the embedded default) tasks run in-process.
"""

import logging

from django.db import transaction

log = logging.getLogger(__name__)


def in_process() -> bool:
    """Tasks run inside the caller (``CELERY_TASK_ALWAYS_EAGER``, the embedded default), not on a
    worker: Celery's own setting."""
    from celery import current_app  # the project's app (engarde.celery)

    return bool(current_app.conf.task_always_eager)


def enqueue(task, *args, **kwargs) -> bool:
    """Publish now. False (and a log line) when the broker cannot be reached."""
    try:
        task.apply_async(args=args, kwargs=kwargs)
    except Exception as exc:  # kombu raises several families here; none may reach the caller
        log.warning("could not enqueue %s: %s", task.name, exc.__class__.__name__)
        return False
    return True


def enqueue_on_commit(task, *args, **kwargs) -> None:
    """Publish once the current transaction commits (never for a rolled-back one)."""
    transaction.on_commit(lambda: enqueue(task, *args, **kwargs))
