"""What the code counts as it runs, for ``/metrics`` (``engarde.probes`` serves them).

Counters and the lag histogram are recorded where things happen (the receiver, processing, the
sync framework) with ``prometheus_client``. Under gunicorn with several workers (and Celery workers
on the same machine) every process must add up: set ``PROMETHEUS_MULTIPROC_DIR`` to a directory
all of them can write, emptied at boot, and the client keeps each process's values in a file there
that the scrape sums (``docs/architecture.md``, "Operators can see it"). Without it, each process
counts for itself (``runserver``, tests).

Labels are a platform's name (a fixed list), a status (a fixed list) and, only with
``METRICS_PER_TENANT=true``, the tenant's id; never anything a sender wrote, a secret or a contact's
data. Imports no app: every layer may record here.
"""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from prometheus_client import Counter, Histogram

#: What the receiver answered, in ``engarde_webhook_deliveries_total``'s ``status`` label.
DELIVERY_STATUSES = frozenset({
    "received", "duplicate", "rejected", "ignored", "malformed", "rate_limited", "not_found",
    "too_large", "unsupported_media_type", "method_not_allowed", "unavailable", "handshake",
})
#: Where processing left a row, in ``engarde_webhook_processed_total``.
PROCESSING_OUTCOMES = frozenset({"processed", "failed", "dead", "malformed"})

LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, float("inf"))

DELIVERIES = Counter(
    "engarde_webhook_deliveries", "Webhook deliveries answered, by platform and by what was answered.",
    ["source", "status", "tenant"],
)
PROCESSED = Counter(
    "engarde_webhook_processed", "Processing attempts of stored deliveries, by platform and the row's new state.",
    ["source", "status", "tenant"],
)
LAG = Histogram(
    "engarde_webhook_processing_lag_seconds",
    "From a delivery's arrival (received_at) to its processed mark.", ["source", "tenant"], buckets=LAG_BUCKETS,
)
SYNC_FAILURES = Counter(
    "engarde_sync_failures", "Pull syncs that ended in an error (transient, permanent or internal).",
    ["provider", "tenant"],
)


def tenant_label(tenant_id) -> str:
    """The tenant's id when operators turned per-tenant labels on, else '' (no label at all, to
    Prometheus)."""
    return str(tenant_id) if tenant_id and getattr(settings, "METRICS_PER_TENANT", False) else ""


def delivery(source: str, status: str, tenant_id=None) -> None:
    _delivery_counter(source, status if status in DELIVERY_STATUSES else "handshake", tenant_label(tenant_id)).inc()


@lru_cache(maxsize=4096)
def _delivery_counter(source: str, status: str, tenant: str):
    """The labelled counter, looked up once per process: ``labels()`` checks and locks each time,
    about a twentieth of the receiver's fast path. Every label comes from a fixed list or a tenant's
    id (``tenant_label``), so the cache holds what the metric holds. (The children are never
    removed: nothing calls ``DELIVERIES.remove`` or ``clear``.)"""
    return DELIVERIES.labels(source, status, tenant)


def processed(source: str, status: str, tenant_id=None, lag_seconds: float | None = None, count: int = 1) -> None:
    if status not in PROCESSING_OUTCOMES:
        return
    tenant = tenant_label(tenant_id)
    PROCESSED.labels(source, status, tenant).inc(count)
    if lag_seconds is not None:
        LAG.labels(source, tenant).observe(max(lag_seconds, 0.0))


def sync_failed(provider: str, tenant_id=None) -> None:
    SYNC_FAILURES.labels(provider, tenant_label(tenant_id)).inc()
