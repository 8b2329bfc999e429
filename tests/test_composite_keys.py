"""Composite foreign keys (issue 7.13): a tenant-owned row can only point at a row of its own
tenant. PostgreSQL's foreign-key check ignores row-level security, so a plain key let a payment of
tenant A point at B's contact by id; now the catalogue has ``(tenant_id, contact_id) →
contacts_contact (tenant_id, id)`` for every such relation, and the ORM wall refuses the id too."""

from decimal import Decimal

import pytest
from django.apps import apps
from django.db import IntegrityError, connection, models, transaction
from django.db.migrations.loader import MigrationLoader

from conftest import requires_postgres
from contacts.models import Contact, Payment, PendingSignup
from tenants.context import TenantNotSet, operator_context, tenant_context
from tenants.models import TenantOwned, tenant_relations
from tenants.rls import AddTenantForeignKey

RELATIONS = sorted(
    (model._meta.label_lower, field.name)
    for model in apps.get_models() if issubclass(model, TenantOwned)
    for field in tenant_relations(model)
)


def sql(query, params=None):
    with connection.cursor() as cursor:
        cursor.execute(query, params or [])
        return cursor.fetchall() if cursor.description else None


def globex_contact_id(world):
    with operator_context("test: another tenant's contact id"):
        return Contact.objects.get(tenant=world.globex).pk


def test_the_relations_are_found():
    assert {("contacts.payment", "contact"), ("contacts.pendingsignup", "contact")} <= set(RELATIONS)


def test_every_tenant_relation_has_its_composite_key_in_a_migration():
    """Runs on SQLite too: a new relation without AddTenantForeignKey fails here first."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    declared = {
        (f"{app_label}.{operation.model_name.lower()}", operation.field_name)
        for (app_label, _), migration in loader.disk_migrations.items()
        for operation in migration.operations if isinstance(operation, AddTenantForeignKey)
    }
    missing = [relation for relation in RELATIONS if relation not in declared]
    assert not missing, f"add tenants.rls.AddTenantForeignKey to a migration for {missing}"


@requires_postgres
def test_catalogue_every_tenant_relation_is_a_composite_foreign_key(db):
    keys = list(sql(
        "SELECT c.conrelid::regclass::text, "
        "  (SELECT array_agg(a.attname::text ORDER BY k.n) FROM unnest(c.conkey) WITH ORDINALITY k(att, n) "
        "   JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.att), "
        "  c.confrelid::regclass::text, "
        "  (SELECT array_agg(a.attname::text ORDER BY k.n) FROM unnest(c.confkey) WITH ORDINALITY k(att, n) "
        "   JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.att) "
        "FROM pg_constraint c WHERE c.contype = 'f'"
    ))
    keys = {(table, tuple(cols), ref, tuple(ref_cols)) for table, cols, ref, ref_cols in keys}
    for label, field_name in RELATIONS:
        field = apps.get_model(label)._meta.get_field(field_name)
        expected = (
            field.model._meta.db_table, ("tenant_id", field.column),
            field.related_model._meta.db_table, ("tenant_id", field.target_field.column),
        )
        assert expected in keys, f"{label}.{field_name} has no composite foreign key {expected}"


@requires_postgres
def test_the_database_refuses_a_payment_pointing_at_another_tenants_contact(world):
    """Past the ORM wall (Django's plain save, raw SQL; as the runtime role, acting for A): the key
    refuses B's id."""
    contact_id = globex_contact_id(world)
    with tenant_context(world.acme):
        with pytest.raises(IntegrityError, match="tenant_fk"), transaction.atomic():
            sql("SET CONSTRAINTS ALL IMMEDIATE")
            payment = Payment(tenant=world.acme, contact_id=contact_id, amount=Decimal(1), currency="EUR",
                              source="x", payment_event_id="p-cross")
            models.Model.save(payment)  # Django's own save: no stamp_tenant
        own = Contact.objects.get().pk
        with transaction.atomic():
            sql("SET CONSTRAINTS ALL IMMEDIATE")
            sql("UPDATE contacts_pendingsignup SET contact_id = %s", [own])
            with pytest.raises(IntegrityError, match="tenant_fk"), transaction.atomic():
                sql("UPDATE contacts_pendingsignup SET contact_id = %s", [contact_id])


def test_the_orm_refuses_another_tenants_contact_by_id(world):
    contact_id = globex_contact_id(world)
    with tenant_context(world.acme):
        with pytest.raises(TenantNotSet):
            Payment.objects.create(contact_id=contact_id, amount=Decimal(1), currency="EUR", source="x",
                                   payment_event_id="p-cross")
        with pytest.raises(TenantNotSet):
            PendingSignup.objects.create(contact_id=contact_id, source="zoom", external_id="reg-x")
        with pytest.raises(TenantNotSet):
            Payment.objects.bulk_create([Payment(contact_id=contact_id, amount=Decimal(1), currency="EUR",
                                                 source="x", payment_event_id="p-cross")])
        with pytest.raises(TenantNotSet):
            Payment.objects.update(contact_id=contact_id)
        own = Contact.objects.get().pk
        payment = Payment.objects.create(contact_id=own, amount=Decimal(1), currency="EUR", source="x",
                                         payment_event_id="p-own")
        assert payment.contact.tenant_id == world.acme.pk
        assert Payment.objects.filter(pk=payment.pk).update(contact_id=own) == 1
    with operator_context("test: operators cannot cross tenants either"):
        with pytest.raises(TenantNotSet):
            Payment.objects.create(tenant=world.acme, contact_id=contact_id, amount=Decimal(1), currency="EUR",
                                   source="x", payment_event_id="p-op")
        with pytest.raises(TenantNotSet):
            Payment.objects.filter(tenant=world.acme).update(contact_id=contact_id)
