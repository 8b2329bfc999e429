"""The stored row is the queue (``WEBHOOK_QUEUE=rows``, webhooks/drain.py), with the real parts:
PostgreSQL as the runtime role, Redis as broker and cache, a real Celery worker in a subprocess.

1. A burst of deliveries publishes a handful of wake-ups, not one message per row, and every row
   becomes its payment once.
2. A worker SIGKILLed in the middle of a batch: what it processed stays, the rest is claimed again
   once the lease runs out, and every payment exists exactly once.
3. One tenant's flood does not starve another: the second tenant's rows, stored after the flood, are
   done in the first batch.
"""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection, connections
from django.test import Client, override_settings

from conftest import requires_postgres
from contacts.models import Payment
from tenants.context import tenant_context
from tenants.models import Tenant
from tests.test_reliability import (
    REDIS_URL,
    SECRET,
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
from webhooks.models import WebhookLog
from webhooks.tasks import sweep_webhooks
from webhooks.testing import connect

__all__ = ["redis_db"]

pytestmark = [requires_postgres, requires_redis, pytest.mark.django_db(transaction=True, databases=["default", "owner"])]

REDIS_CACHE = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}


def start_worker(tmp_path: Path, name: str, **extra: str) -> tuple[subprocess.Popen, Path]:
    return celery_worker(tmp_path, name, "webhooks,default", CACHE_URL=REDIS_URL, CELERY_VISIBILITY_TIMEOUT="2",
                         WEBHOOK_QUEUE="rows", **extra)


def make_tenant(label: str) -> Tenant:
    tenant = Tenant.objects.create(slug=f"{label}-{uuid.uuid4().hex[:6]}", name=label)
    connect(tenant, "stripe", SECRET)
    return tenant


def deliver(tenant: Tenant, prefix: str, count: int) -> None:
    client = Client()
    for i in range(count):
        body = stripe_event(f"evt_{prefix}_{i}", f"pi_{prefix}_{i}", f"{prefix}{i}@example.com")
        response = post_stripe(client, tenant, body)
        assert response.status_code == 200 and response.json()["status"] == "received", response.content


def statuses(tenant: Tenant) -> dict[str, int]:
    with tenant_context(tenant):
        found: dict[str, int] = {}
        for status in WebhookLog.objects.values_list("status", flat=True):
            found[status] = found.get(status, 0) + 1
        return found


def all_processed(tenant: Tenant, count: int):
    return statuses(tenant) == {"processed": count}


@pytest.fixture
def rows_mode(redis_db):
    with override_settings(WEBHOOK_QUEUE="rows", CACHES=REDIS_CACHE), celery_broker(REDIS_URL):
        yield redis_db
    connections["owner"].close()


def test_a_burst_sends_a_few_wake_ups_and_every_row_is_processed_once(rows_mode, tmp_path):
    """...and its 300 new contacts reach the tenant's owner as a few digests from the real worker
    (its console mail backend writes them to its log), each contact told once: the first batch's
    at once, the rest in one digest per notice window (3 s here), not one e-mail per batch."""
    import re

    from conftest import make_user
    from tenants.models import Membership

    tenant = make_tenant("burst")
    owner = make_user(f"burst_owner_{tenant.slug[-6:]}")
    with tenant_context(tenant):
        Membership.objects.create(tenant=tenant, user=owner, role=Membership.Role.OWNER)
    deliver(tenant, "burst", 300)
    messages = rows_mode.llen("webhooks")
    print(f"\n300 deliveries published {messages} drain message(s)")
    assert 1 <= messages <= 20
    assert statuses(tenant) == {"received": 300}
    worker, log = start_worker(tmp_path, "burst", NEW_CONTACT_NOTICE_SECONDS="3")
    subject = re.compile(r"^Subject: \[burst\] (?:(\d+) new contacts from stripe|New contact from stripe: .*)$",
                         flags=re.MULTILINE)

    def told() -> int:
        return sum(int(n) if n else 1 for n in subject.findall(log.read_text()))

    try:
        wait_for("every row processed", lambda: all_processed(tenant, 300), timeout=120, proc=worker, log=log)
        wait_for("every new contact told", lambda: told() >= 300, timeout=60, proc=worker, log=log)
    finally:
        stop(worker)
    with tenant_context(tenant):
        assert Payment.objects.count() == 300
        assert set(WebhookLog.objects.values_list("attempts", flat=True)) == {1}
    text = log.read_text()
    assert "Task webhooks.process_webhook[" not in text  # no message per row
    # The notices: one task per batch, not per contact, and one e-mail per window, not per batch;
    # every contact in exactly one e-mail.
    notices = len(re.findall(r"Task contacts\.notify_new_contacts\[[-0-9a-f]+\] succeeded", text))
    subjects = subject.findall(text)
    print(f"300 new contacts: {notices} notice task(s), {len(subjects)} e-mail(s)")
    assert told() == 300
    assert 1 <= len(subjects) <= 3 and len(subjects) <= notices <= 40
    assert "Task contacts.notify_new_contact[" not in text


