"""The ORM wall: tenant-owned models fail closed and never cross tenants."""

from decimal import Decimal

import pytest
from django.apps import apps
from django.db import models
from django.db.models import Count, Sum

from conftest import NO_DB_SETTING, SHARED_EMAIL, SHARED_EVENT_ID, SHARED_MC_ID
from contacts.models import Contact, Payment, PendingSignup
from integrations.models import TenantIntegration
from tenants.context import TenantNotSet, current_tenant_id, is_operator, operator_context, tenant_context
from tenants.models import Membership, TenantOwned
from webhooks.models import WebhookLog

TENANT_MODELS = [m for m in apps.get_models() if issubclass(m, TenantOwned)]

QUERY_PATHS = {
    "all": lambda m: list(m.objects.all()),
    "filter": lambda m: list(m.objects.filter(pk=1)),
    "exclude": lambda m: list(m.objects.exclude(pk=1)),
    "get": lambda m: m.objects.get(pk=1),
    "first": lambda m: m.objects.first(),
    "exists": lambda m: m.objects.exists(),
    "count": lambda m: m.objects.count(),
    "aggregate": lambda m: m.objects.aggregate(n=Count("pk")),
    "annotate": lambda m: list(m.objects.annotate(n=Count("pk"))),
    "values": lambda m: list(m.objects.values("pk")),
    "values_list": lambda m: list(m.objects.values_list("pk", flat=True)),
    "in_bulk": lambda m: m.objects.in_bulk([1]),
    "update": lambda m: m.objects.update(tenant_id=None),
    "delete": lambda m: m.objects.all().delete(),
    "create": lambda m: m.objects.create(),
    "get_or_create": lambda m: m.objects.get_or_create(pk=1),
    "update_or_create": lambda m: m.objects.update_or_create(pk=1),
    "bulk_create": lambda m: m.objects.bulk_create([m()]),
    "raw_via_manager": lambda m: list(m.objects.raw(f"SELECT * FROM {m._meta.db_table}")),
    "base_manager": lambda m: list(m._base_manager.all()),
}


def test_every_tenant_model_is_found():
    names = {m.__name__ for m in TENANT_MODELS}
    assert {"Membership", "TenantIntegration", "WebhookLog", "Contact", "Payment", "PendingSignup"} <= names


@pytest.mark.parametrize("path", sorted(QUERY_PATHS))
@pytest.mark.parametrize("model", TENANT_MODELS, ids=lambda m: m.__name__)
def test_every_query_path_without_a_tenant_raises(world, model, path):
    with pytest.raises(TenantNotSet):
        QUERY_PATHS[path](model)


def test_model_save_without_tenant_raises(world):
    with pytest.raises(TenantNotSet):
        Contact(email="x@example.com", source="zoom").save()


def test_related_managers_fail_closed_and_stay_in_tenant(world):
    with tenant_context(world.acme):
        contact = Contact.objects.get(email=SHARED_EMAIL)
    with pytest.raises(TenantNotSet):
        list(contact.payments.all())
    with pytest.raises(TenantNotSet):
        list(world.acme.contacts.all())
    with tenant_context(world.acme):
        assert [p.tenant_id for p in contact.payments.all()] == [world.acme.pk]
        # The reverse manager of tenant B, used while acting for A, finds nothing of B.
        assert list(world.globex.contacts.all()) == []


def test_a_tenant_sees_only_its_own_look_alike_rows(world):
    for tenant, other in ((world.acme, world.globex), (world.globex, world.acme)):
        with tenant_context(tenant):
            for model in TENANT_MODELS:
                rows = list(model.objects.all())
                assert rows, f"{model.__name__} should have rows for {tenant.slug}"
                assert {r.tenant_id for r in rows} == {tenant.pk}
            assert Contact.objects.filter(mc_id=SHARED_MC_ID).count() == 1
            assert Payment.objects.get(payment_event_id=SHARED_EVENT_ID).tenant_id == tenant.pk
            assert Payment.objects.aggregate(total=Sum("amount"))["total"] == Decimal("49.00")
            assert not Contact.objects.filter(tenant=other).exists()
            assert list(Contact.objects.filter(pk__in=_all_contact_ids(world))) == list(Contact.objects.all())
            # Joins through relations stay inside the tenant too.
            assert Payment.objects.filter(contact__email=SHARED_EMAIL).count() == 1


def _all_contact_ids(world):
    with operator_context("test: every contact id"):
        return list(Contact.objects.values_list("pk", flat=True))


def test_update_and_delete_touch_only_the_active_tenant(world):
    with tenant_context(world.acme):
        assert Contact.objects.update(first_name="Changed") == 1
        PendingSignup.objects.all().delete()
    with tenant_context(world.globex):
        assert Contact.objects.get().first_name == "Pat"
        assert PendingSignup.objects.count() == 1


