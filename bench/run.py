"""``make bench``: the full En Garde receiver against the smallest correct receiver, on loopback.

What it does, bounded in time and cleaning up after itself:

1. A fresh PostgreSQL database ``engarde_bench`` (owner: ``postgres``), migrated by the owner;
   ``setup_app_role`` gives the runtime role ``engarde_app`` its grants; a tenant ``bench`` with
   Stripe connected under a known signing secret; the minimal receiver's table.
2. For each server, the same gunicorn settings (``--workers 4 --worker-class sync``), the same
   runtime role, the same database:
   - ``full``: ``engarde.wsgi`` with ``DEBUG=false``, generated ``SECRET_KEY`` and
     ``FIELD_ENCRYPTION_KEYS``, ``WEBHOOK_RATE_LIMIT=0``, ``CELERY_BROKER_URL`` = local Redis db 12:
     every delivery really publishes its task (no worker consumes them during the run);
   - ``minimal``: ``bench/minimal_receiver.py`` (verify, insert, 200).
   A short warm-up, then fresh signed events (unique ids, timestamps taken just before the run)
   replayed by ``wrk`` (``bench/replay.lua``) with 32 connections for 20 s.
3. Prints requests/s, p50/p99 latency, non-2xx answers, what each server stored, the ratio
   full/minimal and the exact ``wrk`` command.

Only 127.0.0.1 is ever targeted. Settings (environment): ``BENCH_DURATION`` (20),
``BENCH_WARMUP`` (3), ``BENCH_CONNECTIONS`` (32), ``BENCH_THREADS`` (2), ``BENCH_WORKERS`` (4),
``BENCH_EVENTS`` (60000), ``BENCH_ONLY`` (full or minimal), ``BENCH_KEEP_DB`` (1 keeps the
database), ``BENCH_OWNER_URL``, ``BENCH_DATABASE_URL``, ``BENCH_REDIS_URL``, ``BENCH_EXTRA_ENV``
(``NAME=value,...`` added to the full app's environment, e.g. ``DB_CONN_MAX_AGE=0``).
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

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
LOG_DIR = ROOT / "var" / "bench"  # the servers' logs of the last run (var/ is git-ignored)

DURATION = int(os.environ.get("BENCH_DURATION", "20"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "3"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "4"))
EVENTS = int(os.environ.get("BENCH_EVENTS", "60000"))
ONLY = os.environ.get("BENCH_ONLY", "")
KEEP_DB = os.environ.get("BENCH_KEEP_DB", "") == "1"
OWNER_URL = os.environ.get("BENCH_OWNER_URL", "postgres://postgres@127.0.0.1:5432/engarde_bench")
RUNTIME_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://engarde_app:engarde_app@127.0.0.1:5432/engarde_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
EXTRA_ENV = dict(
    item.split("=", 1) for item in os.environ.get("BENCH_EXTRA_ENV", "").split(",") if "=" in item
)
# The whole run, set-up included, ends by then whatever happens.
TIME_LIMIT = int(os.environ.get("BENCH_TIME_LIMIT", str(240 + 2 * (DURATION + WARMUP))))

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
        WEBHOOK_RATE_LIMIT="0", PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


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
    manage("setup_app_role", runtime.username, "--password", runtime.password or "bench")
    tenant_id = manage("onboard_tenant", "bench", "--name", "Bench Studio").strip().splitlines()[-1]
    manage("connect_integration", "bench", "stripe", "--webhook-secret", "-", stdin=SIGNING_SECRET + "\n")
    owner_sql(
        "CREATE TABLE bench_minimal_event (event_id text PRIMARY KEY, body bytea NOT NULL, "
        "received_at timestamptz NOT NULL DEFAULT now())"
    )
    owner_sql(f"GRANT SELECT, INSERT ON bench_minimal_event TO {runtime.username}")
    return tenant_id


def flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


def queued_messages() -> int:
    import redis

    return redis.Redis.from_url(REDIS_URL).llen("webhooks")


def write_events(path: Path, count: int, prefix: str) -> None:
    """``count`` unique ``payment_intent.succeeded`` deliveries, signed now."""
    now = int(time.time())
    secret = SIGNING_SECRET.encode()
    with open(path, "w") as out:
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
            out.write(f"t={now},v1={signature}\t{body}\n")


class Server:
    def __init__(self, name: str, wsgi: list[str], env: dict[str, str], workdir: Path):
        self.name, self.port = name, free_port()
        self.log = workdir / f"{name}.log"
        self.command = [PY, "-m", "gunicorn", *wsgi, "--bind", f"127.0.0.1:{self.port}", *GUNICORN_ARGS]
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
    line = next((l for l in result.stdout.splitlines() if l.startswith("BENCH ")), None)
    if result.returncode or line is None:
        raise BenchError(f"wrk failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    figures = {k: int(v) for k, v in (item.split("=") for item in line.split()[1:])}
    figures["rps"] = figures["requests"] / (figures["duration_us"] / 1e6)
    shown = f"BENCH_EVENTS_FILE=<events> BENCH_WRK_THREADS={THREADS} " + shlex.join(command).replace(str(ROOT) + "/", "")
    return figures, shown


def stored(name: str, prefix: str) -> str:
    if name == "minimal":
        (count,), = owner_sql("SELECT count(*) FROM bench_minimal_event WHERE starts_with(event_id, %s)", params=[f"evt_{prefix}_"])
        return f"{count} rows"
    rows = owner_sql(
        "SELECT status, count(*) FROM webhooks_webhooklog WHERE starts_with(event_id, %s) GROUP BY status ORDER BY status",
        params=[f"evt_{prefix}_"],
    )
    return ", ".join(f"{n} {status}" for status, n in rows) + f"; {queued_messages()} tasks queued in Redis"


def measure(name: str, server: Server, url: str, workdir: Path) -> dict:
    say(f"{name}: gunicorn {' '.join(server.command[3:4] + GUNICORN_ARGS)} on 127.0.0.1:{server.port}")
    server.start(urlsplit(url).path)
    try:
        if WARMUP:
            warm = workdir / f"{name}-warmup.events"
            write_events(warm, min(EVENTS, 20000), f"{name}warm")
            run_wrk(url, warm, WARMUP)
            time.sleep(1)  # let the warm-up's last requests finish before counting starts
        flush_redis()
        events = workdir / f"{name}.events"
        write_events(events, EVENTS, name)  # fresh timestamps, just before the run
        say(f"{name}: {EVENTS} signed events written; wrk {CONNECTIONS} connections for {DURATION} s")
        figures, command = run_wrk(url, events, DURATION)
    finally:
        server.stop()
    figures["stored"] = stored(name, name)
    figures["command"] = command
    errors = [line for line in server.log.read_text(errors="replace").splitlines() if "Traceback" in line or " ERROR " in line]
    figures["server_errors"] = len(errors)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copy(server.log, LOG_DIR / server.log.name)
    return figures


def report(results: dict[str, dict]) -> None:
    print()
    print(f"machine: {os.cpu_count()} cores; gunicorn {' '.join(GUNICORN_ARGS[:4])}; wrk -t{THREADS} -c{CONNECTIONS} -d{DURATION}s")
    print(f"{'server':<9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'non-2xx':>8} {'sock err':>8}  stored")
    for name, f in results.items():
        sock = f["connect_errors"] + f["read_errors"] + f["write_errors"] + f["timeouts"]
        print(
            f"{name:<9} {f['rps']:>8.0f} {f['p50_us'] / 1000:>8.2f} {f['p99_us'] / 1000:>8.2f} {f['max_us'] / 1000:>8.1f} "
            f"{f['non2xx']:>8} {sock:>8}  {f['stored']}"
        )
        if f["wrapped"]:
            print(f"  ({name}: the events ran out and were replayed as duplicates {f['wrapped']} time(s); raise BENCH_EVENTS)")
        if f["server_errors"]:
            print(f"  ({name}: {f['server_errors']} error line(s) in the server log)")
    if {"full", "minimal"} <= set(results):
        full, minimal = results["full"], results["minimal"]
        ratio = full["rps"] / minimal["rps"]
        print(f"ratio full/minimal: {ratio:.2f}x")
        aims = [
            ("full >= 0.8x minimal", ratio >= 0.8),
            ("full p99 < 50 ms", full["p99_us"] < 50_000),
            ("no error answers", full["non2xx"] == 0 and minimal["non2xx"] == 0),
        ]
        print("aims: " + "; ".join(f"{text}: {'met' if ok else 'MISSED'}" for text, ok in aims))
    for name, f in results.items():
        print(f"{name} command: {f['command']}")


KEYS: dict[str, str] = {}


def main() -> int:
    for url in (OWNER_URL, RUNTIME_URL, REDIS_URL):
        loopback_only(url)
    if shutil.which("wrk") is None:
        raise BenchError("wrk is not installed (make bench installs it: apt-get install -y wrk)")
    from cryptography.fernet import Fernet

    KEYS["SECRET_KEY"] = hashlib.sha256(os.urandom(32)).hexdigest()
    KEYS["FIELD_ENCRYPTION_KEYS"] = Fernet.generate_key().decode()
    signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(TIME_LIMIT)
    servers: list[Server] = []
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="engarde-bench-") as tmp:
        workdir = Path(tmp)
        try:
            flush_redis()
            tenant_id = prepare_database()
            say(f"tenant bench = {tenant_id}, Stripe connected; Redis {REDIS_URL.rsplit('/', 1)[-1]} as the broker, no consumer")
            plan = {
                "minimal": (["--chdir", str(ROOT / "bench"), "minimal_receiver:application"],
                            {**app_env(), "MINIMAL_DATABASE_URL": RUNTIME_URL, "MINIMAL_SIGNING_SECRET": SIGNING_SECRET}),
                "full": (["engarde.wsgi"], app_env(**EXTRA_ENV)),
            }
            url_path = f"/api/webhooks/{tenant_id}/stripe/"
            for name, (wsgi, env) in plan.items():
                if ONLY and name != ONLY:
                    continue
                server = Server(name, wsgi, env, workdir)
                servers.append(server)
                results[name] = measure(name, server, f"http://127.0.0.1:{server.port}{url_path}", workdir)
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
    if EXTRA_ENV:
        print(f"full app extra environment: {EXTRA_ENV}")
    report(results)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"[bench] {exc}", file=sys.stderr)
        sys.exit(1)
