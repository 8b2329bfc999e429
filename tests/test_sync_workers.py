"""The sync claim with real parts: Redis, two real Celery workers on the ``sync`` queue, PostgreSQL
as the runtime role, and the local fake Graph API. A doubled beat publishes every due sync twice;
each integration is still synced exactly once, and a claim left by a crashed run is taken over
once it is stale. Timings are never asserted; waits are bounded and fail with the workers' logs.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connections
from django.utils import timezone

from conftest import requires_postgres
from integrations.models import TenantIntegration
from integrations.providers.meta.fake_graph import Account, FakeGraph
from integrations.tasks import sync_due_integrations
from reports.models import MetaAdInsight
from tenants.context import tenant_context
from tenants.models import Tenant
from tests.test_reliability import (
    REDIS_URL, celery_broker, celery_worker, redis_db, requires_redis, stop, wait_for,
)
from webhooks.testing import connect

__all__ = ["redis_db"]  # the fixture, imported for use here

pytestmark = [requires_postgres, requires_redis, pytest.mark.django_db(transaction=True, databases=["default", "owner"])]


def start_sync_worker(tmp_path, name: str, graph: FakeGraph):
    return celery_worker(tmp_path, name, "sync", META_GRAPH_BASE=graph.base, META_GRAPH_VERSION=graph.version,
                         META_PAGE_LIMIT="20")


@pytest.fixture
def graph():
    server = FakeGraph().start()
    server.delay = 0.05  # each sync takes long enough for the two workers' runs to overlap
    yield server
    server.stop()


@pytest.fixture
def tenants(db, graph):
    """Two committed tenants with Meta connected, each on its own account with the same ad ids."""
    made = []
    for n, base in ((1, "10.00"), (2, "700.00")):
        tenant = Tenant.objects.create(slug=f"sync-{n}-{uuid.uuid4().hex[:6]}", name=f"Sync {n}")
        token = f"EAAB-worker-token-{n}-{uuid.uuid4().hex}"
        graph.accounts[f"act_{n}"] = Account(token=token, ads=3, spend_base=Decimal(base))
        connect(tenant, "meta", access_token=token, ad_account_id=f"act_{n}")
        made.append(tenant)
    yield made
    connections["owner"].close()


def finished(logs) -> int:
    return sum(log.read_text(errors="replace").count("succeeded in") for log in logs if log.exists())


def insight_count(tenant) -> int:
    with tenant_context(tenant):
        return MetaAdInsight.objects.count()


def test_a_doubled_beat_with_two_workers_syncs_each_integration_once(tmp_path, graph, tenants, redis_db, settings):
    settings.META_GRAPH_BASE = graph.base
    with celery_broker(REDIS_URL):
        assert sync_due_integrations() == 2
        assert sync_due_integrations() == 2  # the doubled beat: four tasks wait in the queue
    workers = [start_sync_worker(tmp_path, f"sync-worker-{i}", graph) for i in (1, 2)]
    try:
        logs = [log for _, log in workers]
        wait_for("four sync tasks to finish", lambda: finished(logs) == 4, timeout=120, proc=workers[0][0],
                 log=logs[0])
    finally:
        for proc, _ in workers:
            stop(proc)
    text = "".join(log.read_text(errors="replace") for log in logs)
    assert text.count("'meta: 3 ads, 3 creatives, 270 insight rows'") == 2, text[-3000:]
    assert text.count("'skipped (another run holds it, not due, disabled or gone)'") == 2
    for n, tenant in enumerate(tenants, start=1):
        assert len([p for p in graph.paths(f"/act_{n}/ads")]) == 1  # one run per integration
        assert insight_count(tenant) == 270
        with tenant_context(tenant):
            integration = TenantIntegration.objects.get(provider="meta")
        assert integration.last_synced_at and integration.sync_started_at is None


def test_a_crashed_runs_stale_claim_is_taken_over_by_the_next_beat(tmp_path, graph, tenants, redis_db, settings):
    crashed, alive = tenants
    now = timezone.now()
    with tenant_context(crashed):  # a worker died mid-sync an hour ago: its claim is stale
        TenantIntegration.objects.update(sync_started_at=now - timedelta(seconds=settings.SYNC_STALE_AFTER_SECONDS + 60))
    with tenant_context(alive):  # a run under way right now: left alone
        TenantIntegration.objects.update(sync_started_at=now)
    worker = start_sync_worker(tmp_path, "sync-worker-stale", graph)
    try:
        with celery_broker(REDIS_URL):
            assert sync_due_integrations() == 1
        wait_for("the stale sync to finish", lambda: finished([worker[1]]) == 1, timeout=120, proc=worker[0],
                 log=worker[1])
    finally:
        stop(worker[0])
    assert insight_count(crashed) == 270 and insight_count(alive) == 0


# --- weekly reports: a doubled beat, two workers, one e-mail ----------------------------------------


def start_report_worker(tmp_path, name: str):
    return celery_worker(tmp_path, name, "reports", EMAIL_URL="consolemail://", ANTHROPIC_API_KEY="")


def test_a_doubled_report_beat_with_two_workers_sends_each_report_once(tmp_path, redis_db):
    from reports.models import WeeklyReport
    from reports.tasks import send_due_weekly_reports

    made = []
    for n in (1, 2):
        made.append(Tenant.objects.create(slug=f"rep-{n}-{uuid.uuid4().hex[:6]}", name=f"Report Tenant {n}",
                                          report_email=f"owner{n}@example.com", timezone="Pacific/Honolulu"))
    try:
        with celery_broker(REDIS_URL):
            first, second = send_due_weekly_reports(), send_due_weekly_reports()
        assert first >= 2 and second == first  # the doubled beat: every due report queued twice
        workers = [start_report_worker(tmp_path, f"report-worker-{i}") for i in (1, 2)]
        logs = [log for _, log in workers]
        try:
            wait_for("every report task to finish", lambda: finished(logs) == first + second, timeout=120,
                     proc=workers[0][0], log=logs[0])
        finally:
            for proc, _ in workers:
                stop(proc)
        text = "".join(log.read_text(errors="replace") for log in logs)
        for tenant in made:
            assert text.count(f"Subject: [{tenant.name}] Your week") == 1, text[-3000:]
            with tenant_context(tenant):
                (report,) = WeeklyReport.objects.all()
            assert (report.status, report.attempts, report.recipient) == ("sent", 1, tenant.report_email)
    finally:
        connections["owner"].close()
