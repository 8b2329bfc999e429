"""Operators are a separate PostgreSQL role (issue 7.16), checked with real connections.

The runtime role that serves webhooks and tenant users cannot see across tenants whatever SQL it
runs: no policy reads a setting it could flip (``app.operator`` is gone) and it cannot take the
operator role. ``operator_context`` sends its queries to the operator alias on its own, in a
transaction opened there; the operator role (BYPASSRLS) sees every tenant.
"""

import io
import uuid

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, connection, connections, router

from conftest import requires_postgres
from contacts.models import Contact
from tenants.context import operator_context, tenant_context
from tenants.models import Tenant

pytestmark = requires_postgres

requires_operator_alias = pytest.mark.skipif(
    "operator" not in settings.DATABASES,
    reason="needs OPERATOR_DATABASE_URL (make test and .ci/run set it)",
)


def sql(query, params=None, using=DEFAULT_DB_ALIAS):
    with connections[using].cursor() as cursor:
        cursor.execute(query, params or [])
        return cursor.fetchall()


def test_no_policy_reads_a_setting_the_runtime_role_could_set(db):
    policies = sql(
        "SELECT polrelid::regclass::text, coalesce(pg_get_expr(polqual, polrelid), ''),"
        " coalesce(pg_get_expr(polwithcheck, polrelid), '') FROM pg_policy"
    )
    assert policies
    for table, using, check in policies:
        assert "app.operator" not in using + check, f"{table}: {using} / {check}"


def test_the_runtime_role_cannot_flip_a_setting_to_see_other_tenants(world):
    with tenant_context(world.acme):
        assert sql("SELECT set_config('app.operator', 'on', true)") == [("on",)]
        assert sql("SELECT DISTINCT tenant_id FROM contacts_contact") == [(world.acme.pk,)]
    sql("SELECT set_config('app.operator', 'on', false)")
    try:
        assert sql("SELECT count(*) FROM contacts_contact") == [(0,)]
    finally:
        sql("SELECT set_config('app.operator', '', false)")


@pytest.fixture
def committed_world(transactional_db):
    """Two tenants with a contact each, committed, so that other connections see them."""
    acme = Tenant.objects.create(slug="acme-op", name="Acme")
    globex = Tenant.objects.create(slug="globex-op", name="Globex")
    for tenant in (acme, globex):
        with tenant_context(tenant):
            Contact.objects.create(email="pat@example.com", source="zoom")
    yield acme, globex
    connections["owner"].close()


@pytest.fixture
def probe_role():
    """A runtime role made by setup_app_role, with no test-harness grant: what production has."""
    name = f"engarde_probe_{uuid.uuid4().hex[:10]}"
    call_command("setup_app_role", name, password="probe-pw", database="owner", stdout=io.StringIO())
    yield name
    with connections["owner"].cursor() as cursor:
        cursor.execute(f'DROP OWNED BY "{name}"')
        cursor.execute(f'DROP ROLE "{name}"')


@pytest.mark.django_db(transaction=True, databases=["default", "owner"])
def test_a_runtime_login_sees_one_tenant_at_most_whatever_sql_it_runs(committed_world, probe_role):
    acme, _ = committed_world
    db = connections["owner"].settings_dict
    with psycopg.connect(
        host=db.get("HOST") or "127.0.0.1", port=db.get("PORT") or 5432, dbname=db["NAME"],
        user=probe_role, password="probe-pw",
    ) as probe:
        assert probe.execute("SELECT count(*) FROM contacts_contact").fetchone() == (0,)
        probe.execute("SELECT set_config('app.operator', 'on', false)")
        assert probe.execute("SELECT count(*) FROM contacts_contact").fetchone() == (0,)
        probe.execute("SELECT set_config('app.tenant_id', %s, false)", [str(acme.pk)])
        assert probe.execute("SELECT count(*) FROM contacts_contact").fetchone() == (1,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            probe.execute(psycopg.sql.SQL("SET ROLE {}").format(psycopg.sql.Identifier(operator_role())))
        probe.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            probe.execute("ALTER TABLE contacts_contact DISABLE ROW LEVEL SECURITY")


def operator_role():
    from conftest import OPERATOR_ROLE

    return OPERATOR_ROLE


@requires_operator_alias
@pytest.mark.django_db(transaction=True, databases=["default", "owner", "operator"])
def test_operator_context_runs_on_the_operator_alias_as_the_operator_role(committed_world, settings):
    settings.OPERATOR_DB_ALIAS = "operator"  # the real alias (the rest of the suite shares one session)
    operator = connections["operator"]
    with operator_context("test: the operator alias"):
        assert router.db_for_read(Contact) == "operator" and router.db_for_write(Tenant) == "operator"
        assert operator.in_atomic_block and not connection.in_atomic_block
        assert sql("SELECT current_user", using="operator") == [(settings.DATABASES["operator"]["USER"],)]
        assert Contact.objects.count() == 2
        assert {c.tenant_id for c in Contact.objects.all()} == {t.pk for t in committed_world}
    assert not operator.in_atomic_block
    assert router.db_for_read(Contact) == DEFAULT_DB_ALIAS
    assert sql("SELECT current_user") == [(settings.DATABASES["default"]["USER"],)]
    acme, globex = committed_world
    with tenant_context(acme):
        assert router.db_for_read(Contact) == DEFAULT_DB_ALIAS
        assert Contact.objects.count() == 1
        with operator_context("test: nested in a tenant"):
            assert Contact.objects.count() == 2
        assert Contact.objects.count() == 1