def test_a_worker_killed_mid_batch_loses_nothing_and_doubles_nothing(rows_mode, tmp_path):
    """The worker blocks inside the handler of the 4th row (its payment's unique key is held by an
    uncommitted row of this test's), is SIGKILLed there, and a second worker finishes the batch
    once the claim's lease has run out. Its batch transaction (the first three rows' writes too)
    dies with it."""
    tenant = make_tenant("killed")
    db_name, runtime_user = connection.settings_dict["NAME"], connection.settings_dict["USER"]
    holder, watcher = owner_connection(autocommit=False), owner_connection(autocommit=True)
    first = second = None
    try:
        holder.execute("SELECT set_config('app.tenant_id', %s, true)", [str(tenant.pk)])
        holder.execute(
            "INSERT INTO contacts_payment (tenant_id, amount, amount_refunded, currency, status, source, "
            "external_id, payment_event_id, description, metadata, created_at, updated_at) "
            "VALUES (%s, 1, 0, 'EUR', 'pending', 'test', '', 'pi_killed_3', 'held by the test', '{}', now(), now())",
            [tenant.pk],
        )
        deliver(tenant, "killed", 10)
        first, first_log = start_worker(tmp_path, "killed-first", WEBHOOK_CLAIM_LEASE_SECONDS="3")

        def blocked():
            rows = watcher.execute(
                "SELECT pid, query FROM pg_stat_activity WHERE datname = %s AND usename = %s AND wait_event_type = 'Lock'",
                [db_name, runtime_user]).fetchall()
            return [pid for pid, query in rows if "contacts_payment" in query]

        (blocked_pid,) = wait_for("the worker to block in the 4th row's handler", blocked, timeout=60,
                                  proc=first, log=first_log)
        mid = statuses(tenant)
        print(f"\nwhen killed: {mid}")
        # Mid-batch: the tenant's batch is one write transaction, so nothing of it is committed yet
        # and every claimed row is leased.
        assert mid == {"processing": 10}
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        holder.rollback()
        wait_for("the killed worker's session to end", lambda: not watcher.execute(
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s", [blocked_pid]).fetchall(), timeout=20)

        second, second_log = start_worker(tmp_path, "killed-second", WEBHOOK_CLAIM_LEASE_SECONDS="3")
        # Whether or not the redelivered drain came after the lease ran out, the sweeper (the
        # backstop, every minute under beat) wakes a drain for leases that ran out.
        time.sleep(3)
        with override_settings(WEBHOOK_CLAIM_LEASE_SECONDS=3):
            sweep_webhooks()
        wait_for("every row processed", lambda: all_processed(tenant, 10), timeout=90, proc=second, log=second_log)
    finally:
        stop(first)
        stop(second)
        holder.close()
        watcher.close()
    with tenant_context(tenant):
        ids = sorted(Payment.objects.values_list("payment_event_id", flat=True))
        assert ids == sorted(f"pi_killed_{i}" for i in range(10))  # each once
        assert set(WebhookLog.objects.values_list("attempts", flat=True)) == {1}  # the killed attempt rolled back


def test_one_tenants_flood_does_not_starve_another(rows_mode, tmp_path):
    flood, quiet = make_tenant("flood"), make_tenant("quiet")
    deliver(flood, "flood", 200)
    deliver(quiet, "quiet", 10)  # stored after the whole flood
    worker, log = start_worker(tmp_path, "fair", WEBHOOK_DRAIN_BATCH="40", WEBHOOK_DRAIN_PER_TENANT="20")
    try:
        wait_for("both tenants processed", lambda: all_processed(flood, 200) and all_processed(quiet, 10),
                 timeout=120, proc=worker, log=log)
    finally:
        stop(worker)
    with tenant_context(flood):
        flood_times = sorted(WebhookLog.objects.values_list("processed_at", flat=True))
    with tenant_context(quiet):
        quiet_done = max(WebhookLog.objects.values_list("processed_at", flat=True))
    # First-come-first-served would process all 200 first; the quiet tenant is done within the first
    # batch (20 rows of each tenant), before the flood's 40th row.
    print(f"\nthe quiet tenant was done after {sum(t < quiet_done for t in flood_times)} of the flood's rows")
    assert quiet_done < flood_times[39]


def test_a_broker_outage_loses_nothing_and_the_sweeper_wakes_a_drain(rows_mode):
    import base64
    import json

    from tests.test_reliability import CLOSED_BROKER
    from webhooks.tasks import drain

    tenant = make_tenant("outage")
    with celery_broker(CLOSED_BROKER):
        deliver(tenant, "outage", 3)  # answered 200 "received" with the broker down
    assert statuses(tenant) == {"received": 3} and rows_mode.llen("webhooks") == 0
    with override_settings(WEBHOOK_SWEEP_AFTER_SECONDS=3600):
        assert sweep_webhooks() == 0  # not stuck yet
    with override_settings(WEBHOOK_SWEEP_AFTER_SECONDS=0):
        assert sweep_webhooks() == 1
    (raw,) = rows_mode.lrange("webhooks", 0, -1)  # one wake-up for all three rows
    assert json.loads(raw)["headers"]["task"] == "webhooks.drain"
    assert json.loads(base64.b64decode(json.loads(raw)["body"]))[0] == []
    assert drain.apply().get() == 3  # what a worker would run
    assert statuses(tenant) == {"processed": 3}


# No key runs out during the test, however slow; every delivery asks the cache itself (the
# per-process window in front of it, WEBHOOK_WAKE_COALESCE_MS, has tests of its own:
# tests/test_wake_coalescer.py).
@override_settings(WEBHOOK_WAKE_SECONDS=3600, WEBHOOK_WAKE_COALESCE_MS=0)
def test_a_wake_up_that_could_not_be_published_gives_its_key_back(rows_mode):
    """With the broker down the deduplication key is not kept: the first delivery after the broker
    is back publishes its wake-up at once instead of leaving its row to the sweeper."""
    from django.core.cache import cache

    from tests.test_reliability import CLOSED_BROKER
    from webhooks.drain import WAKE_KEY

    tenant = make_tenant("rewake")
    cache.delete(WAKE_KEY)
    with celery_broker(CLOSED_BROKER):
        deliver(tenant, "down", 1)
        assert cache.get(WAKE_KEY) is None
    deliver(tenant, "back", 1)  # within WEBHOOK_WAKE_SECONDS of the failed one
    assert rows_mode.llen("webhooks") == 1
    assert cache.get(WAKE_KEY) is not None  # now held: the next ones are deduplicated
    deliver(tenant, "more", 2)
    assert rows_mode.llen("webhooks") == 1


def test_a_drain_woken_by_a_delivery_lingers_with_the_key_held_and_a_forced_one_does_not(rows_mode, monkeypatch):
    """``WEBHOOK_DRAIN_LINGER_MS``: the drain a delivery woke waits before its claim with the
    wake-up key still held (so the deliveries meanwhile publish nothing and join it), then clears
    the key and claims; the drain a full batch or the sweeper publishes (``wake(force=True)``)
    carries ``linger=False`` and does not wait."""
    import base64
    import json

    from django.core.cache import cache

    from webhooks import drain as rows
    from webhooks.tasks import drain

    held_while_lingering = []
    monkeypatch.setattr(rows, "linger", lambda seconds: held_while_lingering.append(
        (seconds, cache.get(rows.WAKE_KEY) is not None)))
    tenant = make_tenant("linger")
    cache.set(rows.WAKE_KEY, 1, timeout=60)
    with override_settings(WEBHOOK_DRAIN_LINGER_MS=50):
        deliver(tenant, "linger", 2)
        assert drain() == 2  # what the worker runs for a delivery's wake-up
        assert held_while_lingering == [(0.05, True)] and cache.get(rows.WAKE_KEY) is None
        assert drain(linger=False) == 0 and len(held_while_lingering) == 1
        rows_mode.delete("webhooks")
        assert rows.wake(force=True)
        cache.delete(rows.WAKE_KEY)
        assert rows.wake()
    forced, woken = (json.loads(base64.b64decode(json.loads(raw)["body"])) for raw in rows_mode.lrange("webhooks", 0, -1)[::-1])
    assert forced[:2] == [[], {"linger": False}] and woken[:2] == [[], {}]
    with override_settings(WEBHOOK_DRAIN_LINGER_MS=0):
        drain()
    assert len(held_while_lingering) == 1  # 0: no linger


def test_an_in_process_drain_never_lingers(monkeypatch, db):
    """``make run``'s embedded mode runs the drain inside the request: it must not sleep there."""
    from webhooks import drain as rows
    from webhooks.tasks import drain

    called = []
    monkeypatch.setattr(rows, "linger", called.append)
    with override_settings(WEBHOOK_DRAIN_LINGER_MS=50):
        assert rows.in_process()
        drain.apply().get()
    assert called == []
