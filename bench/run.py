"""``make bench``: the full En Garde receiver against the smallest correct receiver, on loopback,
then end to end with a real worker (issue 11, "Measure").

What it does, bounded in time (``BENCH_TIME_LIMIT``) and cleaning up after itself (servers and
worker stopped, the database dropped, Redis db 12 flushed; the logs of the last run stay in
``var/bench/``):

1. A fresh PostgreSQL database ``engarde_bench`` (owner: ``postgres``), migrated by the owner;
   ``setup_app_role`` gives the runtime role ``engarde_app`` and the operator role
   ``engarde_operator`` their grants; a tenant ``bench`` with Stripe connected under a known
   signing secret (no secret key: nothing is asked of Stripe); the minimal receiver's table.
2. ``ingest``: for each server, the same gunicorn settings (``--workers 4 --worker-class sync``),
   the same runtime role, the same database, one kept connection per worker:
   - ``full``: ``engarde.wsgi`` with ``DEBUG=false``, generated ``SECRET_KEY`` and
     ``FIELD_ENCRYPTION_KEYS``, ``WEBHOOK_RATE_LIMIT=0``, ``DB_CONN_MAX_AGE=60``,
     ``CELERY_BROKER_URL`` = local Redis db 12: every delivery really publishes what it publishes
     (no worker consumes during this part);
   - ``minimal``: issue 11's yardstick, a Django view with no middleware (``bench/minimal_django.py``:
     verify, parse, insert, 200);
   - ``bare``: the same work as a bare WSGI function (``bench/minimal_receiver.py``), no Django at
     all: the ratio to it is reported beside the yardstick's.
   A short warm-up, then fresh signed events (unique ids, timestamps taken just before the run)
   replayed by ``wrk`` (``bench/replay.lua``) with 32 connections for 20 s. Requests/s, p50/p99,
   non-2xx answers, CPU per request (app and database), what each stored, the ratios full/minimal
   and full/bare.
   Its rows are deleted afterwards (nobody processed them; a worker would take them first).
3. ``roundtrips``: PostgreSQL round trips per delivery, counted by ``bench/pgcount.py``, a TCP
   proxy between each process and PostgreSQL that counts the client's ``Sync`` and simple
   ``Query`` messages (each is one wait on the database): the minimal receiver and the full
   receiver per delivery (``BENCH_RT_DELIVERIES``, 2 gunicorn workers each), the worker per event.
   (``pg_stat_statements`` needs ``shared_preload_libraries``, a server restart; and
   ``pg_stat_database`` counts transactions, not waits.) Not timed: the proxy adds latency.
4. End to end, as deployed: gunicorn ``engarde.wsgi --workers 2`` and ``celery -A engarde worker
   -c 2`` (prefork, every queue) with ``WEBHOOK_QUEUE=rows`` passed explicitly, ``CACHE_URL`` =
   Redis db 12 (the wake-up deduplication's shared cache) and ``OPERATOR_DATABASE_URL`` (the
   drain's one read across tenants), ``BENCH_EXTRA_ENV`` on top. After 100 warm-up deliveries are
   processed:
   - ``burst``: ``BENCH_BURST`` signed ``payment_intent.succeeded`` deliveries sent as fast as
     ``BENCH_BURST_CONNECTIONS`` threads can (``bench/sender.py``), timed from the first send
     until every one is a ``Payment`` row (polled as the owner every 0.2 s): events/s, and the
     ratio to the minimal receiver's ingest rate of the same run;
   - ``steady``: for each rate of ``BENCH_STEADY_RATES``, an open-loop sender (delivery *i* due at
     *start + i/rate* whatever the answers; latency counted from when it was due) for
     ``BENCH_STEADY_SECONDS``, then up to ``BENCH_DRAIN_TIMEOUT`` s for the backlog:
     ``processed_at - received_at`` p50/p95/p99/max from the database (a row not processed by
     then counts with its wait so far), rows still waiting when sending ended, time to drain;
   - for each phase, CPU per event from ``/proc/<pid>/stat`` (utime+stime) of the gunicorn
     master and workers, the celery worker and its pool (children reaped included), and the bench
     database's backends in ``pg_stat_activity`` (the poller's own left out; a backend that ended
     during the phase is lost, so that figure is a lower bound), and the whole PostgreSQL server's
     tree (an upper bound: other databases and background writers in it).
5. The tables, a compact summary beside issue 11's goals, and the exact commands.

Only 127.0.0.1 is ever targeted. Settings (environment): ``BENCH_DURATION`` (20),
``BENCH_WARMUP`` (3), ``BENCH_CONNECTIONS`` (32), ``BENCH_THREADS`` (2), ``BENCH_WORKERS`` (4),
``BENCH_EVENTS`` (100000), ``BENCH_ROUNDS`` (1: minimal, bare, then full; more rounds alternate and the
median round is reported, for a machine that other work shares), ``BENCH_ONLY`` (full, minimal
or bare), ``BENCH_KEEP_DB`` (1 keeps the database), ``BENCH_OWNER_URL``, ``BENCH_DATABASE_URL``,
``BENCH_OPERATOR_URL``, ``BENCH_REDIS_URL``, ``BENCH_EXTRA_ENV`` (``NAME=value,...`` for the full
app and the end-to-end processes, e.g. ``DB_CONN_MAX_AGE=0``); ``BENCH_PHASES``
(``ingest,roundtrips,burst,steady``), ``BENCH_RT_DELIVERIES`` (200), ``BENCH_E2E_WEB_WORKERS`` (2),
``BENCH_E2E_CONCURRENCY`` (2), ``BENCH_BURST`` (2000), ``BENCH_BURST_CONNECTIONS`` (16),
``BENCH_BURST_TIMEOUT`` (120 s), ``BENCH_HISTORY`` (20000 contacts and payments the tenant has
before the run, then ``ANALYZE``; 0 for none), ``BENCH_STEADY_RATES`` (``100,200``), ``BENCH_STEADY_SECONDS``
(15), ``BENCH_STEADY_CONNECTIONS`` (64), ``BENCH_DRAIN_TIMEOUT`` (60 s), ``BENCH_TIME_LIMIT``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pgcount  # noqa: E402  (bench/, run as a script)
import sender  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
LOG_DIR = ROOT / "var" / "bench"  # the servers' logs of the last run (var/ is git-ignored)

DURATION = int(os.environ.get("BENCH_DURATION", "20"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "3"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "4"))
EVENTS = int(os.environ.get("BENCH_EVENTS", "100000"))
ONLY = os.environ.get("BENCH_ONLY", "")
KEEP_DB = os.environ.get("BENCH_KEEP_DB", "") == "1"
OWNER_URL = os.environ.get("BENCH_OWNER_URL", "postgres://postgres@127.0.0.1:5432/engarde_bench")
RUNTIME_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://engarde_app:engarde_app@127.0.0.1:5432/engarde_bench")
OPERATOR_URL = os.environ.get(
    "BENCH_OPERATOR_URL", "postgres://engarde_operator:engarde_operator@127.0.0.1:5432/engarde_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "1"))
# The minimal receiver keeps one connection per worker, so the full app keeps its own too
# (Django's CONN_MAX_AGE, a documented setting); BENCH_EXTRA_ENV=DB_CONN_MAX_AGE=0 measures the default.
FULL_ENV = {"DB_CONN_MAX_AGE": "60"} | dict(
    item.split("=", 1) for item in os.environ.get("BENCH_EXTRA_ENV", "").split(",") if "=" in item
)
PHASES = [p for p in os.environ.get("BENCH_PHASES", "ingest,roundtrips,burst,steady").split(",") if p]
E2E_WEB_WORKERS = int(os.environ.get("BENCH_E2E_WEB_WORKERS", "2"))
E2E_CONCURRENCY = int(os.environ.get("BENCH_E2E_CONCURRENCY", "2"))
BURST = int(os.environ.get("BENCH_BURST", "2000"))
BURST_CONNECTIONS = int(os.environ.get("BENCH_BURST_CONNECTIONS", "16"))
BURST_TIMEOUT = int(os.environ.get("BENCH_BURST_TIMEOUT", "120"))
STEADY_RATES = [int(r) for r in os.environ.get("BENCH_STEADY_RATES", "100,200").split(",") if r]
STEADY_SECONDS = int(os.environ.get("BENCH_STEADY_SECONDS", "15"))
STEADY_CONNECTIONS = int(os.environ.get("BENCH_STEADY_CONNECTIONS", "64"))
DRAIN_TIMEOUT = int(os.environ.get("BENCH_DRAIN_TIMEOUT", "60"))
RT_DELIVERIES = int(os.environ.get("BENCH_RT_DELIVERIES", "200"))
# The bench tenant's history: contacts and payments it already has, analysed as autovacuum would
# have, so lookups meet the plans of a database in use (on an empty, never-analysed table the
# planner may pick the tenant index and read every row of the tenant for each lookup).
HISTORY = int(os.environ.get("BENCH_HISTORY", "20000"))
# The end-to-end phases run as deployed: the row queue (passed explicitly), the shared cache for
# the wake-up deduplication, the operator role for the drain's one read across tenants.
E2E_ENV = {"WEBHOOK_QUEUE": "rows", "CACHE_URL": REDIS_URL, "OPERATOR_DATABASE_URL": OPERATOR_URL} | FULL_ENV
# The whole run, set-up included, ends by then whatever happens.
_INGEST_BOUND = ROUNDS * 3 * (DURATION + WARMUP + 15) if "ingest" in PHASES else 0
_E2E_BOUND = (
    (60 + 2 * DRAIN_TIMEOUT if "roundtrips" in PHASES else 0)
    + (60 + BURST_TIMEOUT if "burst" in PHASES else 0)
    + (len(STEADY_RATES) * (STEADY_SECONDS + DRAIN_TIMEOUT + 10) if "steady" in PHASES else 0)
)
TIME_LIMIT = int(os.environ.get("BENCH_TIME_LIMIT", str(240 + _INGEST_BOUND + _E2E_BOUND)))

SIGNING_SECRET = "whsec_bench_" + hashlib.sha256(os.urandom(16)).hexdigest()[:24]
GUNICORN_ARGS = ["--workers", str(WORKERS), "--worker-class", "sync", "--timeout", "30", "--log-level", "warning"]


class BenchError(RuntimeError):
    pass


def _timeout(signum, frame):
    raise BenchError(f"the bench took longer than {TIME_LIMIT} s; stopped")


def say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def loopback_only(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if host not in LOOPBACK:
        raise BenchError(f"{url.split('@')[-1]}: the bench only talks to 127.0.0.1")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def owner_sql(statement: str, database: str | None = None, params=None):
    """Run one statement as the owner (autocommit), on ``database`` (default: the bench database)."""
    import psycopg

    parts = urlsplit(OWNER_URL)
    with psycopg.connect(
        host=parts.hostname, port=parts.port or 5432, user=parts.username, password=parts.password,
        dbname=database or database_name(OWNER_URL), autocommit=True,
    ) as conn:
        cursor = conn.execute(statement, params)
        return cursor.fetchall() if cursor.description else None


def app_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "MIGRATE_DATABASE_URL"))}
    env.update(
        DEBUG="false", SECRET_KEY=KEYS["SECRET_KEY"], FIELD_ENCRYPTION_KEYS=KEYS["FIELD_ENCRYPTION_KEYS"],
        ALLOWED_HOSTS="127.0.0.1,localhost", DATABASE_URL=RUNTIME_URL, CELERY_BROKER_URL=REDIS_URL,
        WEBHOOK_RATE_LIMIT="0", PYTHONUNBUFFERED="1", BEHIND_HTTPS_PROXY="false",
    )
    env.update(extra)
    return env


def yardstick_env() -> dict[str, str]:
    """The environment of ``minimal_django`` and ``minimal_receiver``: the same database and secret."""
    return {**app_env(), "MINIMAL_DATABASE_URL": RUNTIME_URL, "MINIMAL_SIGNING_SECRET": SIGNING_SECRET}


def generate_keys() -> None:
    """This run's ``SECRET_KEY`` and ``FIELD_ENCRYPTION_KEYS`` (``KEYS``), never anyone's real ones."""
    from cryptography.fernet import Fernet

    KEYS["SECRET_KEY"] = hashlib.sha256(os.urandom(32)).hexdigest()
    KEYS["FIELD_ENCRYPTION_KEYS"] = Fernet.generate_key().decode()


def require_owner() -> None:
    try:
        owner_sql("SELECT 1", database="postgres")
    except Exception as exc:
        raise BenchError(f"PostgreSQL is not reachable as the owner ({exc.__class__.__name__}); see BENCH_OWNER_URL") from None


def manage(*args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [PY, "manage.py", *args], cwd=ROOT, env=app_env(MIGRATE_DATABASE_URL=OWNER_URL), input=stdin,
        capture_output=True, text=True, timeout=180,
    )
    if result.returncode:
        raise BenchError(f"manage.py {args[0]} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def prepare_database() -> str:
    name = database_name(OWNER_URL)
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name) or name != database_name(RUNTIME_URL):
        raise BenchError("BENCH_OWNER_URL and BENCH_DATABASE_URL must name the same plain database name")
    say(f"fresh database {name} (owner {urlsplit(OWNER_URL).username}), migrations, runtime role")
    owner_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", database="postgres")
    owner_sql(f"CREATE DATABASE {name}", database="postgres")
    manage("migrate", "--noinput")
    runtime = urlsplit(RUNTIME_URL)
    operator = urlsplit(OPERATOR_URL)
    manage("setup_app_role", runtime.username, "--password", runtime.password or "bench",
           "--operator", operator.username, "--operator-password", operator.password or "bench")
    tenant_id = manage("onboard_tenant", "bench", "--name", "Bench Studio").strip().splitlines()[-1]
    manage("connect_integration", "bench", "stripe", "--webhook-secret", "-", stdin=SIGNING_SECRET + "\n")
    owner_sql(
        "CREATE TABLE bench_minimal_event (event_id text PRIMARY KEY, body bytea NOT NULL, "
        "received_at timestamptz NOT NULL DEFAULT now())"
    )
    owner_sql(f"GRANT SELECT, INSERT ON bench_minimal_event TO {runtime.username}")
    if HISTORY > 0:
        say(f"history: {HISTORY} contacts and {HISTORY} payments for the tenant, then ANALYZE")
        manage("shell", "-c", HISTORY_CODE.format(tenant_id=tenant_id, count=HISTORY))
        owner_sql("ANALYZE")
    return tenant_id


HISTORY_CODE = """
from decimal import Decimal
from contacts.models import Contact, Payment
from tenants.context import tenant_context
with tenant_context("{tenant_id}"):
    for start in range(0, {count}, 5000):
        ids = range(start, min({count}, start + 5000))
        Contact.objects.bulk_create([Contact(email=f"history{{i}}@example.com", source="stripe") for i in ids])
        Payment.objects.bulk_create([Payment(payment_event_id=f"pi_history_{{i}}", external_id=f"pi_history_{{i}}",
                                             source="stripe", amount=Decimal("49.00"), currency="EUR") for i in ids])
