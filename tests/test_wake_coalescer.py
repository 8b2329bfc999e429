"""A burst's wake-ups, coalesced per process (``webhooks.drain.WakeCoalescer``,
``WEBHOOK_WAKE_COALESCE_MS``): the shared cache is asked at most once per window, and a delivery
inside a window is still woken, by a trailing wake-up at the window's end.

The window's rules on a clock the test holds (no thread, no real time); then the real thing: a
real thread, Redis as cache and broker, PostgreSQL as the runtime role, deliveries through the
receiver, and a drain clearing its key between two of them, as a drain starting does."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client, override_settings

from conftest import requires_postgres
from tenants.models import Tenant
from tests.test_reliability import (
    REDIS_URL,
    SECRET,
    celery_broker,
    post_stripe,
    redis_db,
    requires_redis,
    stripe_event,
    wait_for,
)
from webhooks.drain import WAKE_KEY, WakeCoalescer
from webhooks.testing import connect

__all__ = ["redis_db"]

REDIS_CACHE = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def coalescer(window: float = 0.05):
    clock, woken = Clock(), []
    return WakeCoalescer(wake=lambda: woken.append(clock.now) or True, window=lambda: window, clock=clock,
                         start_thread=False), clock, woken


def test_the_first_delivery_of_a_window_wakes_at_once_and_the_rest_once_at_its_end():
    wakes, clock, woken = coalescer(0.05)
    assert wakes.request() is True and woken == [1000.0]
    clock.now += 0.01
    assert wakes.request() is False
    clock.now += 0.01
    assert wakes.request() is False  # a second one inside the window adds nothing
    assert wakes.flush(now=1000.049) is False and woken == [1000.0]  # not yet due
    clock.now = 1000.05
    assert wakes.flush() is True and woken == [1000.0, 1000.05]  # one trailing wake-up for both
    assert wakes.flush() is False  # and only one


def test_a_delivery_after_a_trailing_wake_up_waits_for_the_next_window_end():
    wakes, clock, woken = coalescer(0.05)
    wakes.request()
    clock.now += 0.02
    wakes.request()
    clock.now = 1000.05
    wakes.flush()
    clock.now += 0.01  # inside the window the trailing wake-up opened
    assert wakes.request() is False
    assert wakes.flush(now=1000.099) is False
    assert wakes.flush(now=1000.1) is True and len(woken) == 3


def test_a_delivery_after_a_quiet_window_wakes_at_once():
    wakes, clock, woken = coalescer(0.05)
    wakes.request()
    clock.now += 0.05
    assert wakes.request() is True and len(woken) == 2
    assert wakes.flush(now=clock.now + 1) is False  # nothing was left due


def test_a_window_of_zero_wakes_on_every_delivery():
    wakes, clock, woken = coalescer(0)
    assert [wakes.request() for _ in range(3)] == [True, True, True] and len(woken) == 3


def test_a_wake_up_due_when_the_process_exits_runs_on_the_way_out():
    wakes, clock, woken = coalescer(0.05)
    wakes.request()
    clock.now += 0.01
    wakes.request()
    wakes.flush_on_exit()
    assert len(woken) == 2
    wakes.flush_on_exit()
    assert len(woken) == 2  # nothing was due any more


def test_a_failing_wake_up_does_not_end_the_window_or_the_process():
    clock = Clock()

    def broken() -> bool:
        raise RuntimeError("broker exploded")

    wakes = WakeCoalescer(wake=broken, window=lambda: 0.05, clock=clock, start_thread=False)
    with pytest.raises(RuntimeError):
        wakes.request()  # the first one runs on the caller, which handles its own errors (on_commit)
    clock.now += 0.01
    wakes.request()
    clock.now += 0.05
    assert wakes.flush() is True  # the trailing one is caught and logged, never raised on the thread


@requires_postgres
@requires_redis
@pytest.mark.django_db(transaction=True, databases=["default", "owner"])
def test_a_delivery_after_a_drain_cleared_its_key_is_woken_by_the_trailing_wake_up(redis_db):
    """The race the window must not lose: delivery 1 wakes a drain; the drain starts and clears its
    key; delivery 2 comes inside delivery 1's window, so it does not ask the cache itself; the
    trailing wake-up does, finds the key free and publishes the drain that takes delivery 2."""
    from django.core.cache import cache

    from webhooks import drain

    tenant = Tenant.objects.create(slug=f"coalesce-{uuid.uuid4().hex[:6]}", name="Coalesce")
    connect(tenant, "stripe", SECRET)
    client = Client()
    with override_settings(WEBHOOK_QUEUE="rows", CACHES=REDIS_CACHE, WEBHOOK_WAKE_SECONDS=3600,
                           WEBHOOK_WAKE_COALESCE_MS=300), celery_broker(REDIS_URL):
        cache.delete(WAKE_KEY)
        drain._coalescer.discard()
        for n in range(2):
            body = stripe_event(f"evt_coalesce_{n}", f"pi_coalesce_{n}", f"c{n}@example.com")
            assert post_stripe(client, tenant, body).json()["status"] == "received"
            if n == 0:
                assert redis_db.llen("webhooks") == 1  # the first delivery's wake-up, at once
                cache.delete(WAKE_KEY)  # what the drain does as it starts
        # The second one's wake-up comes from the thread, at most a window later (if this machine
        # stalled past the window, the second delivery woke at once itself: the same outcome).
        wait_for("the trailing wake-up", lambda: redis_db.llen("webhooks") == 2, timeout=10)
        assert cache.get(WAKE_KEY) is not None  # held again: the next drain is the one published


@requires_postgres
@requires_redis
@pytest.mark.django_db(transaction=True, databases=["default", "owner"])
def test_a_burst_asks_the_shared_cache_about_once_a_window(redis_db):
    """Forty deliveries in a row ask Redis about their wake-up a handful of times, not forty
    (``INFO commandstats`` counts the SET NX the cache's ``add`` sends); every row is stored."""
    from django.core.cache import cache

    from webhooks import drain

    tenant = Tenant.objects.create(slug=f"burst-{uuid.uuid4().hex[:6]}", name="Burst")
    connect(tenant, "stripe", SECRET)
    client = Client()

    def sets() -> int:
        return int(redis_db.info("commandstats").get("cmdstat_set", {}).get("calls", 0))

    # No rate limit here: its counter is a SET NX on the same cache (the wake-up's alone is counted).
    with override_settings(WEBHOOK_QUEUE="rows", CACHES=REDIS_CACHE, WEBHOOK_WAKE_SECONDS=3600,
                           WEBHOOK_WAKE_COALESCE_MS=60_000, WEBHOOK_RATE_LIMIT=0), celery_broker(REDIS_URL):
        cache.delete(WAKE_KEY)
        drain._coalescer.discard()
        before = sets()
        for n in range(40):
            body = stripe_event(f"evt_burst_{n}", f"pi_burst_{n}", f"b{n}@example.com")
            assert post_stripe(client, tenant, body).json()["status"] == "received"
        asked = sets() - before
    assert asked == 1, asked  # the window (a minute here) is far longer than forty deliveries
    assert redis_db.llen("webhooks") == 1


def test_where_no_thread_can_start_every_delivery_wakes_at_once(monkeypatch):
    """A process out of threads cannot run a trailing wake-up: nothing is left due, each delivery
    wakes itself as with no window."""
    import threading

    def refuse(self):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    clock, woken = Clock(), []
    wakes = WakeCoalescer(wake=lambda: woken.append(clock.now) or True, window=lambda: 0.05, clock=clock)
    assert wakes.request() is True
    clock.now += 0.01
    assert wakes.request() is True and len(woken) == 2
    assert wakes.flush(now=clock.now + 1) is False  # nothing was left due


def test_a_celery_pool_process_shutting_down_runs_the_wake_up_due(monkeypatch):
    """billiard's pool processes leave with os._exit (no atexit): worker_process_shutdown runs it."""
    from celery.signals import worker_process_shutdown

    from webhooks import drain

    wakes, clock, woken = coalescer(0.05)
    monkeypatch.setattr(drain, "_coalescer", wakes)
    wakes.request()
    clock.now += 0.01
    wakes.request()
    worker_process_shutdown.send(sender=None, pid=1, exitcode=0)
    assert len(woken) == 2
