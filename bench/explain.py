"""``python bench/explain.py``: the plans of every ``webhooks_webhooklog`` query of both paths on a
table of a million rows, before and after the index migration (docs/architecture.md, "Indexes").

1. A fresh database ``engarde_explain`` at 127.0.0.1:5432 (``EXPLAIN_DATABASE_URL``, a superuser:
   it creates and drops the database), migrated, then ``webhooks`` back to 0004 (the indexes as they were).
2. 20 tenants and ``EXPLAIN_ROWS`` (1,000,000) rows shaped like production: 120 days of deliveries,
   mostly ``processed`` (those older than 90 days pruned), 1 % ``received``, 0.5 % ``failed``, 1 %
   ``rejected``, a few ``ignored``/``malformed``/``dead``. ``ANALYZE``.
3. ``EXPLAIN (ANALYZE, BUFFERS)`` of each query, with the tenant condition the RLS policy adds written
   out (the superuser skips RLS; the runtime role gets the same predicate from the policy). Then
   ``migrate`` to the newest and the same again, with the indexes' sizes.

The database is dropped at the end (``EXPLAIN_KEEP_DB=1`` keeps it). Loopback only; about a minute.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
URL = os.environ.get("EXPLAIN_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/engarde_explain")
ROWS = int(os.environ.get("EXPLAIN_ROWS", "1000000"))
if urlsplit(URL).hostname not in ("127.0.0.1", "localhost", "::1"):
    sys.exit("explain.py only talks to a database on 127.0.0.1")
os.environ.update(DJANGO_SETTINGS_MODULE="engarde.settings", DEBUG="true", DATABASE_URL=URL,
                  CELERY_TASK_ALWAYS_EAGER="true")
for name in ("MIGRATE_DATABASE_URL", "OPERATOR_DATABASE_URL", "CELERY_BROKER_URL"):
    os.environ.pop(name, None)


def admin_sql(statement: str) -> None:
    import psycopg

    parts = urlsplit(URL)
    with psycopg.connect(host=parts.hostname, port=parts.port or 5432, user=parts.username,
                         password=parts.password, dbname="postgres", autocommit=True) as conn:
        conn.execute(statement)


QUERIES = {
    # --- the ingest path --------------------------------------------------------------------
    "ingest: store (INSERT ... ON CONFLICT DO NOTHING on the unique key)": """
        INSERT INTO webhooks_webhooklog (tenant_id, source, event_id, event_type, status, headers, body,
            origin, delivery_count, attempts, error, traceback, unstored_rejections, received_at,
            last_delivery_at, updated_at)
        VALUES (%(t)s, 'stripe', 'evt_explain_new', 'payment_intent.succeeded', 'received', '{}', '\\x7b7d',
            'delivery', 1, 0, '', '', 0, now(), now(), now())
        ON CONFLICT (tenant_id, source, event_id) WHERE status <> 'rejected' DO NOTHING RETURNING id""",
    "ingest: a duplicate counted": """
        UPDATE webhooks_webhooklog SET delivery_count = delivery_count + 1, last_delivery_at = now()
        WHERE tenant_id = %(t)s AND source = 'stripe' AND event_id = %(event)s AND NOT status = 'rejected'""",
    "ingest: the newest rejected row (a flood counted)": """
        SELECT id FROM webhooks_webhooklog WHERE tenant_id = %(t)s AND status = 'rejected'
        ORDER BY received_at DESC, id DESC LIMIT 1""",
    # --- the processing path ----------------------------------------------------------------
    "processing: read the row": "SELECT * FROM webhooks_webhooklog WHERE tenant_id = %(t)s AND id = %(id)s",
    "processing: lock the row": """
        SELECT id, status, attempts FROM webhooks_webhooklog WHERE tenant_id = %(t)s AND id = %(id)s FOR UPDATE""",
    "processing: mark processed": """
        UPDATE webhooks_webhooklog SET status = 'processed', processed_at = now(), updated_at = now()
        WHERE tenant_id = %(t)s AND id = %(id)s""",
    "processing: a failure counted": """
        UPDATE webhooks_webhooklog SET status = 'failed', attempts = attempts + 1, updated_at = now()
        WHERE tenant_id = %(t)s AND id = %(id)s AND status IN ('received', 'failed')""",
    "sweeper: stuck rows, oldest first (operator)": """
        SELECT id, tenant_id FROM webhooks_webhooklog
        WHERE (status = 'received' AND updated_at < now() - interval '120 seconds')
           OR (status = 'failed' AND updated_at < now() - interval '7200 seconds')
        ORDER BY updated_at, id LIMIT 1000""",
    "metrics: rows waiting and the oldest (operator)": """
        SELECT source, status, count(id), min(received_at) FROM webhooks_webhooklog
        WHERE status IN ('received', 'failed') GROUP BY source, status""",
    # --- pages, API and jobs that read the same table ---------------------------------------
    "page/API: a tenant's newest deliveries": """
        SELECT id FROM webhooks_webhooklog WHERE tenant_id = %(t)s ORDER BY received_at DESC LIMIT 50""",
    "page/API: one platform's, newest first": """
        SELECT id FROM webhooks_webhooklog WHERE tenant_id = %(t)s AND source = 'stripe'
        ORDER BY received_at DESC LIMIT 50""",
    "test_connection: the last delivery": """
        SELECT received_at FROM webhooks_webhooklog WHERE tenant_id = %(t)s AND source = 'stripe'
        AND NOT status = 'rejected' ORDER BY received_at DESC LIMIT 1""",
    "retention: rejected rows past 7 days (operator)": """
        SELECT id FROM webhooks_webhooklog WHERE status = 'rejected' AND received_at < now() - interval '7 days'
        LIMIT 500""",
    "retention: processed bodies past 90 days (operator)": """
        SELECT id FROM webhooks_webhooklog WHERE status = 'processed' AND received_at < now() - interval '90 days'
        AND pruned_at IS NULL LIMIT 500""",
}

FILL = """
INSERT INTO webhooks_webhooklog (tenant_id, source, event_id, event_type, status, headers, body, origin,
    delivery_count, attempts, error, traceback, unstored_rejections, received_at, last_delivery_at,
    processed_at, pruned_at, updated_at)