"""


def flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


def queued_messages() -> int:
    import redis

    return redis.Redis.from_url(REDIS_URL).llen("webhooks")


def write_events(path: Path, count: int, prefix: str) -> None:
    """``count`` unique ``payment_intent.succeeded`` deliveries, signed now, one a line for wrk."""
    with open(path, "w") as out:
        for signature, body in signed_events(count, prefix):
            out.write(f"{signature}\t{body}\n")


def signed_events(count: int, prefix: str):
    """``count`` unique ``payment_intent.succeeded`` deliveries ``(Stripe-Signature, body)``, signed
    now: each makes one ``Payment`` (``external_id`` ``pi_<prefix>_<n>``) and one contact; the
    body names its payer (``receipt_email``) and the integration has no secret key, so nothing is
    asked of Stripe."""
    now = int(time.time())
    secret = SIGNING_SECRET.encode()
    for i in range(count):
        body = json.dumps(
            {
                "id": f"evt_{prefix}_{i:07d}", "object": "event", "api_version": "2025-09-30.clover",
                "created": now, "livemode": False, "pending_webhooks": 1,
                "request": {"id": None, "idempotency_key": None}, "type": "payment_intent.succeeded",
                "data": {"object": {
                    "id": f"pi_{prefix}_{i:07d}", "object": "payment_intent", "amount": 4900,
                    "amount_received": 4900, "currency": "eur", "customer": f"cus_{prefix}_{i:07d}",
                    "description": "Spring gala ticket", "metadata": {"event": "spring-gala"},
                    "receipt_email": f"buyer{i}@{prefix}.example.com", "status": "succeeded",
                    "latest_charge": f"ch_{prefix}_{i:07d}",
                }},
            },
            separators=(",", ":"),
        )
        signature = hmac.new(secret, f"{now}.{body}".encode(), hashlib.sha256).hexdigest()
        yield f"t={now},v1={signature}", body


class Server:
    def __init__(self, name: str, wsgi: list[str], env: dict[str, str], workdir: Path, workers: int = WORKERS):
        self.name, self.port = name, free_port()
        self.log = workdir / f"{name}.log"
        args = ["--workers", str(workers), *GUNICORN_ARGS[2:]]
        self.command = [PY, "-m", "gunicorn", *wsgi, "--bind", f"127.0.0.1:{self.port}", *args]
        self.env, self.proc = env, None

    def start(self, ready_path: str) -> None:
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                self.command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(f"GET {ready_path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
                    if sock.recv(64).startswith(b"HTTP/1."):
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise BenchError(f"{self.name} did not answer within 30 s")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=5)


def run_wrk(url: str, events: Path, seconds: int) -> tuple[dict, str]:
    command = [
        "wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "--timeout", "5s",
        "-s", str(ROOT / "bench" / "replay.lua"), url,
    ]
    env = {**os.environ, "BENCH_EVENTS_FILE": str(events), "BENCH_WRK_THREADS": str(THREADS)}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 60)
    line = next((out for out in result.stdout.splitlines() if out.startswith("BENCH ")), None)
    if result.returncode or line is None:
        raise BenchError(f"wrk failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    figures = {k: int(v) for k, v in (item.split("=") for item in line.split()[1:])}
    figures["rps"] = figures["requests"] / (figures["duration_us"] / 1e6)
    shown = f"BENCH_EVENTS_FILE=<events> BENCH_WRK_THREADS={THREADS} " + shlex.join(command).replace(str(ROOT) + "/", "")
    return figures, shown


def stored(name: str, prefix: str) -> str:
    if name in ("minimal", "bare"):
        (count,), = owner_sql("SELECT count(*) FROM bench_minimal_event WHERE starts_with(event_id, %s)", params=[f"evt_{prefix}_"])
        return f"{count} rows"
    rows = owner_sql(
        "SELECT status, count(*) FROM webhooks_webhooklog WHERE starts_with(event_id, %s) GROUP BY status ORDER BY status",
        params=[f"evt_{prefix}_"],
    )
    return ", ".join(f"{n} {status}" for status, n in rows) + f"; {queued_messages()} tasks queued in Redis"


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far (those still alive)."""
    total, tick = 0, os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / tick


