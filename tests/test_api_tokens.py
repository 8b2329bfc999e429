"""API tokens belong to one tenant (issue 12): a token made for globex never answers for acme,
acts with at most its creator's role, dies with the creator's membership and when revoked, is
stored as a hash only, and the runtime role reads no other tenant's tokens. The ``/tokens/`` page
is for owners and admins."""

from __future__ import annotations

import hashlib
import re

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from conftest import assert_token_shown_once_and_never_stored, requires_postgres
from tenants.context import operator_context, presented_token, tenant_context
from tenants.models import ApiToken, Membership


def me(client, key: str, query: str = ""):
    return client.get(f"/api/v1/tenant/{query}", HTTP_AUTHORIZATION=f"Bearer {key}")


@pytest.fixture
def bob_in_both(world):
    """bob: member of acme, admin of globex."""
    with tenant_context(world.globex):
        Membership.objects.create(user=world.bob, role=Membership.Role.ADMIN)
    return world.bob


def test_a_globex_token_never_answers_for_acme_though_its_maker_is_in_both(world, client, bob_in_both):
    _, globex_key = ApiToken.issue(world.globex, bob_in_both)
    _, acme_key = ApiToken.issue(world.acme, bob_in_both)
    body = me(client, globex_key).json()
    assert (body["slug"], body["role"]) == ("globex", "admin")
    for named in ("?tenant=acme", f"?tenant={world.acme.pk}"):
        response = me(client, globex_key, named)
        assert response.status_code == 403, response.content
        assert "acme" not in response.content.decode().lower()
    assert client.get("/api/v1/contacts/", HTTP_AUTHORIZATION=f"Bearer {globex_key}",
                      HTTP_X_TENANT="acme").status_code == 403
    assert me(client, globex_key, "?tenant=globex").json()["slug"] == "globex"  # naming its own is fine
    # The acme token: acme, as the member bob is there, and refused for globex.
    assert (me(client, acme_key).json()["slug"], me(client, acme_key).json()["role"]) == ("acme", "member")
    assert me(client, acme_key, "?tenant=globex").status_code == 403


def test_a_token_acts_with_at_most_its_creators_role_and_dies_with_the_membership(world, client):
    with pytest.raises(ValidationError):
        ApiToken.issue(world.acme, world.bob, role="admin")  # bob is a member
    with pytest.raises(ValidationError):
        ApiToken.issue(world.globex, world.alice)  # alice is not in globex
    _, key = ApiToken.issue(world.acme, world.alice, role="admin")
    assert me(client, key).json()["role"] == "admin"
    with tenant_context(world.acme):
        Membership.objects.filter(user=world.alice).update(role="member")
    assert me(client, key).json()["role"] == "member"  # the creator's role now caps it
    with tenant_context(world.acme):
        Membership.objects.filter(user=world.alice).delete()
    assert me(client, key).status_code == 401
    with tenant_context(world.acme):
        assert ApiToken.objects.filter(created_by=world.alice).exists()  # the row stays, for the list


def test_a_deactivated_tenant_and_a_deleted_creator_stop_the_token(world, client):
    _, key = ApiToken.issue(world.acme, world.alice)
    assert me(client, key).status_code == 200
    world.acme.is_active = False
    world.acme.save()
    assert me(client, key).status_code == 401
    world.acme.is_active = True
    world.acme.save()
    with operator_context("test: delete a user, as the admin does"):
        world.alice.delete()
    assert me(client, key).status_code == 401
    with tenant_context(world.acme):
        assert ApiToken.objects.filter(created_by__isnull=True).count() >= 1  # SET_NULL: still listed


def test_the_token_is_never_stored_in_clear(world):
    token, key = ApiToken.issue(world.acme, world.alice, name="export")
    with tenant_context(world.acme), connection.cursor() as cursor:
        cursor.execute("SELECT * FROM tenants_apitoken WHERE id = %s", [token.pk])
        (row,) = cursor.fetchall()
    assert all(key not in str(value) for value in row)
    assert hashlib.sha256(key.encode()).hexdigest() in row and key[-4:] in row


# --- the page -----------------------------------------------------------------------------------


def test_owner_creates_sees_it_once_then_revokes_it_and_it_stops_at_once(world, client):
    client.force_login(world.alice)
    page = client.get("/tokens/")
    assert page.status_code == 200 and "Look-alike token" in page.content.decode()
    response = client.post("/tokens/create/", {"name": "CRM export", "role": "admin"})
    key = re.search(r'value="(eg_[^"]+)"', response.content.decode()).group(1)
    assert_token_shown_once_and_never_stored(client, response, key)
    api = client.__class__()
    assert me(api, key).json()["role"] == "admin"
    with tenant_context(world.acme):
        token = ApiToken.objects.get(name="CRM export")
    assert token.created_by == world.alice and token.key_tail == key[-4:]
    listing = client.get("/tokens/").content.decode()
    assert "CRM export" in listing and key not in listing and f"…{key[-4:]}" in listing
    confirm = client.get(f"/tokens/{token.pk}/revoke/")
    assert confirm.status_code == 200 and 'data-testid="confirm-revoke"' in confirm.content.decode()
    assert me(api, key).status_code == 200  # the confirmation page changes nothing
    assert client.post(f"/tokens/{token.pk}/revoke/").status_code == 302
    assert me(api, key).status_code == 401