def test_create_stamps_the_active_tenant_and_refuses_another(world):
    with tenant_context(world.acme):
        contact = Contact.objects.create(email="New@Example.com", source="zoom")
        assert contact.tenant_id == world.acme.pk
        assert contact.email == "new@example.com"
        created = Contact.objects.bulk_create([Contact(email="b1@example.com", source="zoom")])
        assert created[0].tenant_id == world.acme.pk
        with pytest.raises(TenantNotSet):
            Contact.objects.create(tenant=world.globex, email="x@example.com", source="zoom")
    with tenant_context(world.globex):
        globex_contact = Contact.objects.get()
    with tenant_context(world.acme):
        # A row of B cannot be pointed at from A's rows.
        with pytest.raises(TenantNotSet):
            Payment.objects.create(contact=globex_contact, amount=1, currency="EUR", source="x", payment_event_id="p2")
        # Nor can an instance of B be saved while acting for A.
        with pytest.raises(TenantNotSet):
            globex_contact.save()


def test_unique_keys_are_per_tenant(world):
    """The same e-mail, ManyChat id and event id exist at both tenants (the world made them)."""
    from django.db import IntegrityError, transaction

    with tenant_context(world.acme):
        with pytest.raises(IntegrityError), transaction.atomic():
            Contact.objects.create(email=SHARED_EMAIL, source="zoom")
        with pytest.raises(IntegrityError), transaction.atomic():
            Payment.objects.create(amount=1, currency="EUR", source="x", payment_event_id=SHARED_EVENT_ID)
        with pytest.raises(IntegrityError), transaction.atomic():
            WebhookLog.objects.create(source="manychat", event_id=SHARED_EVENT_ID, body=b"{}")
        # A rejected delivery never claims the event id.
        WebhookLog.objects.create(source="manychat", event_id=SHARED_EVENT_ID, body=b"{}", status="rejected")


def test_every_unique_constraint_of_a_tenant_model_includes_the_tenant():
    for model in TENANT_MODELS:
        for constraint in model._meta.constraints:
            if isinstance(constraint, models.UniqueConstraint):
                assert "tenant" in constraint.fields, f"{model.__name__}.{constraint.name}"
        for field in model._meta.concrete_fields:
            assert not field.unique or field.primary_key, f"{model.__name__}.{field.name} is unique across tenants"
        assert not model._meta.unique_together, model.__name__


def test_contexts_nest_and_restore(world, db_tenant_setting):
    assert current_tenant_id() is None
    with tenant_context(world.acme):
        with tenant_context(world.globex):
            assert current_tenant_id() == str(world.globex.pk)
            assert Contact.objects.get().tenant_id == world.globex.pk
        assert current_tenant_id() == str(world.acme.pk)
        assert Contact.objects.get().tenant_id == world.acme.pk
        with operator_context("test: nested operator"):
            assert is_operator()
            assert Contact.objects.count() == 2
        assert not is_operator()
    assert current_tenant_id() is None
    assert db_tenant_setting() == NO_DB_SETTING


def test_context_is_cleared_after_an_exception(world, db_tenant_setting):
    with pytest.raises(ZeroDivisionError):
        with tenant_context(world.acme):
            1 / 0  # noqa: B018 (the exception is the point)
    assert current_tenant_id() is None
    assert db_tenant_setting() == NO_DB_SETTING
    with pytest.raises(TenantNotSet):
        Contact.objects.count()


def test_operator_context_needs_a_reason_and_is_logged(world, caplog):
    with pytest.raises(ValueError):
        with operator_context(""):
            pass
    with caplog.at_level("INFO", logger="engarde.audit"):
        with operator_context("test: audit me"):
            assert TenantIntegration.objects.count() == 2
    assert "test: audit me" in caplog.text


def test_tenant_context_refuses_an_unsaved_tenant():
    from tenants.models import Tenant

    with pytest.raises(TenantNotSet):
        with tenant_context(Tenant(pk=None, slug="x", name="x")):
            pass


def test_membership_of_user_sees_only_own_memberships(world):
    assert [m.tenant.slug for m in Membership.of_user(world.alice)] == ["acme"]
    assert [m.tenant.slug for m in Membership.of_user(world.dana)] == ["globex"]
    assert Membership.of_user(world.charlie) == []


def test_an_error_inside_a_nested_context_is_not_masked(world, db_tenant_setting):
    """The inner block's own error comes out (not PostgreSQL's "current transaction is aborted"
    from restoring the settings on the broken transaction), and the outer context is intact."""
    from django.db import DatabaseError, InternalError, connection

    with tenant_context(world.acme):
        with pytest.raises(DatabaseError) as raised:
            with tenant_context(world.globex):
                with connection.cursor() as cursor:
                    cursor.execute("SELECT * FROM no_such_table_at_all")
        assert not isinstance(raised.value, InternalError), raised.value
        assert "no_such_table_at_all" in str(raised.value)
        assert current_tenant_id() == str(world.acme.pk)
        if NO_DB_SETTING is not None:
            assert db_tenant_setting() == (str(world.acme.pk), "")
        assert Contact.objects.get().tenant_id == world.acme.pk


def test_an_error_inside_a_nested_user_context_is_not_masked(world):
    from django.db import DatabaseError, InternalError, connection

    from tenants.context import user_context

    with tenant_context(world.acme):
        with pytest.raises(DatabaseError) as raised:
            with user_context(world.alice.pk):
                with connection.cursor() as cursor:
                    cursor.execute("SELECT * FROM no_such_table_at_all")
        assert not isinstance(raised.value, InternalError), raised.value
        assert Contact.objects.get().tenant_id == world.acme.pk
