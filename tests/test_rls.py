"""The database wall: row-level security, checked as the runtime role on PostgreSQL."""

import uuid

import pytest
from django.apps import apps
from django.conf import settings
from django.db import DatabaseError, connection, connections, transaction

from conftest import SHARED_EMAIL, requires_postgres
from tenants.context import operator_context, tenant_context
from tenants.models import TenantOwned
from tenants.rls import POLICY_NAME

pytestmark = requires_postgres


def sql(query, params=None):
    with connection.cursor() as cursor:
        cursor.execute(query, params or [])
        return cursor.fetchall()


def tenant_tables():
    """Every table in the schema with a tenant_id column, straight from the catalogue."""
    return sorted(
        row[0]
        for row in sql(
            "SELECT table_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND column_name = 'tenant_id'"
        )
    )


def test_catalogue_every_tenant_table_has_forced_rls_and_a_policy(db):
    tables = tenant_tables()
    model_tables = sorted(m._meta.db_table for m in apps.get_models() if issubclass(m, TenantOwned))
    assert tables == model_tables
    for table in tables:
        (enabled, forced), = sql(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = %s::regclass", [table]
        )
        assert enabled and forced, f"{table}: row-level security must be enabled and forced"
        policies = sql("SELECT polname, polcmd FROM pg_policy WHERE polrelid = %s::regclass", [table])
        assert (POLICY_NAME, "*") in policies, f"{table} has no {POLICY_NAME} policy for all commands"


def test_runtime_role_is_not_superuser_bypass_or_owner(db):
    (user, superuser, bypass, createdb, createrole), = sql(
        "SELECT rolname, rolsuper, rolbypassrls, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user"
    )
    assert user == settings.DATABASES["default"]["USER"]
    assert (superuser, bypass, createdb, createrole) == (False, False, False, False)
    owners = {row[0] for row in sql("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")}
    assert user not in owners
    for owner in owners:
        (member,), = sql("SELECT pg_has_role(current_user, %s, 'MEMBER')", [owner])
        assert not member, f"the runtime role must not be a member of the owner {owner}"
    (can_write_migrations,), = sql("SELECT has_table_privilege('django_migrations', 'INSERT')")
    assert not can_write_migrations
    with pytest.raises(DatabaseError), transaction.atomic():
        sql("CREATE TABLE sneaky (id int)")
    with pytest.raises(DatabaseError), transaction.atomic():
        sql("ALTER TABLE contacts_contact DISABLE ROW LEVEL SECURITY")


def test_raw_sql_with_no_tenant_sees_nothing_and_cannot_insert(world):
    for table in tenant_tables():
        assert sql(f'SELECT count(*) FROM "{table}"') == [(0,)], table
    with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
        sql(
            "INSERT INTO contacts_contact (tenant_id, email, first_name, last_name, phone, source, mc_id, ghl_id,"
            " custom_fields, activity, created_at, updated_at)"
            " VALUES (%s, 'x@example.com', '', '', '', 'zoom', '', '', '{}', '[]', now(), now())",
            [world.acme.pk],
        )


def test_raw_sql_as_tenant_a_sees_only_a_and_cannot_write_b(world):
    with tenant_context(world.acme):
        for table in tenant_tables():
            rows = sql(f'SELECT DISTINCT tenant_id FROM "{table}"')
            assert rows == [(world.acme.pk,)], table
        assert sql("SELECT count(*) FROM contacts_contact WHERE email = %s", [SHARED_EMAIL]) == [(1,)]
        with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
            sql(
                "INSERT INTO contacts_contact (tenant_id, email, first_name, last_name, phone, source, mc_id, ghl_id,"
                " custom_fields, activity, created_at, updated_at)"
                " VALUES (%s, 'x@example.com', '', '', '', 'zoom', '', '', '{}', '[]', now(), now())",
                [world.globex.pk],
            )
        # Updating or deleting B's rows by id silently touches nothing: they are invisible.
        with operator_context("test: find globex contact"):
            from contacts.models import Contact

            globex_contact_id = Contact.objects.get(tenant=world.globex).pk
        with connection.cursor() as cursor:
            cursor.execute("UPDATE contacts_contact SET first_name = 'owned' WHERE id = %s", [globex_contact_id])
            assert cursor.rowcount == 0
            cursor.execute("DELETE FROM contacts_contact WHERE id = %s", [globex_contact_id])
            assert cursor.rowcount == 0
        # Moving one's own row to another tenant is refused by WITH CHECK.
        with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
            sql("UPDATE contacts_contact SET tenant_id = %s", [world.globex.pk])


def test_a_forged_or_garbage_tenant_setting_sees_nothing(world):
    with transaction.atomic():
        sql("SELECT set_config('app.tenant_id', %s, true)", [str(uuid.uuid4())])
        assert sql("SELECT count(*) FROM contacts_contact") == [(0,)]
    with pytest.raises(DatabaseError), transaction.atomic():
        sql("SELECT set_config('app.tenant_id', 'not-a-uuid', true)")
        sql("SELECT count(*) FROM contacts_contact")


def test_the_tenant_setting_is_transaction_local(world, db_tenant_setting):
    """Outside any transaction (autocommit, as a pooled connection would be) nothing persists."""
    with tenant_context(world.acme):
        assert db_tenant_setting() == (str(world.acme.pk), "")
    assert db_tenant_setting() == ("", "")


@pytest.mark.django_db(transaction=True, databases=["default", "owner"])
def test_committed_context_leaves_nothing_on_the_connection(world_committed):
    """With real commits (no test transaction around it), the next transaction starts clean."""
    acme = world_committed
    with tenant_context(acme):
        assert sql("SELECT count(*) FROM contacts_contact") == [(1,)]
    assert not connection.in_atomic_block
    assert sql("SELECT current_setting('app.tenant_id', true), count(*) FROM contacts_contact") == [("", 0)]


@pytest.fixture
def world_committed(transactional_db):
    from contacts.models import Contact
    from tenants.models import Tenant

    acme = Tenant.objects.create(slug="acme-c", name="Acme committed")
    with tenant_context(acme):
        Contact.objects.create(email=SHARED_EMAIL, source="zoom")
    yield acme
    connections["owner"].close()


def test_a_users_own_memberships_are_readable_not_deletable(world):
    """The own-rows rule widens SELECT only: with app.user_id set, another tenant's membership of
    that user can be seen (to pick a tenant) but not deleted or changed."""
    from tenants.context import user_context

    with tenant_context(world.globex):
        with user_context(world.alice.pk):
            assert sql("SELECT count(*) FROM tenants_membership WHERE user_id = %s", [world.alice.pk]) == [(1,)]
            with connection.cursor() as cursor:
                cursor.execute("DELETE FROM tenants_membership WHERE user_id = %s", [world.alice.pk])
                assert cursor.rowcount == 0
        # The lookup is over: the setting is gone again for the rest of the transaction.
        assert sql("SELECT current_setting('app.user_id', true)") == [("",)]
    with tenant_context(world.acme):
        assert sql("SELECT count(*) FROM tenants_membership WHERE user_id = %s", [world.alice.pk]) == [(1,)]


def test_membership_policies_in_the_catalogue(db):
    policies = dict(sql("SELECT polname, polcmd FROM pg_policy WHERE polrelid = 'tenants_membership'::regclass"))
    assert policies == {"tenant_isolation": "*", "own_rows_read": "r"}
