"""The contacts tables lose their lone ``tenant_id`` index: each has a composite index starting with
``tenant_id`` that serves every by-tenant query (and RLS adds the tenant to all of them), so the lone
one was only one more index to write per row (three per Stripe payment a webhook makes).

Only the indexes go: ``AlterField`` alone would also drop and re-add each foreign key, and adding a
foreign key validates every row under a lock that blocks writes, for as long as a big table takes.
On PostgreSQL the indexes are dropped ``CONCURRENTLY`` (not in a transaction, hence ``atomic =
False``), so writes go on meanwhile; the names are the ones Django gave them in 0001.
"""

import django.db.models.deletion
from django.db import migrations, models

INDEXES = {
    "contacts_contact": "contacts_contact_tenant_id_d1fb2385",
    "contacts_contactdelivery": "contacts_contactdelivery_tenant_id_0fa5e9ae",
    "contacts_payment": "contacts_payment_tenant_id_b58ea233",
    "contacts_pendingsignup": "contacts_pendingsignup_tenant_id_7a47e96b",
}


def drop(apps, schema_editor):
    concurrently = " CONCURRENTLY" if schema_editor.connection.vendor == "postgresql" else ""
    for index in INDEXES.values():
        schema_editor.execute(f'DROP INDEX{concurrently} IF EXISTS "{index}"')


def create(apps, schema_editor):
    concurrently = " CONCURRENTLY" if schema_editor.connection.vendor == "postgresql" else ""
    for table, index in INDEXES.items():
        schema_editor.execute(f'CREATE INDEX{concurrently} IF NOT EXISTS "{index}" ON "{table}" ("tenant_id")')


def tenant(related_name):
    return models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name=related_name,
                             to="tenants.tenant")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("contacts", "0005_subscription_dispute_and_platform_decisions"),
        ("tenants", "0006_tenant_api_tokens"),
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
