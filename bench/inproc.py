"""Signed deliveries through a WSGI application in this one process, with no gunicorn and no wrk:
CPU per delivery, and under callgrind instructions per delivery, for the full app and for issue
11's yardstick side by side (README, "Issue 11's figures in one run"). Instructions do not depend
on what else the machine is doing, so two versions of the code compare on a shared machine where
requests per second do not.

    python bench/inproc.py prepare                       # the bench database, as make bench sets it up
    python bench/inproc.py cpu --app full -n 3000        # CPU per delivery (and minimal)
    python bench/inproc.py instructions --app full -n 200

``prepare`` makes ``engarde_bench`` afresh (``bench/run.py``'s set-up: migrations, both roles, a
tenant with Stripe connected under a generated signing secret, no history) and keeps what the
other two need in ``var/bench/inproc.json`` (git-ignored: the generated keys and the bench
tenant's generated secret, nothing of anyone else's). ``cpu`` warms up with 200 deliveries, then
times ``-n`` more (``time.process_time``; the database's own CPU is not in it).
``instructions`` runs ``cpu`` under ``valgrind --tool=callgrind`` with 100 and with 100 + ``-n``
deliveries and prints the difference over ``-n``: start-up and warm-up cancel out. For the full app
it sets ``WEBHOOK_WAKE_COALESCE_MS=600000``: under valgrind a delivery takes fifty times as long,
so each 50 ms window would hold one or two of them and the wake-ups a busy receiver shares
between many would be counted on few.

Every delivery is a fresh ``payment_intent.succeeded`` (each stored as one row, left ``received``:
nothing processes them). Same settings and environment as ``make bench`` (``BENCH_*``)."""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run as bench  # noqa: E402  (bench/, run as a script)

STATE = bench.ROOT / "var" / "bench" / "inproc.json"
WARMUP = 200
APPS = ("full", "minimal")
STATE_KEYS = ("SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "tenant", "secret")


def prepare() -> None:
    bench.generate_keys()
    bench.HISTORY = 0
    tenant = bench.prepare_database()
    STATE.parent.mkdir(parents=True, exist_ok=True)
    STATE.write_text(json.dumps({**bench.KEYS, "tenant": tenant, "secret": bench.SIGNING_SECRET}))
    STATE.chmod(0o600)
    print(f"prepared: tenant {tenant}; state in {STATE.relative_to(bench.ROOT)}")


def _load_state() -> dict:
    try:
        state = json.loads(STATE.read_text())
    except (OSError, ValueError):
        state = None
    if not isinstance(state, dict) or not all(isinstance(state.get(k), str) for k in STATE_KEYS):
        raise bench.BenchError(f"no usable {STATE.relative_to(bench.ROOT)}: run `python bench/inproc.py prepare` first")
    return state


def _application(app: str, state: dict):
    bench.KEYS.update({k: state[k] for k in ("SECRET_KEY", "FIELD_ENCRYPTION_KEYS")})
    bench.SIGNING_SECRET = state["secret"]
    if app == "full":
        os.environ.update(bench.app_env(**bench.FULL_ENV))
        sys.path.insert(0, str(bench.ROOT))
        from engarde.wsgi import application
    else:
        os.environ.update(bench.yardstick_env())
        from minimal_django import application
    return application


def _environ(path: str, signature: str, body: str) -> dict:
    raw = body.encode()
    return {
        "REQUEST_METHOD": "POST", "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "HTTP_HOST": "127.0.0.1:8000",
        "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(raw)), "HTTP_STRIPE_SIGNATURE": signature,
        "HTTP_USER_AGENT": "Stripe/1.0 (+https://stripe.com/docs/webhooks)", "HTTP_ACCEPT": "*/*; q=0.5, application/xml",
        "wsgi.input": io.BytesIO(raw), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
        "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False, "wsgi.version": (1, 0),
    }


def cpu(app: str, count: int) -> None:
    state = _load_state()
    application = _application(app, state)
    path = f"/api/webhooks/{state['tenant']}/stripe/"
    environs = [_environ(path, signature, body)
                for signature, body in bench.signed_events(WARMUP + count, f"ip{app[0]}{os.getpid()}")]
    statuses: dict[str, int] = {}

    def start_response(status, headers, exc_info=None):
        statuses[status] = statuses.get(status, 0) + 1

    def deliver(environ):
        answer = application(environ, start_response)
        b"".join(answer)
        answer.close()

    for environ in environs[:WARMUP]:
        deliver(environ)
    wall, began = time.perf_counter(), time.process_time()
    for environ in environs[WARMUP:]:
        deliver(environ)
    spent, wall = time.process_time() - began, time.perf_counter() - wall
    if set(statuses) != {"200 OK"}:
        raise bench.BenchError(f"{app}: not every delivery was stored: {statuses}")
    print(f"{app}: {count} deliveries, CPU {1000 * spent / count:.3f} ms, wall {1000 * wall / count:.3f} ms per delivery")


def _collected(app: str, count: int) -> int:
    env = {**os.environ}
    if app == "full":
        env["WEBHOOK_WAKE_COALESCE_MS"] = "600000"
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__,
               "cpu", "--app", app, "-n", str(count)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3600)
    found = re.search(r"Collected\s*:\s*(\d+)", result.stderr)
    if result.returncode or not found:
        lines = result.stderr.strip().splitlines() or ["no output"]
        # The child's own refusal when it gave one (valgrind's summary follows it), else the last line.
        reason = next((line for line in lines if line.startswith("bench/inproc.py: ")), lines[-1])
        raise bench.BenchError(f"callgrind run of {app} failed: {reason.removeprefix('bench/inproc.py: ')}")
    return int(found.group(1))


def instructions(app: str, count: int) -> None:
    if shutil.which("valgrind") is None:
        raise bench.BenchError("valgrind is not installed (apt-get install -y valgrind)")
    _load_state()
    base, more = _collected(app, 100), _collected(app, 100 + count)
    print(f"{app}: {(more - base) // count:,} instructions per delivery "
          f"(callgrind, {100 + count} against 100 deliveries)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/inproc.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("prepare", "cpu", "instructions"))
    parser.add_argument("--app", choices=APPS, default="full")
    parser.add_argument("-n", type=int, default=None, help="deliveries counted (cpu: 3000, instructions: 200)")
    args = parser.parse_args(argv)
    if args.n is not None and args.n < 1:
        parser.error("-n must be at least 1")
    try:
        for url in (bench.OWNER_URL, bench.RUNTIME_URL):
            bench.loopback_only(url)
        if args.what != "prepare":
            _load_state()  # before anything is asked of PostgreSQL: the first thing to fix
        bench.require_owner()
        if args.what == "prepare":
            prepare()
        elif args.what == "cpu":
            cpu(args.app, args.n or 3000)
        else:
            instructions(args.app, args.n or 200)
    except bench.BenchError as exc:
        print(f"bench/inproc.py: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
