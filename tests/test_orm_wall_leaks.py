"""The ORM wall's former leaks (issue 7.14), probed on SQLite and PostgreSQL alike: raw SQL through
a tenant-owned manager, joins into tenant tables from a model that is not tenant-owned, and a
queryset built in one scope and evaluated in another. The scope that counts is the one active when
the SQL runs."""

import pytest
from django.contrib.auth import get_user_model
from django.db import DatabaseError, transaction
from django.db.models import Count, Exists, OuterRef

from conftest import SHARED_EMAIL
from contacts.models import Contact, Payment
from tenants.context import TenantNotSet, operator_context, tenant_context
from tenants.models import Membership, Tenant


def test_raw_in_a_tenant_context_returns_only_that_tenants_rows(world):
    with tenant_context(world.acme):
        rows = list(Contact.objects.raw("SELECT * FROM contacts_contact"))
        assert [r.tenant_id for r in rows] == [world.acme.pk]
        rows = list(Contact.objects.raw("SELECT * FROM contacts_contact WHERE email = %s", [SHARED_EMAIL]))
        assert [r.tenant_id for r in rows] == [world.acme.pk]
    with operator_context("test: raw across tenants"):
        assert len(list(Contact.objects.raw("SELECT * FROM contacts_contact"))) == 2


def test_raw_without_the_tenant_column_fails_rather_than_guess(world):
    with tenant_context(world.acme), pytest.raises(DatabaseError), transaction.atomic():
        list(Contact.objects.raw("SELECT id, email FROM contacts_contact"))


def test_a_raw_query_is_scoped_where_it_runs(world):
    with operator_context("test: build a raw query"):
        everything = Contact.objects.raw("SELECT * FROM contacts_contact")
    with tenant_context(world.acme):
        assert [r.tenant_id for r in everything] == [world.acme.pk]
    with pytest.raises(TenantNotSet):
        list(Contact.objects.raw("SELECT * FROM contacts_contact").prefetch_related())


def test_joins_from_tenant_into_tenant_tables_stay_in_the_tenant(world):
    with tenant_context(world.acme):
        counts = dict(Tenant.objects.annotate(n=Count("contacts")).values_list("slug", "n"))
        assert counts == {"acme": 1, "globex": 0}
        assert list(Tenant.objects.filter(contacts__email=SHARED_EMAIL).values_list("slug", flat=True)) == ["acme"]
        assert list(Tenant.objects.exclude(contacts__email=SHARED_EMAIL).values_list("slug", flat=True)) == ["globex"]
        has_contacts = Contact.objects.filter(tenant=OuterRef("pk"))
        assert set(Tenant.objects.filter(Exists(has_contacts)).values_list("slug", flat=True)) == {"acme"}
    with operator_context("test: counts across tenants"):
        counts = dict(Tenant.objects.annotate(n=Count("contacts")).values_list("slug", "n"))
        assert counts == {"acme": 1, "globex": 1}


def test_joins_from_users_into_memberships_stay_in_the_tenant(world):
    User = get_user_model()
    with tenant_context(world.globex):
        counts = dict(User.objects.annotate(n=Count("memberships")).values_list("username", "n"))
        assert counts["dana"] == 1 and counts["alice"] == 0 and counts["bob"] == 0
        assert set(User.objects.filter(memberships__role="owner").values_list("username", flat=True)) == {"dana"}


def test_a_join_into_tenant_tables_with_no_scope_fails_closed(world):
    with pytest.raises(TenantNotSet):
        list(Tenant.objects.annotate(n=Count("contacts")))
    with pytest.raises(TenantNotSet):
        list(get_user_model().objects.filter(memberships__role="owner"))
    # A join from a tenant-owned row to the tenant (not tenant-owned) is no such join.
    assert [m.tenant.slug for m in Membership.of_user(world.alice)] == ["acme"]


def test_a_queryset_built_for_operators_is_scoped_where_it_runs(world):
    with operator_context("test: build a cross-tenant queryset"):
        contacts = Contact.objects.all()
        payments = Payment.objects.filter(contact__email=SHARED_EMAIL)
        tenants = Tenant.objects.annotate(n=Count("contacts"))
    with tenant_context(world.acme):
        assert [c.tenant_id for c in contacts.all()] == [world.acme.pk]
        assert contacts.count() == 1
        assert [p.tenant_id for p in payments.all()] == [world.acme.pk]
        assert dict(tenants.values_list("slug", "n")) == {"acme": 1, "globex": 0}
    with tenant_context(world.globex):
        assert contacts.update(first_name="Only globex") == 1
    with pytest.raises(TenantNotSet):
        list(contacts.all())
    with operator_context("test: check"):
        assert sorted(Contact.objects.values_list("first_name", flat=True)) == ["Only globex", "Pat"]


def test_a_queryset_built_for_one_tenant_never_runs_for_another(world):
    with tenant_context(world.acme):
        contacts = Contact.objects.all()
    with tenant_context(world.globex):
        assert [c.tenant_id for c in contacts.all()] == [world.globex.pk]
        assert contacts.filter(tenant=world.acme).count() == 0


def test_the_managers_shared_queryset_carries_neither_results_nor_a_scope(world):
    """The manager clones one filtered queryset for every use (tenants.managers): evaluating a
    clone fills nothing shared, each clone follows the scope it runs in, ``db_manager`` keeps its
    own database, and no scope still fails closed."""
    with tenant_context(world.acme):
        acme = list(Contact.objects.all())
        assert {c.tenant_id for c in acme} == {world.acme.pk}
    with tenant_context(world.globex):
        globex = list(Contact.objects.all())
        assert {c.tenant_id for c in globex} == {world.globex.pk}
        assert Contact.objects.db_manager("default").all().db == "default"
    # Combining querysets updates the left one's known related objects in place: never the shared query's.
    with tenant_context(world.acme):
        combined = Contact.objects.filter(email=SHARED_EMAIL) | world.acme.contacts.all()
        assert combined.count() == len(acme)
        assert Contact.objects.all()._known_related_objects == {}
    with operator_context("test: across tenants"):
        assert Contact.objects.count() == len(acme) + len(globex)
    with pytest.raises(TenantNotSet):
        Contact.objects.all()
