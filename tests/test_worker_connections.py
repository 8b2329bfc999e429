"""A real Celery worker keeps its PostgreSQL connection across tasks, as gunicorn keeps one across
requests, and still honours ``DB_CONN_MAX_AGE`` (engarde/celery.py, ``CELERY_DB_REUSE_MAX``).

Celery's Django fixup closes every connection before and after each task by default: the worker
reconnected (a new PostgreSQL backend, its authentication and ``set_config``) about once per
event. The worker's backends are found in ``pg_stat_activity`` by the ``application_name`` given
to it through libpq's ``PGAPPNAME``.
"""

from __future__ import annotations

import uuid

import pytest
from django.db import connections
from django.test import override_settings

from conftest import requires_postgres
from tests.test_reliability import (
    REDIS_URL,
    celery_broker,
    celery_worker,
    owner_connection,
    post_stripe,
    redis_db,
    requires_redis,
    stop,
    stripe_event,
    wait_for,
)
from tests.test_row_queue import all_processed, make_tenant

__all__ = ["redis_db"]

pytestmark = [requires_postgres, requires_redis, pytest.mark.django_db(transaction=True, databases=["default", "owner"])]


def worker_backends(app_name: str) -> dict[int, object]:
    """The worker's backends now: pid -> backend_start."""
    with owner_connection(autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid, backend_start FROM pg_stat_activity WHERE application_name = %s AND datname = current_database()",
            [app_name],
        ).fetchall()
    return dict(rows)


def deliver(tenant, prefix: str, count: int) -> None:
    from django.test import Client

    client = Client()
    for i in range(count):
        response = post_stripe(client, tenant, stripe_event(f"evt_{prefix}_{i}", f"pi_{prefix}_{i}", f"{prefix}{i}@example.com"))
        assert response.status_code == 200, response.content


@pytest.fixture
def one_task_per_event(redis_db):
    with override_settings(WEBHOOK_QUEUE="tasks"), celery_broker(REDIS_URL):
        yield redis_db
    connections["owner"].close()


def test_a_worker_keeps_its_connection_across_tasks(one_task_per_event, tmp_path):
    tenant = make_tenant("reuse")
    app_name = f"engarde-test-{uuid.uuid4().hex[:8]}"
    deliver(tenant, "first", 5)
    worker, log = celery_worker(tmp_path, "reuse", "webhooks,default", WEBHOOK_QUEUE="tasks",
                                PGAPPNAME=app_name, DB_CONN_MAX_AGE="600")
    try:
        wait_for("the first five processed", lambda: all_processed(tenant, 5), timeout=60, proc=worker, log=log)
        before = wait_for("the worker's connection", lambda: worker_backends(app_name), timeout=10, proc=worker, log=log)
        deliver(tenant, "second", 20)
        wait_for("all 25 processed", lambda: all_processed(tenant, 25), timeout=60, proc=worker, log=log)
        after = worker_backends(app_name)
    finally:
        stop(worker)
    assert log.read_text().count("Task webhooks.process_webhook[") >= 25  # one task per event
    kept = set(before) & set(after)
    assert kept, f"the worker reconnected: backends {before} after 5 tasks, {after} after 20 more"
    assert all(before[pid] == after[pid] for pid in kept)


def test_a_worker_with_conn_max_age_0_closes_its_connection_after_each_task(one_task_per_event, tmp_path):
    tenant = make_tenant("noreuse")
    app_name = f"engarde-test-{uuid.uuid4().hex[:8]}"
    deliver(tenant, "only", 3)
    worker, log = celery_worker(tmp_path, "noreuse", "webhooks,default", WEBHOOK_QUEUE="tasks",
                                PGAPPNAME=app_name, DB_CONN_MAX_AGE="0")
    try:
        wait_for("the three processed", lambda: all_processed(tenant, 3), timeout=60, proc=worker, log=log)
        wait_for("no connection left open by the idle worker", lambda: not worker_backends(app_name),
                 timeout=15, proc=worker, log=log)
    finally:
        stop(worker)
