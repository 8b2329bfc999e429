"""``/healthz``, ``/readyz`` and ``/metrics``: for load balancers and Prometheus (README, "Health
and metrics").

``ProbeMiddleware`` is the first middleware: it answers these three paths before the HTTPS
redirect and the ``ALLOWED_HOSTS`` check (a load balancer probes over plain http with its own Host
header, often an address), and before sessions, CSRF and the tenant middleware, which they need
none of. Everything else passes through untouched.

- ``/healthz``: the process is up. No database, no broker: 200 ``ok``.
- ``/readyz``: the database and the broker answer, each within ``READYZ_TIMEOUT_SECONDS``; else
  503 naming which failed. Never an address, a URL or an error's text (they can carry a host or a
  password): only ``ok`` / ``unreachable`` per check.
- ``/metrics``: Prometheus' text format. Counters and the lag histogram come from
  ``engarde.metrics`` (summed across processes in multiprocess mode); the rows waiting, the oldest
  waiting age and the integrations whose last sync failed are read from the database at scrape
  time, across tenants, in an operator context. Allowed by ``METRICS_TOKEN`` (Bearer) and/or
  ``METRICS_ALLOWED_NETWORKS`` (both, when both are set); with neither set it answers 404, as if
  it did not exist: metrics are off until an operator chooses who may read them.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os

from django.conf import settings
from django.db import connections
from django.db.models import Count, Min
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from engarde import metrics  # noqa: F401 (the counters exist, at zero, before anything counts)

log = logging.getLogger(__name__)

PATHS = ("/healthz", "/readyz", "/metrics")


class ProbeMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info.rstrip("/") or "/"
        if path not in PATHS:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            response = HttpResponse("method not allowed\n", status=405, content_type="text/plain")
            response["Allow"] = "GET, HEAD"
            return response
        if path == "/healthz":
            return healthz(request)
        if path == "/readyz":
            return readyz(request)
        return metrics_view(request)


def healthz(request) -> HttpResponse:
    return HttpResponse("ok\n", content_type="text/plain")


# --- /readyz ---------------------------------------------------------------------------------


def _database_ok(timeout: float) -> bool:
    """A fresh connection with a connect timeout (Django's kept one would wait on the system's TCP
    timeout for a host that does not answer), then ``SELECT 1``."""
    connection = connections["default"]
    try:
        if connection.vendor != "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            return True
        import psycopg

        params = connection.get_connection_params()
        params["connect_timeout"] = max(1, int(timeout))
        with psycopg.connect(**params) as conn:
            conn.execute("SET statement_timeout = %s" % int(timeout * 1000))
            conn.execute("SELECT 1")
        return True
    except Exception as exc:  # whatever the driver raises: the answer is "unreachable"
        log.warning("readyz: database unreachable (%s)", exc.__class__.__name__)
        return False


def _broker_ok(timeout: float) -> bool | None:
    """None when there is no broker to check (tasks run in-process, on purpose)."""
    from engarde.celery import app

    if app.conf.task_always_eager or not app.conf.broker_url:
        return None
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
            conn.default_channel  # the transport's first command (Redis: a connection and its handshake)
        return True
    except Exception as exc:
        log.warning("readyz: broker unreachable (%s)", exc.__class__.__name__)
        return False


def readyz(request) -> JsonResponse:
    timeout = settings.READYZ_TIMEOUT_SECONDS
    checks = {"database": _database_ok(timeout), "broker": _broker_ok(timeout)}
    failed = [name for name, ok in checks.items() if ok is False]
    body = {
        "status": "unavailable" if failed else "ready",
        "checks": {name: {True: "ok", False: "unreachable", None: "not used (tasks run in-process)"}[ok]
                   for name, ok in checks.items()},
    }
    if failed:
        body["failed"] = failed
    return JsonResponse(body, status=503 if failed else 200)


# --- /metrics --------------------------------------------------------------------------------


def _bearer(request) -> str:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _client_in_networks(request) -> bool:
    from webhooks.views import client_ip  # the one reading of the sender's address (a proxy's header)

    address = client_ip(request)
    if address is None:
        return False
    ip = ipaddress.ip_address(address)
    return any(ip in network for network in settings.METRICS_ALLOWED_NETWORKS)


def metrics_view(request) -> HttpResponse:
    token, networks = settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS
    if not token and not networks:
        return HttpResponse("not found\n", status=404, content_type="text/plain")
    if networks and not _client_in_networks(request):
        return HttpResponse("forbidden\n", status=403, content_type="text/plain")
    if token and not hmac.compare_digest(_bearer(request).encode(), token.encode()):
        response = HttpResponse("unauthorized\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(scrape(), content_type=CONTENT_TYPE_LATEST)


def scrape() -> bytes:
    """What one scrape reports: the counters (every process's, summed, in multiprocess mode; this
    process's otherwise) and the database's gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        counted = CollectorRegistry()
        multiprocess.MultiProcessCollector(counted)
    else:
        counted = REGISTRY
    database = CollectorRegistry()
    database.register(DatabaseCollector())
    return generate_latest(counted) + generate_latest(database)


class DatabaseCollector:
    """Gauges read at scrape time. Cheap: the partial status index holds only the rows waiting
    (``received``, ``failed``), and integrations are few."""

    def collect(self):
        from integrations.models import TenantIntegration
        from tenants.context import operator_context
        from webhooks.models import WebhookLog

        per_tenant = settings.METRICS_PER_TENANT
        keys = ["source", "status"] + (["tenant_id"] if per_tenant else [])
        labels = ["source", "status"] + (["tenant"] if per_tenant else [])
        waiting = GaugeMetricFamily("engarde_webhook_rows_waiting",
                                    "Stored deliveries not processed yet: received (queued) or failed (to retry).",
                                    labels=labels)
        oldest = GaugeMetricFamily("engarde_webhook_oldest_waiting_age_seconds",
                                   "Age of the oldest delivery waiting in that state (since it arrived).",
                                   labels=labels)
        failing = GaugeMetricFamily("engarde_sync_failing_integrations",
                                    "Active integrations whose last pull sync ended in an error.",
                                    labels=["provider"] + (["tenant"] if per_tenant else []))
        now = timezone.now()
        try:
            with operator_context("metrics: rows waiting and failing syncs, across tenants"):
                rows = list(
                    WebhookLog.objects.filter(status__in=[WebhookLog.Status.RECEIVED, WebhookLog.Status.FAILED])
                    .order_by().values(*keys).annotate(n=Count("id"), first=Min("received_at"))
                )
                syncs = list(
                    TenantIntegration.objects.filter(is_active=True).exclude(last_sync_error="")
                    .order_by().values("provider", *(["tenant_id"] if per_tenant else [])).annotate(n=Count("id"))
                )
        except Exception as exc:  # the database is down: the process's own counters still answer
            log.warning("metrics: database gauges unavailable (%s)", exc.__class__.__name__)
            up = GaugeMetricFamily("engarde_metrics_database_up", "Whether the database gauges could be read.")
            up.add_metric([], 0)
            yield up
            return
        for row in rows:
            values = [row["source"], row["status"]] + ([str(row["tenant_id"])] if per_tenant else [])
            waiting.add_metric(values, row["n"])
            oldest.add_metric(values, max((now - row["first"]).total_seconds(), 0.0))
        for row in syncs:
            failing.add_metric([row["provider"]] + ([str(row["tenant_id"])] if per_tenant else []), row["n"])
        up = GaugeMetricFamily("engarde_metrics_database_up", "Whether the database gauges could be read.")
        up.add_metric([], 1)
        yield from (waiting, oldest, failing, up)

