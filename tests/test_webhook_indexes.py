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