def server_pids(server: Server) -> list[int]:
    children = subprocess.run(["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True).stdout.split()
    return [server.proc.pid, *map(int, children)]


def database_pids() -> list[int]:
    """The PostgreSQL backends serving the bench database (the servers' connections)."""
    rows = owner_sql(
        "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        params=[database_name(OWNER_URL)],
    )
    return [pid for (pid,) in rows]


def measure(name: str, server: Server, url: str, workdir: Path, prefix: str) -> dict:
    say(f"{name}: gunicorn {' '.join(server.command[3:4] + GUNICORN_ARGS)} on 127.0.0.1:{server.port}")
    server.start(urlsplit(url).path)
    try:
        if WARMUP:
            warm = workdir / f"{name}-warmup.events"
            write_events(warm, min(EVENTS, 20000), f"warm{prefix}")
            run_wrk(url, warm, WARMUP)
            time.sleep(1)  # let the warm-up's last requests finish before counting starts
        flush_redis()
        events = workdir / f"{name}.events"
        write_events(events, EVENTS, prefix)  # fresh timestamps, just before the run
        say(f"{name}: {EVENTS} signed events written; wrk {CONNECTIONS} connections for {DURATION} s")
        app_pids, db_pids = server_pids(server), database_pids()
        app_cpu, db_cpu = cpu_seconds(app_pids), cpu_seconds(db_pids)
        figures, command = run_wrk(url, events, DURATION)
        figures["app_cpu_ms"] = (cpu_seconds(app_pids) - app_cpu) * 1000 / max(figures["requests"], 1)
        kept = [pid for pid in db_pids if os.path.exists(f"/proc/{pid}")]
        # With a connection per request (DB_CONN_MAX_AGE=0) the backends come and go: not measurable.
        figures["db_cpu_ms"] = (
            (cpu_seconds(kept) - db_cpu) * 1000 / max(figures["requests"], 1)
            if kept and len(kept) == len(db_pids) else None
        )
        time.sleep(0.5)  # the last in-flight requests, before the servers stop and rows are counted
    finally:
        server.stop()
    figures["stored"] = stored(name, prefix)
    figures["command"] = command
    errors = [line for line in server.log.read_text(errors="replace").splitlines() if "Traceback" in line or " ERROR " in line]
    figures["server_errors"] = len(errors)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copy(server.log, LOG_DIR / server.log.name)
    return figures


# --- end to end: a real worker, the burst, the steady rates, CPU and round trips ---------------

class Worker:
    """``celery -A engarde worker -c N`` (prefork, every queue), the project's settings."""

    def __init__(self, env: dict[str, str], workdir: Path, name: str = "worker"):
        self.log = workdir / f"{name}.log"
        self.command = [PY, "-m", "celery", "-A", "engarde", "worker", "-c", str(E2E_CONCURRENCY), "--loglevel", "info",
                        "-n", f"bench-{os.getpid()}-{name}@%h"]
        self.env, self.proc = env, None

    def start(self) -> None:
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"the celery worker exited:\n{self.log.read_text()[-3000:]}")
            if " ready." in self.log.read_text(errors="replace"):
                return
            time.sleep(0.3)
        raise BenchError("the celery worker was not ready within 60 s")

    def stop(self) -> None:
        """A warm shutdown (SIGTERM to the main process: the pool finishes its tasks), then SIGKILL."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.proc.terminate()
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # whatever of the pool is left
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=5)


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def descendants(root: int) -> list[int]:
    """``root`` and every process below it (from /proc's parent ids)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))):
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def tree_cpu(root: int) -> float:
    """CPU seconds of a process tree: the live processes' own time, plus what the root reaped of
    children that exited (``cutime + cstime``: a recycled gunicorn or pool worker)."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0
    for pid in descendants(root):
        if fields := _stat(pid):
            total += int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if pid == root else 0)
    return total / tick


class Poller:
    """One kept owner connection (the owner sees every tenant's rows) for polling progress; its
    backend is left out of PostgreSQL's CPU."""

    def __init__(self):
        import psycopg

        parts = urlsplit(OWNER_URL)
        self.conn = psycopg.connect(host=parts.hostname, port=parts.port or 5432, user=parts.username,
                                    password=parts.password, dbname=database_name(OWNER_URL), autocommit=True)
        self.pid = self.conn.info.backend_pid

    def one(self, sql: str, params=None):
        return self.conn.execute(sql, params).fetchone()

    def progress(self, prefix: str) -> tuple[int, int, int]:
        """(rows stored, rows processed, payments) of the deliveries named ``prefix``."""
        stored, processed = self.one(
            "SELECT count(*), count(*) FILTER (WHERE status = 'processed') FROM webhooks_webhooklog "
            "WHERE starts_with(event_id, %s)", [f"evt_{prefix}_"])
        (payments,) = self.one("SELECT count(*) FROM contacts_payment WHERE source = 'stripe' AND "
                               "starts_with(external_id, %s)", [f"pi_{prefix}_"])
        return stored, processed, payments

    def statuses(self, prefix: str) -> str:
        rows = self.conn.execute("SELECT status, count(*) FROM webhooks_webhooklog WHERE starts_with(event_id, %s) "
                                 "GROUP BY status ORDER BY status", [f"evt_{prefix}_"]).fetchall()
        return ", ".join(f"{n} {status}" for status, n in rows) or "none stored"

    def lag(self, prefix: str) -> dict:
        """processed_at - received_at of the rows, in seconds; a row not processed yet counts with
        its wait so far (a lower bound), so a backlog shows instead of vanishing from the figures."""
        row = self.one(
            "SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY lag), max(lag), count(*) "
            "FROM (SELECT extract(epoch FROM coalesce(processed_at, clock_timestamp()) - received_at)::float8 AS lag "
            "FROM webhooks_webhooklog WHERE starts_with(event_id, %s)) AS lags", [f"evt_{prefix}_"])
        (p50, p95, p99), worst, count = row[0] or (None, None, None), row[1], row[2]
        return {"lag_p50": p50, "lag_p95": p95, "lag_p99": p99, "lag_max": worst, "lag_rows": count}

    def sessions(self) -> int:
        """Connections ever opened to the bench database (``pg_stat_database.sessions``)."""
        (count,) = self.one("SELECT sessions FROM pg_stat_database WHERE datname = %s", [database_name(OWNER_URL)])
        return int(count or 0)

    def backends(self) -> list[int]:
        rows = self.conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> %s",
                                 [database_name(OWNER_URL), self.pid]).fetchall()
        return [pid for (pid,) in rows]

    def close(self) -> None:
        self.conn.close()


class CpuMeter:
    """CPU seconds of the web (gunicorn master and workers), the worker (celery and its pool) and
    the bench database's PostgreSQL backends (``pg_stat_activity``, the poller's own left out)
    between ``start()`` and ``stop()``. A backend that appears in between counts whole (it was born
    in the phase); one that ended in between is lost and counted in ``db_lost``."""

    def __init__(self, poller: Poller, web: Server, worker: Worker | None):
        self.poller, self.web, self.worker = poller, web, worker

    def _db(self) -> dict[int, float]:
        tick, times = os.sysconf("SC_CLK_TCK"), {}
        for pid in self.poller.backends():
            if fields := _stat(pid):
                times[pid] = (int(fields[11]) + int(fields[12])) / tick
        return times

    def _cluster(self) -> float:
        return tree_cpu(self.postmaster) if self.postmaster else 0.0

    def start(self) -> None:
        self.web0 = tree_cpu(self.web.proc.pid)
        self.worker0 = tree_cpu(self.worker.proc.pid) if self.worker else 0.0
        self.db0 = self._db()
        # The whole server as well (its postmaster reaps every backend, so backends that ended
        # count too), with the other databases' and the background processes' work in it.
        fields = _stat(self.poller.pid)
        self.postmaster = int(fields[1]) if fields else None
        self.cluster0 = self._cluster()
        self.sessions0 = self.poller.sessions()

    def stop(self, events: int) -> dict:
        web = tree_cpu(self.web.proc.pid) - self.web0
        worker = tree_cpu(self.worker.proc.pid) - self.worker0 if self.worker else 0.0
        db1 = self._db()
        db = sum(t - self.db0.get(pid, 0.0) for pid, t in db1.items())
        per = 1000 / max(events, 1)
        return {"web_cpu_ms": web * per, "worker_cpu_ms": worker * per, "db_cpu_ms": db * per,
                "cluster_cpu_ms": (self._cluster() - self.cluster0) * per if self.postmaster else None,
                "db_lost": len(set(self.db0) - set(db1)), "sessions": self.poller.sessions() - self.sessions0}


def e2e_env(database_url: str = RUNTIME_URL, operator_url: str = OPERATOR_URL) -> dict[str, str]:
    return app_env(**(E2E_ENV | {"DATABASE_URL": database_url, "OPERATOR_DATABASE_URL": operator_url}))


def deliveries(count: int, prefix: str) -> list[tuple[str, bytes]]:
    return [(signature, body.encode()) for signature, body in signed_events(count, prefix)]


def wait_processed(poller: Poller, prefix: str, expected: int, until: float, payments: bool = False) -> tuple[bool, float]:
    """Poll (every 0.2 s) until ``expected`` rows are processed (or are ``Payment`` rows); the
    moment it was seen, or False at ``until``."""
    while True:
        stored, processed, paid = poller.progress(prefix)
        now = time.monotonic()
        if (paid if payments else processed) >= expected:
            return True, now
        if now >= until:
            return False, now
        time.sleep(0.2)


def run_phase(name: str, poller: Poller, web: Server, worker: Worker, path: str, count: int, *,
              rate: float | None, connections: int, timeout: float) -> dict:
    """Send ``count`` fresh deliveries (a burst, or open loop at ``rate``), then wait for every
    stored one to be processed and a ``Payment``; CPU of each part over the whole window."""
    batch = deliveries(count, name)
    meter = CpuMeter(poller, web, worker)
    meter.start()
    began = time.monotonic()
    sent = sender.send(web.port, path, batch, rate=rate, connections=connections, deadline=began + timeout)
    sent_at = time.monotonic()
    stored, processed, paid = poller.progress(name)
    figures = {"name": name, "rate_asked": rate, **{f"send_{k}": v for k, v in sent.items()},
               "waiting_at_end": stored - processed}
    done, finished = wait_processed(poller, name, sent["ok"], max(sent_at, began + timeout) if rate is None
                                    else sent_at + DRAIN_TIMEOUT, payments=True)
    figures |= meter.stop(sent["ok"])
    stored, processed, paid = poller.progress(name)
    figures |= {"complete": done, "seconds": finished - began, "drain_after_send_s": finished - sent_at,
                "stored": stored, "processed": processed, "payments": paid, "statuses": poller.statuses(name),
                "events_per_s": paid / max(finished - began, 1e-6)}
    figures |= poller.lag(name)
    return figures


def end_to_end(tenant_id: str, workdir: Path, minimal_rps: float | None) -> dict:
    """gunicorn with E2E_WEB_WORKERS workers and a real celery worker: the burst, then the steady rates."""
    path = f"/api/webhooks/{tenant_id}/stripe/"
    env = e2e_env()
    web = Server("e2e-web", ["engarde.wsgi"], env, workdir, workers=E2E_WEB_WORKERS)
    worker = Worker(env, workdir, "e2e-worker")
    poller = Poller()
    results: dict = {"phases": [], "minimal_rps": minimal_rps, "web_command": shlex.join(["python", *web.command[1:]]),
                     "worker_command": shlex.join(["python", *worker.command[1:]])}
    try:
        say(f"end to end: gunicorn --workers {E2E_WEB_WORKERS} and celery worker -c {E2E_CONCURRENCY}, "
            f"{', '.join(f'{k}={v}' for k, v in E2E_ENV.items() if k != 'OPERATOR_DATABASE_URL')}")
        web.start(path)
        worker.start()
        # Warm-up: every process's connections and code paths, processed before anything is counted.
        warm = sender.send(web.port, path, deliveries(100, "e2ewarm"), connections=8)
        if not wait_processed(poller, "e2ewarm", warm["ok"], time.monotonic() + DRAIN_TIMEOUT, payments=True)[0]:
            say("warning: the warm-up was not all processed in time")
        if "burst" in PHASES:
            say(f"burst: {BURST} deliveries from {BURST_CONNECTIONS} connections, until each is a Payment")
            results["phases"].append(run_phase("burst", poller, web, worker, path, BURST, rate=None,
                                               connections=BURST_CONNECTIONS, timeout=BURST_TIMEOUT))
        if "steady" in PHASES:
            for rate in STEADY_RATES:
                say(f"steady: {rate}/s open loop for {STEADY_SECONDS} s, then up to {DRAIN_TIMEOUT} s for the backlog")
                results["phases"].append(run_phase(
                    f"steady{rate}", poller, web, worker, path, rate * STEADY_SECONDS, rate=rate,
                    connections=STEADY_CONNECTIONS, timeout=STEADY_SECONDS + 10))
    finally:
        web.stop()
        worker.stop()
        poller.close()
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        for log in (web.log, worker.log):
            if log.exists():
                shutil.copy(log, LOG_DIR / log.name)
    results["server_errors"] = sum(
        1 for log in (web.log, worker.log) if log.exists()
        for line in log.read_text(errors="replace").splitlines() if "Traceback" in line or " ERROR" in line)
    return results


def proxied(url: str, port: int) -> str:
    """``url`` through the counting proxy on ``port``, without TLS so the proxy can read it."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[0] + f"@127.0.0.1:{port}"
    return parts._replace(netloc=netloc, query="sslmode=disable").geturl()


def round_trips(tenant_id: str, workdir: Path) -> dict:
    """Client-to-PostgreSQL round trips per delivery, counted by ``bench/pgcount.py`` between each
    process and PostgreSQL: the minimal receiver, the full receiver, and the worker per event."""
    path = f"/api/webhooks/{tenant_id}/stripe/"
    upstream = (urlsplit(RUNTIME_URL).hostname, urlsplit(RUNTIME_URL).port or 5432)
    out: dict = {"deliveries": RT_DELIVERIES}
    poller = Poller()
    proxies = {name: pgcount.CountingProxy(upstream).start() for name in ("minimal", "web", "worker")}
    servers: list = []
    try:
        runtime = proxied(RUNTIME_URL, proxies["minimal"].port)
        minimal = Server("rt-minimal", ["--chdir", str(ROOT / "bench"), "minimal_receiver:application"],
                         {**app_env(), "MINIMAL_DATABASE_URL": runtime, "MINIMAL_SIGNING_SECRET": SIGNING_SECRET},
                         workdir, workers=E2E_WEB_WORKERS)
        servers.append(minimal)
        minimal.start(path)
        sender.send(minimal.port, path, deliveries(20, "rtminwarm"), connections=4)
        before = proxies["minimal"].snapshot()
        sent = sender.send(minimal.port, path, deliveries(RT_DELIVERIES, "rtmin"), connections=4)
        time.sleep(0.3)
        out["minimal"] = (proxies["minimal"].snapshot()["round_trips"] - before["round_trips"]) / max(sent["ok"], 1)
        minimal.stop()

        env = e2e_env(proxied(RUNTIME_URL, proxies["web"].port), proxied(OPERATOR_URL, proxies["web"].port))
        web = Server("rt-web", ["engarde.wsgi"], env, workdir, workers=E2E_WEB_WORKERS)
        worker = Worker(e2e_env(proxied(RUNTIME_URL, proxies["worker"].port),
                                proxied(OPERATOR_URL, proxies["worker"].port)), workdir, "rt-worker")
        servers += [web, worker]
        web.start(path)
        worker.start()
        warm = sender.send(web.port, path, deliveries(50, "rtwarm"), connections=4)
        wait_processed(poller, "rtwarm", warm["ok"], time.monotonic() + DRAIN_TIMEOUT)
        time.sleep(1)
        web0, worker0 = proxies["web"].snapshot(), proxies["worker"].snapshot()
        sent = sender.send(web.port, path, deliveries(RT_DELIVERIES, "rtfull"), connections=4)
        time.sleep(0.3)
        web1 = proxies["web"].snapshot()
        done, _ = wait_processed(poller, "rtfull", sent["ok"], time.monotonic() + DRAIN_TIMEOUT, payments=True)
        time.sleep(0.5)  # the drain's last statements after the last row
        worker1 = proxies["worker"].snapshot()
        ok = max(sent["ok"], 1)
        out["full"] = (web1["round_trips"] - web0["round_trips"]) / ok
        out["worker"] = (worker1["round_trips"] - worker0["round_trips"]) / ok
        out["worker_complete"] = done
        out["web_connections"] = web1["connections"] - web0["connections"]
        out["worker_connections"] = worker1["connections"] - worker0["connections"]
        out["web_messages"] = {k: v - web0["messages"].get(k, 0) for k, v in web1["messages"].items()}
        out["worker_messages"] = {k: v - worker0["messages"].get(k, 0) for k, v in worker1["messages"].items()}
    finally:
        for server in servers:
            server.stop()
        for proxy in proxies.values():
            proxy.close()
        poller.close()
    return out


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}ms"


def median_round(rounds: list[dict]) -> dict:
    """The round with the median requests/s (a whole round, so its figures belong together)."""
    return sorted(rounds, key=lambda f: f["rps"])[len(rounds) // 2]


def report(rounds: dict[str, list[dict]]) -> None:
    print()
    print(f"machine: {os.cpu_count()} cores, load average before the run {LOAD_BEFORE}; gunicorn {' '.join(GUNICORN_ARGS[:4])}; "
          f"wrk -t{THREADS} -c{CONNECTIONS} -d{DURATION}s; full app extra environment {FULL_ENV}")
    header = (f"{'server':<8} {'round':>5} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'non-2xx':>7} "
              f"{'sockerr':>7} {'app cpu':>8} {'db cpu':>7}  stored")
    print(header)
    for name, results in rounds.items():
        for i, f in enumerate(results, 1):
            sock = f["connect_errors"] + f["read_errors"] + f["write_errors"] + f["timeouts"]
            print(
                f"{name:<8} {i:>5} {f['rps']:>7.0f} {f['p50_us'] / 1000:>7.1f} {f['p99_us'] / 1000:>7.1f} "
                f"{f['max_us'] / 1000:>7.1f} {f['non2xx']:>7} {sock:>7} {f['app_cpu_ms']:>6.2f}ms {_ms(f['db_cpu_ms']):>7}  {f['stored']}"
            )
            if f["wrapped"]:
                print(f"  ({name}: events ran out and were replayed as duplicates {f['wrapped']} time(s); raise BENCH_EVENTS)")
            if f["server_errors"]:
                print(f"  ({name}: {f['server_errors']} error line(s) in its log, var/bench/{name}.log)")
    print("(app cpu / db cpu: CPU time per request of the gunicorn processes / of their PostgreSQL backends)")
    if {"full", "minimal"} <= set(rounds):
        full, minimal = median_round(rounds["full"]), median_round(rounds["minimal"])
        ratio = full["rps"] / minimal["rps"]
        print(f"median round: full {full['rps']:.0f} req/s (p50 {full['p50_us'] / 1000:.1f} ms, p99 {full['p99_us'] / 1000:.1f} ms), "
              f"minimal {minimal['rps']:.0f} req/s (p50 {minimal['p50_us'] / 1000:.1f} ms, p99 {minimal['p99_us'] / 1000:.1f} ms)")
        print(f"ratio full/minimal (issue 11's yardstick, a Django view with no middleware): {ratio:.2f}x")
        if rounds.get("bare"):
            bare = median_round(rounds["bare"])
            print(f"ratio full/bare (the same work as a bare WSGI function, {bare['rps']:.0f} req/s, "
                  f"p99 {bare['p99_us'] / 1000:.1f} ms): {full['rps'] / bare['rps']:.2f}x")
        errors = sum(f["non2xx"] + f["connect_errors"] + f["read_errors"] + f["write_errors"] + f["timeouts"]
                     for results in rounds.values() for f in results)
        aims = [
            ("full >= 0.8x minimal", ratio >= 0.8),
            ("full p99 within 2x the minimal's", full["p99_us"] <= 2 * minimal["p99_us"]),
            ("no error answers", errors == 0),
        ]
        print("aims: " + "; ".join(f"{text}: {'met' if ok else 'MISSED'}" for text, ok in aims))
    for name, results in rounds.items():
        print(f"{name} command: {results[-1]['command']}")


def _s(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def report_e2e(e2e: dict) -> None:
    if rt := e2e.get("roundtrips"):
        print()
        print(f"round trips to PostgreSQL (Sync + simple Query messages, bench/pgcount.py), {rt['deliveries']} deliveries:")
        print(f"  bare receiver {rt['minimal']:.2f} per delivery; full receiver {rt.get('full', float('nan')):.2f} "
              f"per delivery; worker {rt.get('worker', float('nan')):.2f} per event"
              + ("" if rt.get("worker_complete", True) else " (NOT all processed in time: a lower bound)"))
        print(f"  messages, web: {rt.get('web_messages')}; worker: {rt.get('worker_messages')}")
        print(f"  connections opened meanwhile: web {rt.get('web_connections')}, worker {rt.get('worker_connections')}")
    if not e2e.get("phases"):
        return
    print()
    print(f"end to end: gunicorn --workers {E2E_WEB_WORKERS}, celery worker -c {E2E_CONCURRENCY}; the sender (bench/sender.py) "
          "runs on the same cores")
    print(f"{'phase':<10} {'sent':>6} {'send/s':>7} {'ans p50':>8} {'ans p99':>8} {'events/s':>8} {'done':>5} "
          f"{'wait@end':>8} {'drain s':>7} {'lag p50':>7} {'p95':>6} {'p99':>6} {'max':>6} "
          f"{'web ms':>6} {'wrk ms':>6} {'db ms':>6} {'pg all':>6}  rows")
    for f in e2e["phases"]:
        print(f"{f['name']:<10} {f['send_sent']:>6} {f['send_rate']:>7.0f} {_s(f['send_p50_ms'], 1):>8} {_s(f['send_p99_ms'], 1):>8} "
              f"{f['events_per_s']:>8.0f} {'yes' if f['complete'] else 'NO':>5} {f['waiting_at_end']:>8} "
              f"{f['drain_after_send_s']:>7.1f} {_s(f['lag_p50']):>7} {_s(f['lag_p95']):>6} {_s(f['lag_p99']):>6} "
              f"{_s(f['lag_max']):>6} {f['web_cpu_ms']:>6.2f} {f['worker_cpu_ms']:>6.2f} {f['db_cpu_ms']:>6.2f} {_s(f['cluster_cpu_ms']):>6}  "
              f"{f['statuses']}; {f['payments']} payments")
        if f["send_non2xx"] or f["send_errors"]:
            print(f"  ({f['name']}: {f['send_non2xx']} non-2xx answers, {f['send_errors']} connection errors)")
        if f["db_lost"] or f["sessions"]:
            print(f"  ({f['name']}: {f['sessions']} connection(s) opened to the bench database and {f['db_lost']} of its "
                  "backends ended during the phase: db ms misses those, pg all (upper bound) has them)")
        if f["rate_asked"] and f["send_rate"] < 0.95 * f["rate_asked"]:
            print(f"  ({f['name']}: the sender reached {f['send_rate']:.0f}/s of {f['rate_asked']}/s: "
                  f"late p99 {_s(f['send_late_p99_ms'], 0)} ms; the machine could not keep the rate)")
    print("(ans: answer latency from when each delivery was due; events/s: Payments made per second from the first send "
          "to the last Payment; wait@end: stored rows not processed when sending ended; drain s: from then until the "
          "last Payment; lag: processed_at - received_at in s, unprocessed rows counted with their wait so far; "
          "web/wrk/db ms: CPU per event of gunicorn, celery and the bench database's backends, over the whole window; "
          "pg all: the whole PostgreSQL server's process tree, other databases and background writers included)")
    if e2e.get("server_errors"):
        print(f"  ({e2e['server_errors']} error line(s) in var/bench/e2e-web.log / e2e-worker.log)")


def summary(rounds: dict[str, list[dict]], e2e: dict) -> None:
    """The compact table: today's figures beside issue 11's goals, and the exact commands."""
    print()
    print(f"summary (load average at the start {LOAD_BEFORE}; {os.cpu_count()} cores):")
    rows = []
    minimal = median_round(rounds["minimal"]) if rounds.get("minimal") else None
    bare = median_round(rounds["bare"]) if rounds.get("bare") else None
    minimal_rps, bare_rps = minimal and minimal["rps"], bare and bare["rps"]
    if rounds.get("full") and minimal:
        full = median_round(rounds["full"])
        rows.append((f"ingest, {WORKERS} gunicorn workers, {CONNECTIONS} connections",
                     f"{full['rps']:.0f} req/s = {full['rps'] / minimal['rps']:.2f}x minimal ({minimal['rps']:.0f}), "
                     f"p99 {full['p99_us'] / 1000:.0f} ms vs {minimal['p99_us'] / 1000:.0f} ms",
                     ">= 0.8x, p99 within 2x the minimal's"))
        if bare:
            rows.append(("  beside the bare WSGI receiver (no Django)",
                         f"{full['rps'] / bare['rps']:.2f}x bare ({bare['rps']:.0f}), p99 {full['p99_us'] / 1000:.0f} ms "
                         f"vs {bare['p99_us'] / 1000:.0f} ms", ""))
    phases = {f["name"]: f for f in e2e.get("phases", [])}
    if burst := phases.get("burst"):
        ratio = f" = {burst['events_per_s'] / minimal_rps:.2f}x minimal ingest" if minimal_rps else ""
        if bare_rps:
            ratio += f" ({burst['events_per_s'] / bare_rps:.2f}x bare)"
        rows.append((f"end to end, burst of {burst['send_ok']} (gunicorn {E2E_WEB_WORKERS} + celery -c {E2E_CONCURRENCY})",
                     f"{burst['events_per_s']:.0f} events/s{ratio}" + ("" if burst["complete"] else " (NOT all done in time)"),
                     ">= 0.25x"))
    for rate in STEADY_RATES:
        if f := phases.get(f"steady{rate}"):
            kept = "kept up" if f["waiting_at_end"] <= rate and f["drain_after_send_s"] < 2 else \
                f"{f['waiting_at_end']} waiting at the end, {f['drain_after_send_s']:.0f} s to drain"
            rows.append((f"steady {rate}/s for {STEADY_SECONDS} s: received to processed",
                         f"p50 {_s(f['lag_p50'])} s, p95 {_s(f['lag_p95'])} s, p99 {_s(f['lag_p99'])} s; {kept}",
                         "p95 < 1 s"))
    if burst:
        rows.append(("CPU per event (burst): web / worker / PostgreSQL",
                     f"{burst['web_cpu_ms']:.2f} / {burst['worker_cpu_ms']:.2f} / {burst['db_cpu_ms']:.2f} ms "
                     f"(whole PostgreSQL server {_s(burst['cluster_cpu_ms'])} ms)",
                     "worker <= 2.5 ms"))
    if rt := e2e.get("roundtrips"):
        rows.append(("PostgreSQL round trips: web per delivery (bare receiver) / worker per event",
                     f"{rt.get('full', float('nan')):.1f} ({rt['minimal']:.1f}) / {rt.get('worker', float('nan')):.1f}", ""))
    width = max((len(r[0]) for r in rows), default=10)
    for name, value, goal in rows:
        print(f"  {name:<{width}}  {value}" + (f"   [goal {goal}]" if goal else ""))
    print("commands:")
    for name, results in rounds.items():
        print(f"  ingest {name}: {results[-1]['command']}")
    if e2e.get("web_command"):
        print(f"  end to end web: {e2e['web_command'].replace(str(ROOT) + '/', '')}")
        print(f"  end to end worker: {e2e['worker_command']}")
        print(f"  end to end environment: {', '.join(f'{k}={v}' for k, v in E2E_ENV.items())}")
        print(f"  sender: bench/sender.py, burst {BURST_CONNECTIONS} threads closed loop; steady open loop "
              f"{STEADY_CONNECTIONS} threads at {','.join(map(str, STEADY_RATES))}/s for {STEADY_SECONDS} s")
    shown = {k: v for k, v in os.environ.items() if k.startswith("BENCH_")}
    print(f"  run: {' '.join(f'{k}={shlex.quote(v)}' for k, v in sorted(shown.items()))} make bench".replace("  make", " make"))


LOAD_BEFORE = ""
KEYS: dict[str, str] = {}


def main() -> int:
    for url in (OWNER_URL, RUNTIME_URL, REDIS_URL):
        loopback_only(url)
    if shutil.which("wrk") is None:
        raise BenchError("wrk is not installed (make bench installs it: apt-get install -y wrk)")
    require_owner()
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception as exc:
        raise BenchError(f"Redis is not reachable at {REDIS_URL} ({exc.__class__.__name__})") from None
    generate_keys()
    signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(TIME_LIMIT)
    global LOAD_BEFORE
    LOAD_BEFORE = " ".join(f"{x:.2f}" for x in os.getloadavg())
    servers: list[Server] = []
    results: dict[str, list[dict]] = {}
    e2e: dict = {}
    with tempfile.TemporaryDirectory(prefix="engarde-bench-") as tmp:
        workdir = Path(tmp)
        try:
            flush_redis()
            tenant_id = prepare_database()
            say(f"tenant bench = {tenant_id}, Stripe connected; Redis {REDIS_URL.rsplit('/', 1)[-1]} as the broker, no consumer")
            minimal_env = yardstick_env()
            plan = {
                "minimal": (["--chdir", str(ROOT / "bench"), "minimal_django:application"], minimal_env),
                "bare": (["--chdir", str(ROOT / "bench"), "minimal_receiver:application"], minimal_env),
                "full": (["engarde.wsgi"], app_env(**FULL_ENV)),
            }
            url_path = f"/api/webhooks/{tenant_id}/stripe/"
            for round_no in range(1, ROUNDS + 1) if "ingest" in PHASES else ():
                for name, (wsgi, env) in plan.items():
                    if ONLY and name != ONLY:
                        continue
                    server = Server(name, wsgi, env, workdir)
                    servers.append(server)
                    url = f"http://127.0.0.1:{server.port}{url_path}"
                    results.setdefault(name, []).append(measure(name, server, url, workdir, f"{name}{round_no}"))
            if {"roundtrips", "burst", "steady"} & set(PHASES):
                # The ingest runs' rows wait as `received` with nobody to process them: a worker
                # started now would take them first. They are not the end-to-end phases' rows.
                flush_redis()
                owner_sql("DELETE FROM webhooks_webhooklog")
                owner_sql("VACUUM ANALYZE webhooks_webhooklog")
            if "roundtrips" in PHASES:
                say(f"round trips: {RT_DELIVERIES} deliveries each through a counting proxy (bench/pgcount.py)")
                e2e["roundtrips"] = round_trips(tenant_id, workdir)
            if {"burst", "steady"} & set(PHASES):
                minimal = median_round(results["minimal"])["rps"] if results.get("minimal") else None
                e2e |= end_to_end(tenant_id, workdir, minimal)
        finally:
            signal.alarm(0)
            for server in servers:
                server.stop()
            try:
                flush_redis()
            except Exception:
                pass
            if not KEEP_DB:
                try:
                    owner_sql(f"DROP DATABASE IF EXISTS {database_name(OWNER_URL)} WITH (FORCE)", database="postgres")
                except Exception as exc:
                    say(f"could not drop the bench database: {exc}")
    report(results)
    report_e2e(e2e)
    summary(results, e2e)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"[bench] {exc}", file=sys.stderr)
        sys.exit(1)
