"""Fixed-window counters in the shared cache: the verified-delivery budget per tenant and the
sample of rejected deliveries a tenant keeps per window.

Cheap, and good enough to stop a flood; set ``CACHE_URL`` to Redis so every web process counts
together. The clock is ``now()`` here, read once per count, so tests can fix it and no test
depends on where a real window boundary falls.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache


def now() -> float:
    """The clock the windows are cut from (tests replace it)."""
    return time.time()


def _window(name: str) -> tuple[str, int, int]:
    """The cache key of ``name``'s current window, its length, and the seconds it has left."""
    window = settings.WEBHOOK_RATE_WINDOW_SECONDS
    moment = int(now())
    return f"webhook-rate:{name}:{moment // window}", window, (window - moment % window) or 1


def count(name: str) -> tuple[int, int]:
    """Count one more for ``name`` in this window: (the count so far, seconds the window has left)."""
    key, window, remaining = _window(name)
    counted = _count_on_redis(key, window + 5)
    if counted is not None:
        return counted, remaining
    cache.add(key, 0, timeout=window + 5)
    try:
        counted = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=window + 5)
        counted = 1
    return counted, remaining


def over(name: str, limit: int) -> int | None:
    """Count one more; the seconds to wait when that goes over ``limit`` (``0``: no limit), else None."""
    if limit <= 0:
        return None
    counted, remaining = count(name)
    return remaining if counted > limit else None


def _count_on_redis(key: str, timeout: int) -> int | None:
    """On Django's Redis cache (``CACHE_URL=redis://…``, production), the ``add`` and ``incr``
    above in one round trip instead of two: ``SET key 0 EX timeout NX`` and ``INCR key`` pipelined
    (not a transaction: each is atomic, and the order is kept). The key is the cache's own (prefix,
    version), and Django's Redis cache stores integers as they are, so ``cache.get`` reads the same
    counter. ``None`` on any other cache, and should the backend's client not be reachable as
    expected (a Django release that moved it): the portable way above."""
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return None
    try:
        made = backend.make_and_validate_key(key)
        client = backend._cache.get_client(made, write=True)
    except AttributeError:
        return None
    pipeline = client.pipeline(transaction=False)
    pipeline.set(made, 0, ex=timeout, nx=True)
    pipeline.incr(made)
    return int(pipeline.execute()[1])
