"""``make bench`` (second part) and ``make bench-sync``: the Meta Ads sync against the local fake
Graph API, on loopback only.

1. A fresh database ``engarde_bench_sync`` (owner ``postgres``), migrated, ``setup_app_role``; two
   tenants with Meta connected: ``bench`` (500 ads) and ``bench-small`` (50 ads), each on its own
   ad account of the fake (``integrations/providers/meta/fake_graph.py``, run in its own process so
   the figures below are the sync's alone).
2. ``bench/sync_child.py`` runs ``integrations.sync.run_sync`` in a fresh process as the runtime
   role, exactly as the Celery task does: the first sync of each (90 days: 45,000 and 4,500
   insight rows), then the 500-ad one again (the 28-day lookback, restated in place).
3. Prints rows/s, pages, database queries per page and peak memory (the process's maximum
   resident size; with ``BENCH_SYNC_TRACEMALLOC=1`` also tracemalloc's peak of Python allocations,
   which slows the run down) for each run.

Settings (environment): ``BENCH_SYNC_ADS`` (500), ``BENCH_SYNC_SMALL_ADS`` (50), ``BENCH_SYNC_TRACEMALLOC``, ``BENCH_KEEP_DB``,
``BENCH_SYNC_OWNER_URL``, ``BENCH_SYNC_DATABASE_URL``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
os.environ.setdefault("BENCH_OWNER_URL", os.environ.get(
    "BENCH_SYNC_OWNER_URL", "postgres://postgres@127.0.0.1:5432/engarde_bench_sync"))
os.environ.setdefault("BENCH_DATABASE_URL", os.environ.get(
    "BENCH_SYNC_DATABASE_URL", "postgres://engarde_app:engarde_app@127.0.0.1:5432/engarde_bench_sync"))
sys.path.insert(0, str(HERE))

import run as bench  # noqa: E402  (the receiver bench's helpers: database, keys, manage.py)

ADS = int(os.environ.get("BENCH_SYNC_ADS", "500"))
SMALL_ADS = int(os.environ.get("BENCH_SYNC_SMALL_ADS", "50"))
TOKEN = "EAAB" + os.urandom(12).hex()


def prepare() -> None:
    name = bench.database_name(bench.OWNER_URL)
    bench.say(f"fresh database {name}, migrations, runtime role; tenants bench ({ADS} ads) and bench-small ({SMALL_ADS})")
    bench.owner_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", database="postgres")
    bench.owner_sql(f"CREATE DATABASE {name}", database="postgres")
    bench.manage("migrate", "--noinput")
    runtime = bench.urlsplit(bench.RUNTIME_URL)
    bench.manage("setup_app_role", runtime.username, "--password", runtime.password or "bench")


def connect(slug: str, account: str) -> None:
    bench.manage("onboard_tenant", slug, "--name", f"Sync {slug}")
    bench.manage("connect_integration", slug, "meta", "--set", "access_token=-", "--set", f"ad_account_id={account}",
                 stdin=TOKEN + "\n")


def child(graph_base: str, slug: str, label: str) -> dict:
    env = bench.app_env(META_GRAPH_BASE=graph_base, META_GRAPH_VERSION="v25.0", CELERY_BROKER_URL="",
                        CELERY_TASK_ALWAYS_EAGER="true")  # no broker on purpose: DEBUG is off
    result = subprocess.run([bench.PY, str(HERE / "sync_child.py"), slug], cwd=bench.ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    if result.returncode:
        raise bench.BenchError(f"the sync of {slug} failed:\n{result.stdout}\n{result.stderr[-3000:]}")
    return {"run": label, **json.loads(result.stdout.strip().splitlines()[-1])}


def peak(run: dict) -> str:
    return "—" if run["peak_python_mib"] is None else f"{run['peak_python_mib']:.1f}"


def report(runs: list[dict]) -> None:
    print("\n| run | insight rows | seconds | rows/s | pages | queries/page | peak Python MiB | max RSS MiB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in runs:
        print(f"| {r['run']} | {r['insight_rows']} | {r['seconds']:.1f} | {r['rows_per_second']:.0f} | {r['pages']} "
              f"| {r['queries_per_page']:.1f} | {peak(r)} | {r['max_rss_mib']:.0f} |")
    print(f"\nload average before: {bench.LOAD_BEFORE}; summary lines: " + "; ".join(r["summary"] for r in runs))


def main() -> int:
    for url in (bench.OWNER_URL, bench.RUNTIME_URL):
        bench.loopback_only(url)
    from cryptography.fernet import Fernet

    bench.KEYS["SECRET_KEY"] = os.urandom(32).hex()
    bench.KEYS["FIELD_ENCRYPTION_KEYS"] = Fernet.generate_key().decode()
    bench.LOAD_BEFORE = " ".join(f"{x:.2f}" for x in os.getloadavg())
    graph = subprocess.Popen(
        [bench.PY, "-m", "integrations.providers.meta.fake_graph", "act_500", TOKEN, str(ADS), "act_50", TOKEN,
         str(SMALL_ADS)], cwd=bench.ROOT, stdout=subprocess.PIPE, text=True,
    )
    try:
        base = graph.stdout.readline().strip()
        bench.loopback_only(base)
        prepare()
        connect("bench", "act_500")
        connect("bench-small", "act_50")
        runs = [child(base, "bench-small", f"first sync, {SMALL_ADS} ads × 90 days"),
                child(base, "bench", f"first sync, {ADS} ads × 90 days"),
                child(base, "bench", f"next sync, {ADS} ads × 28 days (lookback, in place)")]
    finally:
        graph.terminate()
        graph.wait(timeout=10)
        if not bench.KEEP_DB:
            bench.owner_sql(f"DROP DATABASE IF EXISTS {bench.database_name(bench.OWNER_URL)} WITH (FORCE)",
                            database="postgres")
    report(runs)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except bench.BenchError as exc:
        print(f"[bench] {exc}", file=sys.stderr)
        sys.exit(1)
