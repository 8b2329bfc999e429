"""Reliability with the real parts: PostgreSQL (as the runtime role), Redis, a real Celery worker
and a real web server in subprocesses. Nothing under test is mocked; timings are printed, never
asserted (run with ``-s`` to see them).

1. The same Stripe event posted by 16 threads at once: one stored row counting 16 deliveries, one
   payment. The database's unique key decides, not a check-then-insert in Python.
2. The broker is down while a delivery arrives: the answer is still 200, the row is stored
   ``received``; once the broker is back the sweeper publishes it to the ``webhooks`` queue.
3. A worker SIGKILLed in the middle of the handler: the message, never acknowledged (``acks_late``),
   is delivered again after the visibility timeout, and the result exists exactly once.
4. The database is down: the receiver answers 503 with ``Retry-After`` and the health GET still
   answers 200.

Redis DB 13 (``RELIABILITY_REDIS_DB``) is flushed by these tests: do not point anything else at it.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection, connections
from django.test import Client, override_settings

from conftest import requires_postgres
from contacts.models import Contact, Payment
from engarde.celery import app as celery_app
from integrations.providers.stripe.tests import stripe_signature
from tenants.context import tenant_context
from tenants.models import Tenant
from webhooks.models import WebhookLog
from webhooks.tasks import process_webhook, sweep_webhooks
from webhooks.testing import connect

ROOT = Path(__file__).resolve().parent.parent
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_DB = int(os.environ.get("RELIABILITY_REDIS_DB", "13"))
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"
CLOSED_BROKER = "redis://127.0.0.1:1/0"  # nothing listens on port 1: connection refused
SECRET = "whsec_reliability0123456789abcdefgh"
VISIBILITY_TIMEOUT = 2  # seconds, for the worker subprocesses only


def _redis_answers() -> bool:
    try:
        import redis

        return bool(redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB, socket_connect_timeout=0.5).ping())
    except Exception:
        return False


requires_redis = pytest.mark.skipif(
    not _redis_answers(), reason=f"needs Redis at redis://{REDIS_HOST}:{REDIS_PORT} (db {REDIS_DB} is flushed)"
)


def _importable(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


requires_gunicorn = pytest.mark.skipif(not _importable("gunicorn"), reason="needs gunicorn (requirements.txt)")

committed_db = pytest.mark.django_db(transaction=True, databases=["default", "owner"])


# --- helpers ---------------------------------------------------------------------------------


def stripe_event(event_id: str, intent_id: str, email: str) -> bytes:
    """A ``payment_intent.succeeded`` like Stripe's, with our own ids."""
    return json.dumps(
        {
            "id": event_id, "object": "event", "type": "payment_intent.succeeded", "created": int(time.time()),
            "livemode": False,
            "data": {"object": {
                "id": intent_id, "object": "payment_intent", "amount": 4900, "amount_received": 4900,
                "currency": "eur", "description": "Reliability", "metadata": {}, "receipt_email": email,
                "status": "succeeded",
            }},
        }
    ).encode()


def post_stripe(client: Client, tenant: Tenant, body: bytes):
    return client.post(
        f"/api/webhooks/{tenant.pk}/stripe/", data=body, content_type="application/json",
        HTTP_STRIPE_SIGNATURE=stripe_signature(body, SECRET),
    )


def state(tenant: Tenant, event_id: str) -> dict:
    """What the database holds for the event, read as the runtime role in the tenant's context."""
    with tenant_context(tenant):
        rows = list(WebhookLog.objects.filter(source="stripe", event_id=event_id))
        return {
            "rows": rows,
            "payments": list(Payment.objects.all()),
            "contacts": Contact.objects.count(),
        }


def _drop_broker_pools() -> None:
    """Forget the app's cached pools, so the next publish uses ``conf.broker_url``. (Kombu keeps
    its pools per broker URL process-wide; closing them would break the next user of that URL.)"""
    celery_app._pool = None
    if "amqp" in celery_app.__dict__:
        celery_app.__dict__["amqp"]._producer_pool = None


@contextmanager
def celery_broker(url: str):
    """Publish for real (not eagerly) to ``url`` in this process, then put everything back.

    Celery reads ``CELERY_BROKER_URL`` (and ``CELERY_BROKER_WRITE_URL``) from the environment in
    preference to its configuration (CI sets the former), so both are overridden."""
    conf = celery_app.conf
    saved = conf.broker_url, conf.task_always_eager
    saved_env = {name: os.environ.get(name) for name in ("CELERY_BROKER_URL", "CELERY_BROKER_WRITE_URL")}
    _drop_broker_pools()
    os.environ.pop("CELERY_BROKER_WRITE_URL", None)
    os.environ["CELERY_BROKER_URL"] = url
    conf.broker_url, conf.task_always_eager = url, False
    try:
        assert celery_app.conf.broker_write_url == url
        yield
    finally:
        _drop_broker_pools()
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        conf.broker_url, conf.task_always_eager = saved


