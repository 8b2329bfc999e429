"""``setup_app_role`` as a deployment runs it: migrations as a plain owner role, the command as a
superuser (or a role with CREATEROLE), in real ``manage.py`` processes against a database of their
own, with real logins afterwards.

The database here is made the way README's deploy step 1 says: an owner role (not superuser, no
CREATEROLE) owns it and runs the migrations (``django_migrations`` and a table stand in for them);
``setup_app_role`` then runs, and later the owner creates another table, as the next release's
migration does. The runtime role must be able to use that table without anyone running the
command again; the owner alone (who can create no roles) is refused in one line.
"""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from psycopg import sql

from conftest import requires_postgres

pytestmark = requires_postgres

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def server():
    db = settings.DATABASES["owner"]
    return {"host": db.get("HOST") or "127.0.0.1", "port": str(db.get("PORT") or 5432)}


def url(user: str, password: str | None, dbname: str) -> str:
    where = server()
    secret = f":{password}" if password else ""
    return f"postgres://{user}{secret}@{where['host']}:{where['port']}/{dbname}"


def login(user: str, password: str | None, dbname: str) -> psycopg.Connection:
    return psycopg.connect(**server(), dbname=dbname, user=user, password=password, autocommit=True)


class ProbeDatabase:
    """A database owned by a plain owner role; the superuser is the test run's owner alias."""

    def __init__(self):
        tag = uuid.uuid4().hex[:10]
        self.name = f"engarde_probe_{tag}"
        self.owner, self.owner_password = f"engarde_own_{tag}", f"own-pw-{tag}"
        self.runtime, self.runtime_password = f"engarde_rt_{tag}", f"rt-pw-{tag}"
        self.operator, self.operator_password = f"engarde_op_{tag}", f"op-pw-{tag}"
        admin = settings.DATABASES["owner"]
        self.superuser, self.superuser_password = admin["USER"], admin.get("PASSWORD") or None

    def superuser_session(self, dbname=None) -> psycopg.Connection:
        return login(self.superuser, self.superuser_password, dbname or "postgres")

    def as_owner(self) -> psycopg.Connection:
        return login(self.owner, self.owner_password, self.name)

    def as_runtime(self) -> psycopg.Connection:
        return login(self.runtime, self.runtime_password, self.name)

    def create(self, owner_rights: str = "") -> None:
        with self.superuser_session() as admin:
            (is_superuser,) = admin.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
            assert is_superuser, "these tests need MIGRATE_DATABASE_URL to be a superuser (make test and .ci/run are)"
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER {} PASSWORD {}").format(
                sql.Identifier(self.owner), sql.SQL(owner_rights or "NOCREATEROLE"), sql.Literal(self.owner_password)))
            admin.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(self.name), sql.Identifier(self.owner)))
        with self.superuser_session(self.name) as admin:  # PostgreSQL < 15: public belonged to everyone
            admin.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(sql.Identifier(self.owner)))
            admin.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        with self.as_owner() as owner:  # the first migrate, as the owner
            owner.execute("CREATE TABLE django_migrations (id bigserial PRIMARY KEY, app text NOT NULL)")
            owner.execute("CREATE TABLE first_release (id bigserial PRIMARY KEY, name text NOT NULL)")

    def setup_app_role(self, connect_as: str, password: str | None, *extra: str) -> subprocess.CompletedProcess:
        env = {key: value for key, value in os.environ.items() if key != "OPERATOR_DATABASE_URL"}
        env.update(
            DEBUG="true", DJANGO_SETTINGS_MODULE="engarde.settings",
            MIGRATE_DATABASE_URL=url(connect_as, password, self.name),
            DATABASE_URL=url(self.runtime, self.runtime_password, self.name),
        )
        return subprocess.run(
            [sys.executable, "manage.py", "setup_app_role", self.runtime, "--password", self.runtime_password, *extra],
            cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120,
        )

    def drop(self) -> None:
        with self.superuser_session() as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [self.name])
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(self.name)))
            for role in (self.runtime, self.operator, self.owner):
                admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@pytest.fixture
