"""``make bench``: the full En Garde receiver against the smallest correct receiver, on loopback.

What it does, bounded in time and cleaning up after itself:

1. A fresh PostgreSQL database ``engarde_bench`` (owner: ``postgres``), migrated by the owner;
   ``setup_app_role`` gives the runtime role ``engarde_app`` its grants; a tenant ``bench`` with
   Stripe connected under a known signing secret; the minimal receiver's table.
2. For each server, the same gunicorn settings (``--workers 4 --worker-class sync``), the same
   runtime role, the same database, one kept connection per worker:
   - ``full``: ``engarde.wsgi`` with ``DEBUG=false``, generated ``SECRET_KEY`` and
     ``FIELD_ENCRYPTION_KEYS``, ``WEBHOOK_RATE_LIMIT=0``, ``DB_CONN_MAX_AGE=60``,
     ``CELERY_BROKER_URL`` = local Redis db 12: every delivery really publishes its task (no
     worker consumes them during the run);
   - ``minimal``: ``bench/minimal_receiver.py`` (verify, insert, 200).
   A short warm-up, then fresh signed events (unique ids, timestamps taken just before the run)
   replayed by ``wrk`` (``bench/replay.lua``) with 32 connections for 20 s.
3. Prints requests/s, p50/p99 latency, non-2xx answers, CPU time per request (app and database),
   what each server stored, the ratio full/minimal and the exact ``wrk`` command.

Only 127.0.0.1 is ever targeted. Settings (environment): ``BENCH_DURATION`` (20),
``BENCH_WARMUP`` (3), ``BENCH_CONNECTIONS`` (32), ``BENCH_THREADS`` (2), ``BENCH_WORKERS`` (4),
``BENCH_EVENTS`` (60000), ``BENCH_ROUNDS`` (1: minimal then full; more rounds alternate and the
median round is reported, for a machine that other work shares), ``BENCH_ONLY`` (full or
minimal), ``BENCH_KEEP_DB`` (1 keeps the database), ``BENCH_OWNER_URL``, ``BENCH_DATABASE_URL``,
``BENCH_REDIS_URL``, ``BENCH_EXTRA_ENV`` (``NAME=value,...`` for the full app, e.g.
``DB_CONN_MAX_AGE=0``). The servers' logs of the last run are kept in ``var/bench/``.
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
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "1"))
# The minimal receiver keeps one connection per worker, so the full app keeps its own too
# (Django's CONN_MAX_AGE, a documented setting); BENCH_EXTRA_ENV=DB_CONN_MAX_AGE=0 measures the default.
FULL_ENV = {"DB_CONN_MAX_AGE": "60"} | dict(
    item.split("=", 1) for item in os.environ.get("BENCH_EXTRA_ENV", "").split(",") if "=" in item
)
# The whole run, set-up included, ends by then whatever happens.
TIME_LIMIT = int(os.environ.get("BENCH_TIME_LIMIT", str(240 + ROUNDS * 2 * (DURATION + WARMUP + 15))))

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
    line = next((out for out in result.stdout.splitlines() if out.startswith("BENCH ")), None)
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
        print(f"ratio full/minimal: {ratio:.2f}x")
        errors = sum(f["non2xx"] + f["connect_errors"] + f["read_errors"] + f["write_errors"] + f["timeouts"]
                     for results in rounds.values() for f in results)
        aims = [
            ("full >= 0.8x minimal", ratio >= 0.8),
            ("full p99 < 50 ms", full["p99_us"] < 50_000),
            ("no error answers", errors == 0),
        ]
        print("aims: " + "; ".join(f"{text}: {'met' if ok else 'MISSED'}" for text, ok in aims))
    for name, results in rounds.items():
        print(f"{name} command: {results[-1]['command']}")


LOAD_BEFORE = ""
KEYS: dict[str, str] = {}


def main() -> int:
    for url in (OWNER_URL, RUNTIME_URL, REDIS_URL):
        loopback_only(url)
    if shutil.which("wrk") is None:
        raise BenchError("wrk is not installed (make bench installs it: apt-get install -y wrk)")
    try:
        owner_sql("SELECT 1", database="postgres")
    except Exception as exc:
        raise BenchError(f"PostgreSQL is not reachable as the owner ({exc.__class__.__name__}); see BENCH_OWNER_URL") from None
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception as exc:
        raise BenchError(f"Redis is not reachable at {REDIS_URL} ({exc.__class__.__name__})") from None
    from cryptography.fernet import Fernet

    KEYS["SECRET_KEY"] = hashlib.sha256(os.urandom(32)).hexdigest()
    KEYS["FIELD_ENCRYPTION_KEYS"] = Fernet.generate_key().decode()
    signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(TIME_LIMIT)
    global LOAD_BEFORE
    LOAD_BEFORE = " ".join(f"{x:.2f}" for x in os.getloadavg())
    servers: list[Server] = []
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="engarde-bench-") as tmp:
        workdir = Path(tmp)
        try:
            flush_redis()
            tenant_id = prepare_database()
            say(f"tenant bench = {tenant_id}, Stripe connected; Redis {REDIS_URL.rsplit('/', 1)[-1]} as the broker, no consumer")
            plan = {
                "minimal": (["--chdir", str(ROOT / "bench"), "minimal_receiver:application"],
                            {**app_env(), "MINIMAL_DATABASE_URL": RUNTIME_URL, "MINIMAL_SIGNING_SECRET": SIGNING_SECRET}),
                "full": (["engarde.wsgi"], app_env(**FULL_ENV)),
            }
            url_path = f"/api/webhooks/{tenant_id}/stripe/"
            for round_no in range(1, ROUNDS + 1):
                for name, (wsgi, env) in plan.items():
                    if ONLY and name != ONLY:
                        continue
                    server = Server(name, wsgi, env, workdir)
                    servers.append(server)
                    url = f"http://127.0.0.1:{server.port}{url_path}"
                    results.setdefault(name, []).append(measure(name, server, url, workdir, f"{name}{round_no}"))
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
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"[bench] {exc}", file=sys.stderr)
        sys.exit(1)