def test_times_are_in_the_tenants_zone(world, client):
    world.acme.timezone = "Asia/Tokyo"
    world.acme.save()
    client.force_login(world.alice)
    page = client.get("/tokens/").content.decode()
    assert "JST" in page and "Asia/Tokyo" in page


def test_members_get_403_and_cannot_create(world, client):
    client.force_login(world.bob)
    assert client.get("/tokens/").status_code == 403
    assert client.post("/tokens/create/", {"name": "mine", "role": "member"}).status_code == 403
    with tenant_context(world.acme):
        assert not ApiToken.objects.filter(name="mine").exists()
    assert "/tokens/" not in client.get("/members/").content.decode()  # not in the nav


def test_an_admin_cannot_make_an_owner_token_nor_revoke_another_tenants(world, client):
    with tenant_context(world.acme):
        Membership.objects.filter(user=world.bob).update(role="admin")
    client.force_login(world.bob)
    assert client.post("/tokens/create/", {"name": "too much", "role": "owner"}).status_code == 400
    with tenant_context(world.globex):
        globex_token = ApiToken.objects.get()
    assert client.post(f"/tokens/{globex_token.pk}/revoke/").status_code == 404
    with tenant_context(world.globex):
        assert ApiToken.objects.filter(pk=globex_token.pk).exists()


def test_revoke_needs_a_csrf_token(world):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(world.alice)
    with tenant_context(world.acme):
        token = ApiToken.objects.get()
    assert client.post(f"/tokens/{token.pk}/revoke/").status_code == 403
    with tenant_context(world.acme):
        assert ApiToken.objects.filter(pk=token.pk).exists()


# --- the database wall --------------------------------------------------------------------------


def sql(query, params=None):
    with connection.cursor() as cursor:
        cursor.execute(query, params or [])
        return cursor.fetchall()


@requires_postgres
def test_the_runtime_role_reads_no_other_tenants_tokens(world):
    with tenant_context(world.globex):
        globex_hash = ApiToken.objects.get().key_hash
    with tenant_context(world.acme):
        assert sql("SELECT count(*) FROM tenants_apitoken") == [(1,)]
        assert sql("SELECT count(*) FROM tenants_apitoken WHERE key_hash = %s", [globex_hash]) == [(0,)]
    assert sql("SELECT count(*) FROM tenants_apitoken") == [(0,)]  # no tenant: nothing
    # The presented hash shows that one row, read-only, and nothing else.
    with presented_token(globex_hash):
        assert sql("SELECT tenant_id FROM tenants_apitoken") == [(world.globex.pk,)]
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM tenants_apitoken WHERE key_hash = %s", [globex_hash])
            assert cursor.rowcount == 0
            cursor.execute("UPDATE tenants_apitoken SET role = 'owner' WHERE key_hash = %s", [globex_hash])
            assert cursor.rowcount == 0
    with presented_token("0" * 64):
        assert sql("SELECT count(*) FROM tenants_apitoken") == [(0,)]


@requires_postgres
def test_token_policies_in_the_catalogue(db):
    policies = dict(sql("SELECT polname, polcmd FROM pg_policy WHERE polrelid = 'tenants_apitoken'::regclass"))
    assert policies == {"tenant_isolation": "*", "own_rows_read": "r"}


# --- the migration of personal tokens -----------------------------------------------------------


@requires_postgres
@pytest.mark.django_db(transaction=True, databases=["default", "owner"])
def test_personal_tokens_move_to_their_users_only_tenant_or_are_deleted(world):
    """Back to before tenant tokens (as the migrating owner), personal tokens of alice (acme only),
    dana (globex only), charlie (no tenant) and a user of both; forward again: alice's and dana's
    are their tenant's with their role there, the other two are gone."""
    from django.db import connections
    from django.db.migrations.executor import MigrationExecutor

    from conftest import make_user

    both = make_user("both")
    for tenant in (world.acme, world.globex):
        with tenant_context(tenant):
            Membership.objects.create(user=both, role=Membership.Role.ADMIN)
    owner = connections["owner"]
    before, after = ("tenants", "0005_policies_without_operator_setting"), ("tenants", "0006_tenant_api_tokens")
    executor = MigrationExecutor(owner)
    executor.migrate([before])
    try:
        old = MigrationExecutor(owner).loader.project_state(before).apps.get_model("tenants", "ApiToken")
        for user in (world.alice, world.dana, world.charlie, both):
            old.objects.using("owner").create(user_id=user.pk, name=f"personal {user.username}",
                                              key_hash=ApiToken.hash(f"eg_{user.username}"), key_tail="tail")
    finally:
        executor = MigrationExecutor(owner)
        executor.loader.build_graph()
        executor.migrate([after])
        owner.close()
    for tenant, user, role in ((world.acme, world.alice, "owner"), (world.globex, world.dana, "owner")):
        with tenant_context(tenant):
            moved = ApiToken.objects.get(name=f"personal {user.username}")
            assert (moved.created_by_id, moved.role) == (user.pk, role)
            assert not ApiToken.objects.filter(name__in=["personal charlie", "personal both"]).exists()
    found = ApiToken.authenticate("eg_alice")
    assert found is not None and found.tenant_id == world.acme.pk
    assert ApiToken.authenticate("eg_both") is None
