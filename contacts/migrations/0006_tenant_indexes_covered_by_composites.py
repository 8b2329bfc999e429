"""The contacts tables lose their lone ``tenant_id`` index: each has a composite index starting with
``tenant_id`` that serves every by-tenant query (and RLS adds the tenant to all of them), so the lone
one was only one more index to write per row (three per Stripe payment a webhook makes).

Only the indexes go: ``AlterField`` alone would also drop and re-add each foreign key, and adding a
foreign key validates every row under a lock that blocks writes, for as long as a big table takes.
On PostgreSQL the indexes are dropped ``CONCURRENTLY`` (not in a transaction, hence ``atomic =
False``), so writes go on meanwhile.

The indexes are found in the catalog by what they are (one column, ``tenant_id``, not unique, not
partial), not by the name Django gave them in 0001, and one is dropped only where the table has a
valid, non-partial index that starts with ``tenant_id`` and has more columns; a table without one
keeps its lone index (SQLite's ``contacts_contact``, where 0004's composite keys are not made; the
migration state says ``db_index=False`` there, so a later rebuild of that SQLite table would leave
it out: the embedded default, not a deployment).
Reversed, the index is made again ``CONCURRENTLY``; one left ``INVALID`` by an earlier attempt that
failed is dropped first, since ``IF NOT EXISTS`` would keep it.
"""

import django.db.models.deletion
from django.db import migrations, models

INDEXES = {
    "contacts_contact": "contacts_contact_tenant_id_d1fb2385",
    "contacts_contactdelivery": "contacts_contactdelivery_tenant_id_0fa5e9ae",
    "contacts_payment": "contacts_payment_tenant_id_b58ea233",
    "contacts_pendingsignup": "contacts_pendingsignup_tenant_id_7a47e96b",
}


def tenant_indexes(connection, table) -> list[tuple[str, list[str], bool, bool]]:
    """(name, columns, unique, usable) of the table's indexes: usable = valid and not partial."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                # An expression's column (attnum 0) is NULL here, so it never reads as "tenant_id".
                "SELECT i.relname, array(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY AS k(attnum, n)"
                " LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum ORDER BY k.n),"
                " x.indisunique, x.indisvalid AND x.indpred IS NULL"
                " FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
                " WHERE x.indrelid = to_regclass(%s)",
                [table],
            )
            return [(name, list(columns), unique, usable) for name, columns, unique, usable in cursor.fetchall()]
        found = []
        cursor.execute(f'PRAGMA index_list("{table}")')
        for _seq, name, unique, _origin, partial in cursor.fetchall():
            cursor.execute(f'PRAGMA index_info("{name}")')
            columns = [column for _rank, _cid, column in sorted(cursor.fetchall())]
            found.append((name, columns, bool(unique), not partial))
        return found


def drop(apps, schema_editor):
    connection = schema_editor.connection
    concurrently = " CONCURRENTLY" if connection.vendor == "postgresql" else ""
    for table in INDEXES:
        found = tenant_indexes(connection, table)
        if not any(usable and len(columns) > 1 and columns[0] == "tenant_id" for _, columns, _, usable in found):
            continue  # nothing else serves a by-tenant query: the lone index stays
        for name, columns, unique, usable in found:
            if columns == ["tenant_id"] and not unique and usable:
                schema_editor.execute(f'DROP INDEX{concurrently} IF EXISTS "{name}"')


def create(apps, schema_editor):
    connection = schema_editor.connection
    concurrently = " CONCURRENTLY" if connection.vendor == "postgresql" else ""
    for table, index in INDEXES.items():
        found = tenant_indexes(connection, table)
        if any(columns == ["tenant_id"] and usable for _, columns, _, usable in found):
            continue
        if any(name == index and not usable for name, _, _, usable in found):
            schema_editor.execute(f'DROP INDEX{concurrently} IF EXISTS "{index}"')  # left INVALID before
        schema_editor.execute(f'CREATE INDEX{concurrently} IF NOT EXISTS "{index}" ON "{table}" ("tenant_id")')


def tenant(related_name):
    return models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name=related_name,
                             to="tenants.tenant")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("contacts", "0005_subscription_dispute_and_platform_decisions"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(model_name="contact", name="tenant", field=tenant("contacts")),
                migrations.AlterField(model_name="contactdelivery", name="tenant", field=tenant("+")),
                migrations.AlterField(model_name="payment", name="tenant", field=tenant("payments")),
                migrations.AlterField(model_name="pendingsignup", name="tenant", field=tenant("pending_signups")),
            ],
            database_operations=[migrations.RunPython(drop, create, elidable=False)],
        ),
    ]
