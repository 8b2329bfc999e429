"""The indexes of ``webhooks_webhooklog`` as migrated (issue 11, "Database"; the plans behind them:
``bench/explain.py`` and docs/architecture.md, "Indexes"): none that another covers, and the
status index holds only the rows still waiting."""

from django.db import connection

from conftest import requires_postgres

import pytest


def indexes() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'webhooks_webhooklog'")
        return dict(cursor.fetchall())


@requires_postgres
@pytest.mark.django_db
def test_no_index_of_webhooklog_is_covered_by_another():
    found = indexes()
    columns = {name: definition.split(" USING btree ", 1)[1] for name, definition in found.items()}
    # tenant_id alone: every other index on the table starts with it, the unique key included.
    assert "(tenant_id)" not in columns.values(), columns
    assert columns["webhooklog_unique_event"].startswith("(tenant_id, source, event_id)")
    assert set(found) == {
        "webhooks_webhooklog_pkey", "webhooklog_unique_event", "webhooklog_source_idx",
        "webhooklog_tenant_status_idx", "webhooklog_waiting_idx", "webhooklog_rejected_idx",
    }, sorted(found)


@requires_postgres
@pytest.mark.django_db
def test_the_status_index_is_partial_on_the_states_looked_up():
    waiting = indexes()["webhooklog_waiting_idx"]
    assert "(status, updated_at)" in waiting
    assert "WHERE" in waiting and "'received'" in waiting and "'failed'" in waiting
    assert "'processed'" not in waiting
    # The sweeper's query can use it: its states are exactly the index's.
    from webhooks.processing import PROCESSABLE

    assert set(PROCESSABLE) == {"received", "failed"}


@requires_postgres
@pytest.mark.django_db
@pytest.mark.parametrize("table", ["contacts_contact", "contacts_payment", "contacts_contactdelivery",
                                   "contacts_pendingsignup"])
def test_the_contacts_tables_keep_no_lone_tenant_index_beside_a_composite_one(table):
    """A handler's writes touch these on every event: a lone ``tenant_id`` index there was one more
    index to write per row, and a composite index starting with ``tenant_id`` serves every by-tenant
    query (contacts migration 0006)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [table])
        columns = {name: definition.split(" USING btree ", 1)[1] for name, definition in cursor.fetchall()}
    assert "(tenant_id)" not in columns.values(), columns
    assert any(cols.startswith("(tenant_id, ") and " WHERE " not in cols for cols in columns.values()), columns


@requires_postgres
@pytest.mark.django_db(transaction=True, databases=["default", "owner"])
def test_contacts_0006_finds_lone_indexes_by_what_they_are_keeps_a_needed_one_and_rebuilds_an_invalid_one(
        monkeypatch):
    """On two scratch tables, as the owner role: a lone ``tenant_id`` index under a name 0001 did
    not give is dropped where a composite covers it and kept where nothing else does; reversed, an
    index an earlier failed attempt left ``INVALID`` is made again, valid."""
    import importlib

    from django.db import IntegrityError, connections

    migration = importlib.import_module("contacts.migrations.0006_tenant_indexes_covered_by_composites")
    owner = connections["owner"]

    def found(table):
        return {name: (columns, unique, usable) for name, columns, unique, usable in migration.tenant_indexes(owner, table)}

    with owner.cursor() as cursor:
        cursor.execute("CREATE TABLE mig_covered (tenant_id int, other int)")
        cursor.execute("CREATE INDEX mig_covered_renamed ON mig_covered (tenant_id)")
        cursor.execute("CREATE INDEX mig_covered_both ON mig_covered (tenant_id, other)")
        cursor.execute("CREATE TABLE mig_alone (tenant_id int, other int)")
        cursor.execute("CREATE INDEX mig_alone_lone ON mig_alone (tenant_id)")
        cursor.execute("CREATE INDEX mig_alone_partial ON mig_alone (tenant_id, other) WHERE other > 0")
    try:
        monkeypatch.setattr(migration, "INDEXES", {"mig_covered": "mig_covered_lone", "mig_alone": "mig_alone_lone"})
        with owner.schema_editor(atomic=False) as editor:
            migration.drop(None, editor)
        assert set(found("mig_covered")) == {"mig_covered_both"}
        assert set(found("mig_alone")) == {"mig_alone_lone", "mig_alone_partial"}  # a partial one serves no list

        with owner.cursor() as cursor:
            cursor.execute("INSERT INTO mig_covered VALUES (1, 1), (1, 2)")
            with pytest.raises(IntegrityError):
                cursor.execute("CREATE UNIQUE INDEX CONCURRENTLY mig_covered_lone ON mig_covered (tenant_id)")
        assert found("mig_covered")["mig_covered_lone"] == (["tenant_id"], True, False)  # left INVALID
        with owner.schema_editor(atomic=False) as editor:
            migration.create(None, editor)
        assert found("mig_covered")["mig_covered_lone"] == (["tenant_id"], False, True)
        assert found("mig_alone")["mig_alone_lone"] == (["tenant_id"], False, True)  # kept, not made twice
        assert len(found("mig_alone")) == 2
    finally:
        with owner.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS mig_covered, mig_alone")
        owner.close()
