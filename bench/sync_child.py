"""One Meta sync of one tenant, measured (run by ``bench/sync_bench.py`` in a fresh process, as
the runtime role, the way the Celery task runs it). Prints one JSON line."""

import json
import os
import resource
import sys
import time
import tracemalloc

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "engarde.settings")
sys.path.insert(0, os.getcwd())

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

from integrations.models import TenantIntegration  # noqa: E402
from integrations.sync import run_sync  # noqa: E402
from reports.models import MetaAdInsight  # noqa: E402
from tenants.context import tenant_context  # noqa: E402
from tenants.models import Tenant  # noqa: E402


def main(slug: str) -> None:
    tenant = Tenant.objects.get(slug=slug)
    with tenant_context(tenant):
        integration = TenantIntegration.objects.get(provider="meta")
    queries = [0]

    def count(execute, sql, params, many, context):
        queries[0] += 1
        return execute(sql, params, many, context)

    # tracemalloc makes every allocation slower: only when asked (BENCH_SYNC_TRACEMALLOC=1).
    tracing = os.environ.get("BENCH_SYNC_TRACEMALLOC") == "1"
    if tracing:
        tracemalloc.start()
    started = time.perf_counter()
    with connection.execute_wrapper(count):
        outcome = run_sync(integration.pk, str(tenant.pk))
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] if tracing else 0
    if tracing:
        tracemalloc.stop()
    if outcome.status != "synced":
        raise SystemExit(f"sync failed: {outcome.line()}")
    counts = outcome.result.counts
    with tenant_context(tenant):
        stored = MetaAdInsight.objects.count()
    print(json.dumps({
        "summary": outcome.line(), "insight_rows": counts["insight rows"], "stored_rows": stored,
        "seconds": seconds, "rows_per_second": counts["insight rows"] / seconds, "pages": counts["pages"],
        "queries_per_page": queries[0] / max(counts["pages"], 1), "queries": queries[0],
        "peak_python_mib": peak / 2**20 if tracing else None, "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main(sys.argv[1])