SELECT t.id, s.source, 'evt_' || g, 'payment_intent.succeeded', s.status, '{}', '\\x7b7d', 'delivery', 1,
    1, '', '', 0, s.at, s.at, CASE WHEN s.status = 'processed' THEN s.at END,
    CASE WHEN s.status = 'processed' AND s.at < now() - interval '90 days' THEN now() END,
    CASE WHEN s.status IN ('received', 'failed') THEN now() - (random() * interval '10 minutes') ELSE s.at END
FROM generate_series(1, %(rows)s) g
JOIN LATERAL (SELECT (array['stripe','zoom','manychat','eventbrite'])[1 + g %% 4] AS source,
    CASE WHEN g %% 1000 < 10 THEN 'received' WHEN g %% 1000 < 15 THEN 'failed' WHEN g %% 1000 < 25 THEN 'rejected'
         WHEN g %% 1000 < 28 THEN 'ignored' WHEN g %% 1000 < 29 THEN 'malformed' WHEN g %% 1000 < 30 THEN 'dead'
         ELSE 'processed' END AS status,
    now() - (g::float / %(rows)s) * interval '120 days' AS at) s ON true
JOIN LATERAL (SELECT id FROM tenants_tenant ORDER BY slug OFFSET g %% 20 LIMIT 1) t ON true
"""


def explain_all(cursor, params) -> None:
    for title, sql in QUERIES.items():
        cursor.execute("BEGIN")
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, params)
        plan = [line for (line,) in cursor.fetchall()]
        cursor.execute("ROLLBACK")
        print(f"\n-- {title}")
        for line in plan:
            if "Planning" not in line:
                print("   " + line)


def indexes(cursor) -> None:
    cursor.execute("""SELECT indexrelname, pg_size_pretty(pg_relation_size(indexrelid)) FROM pg_stat_user_indexes
                      WHERE relname = 'webhooks_webhooklog' ORDER BY 1""")
    for name, size in cursor.fetchall():
        print(f"   {name}: {size}")


def main() -> None:
    name = urlsplit(URL).path.lstrip("/")
    admin_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin_sql(f"CREATE DATABASE {name}")
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        from tenants.models import Tenant

        call_command("migrate", verbosity=0)
        call_command("migrate", "webhooks", "0004", verbosity=0)  # the indexes as they were
        for i in range(20):
            Tenant.objects.create(slug=f"t{i:02d}", name=f"Tenant {i}")
        started = time.monotonic()
        with connection.cursor() as cursor:
            cursor.execute(FILL, {"rows": ROWS})
            cursor.execute("ANALYZE webhooks_webhooklog")
            cursor.execute("SELECT id FROM tenants_tenant WHERE slug = 't03'")
            (tenant,) = cursor.fetchone()
            cursor.execute("SELECT id, event_id FROM webhooks_webhooklog WHERE tenant_id = %s AND status = 'received' "
                           "ORDER BY id LIMIT 1", [tenant])
            row_id, event = cursor.fetchone()
            params = {"t": tenant, "id": row_id, "event": event}
            print(f"{ROWS} rows in {time.monotonic() - started:.0f} s; PostgreSQL {connection.pg_version}")
            print("\n=== before: webhooks 0004 ===")
            indexes(cursor)
            explain_all(cursor, params)
        call_command("migrate", verbosity=0)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE webhooks_webhooklog")
            print("\n=== after: every migration ===")
            indexes(cursor)
            explain_all(cursor, params)
        connection.close()
    finally:
        if os.environ.get("EXPLAIN_KEEP_DB") != "1":
            admin_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    main()