def wait_for(what: str, check, timeout: float, interval: float = 0.1, proc=None, log: Path | None = None):
    """Poll ``check()`` until it returns something true; fail (with the subprocess log) after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"subprocess exited ({proc.returncode}) while waiting for {what}:\n{_tail(log)}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}:\n{_tail(log)}")
        time.sleep(interval)


def _tail(log: Path | None, lines: int = 40) -> str:
    if log is None or not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def child_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The test process's keys (so encrypted secrets decrypt), no owner alias, DEBUG on."""
    env = {k: v for k, v in os.environ.items() if k not in ("MIGRATE_DATABASE_URL", "CELERY_BROKER_URL")}
    env.update(
        DEBUG="true", SECRET_KEY=settings.SECRET_KEY, FIELD_ENCRYPTION_KEYS=",".join(settings.FIELD_ENCRYPTION_KEYS),
        ENGARDE_VAR_DIR=str(tmp_path), PYTHONUNBUFFERED="1", LOG_LEVEL="INFO",
    )
    env.update(extra)
    return env


def runtime_database_url() -> str:
    """The test database, as the runtime role the tests use (never the owner)."""
    db = connection.settings_dict
    user, password = quote(db["USER"], safe=""), quote(db.get("PASSWORD") or "", safe="")
    return f"postgres://{user}:{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def owner_connection(autocommit: bool):
    import psycopg

    db = connections["owner"].settings_dict
    return psycopg.connect(
        host=db.get("HOST") or "127.0.0.1", port=db.get("PORT") or 5432, user=db["USER"],
        password=db.get("PASSWORD") or None, dbname=db["NAME"], autocommit=autocommit,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def celery_worker(tmp_path: Path, name: str, queues: str, **extra: str) -> tuple[subprocess.Popen, Path]:
    """A real one-process Celery worker on ``queues``, as the runtime role, on Redis ``REDIS_URL``,
    with ``extra`` in its environment; its output in ``<tmp_path>/<name>.log``."""
    log = tmp_path / f"{name}.log"
    env = child_env(tmp_path, DATABASE_URL=runtime_database_url(), CELERY_BROKER_URL=REDIS_URL, **extra)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "engarde", "worker", "--pool=solo", "--concurrency=1",
             "-Q", queues, "-l", "info", "-n", f"{name}-{uuid.uuid4().hex[:6]}@%h",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    return proc, log


def start_worker(tmp_path: Path, name: str) -> tuple[subprocess.Popen, Path]:
    return celery_worker(tmp_path, name, "webhooks,default", CELERY_VISIBILITY_TIMEOUT=str(VISIBILITY_TIMEOUT))


@pytest.fixture
def redis_db():
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def tenant(db):
    """A tenant with Stripe connected, committed (the tests that use it run with real commits)."""
    tenant = Tenant.objects.create(slug=f"rel-{uuid.uuid4().hex[:8]}", name="Reliability")
    connect(tenant, "stripe", SECRET)
    yield tenant
    connections["owner"].close()


# --- 1. concurrent duplicates ----------------------------------------------------------------


@requires_postgres
@committed_db
def test_the_same_event_from_16_threads_is_one_row_and_one_payment(tenant):
    threads_count = 16
    body = stripe_event("evt_rel_concurrent", "pi_rel_concurrent", "race@example.com")
    barrier = threading.Barrier(threads_count)
    answers: list = [None] * threads_count

    def deliver(i: int) -> None:
        try:
            client = Client()
            barrier.wait(timeout=30)
            response = post_stripe(client, tenant, body)
            answers[i] = (response.status_code, response.json().get("status"))
        except Exception as exc:  # reported below, with the others
            answers[i] = ("error", repr(exc))
        finally:
            connections.close_all()  # this thread's own connections

    started = time.perf_counter()
    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    print(f"\n16 concurrent deliveries answered in {time.perf_counter() - started:.3f} s")

    assert all(not t.is_alive() for t in threads)
    assert all(a is not None and a[0] == 200 for a in answers), answers
    assert sorted(a[1] for a in answers) == ["duplicate"] * (threads_count - 1) + ["received"], answers
    now = state(tenant, "evt_rel_concurrent")
    (row,) = now["rows"]
    assert row.delivery_count == threads_count
    assert row.status == WebhookLog.Status.PROCESSED and row.attempts == 1, row.error
    assert [p.payment_event_id for p in now["payments"]] == ["pi_rel_concurrent"]
    assert now["contacts"] == 1


# --- 2. broker down at ingest, the sweeper publishes later -----------------------------------


@requires_postgres
@requires_redis
@committed_db
@override_settings(WEBHOOK_QUEUE="tasks")  # one message per row (the row queue's own: tests/test_row_queue.py)
def test_a_broker_outage_loses_nothing_and_the_sweeper_publishes_later(tenant, redis_db):
    body = stripe_event("evt_rel_broker_down", "pi_rel_broker_down", "outage@example.com")
    with celery_broker(CLOSED_BROKER):
        started = time.perf_counter()
        response = post_stripe(Client(), tenant, body)
        elapsed = time.perf_counter() - started
    print(f"\nanswer with the broker down (publish tried and failed on commit): {elapsed * 1000:.0f} ms")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "received"
    now = state(tenant, "evt_rel_broker_down")
    (row,) = now["rows"]
    assert row.status == WebhookLog.Status.RECEIVED and row.attempts == 0
    assert bytes(row.body) == body  # stored byte for byte before the answer
    assert now["payments"] == [] and redis_db.llen("webhooks") == 0

    with celery_broker(REDIS_URL):
        # Not yet "stuck" (received a moment ago): left alone.
        with override_settings(WEBHOOK_SWEEP_AFTER_SECONDS=3600):
            assert sweep_webhooks() == 0
        assert redis_db.llen("webhooks") == 0
        with override_settings(WEBHOOK_SWEEP_AFTER_SECONDS=0):
            assert sweep_webhooks() == 1

    (raw,) = redis_db.lrange("webhooks", 0, -1)
    message = json.loads(raw)
    assert message["headers"]["task"] == "webhooks.process_webhook"
    args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
    assert args == [row.pk, str(tenant.pk)] and kwargs == {}

    # What was published is all a worker needs: run exactly that task (in-process here; the
    # next test runs a real worker) and the delivery is processed.
    assert process_webhook.apply(args=args).get() == WebhookLog.Status.PROCESSED
    now = state(tenant, "evt_rel_broker_down")
    assert now["rows"][0].status == WebhookLog.Status.PROCESSED
    assert [p.payment_event_id for p in now["payments"]] == ["pi_rel_broker_down"]


# --- 3. a worker killed mid-task -------------------------------------------------------------


@requires_postgres
@requires_redis
@committed_db
@override_settings(WEBHOOK_QUEUE="tasks")  # one message per row (the row queue's own: tests/test_row_queue.py)
def test_a_worker_killed_mid_handler_gives_exactly_one_result_after_redelivery(tenant, redis_db, tmp_path):
    """The first worker blocks inside the Stripe handler: its INSERT of the payment waits on an
    uncommitted row with the same unique key that this test holds as the owner (as a concurrent
    writer would). It is SIGKILLed there. Its transaction (claim, contact, payment) dies with it;
    the message it took was never acknowledged, comes back after the visibility timeout, and a
    second worker processes it once."""
    event_id, intent_id = "evt_rel_killed", "pi_rel_killed"
    body = stripe_event(event_id, intent_id, "killed@example.com")
    db_name, runtime_user = connection.settings_dict["NAME"], connection.settings_dict["USER"]
    holder = owner_connection(autocommit=False)
    watcher = owner_connection(autocommit=True)
    first = second = None
    try:
        # The competing writer: an uncommitted payment with the same (tenant, payment_event_id).
        # (The tenant setting makes it pass row-level security for an owner that is not superuser.)
        holder.execute("SELECT set_config('app.tenant_id', %s, true)", [str(tenant.pk)])
        holder.execute(
            "INSERT INTO contacts_payment (tenant_id, amount, amount_refunded, currency, status, source, "
            "external_id, payment_event_id, description, metadata, created_at, updated_at) "
            "VALUES (%s, 1, 0, 'EUR', 'pending', 'test', '', %s, 'held by the test', '{}', now(), now())",
            [tenant.pk, intent_id],
        )

        with celery_broker(REDIS_URL):
            response = post_stripe(Client(), tenant, body)
        assert response.status_code == 200 and response.json()["status"] == "received", response.content
        (raw,) = redis_db.lrange("webhooks", 0, -1)
        task_id = json.loads(raw)["headers"]["id"]
        (row,) = state(tenant, event_id)["rows"]

        started = time.monotonic()
        first, first_log = start_worker(tmp_path, "rel-first")

        def blocked_in_handler():
            rows = watcher.execute(
                "SELECT pid, query FROM pg_stat_activity WHERE datname = %s AND usename = %s "
                "AND wait_event_type = 'Lock'", [db_name, runtime_user],
            ).fetchall()
            return [(pid, query) for pid, query in rows if "contacts_payment" in query]

        ((blocked_pid, query),) = wait_for("the first worker to block in the handler", blocked_in_handler,
                                           timeout=30, proc=first, log=first_log)
        print(f"\nfirst worker blocked inside the handler after {time.monotonic() - started:.1f} s: {query[:60]}…")
        assert task_id in first_log.read_text()  # it did receive our message
        assert redis_db.llen("webhooks") == 0 and redis_db.hlen("unacked") == 1  # taken, not acknowledged

        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        holder.rollback()  # the competing writer goes away; the dead worker's backend gets to run on

        def backend_gone():
            return not watcher.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [blocked_pid]).fetchall()

        wait_for("the killed worker's database session to end", backend_gone, timeout=20)
        now = state(tenant, event_id)
        assert now["rows"][0].status == WebhookLog.Status.RECEIVED and now["rows"][0].attempts == 0
        assert now["payments"] == [] and now["contacts"] == 0  # the killed attempt left nothing behind
        assert redis_db.hlen("unacked") == 1  # still nobody's

        # Redelivery: the unacknowledged message is visible again once it is older than the
        # visibility timeout; a starting worker restores such messages first thing.
        ((_, delivered_at),) = redis_db.zrange("unacked_index", 0, -1, withscores=True)
        time.sleep(max(0.0, delivered_at + VISIBILITY_TIMEOUT + 0.2 - time.time()))
        second, second_log = start_worker(tmp_path, "rel-second")
        wait_for(
            "the second worker to process the delivery",
            lambda: state(tenant, event_id)["rows"][0].status == WebhookLog.Status.PROCESSED,
            timeout=30, interval=0.2, proc=second, log=second_log,
        )
        wait_for("the acknowledgement", lambda: redis_db.hlen("unacked") == 0, timeout=10, proc=second, log=second_log)
        print(f"redelivered and processed {time.monotonic() - started:.1f} s after the first worker started")

        now = state(tenant, event_id)
        (row,) = now["rows"]
        assert row.status == WebhookLog.Status.PROCESSED, row.error
        assert row.attempts == 1  # the killed attempt rolled back with everything else it did
        assert row.delivery_count == 1
        assert [p.payment_event_id for p in now["payments"]] == [intent_id]
        assert now["contacts"] == 1
        assert task_id in second_log.read_text()  # the very same message, delivered again
        assert redis_db.llen("webhooks") == 0
    finally:
        stop(first)
        stop(second)
        holder.close()
        watcher.close()


