"""Scale-out is a configuration change: the app behind pgbouncer in transaction pooling mode.

In that mode consecutive transactions of one Django connection may run on different server
connections, and one server connection serves many clients in turn. The tenant is only ever set
transaction-locally (``tenants.context``), so nothing of one tenant's context can reach another's
transaction. This runs a real pgbouncer (Debian's package; the test is skipped, saying so, where it
is not installed) with a pool of two server connections in front of the test database, and a child
process (``tests/bouncer_child.py``) whose every connection, runtime and operator, goes through it:
many threads deliver to two tenants at once, and every delivery's drain runs in its thread. Each
tenant must then see exactly its own rows, payments and contacts, all processed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import socket
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection, connections

from conftest import requires_postgres
from tenants.models import Tenant
from tests.test_reliability import child_env, free_port
from webhooks.testing import STRIPE_SECRETS, connect

ROOT = Path(__file__).resolve().parent.parent
PGBOUNCER = shutil.which("pgbouncer") or next(
    (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.path.exists(p)), None
)
POOL_SIZE = 2

pytestmark = [
    requires_postgres,
    pytest.mark.skipif(PGBOUNCER is None, reason="pgbouncer is not installed (apt-get install pgbouncer)"),
    pytest.mark.django_db(transaction=True, databases=["default", "owner"]),
]


def _as_unprivileged() -> list[str]:
    """pgbouncer refuses to run as root: as root, run it as the postgres system user."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


@pytest.fixture
def bouncer():
    db = connection.settings_dict
    users = {db["USER"]: db.get("PASSWORD") or ""}
    if "operator" in settings.DATABASES:
        operator = connections["operator"].settings_dict
        users[operator["USER"]] = operator.get("PASSWORD") or ""
    port = free_port()
    # Its own folder outside pytest's (which only root may enter), for the postgres user.
    folder = Path(tempfile.mkdtemp(prefix="engarde-pgbouncer-"))
    (folder / "users.txt").write_text("".join(f'"{user}" "{password}"\n' for user, password in users.items()))
    (folder / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"{db['NAME']} = host={db.get('HOST') or '127.0.0.1'} port={db.get('PORT') or 5432} dbname={db['NAME']}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {folder / 'users.txt'}\n"
        f"pool_mode = transaction\ndefault_pool_size = {POOL_SIZE}\nmax_client_conn = 200\n"
        "ignore_startup_parameters = extra_float_digits,options\n"
        f"logfile = {folder / 'pgbouncer.log'}\n"
    )
    if _as_unprivileged():
        shutil.chown(folder, "postgres")
        for path in folder.iterdir():
            shutil.chown(path, "postgres")
    proc = subprocess.Popen([*_as_unprivileged(), PGBOUNCER, str(folder / "pgbouncer.ini")],
                            stdout=open(folder / "stdout.log", "wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                log = "".join(p.read_text() for p in (folder / "pgbouncer.log", folder / "stdout.log") if p.exists())
                proc.kill()
                pytest.fail(f"pgbouncer did not start: {log[-2000:]}")
            time.sleep(0.1)
    try:
        yield port, db["NAME"], users
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)
        connections["owner"].close()


def _url(user: str, password: str, port: int, name: str) -> str:
    return f"postgres://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{port}/{name}"


def test_two_tenants_through_a_transaction_pool_each_see_only_their_own(bouncer, tmp_path):
    port, name, users = bouncer
    tenants = [Tenant.objects.create(slug=slug, name=slug.title()) for slug in ("acme", "globex")]
    for tenant in tenants:
        connect(tenant, "stripe", STRIPE_SECRETS[tenant.slug])
    runtime = connection.settings_dict["USER"]
    env = child_env(
        tmp_path, DATABASE_URL=_url(runtime, users[runtime], port, name), DB_DISABLE_SERVER_SIDE_CURSORS="true",
        DB_CONN_MAX_AGE="60", WEBHOOK_RATE_LIMIT="0", ALLOWED_HOSTS="testserver",
    )
    if "operator" in settings.DATABASES:
        operator = connections["operator"].settings_dict["USER"]
        env["OPERATOR_DATABASE_URL"] = _url(operator, users[operator], port, name)
    per_tenant, threads = 40, 12  # 12 client connections (24 with the operator's) on 2 server connections
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "bouncer_child.py"),
         json.dumps({"slugs": ["acme", "globex"], "per_tenant": per_tenant, "threads": threads})],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["count"] == 2 * per_tenant and all(answer[0] == 200 and '"received"' in answer[1] for answer in report["answers"]), report
    for slug in ("acme", "globex"):
        seen = report["seen"][slug]
        assert seen == {"statuses": ["processed"], "rows": per_tenant, "payments": per_tenant,
                        "emails": [f"{slug}.example"]}, (slug, seen)
