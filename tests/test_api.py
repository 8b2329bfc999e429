"""The tenant-scoped API: who may see what, through every endpoint."""

import pytest

from conftest import NO_DB_SETTING, SHARED_EMAIL, SHARED_WEBHOOK_SECRET, api_auth
from tenants.context import current_tenant_id, tenant_context
from tenants.models import ApiToken

LIST_ENDPOINTS = [
    "/api/v1/integrations/",
    "/api/v1/contacts/",
    "/api/v1/payments/",
    "/api/v1/pending-signups/",
    "/api/v1/webhook-events/",
]


def bearer(user) -> dict:
    return api_auth(user)


@pytest.mark.parametrize("url", LIST_ENDPOINTS)
def test_each_list_shows_only_the_members_tenant(world, client, url):
    for user, tenant in ((world.alice, world.acme), (world.bob, world.acme), (world.dana, world.globex)):
        response = client.get(url, **bearer(user))
        assert response.status_code == 200, response.content
        body = response.json()
        assert set(body) == {"count", "next", "previous", "results"}
        assert body["count"] == 1
        item = body["results"][0]
        assert "tenant" not in item and "tenant_id" not in item
        # The single row is the tenant's own: fetch it by id as the other tenant's user → 404.
        other = world.dana if tenant == world.acme else world.alice
        assert client.get(f"{url}{item['id']}/", **bearer(user)).status_code == 200
        assert client.get(f"{url}{item['id']}/", **bearer(other)).status_code == 404


def test_tenant_endpoint(world, client):
    body = client.get("/api/v1/tenant/", **bearer(world.alice)).json()
    assert (body["slug"], body["role"]) == ("acme", "owner")
    assert client.get("/api/v1/tenant/", **bearer(world.bob)).json()["role"] == "member"
    assert client.get("/api/v1/tenant/", **bearer(world.dana)).json()["slug"] == "globex"


@pytest.mark.parametrize("url", ["/api/v1/tenant/", *LIST_ENDPOINTS])
def test_anonymous_bad_token_and_outsider(world, client, url):
    assert client.get(url).status_code == 401
    assert client.get(url).headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get(url, HTTP_AUTHORIZATION="Bearer eg_not-a-token").status_code == 401
    assert client.get(url, HTTP_AUTHORIZATION="Bearer ").status_code == 401
    # Signed in, but a member of nothing: 403, never everything.
    response = client.get(url, **bearer(world.charlie))
    assert response.status_code == 403
    assert SHARED_EMAIL not in response.content.decode()


def test_a_bad_token_does_not_fall_back_to_the_session(world, client):
    client.force_login(world.alice)
    assert client.get("/api/v1/contacts/").status_code == 200
    assert client.get("/api/v1/contacts/", HTTP_AUTHORIZATION="Bearer eg_wrong").status_code == 401


def test_naming_another_tenant_is_refused(world, client):
    headers = bearer(world.alice)
    assert client.get("/api/v1/contacts/?tenant=globex", **headers).status_code == 403
    assert client.get(f"/api/v1/contacts/?tenant={world.globex.pk}", **headers).status_code == 403
    assert client.get("/api/v1/contacts/", HTTP_X_TENANT="globex", **headers).status_code == 403
    assert client.get("/api/v1/contacts/?tenant=acme", **headers).status_code == 200


def test_staff_must_name_a_tenant(world, client):
    headers = bearer(world.oscar)
    assert client.get("/api/v1/contacts/", **headers).status_code == 403
    assert client.get("/api/v1/contacts/?tenant=nope", **headers).status_code == 403
    body = client.get("/api/v1/contacts/?tenant=globex", **headers).json()
    assert body["count"] == 1
    assert client.get("/api/v1/tenant/?tenant=globex", **headers).json()["role"] == "staff"


def test_a_user_of_two_tenants_picks_one(world, client):
    from tenants.context import tenant_context
    from tenants.models import Membership

    with tenant_context(world.globex):
        Membership.objects.create(user=world.bob, role="admin")
    # An API token answers for its own tenant only (tests/test_api_tokens.py); the session picks.
    client.force_login(world.bob)
    assert client.get("/api/v1/tenant/").json()["slug"] == "acme"  # earliest membership
    body = client.get("/api/v1/tenant/?tenant=globex").json()
    assert (body["slug"], body["role"]) == ("globex", "admin")


def test_integrations_say_configured_and_never_show_a_secret(world, client):
    response = client.get("/api/v1/integrations/", **bearer(world.alice))
    text = response.content.decode()
    item = response.json()["results"][0]
    assert item["provider"] == "manychat" and item["configured"] is True and item["missing"] == []
    assert item["webhook_url"].endswith(f"/api/webhooks/{world.acme.pk}/manychat/")
    assert SHARED_WEBHOOK_SECRET not in text
    assert "mc-api-key-of-acme" not in text
    assert "credentials" not in item and "webhook_secret" not in item


def test_token_is_stored_hashed_and_inactive_users_are_refused(world, client):
    token, key = ApiToken.issue(world.acme, world.alice)
    assert key not in (token.key_hash, token.key_tail) and len(token.key_hash) == 64
    with tenant_context(world.acme):
        assert not ApiToken.objects.filter(key_hash=key).exists()
    world.alice.is_active = False
    world.alice.save()
    assert client.get("/api/v1/tenant/", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 401


def test_pagination(world, client):
    from contacts.models import Contact
    from tenants.context import tenant_context

    with tenant_context(world.acme):
        Contact.objects.bulk_create([Contact(email=f"c{i}@example.com", source="zoom") for i in range(60)])
    body = client.get("/api/v1/contacts/", **bearer(world.alice)).json()
    assert body["count"] == 61 and len(body["results"]) == 50 and body["next"] and body["previous"] is None
    page2 = client.get(body["next"], **bearer(world.alice)).json()
    assert len(page2["results"]) == 11 and page2["next"] is None


def test_requests_for_a_then_b_then_anonymous_leave_nothing_behind(world, client, db_tenant_setting):
    """One thread, one connection: what one request set must be gone for the next."""
    a, b = bearer(world.alice), bearer(world.dana)
    assert client.get("/api/v1/tenant/", **a).json()["slug"] == "acme"
    assert current_tenant_id() is None and db_tenant_setting() == NO_DB_SETTING
    assert client.get("/api/v1/contacts/", **b).json()["results"][0]["email"] == SHARED_EMAIL
    assert client.get("/api/v1/tenant/", **b).json()["slug"] == "globex"
    assert current_tenant_id() is None and db_tenant_setting() == NO_DB_SETTING
    assert client.get("/api/v1/contacts/").status_code == 401
    assert current_tenant_id() is None and db_tenant_setting() == NO_DB_SETTING


def test_openapi_schema_is_served(client, db):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    text = response.content.decode()
    for path in ["/api/v1/tenant/", *LIST_ENDPOINTS]:
        assert path in text
    assert "bearer" in text.lower()