def probe():
    database = ProbeDatabase()
    try:
        yield database
    finally:
        database.drop()


def assert_usable_by_the_runtime_role(probe: ProbeDatabase, table: str) -> None:
    table_name = sql.Identifier(table)
    with probe.as_runtime() as runtime:
        inserted = runtime.execute(
            sql.SQL("INSERT INTO {} (name) VALUES ('pat') RETURNING id").format(table_name)).fetchone()
        assert inserted is not None  # the sequence is usable too
        runtime.execute(sql.SQL("UPDATE {} SET name = 'sam' WHERE id = %s").format(table_name), inserted)
        assert runtime.execute(sql.SQL("SELECT name FROM {}").format(table_name)).fetchall() == [("sam",)]
        runtime.execute(sql.SQL("DELETE FROM {}").format(table_name))


def assert_no_ddl_and_no_migration_writes(probe: ProbeDatabase) -> None:
    with probe.as_runtime() as runtime:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            runtime.execute("CREATE TABLE runtime_made (id int)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            runtime.execute("INSERT INTO django_migrations (app) VALUES ('x')")
        assert runtime.execute("SELECT count(*) FROM django_migrations").fetchone() == (0,)


def test_as_a_superuser_the_tables_of_later_migrations_are_granted_to_both_roles(probe):
    probe.create()
    done = probe.setup_app_role(probe.superuser, probe.superuser_password,
                                "--operator", probe.operator, "--operator-password", probe.operator_password)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"created role {probe.runtime} on database {probe.name}",
                                        f"created operator role {probe.operator} on database {probe.name}"]

    with probe.as_owner() as owner:  # the next release's migration, run as the owner
        owner.execute("CREATE TABLE later_release (id bigserial PRIMARY KEY, name text NOT NULL)")

    assert_usable_by_the_runtime_role(probe, "first_release")
    assert_usable_by_the_runtime_role(probe, "later_release")
    assert_no_ddl_and_no_migration_writes(probe)
    with login(probe.operator, probe.operator_password, probe.name) as operator:
        operator.execute("INSERT INTO later_release (name) VALUES ('op')")
        assert operator.execute("SELECT count(*) FROM later_release").fetchone() == (1,)
    with probe.superuser_session(probe.name) as admin:  # the runtime role is neither owner nor operator
        assert admin.execute("SELECT pg_has_role(%s, %s, 'MEMBER'), pg_has_role(%s, %s, 'MEMBER')",
                             [probe.runtime, probe.owner, probe.runtime, probe.operator]).fetchone() == (False, False)


def test_an_owner_with_createrole_may_run_it_and_later_tables_are_granted(probe):
    probe.create(owner_rights="CREATEROLE")
    done = probe.setup_app_role(probe.owner, probe.owner_password)
    assert done.returncode == 0, done.stderr
    with probe.as_owner() as owner:
        owner.execute("CREATE TABLE later_release (id bigserial PRIMARY KEY, name text NOT NULL)")
    assert_usable_by_the_runtime_role(probe, "later_release")
    assert_no_ddl_and_no_migration_writes(probe)


def test_a_plain_owner_is_refused_in_one_line_saying_it_needs_a_superuser(probe):
    probe.create()
    refused = probe.setup_app_role(probe.owner, probe.owner_password)
    assert refused.returncode != 0, refused.stdout
    assert "Traceback" not in refused.stderr, refused.stderr
    lines = refused.stderr.splitlines()
    assert len(lines) == 1, refused.stderr
    assert "superuser" in lines[0] and "CREATEROLE" in lines[0] and probe.owner in lines[0], lines[0]
    assert probe.runtime_password not in refused.stderr + refused.stdout
    with probe.superuser_session() as admin:
        assert admin.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", [probe.runtime]).fetchone() == (0,)


def test_before_the_first_migrate_it_says_to_migrate_first(probe):
    probe.create()
    with probe.as_owner() as owner:
        owner.execute("DROP TABLE django_migrations")
    refused = probe.setup_app_role(probe.superuser, probe.superuser_password)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr, refused.stderr
    assert len(refused.stderr.splitlines()) == 1 and "migrate" in refused.stderr, refused.stderr