# --- 4. database down ------------------------------------------------------------------------


@requires_gunicorn
def test_database_down_answers_503_with_retry_after_and_health_still_answers(tmp_path):
    port, log = free_port(), tmp_path / "web.log"
    env = child_env(tmp_path, DATABASE_URL="postgres://x@127.0.0.1:1/x")
    tenant_id = uuid.uuid4()
    body = stripe_event("evt_rel_db_down", "pi_rel_db_down", "nodb@example.com")

    def request(method: str, data: bytes | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            headers = {"Content-Type": "application/json", "Stripe-Signature": stripe_signature(data, SECRET)} if data else {}
            started = time.perf_counter()
            conn.request(method, f"/api/webhooks/{tenant_id}/stripe/", body=data, headers=headers)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read(), time.perf_counter() - started
        finally:
            conn.close()

    def health_answers():
        try:
            return request("GET")[0] == 200
        except OSError:
            return False

    with open(log, "wb") as out:
        web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "engarde.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1",
             "--timeout", "30"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        wait_for("the web server", health_answers, timeout=30, interval=0.2, proc=web, log=log)
        status, headers, content, elapsed = request("POST", body)
        print(f"\n503 with the database down in {elapsed * 1000:.0f} ms")
        assert status == 503, content
        assert headers.get("Retry-After") == "30"
        assert json.loads(content) == {"status": "unavailable"}
        status, _, content, _ = request("GET")
        assert status == 200 and json.loads(content)["status"] == "ok"
        assert "database unavailable" in log.read_text()
    finally:
        stop(web)
