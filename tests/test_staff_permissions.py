"""Issue 7.1: staff powers outside the admin follow Django permissions, and are audited.

Black-box, through the API and the pages, as the security test found it: a staff user with no
permission, a staff user who may only look (the view permissions), and a full operator (every
change permission plus ``tenants.act_as_owner`` and ``tenants.rotate_secrets``), against acme's
data in the conftest world (acme: alice owner, bob member; globex: dana owner).
"""

import logging

import pytest
from django.test import Client

from conftest import SHARED_EMAIL, SHARED_WEBHOOK_SECRET, api_auth, make_staff
from integrations.models import TenantIntegration
from integrations.registry import PROVIDERS
from tenants.context import tenant_context
from tenants.models import Membership
from webhooks.models import WebhookLog

API_LISTS = [
    "/api/v1/tenant/", "/api/v1/integrations/", "/api/v1/contacts/", "/api/v1/payments/",
    "/api/v1/pending-signups/", "/api/v1/webhook-events/",
]
PAGES = ["/", "/members/", "/webhooks/", "/signups/", "/contacts/", "/payments/", "/contacts/export.csv",
         "/payments/export.csv", *[f"/setup/{name}/" for name in PROVIDERS]]
VIEW = [
    "tenants.view_tenant", "tenants.view_membership", "integrations.view_tenantintegration",
    "webhooks.view_webhooklog", "contacts.view_contact", "contacts.view_payment", "contacts.view_pendingsignup",
]
OPERATOR = VIEW + [
    "tenants.change_membership", "integrations.change_tenantintegration", "webhooks.change_webhooklog",
    "contacts.change_pendingsignup", "tenants.act_as_owner", "tenants.rotate_secrets",
]


staff = make_staff


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def api(user) -> dict:
    return api_auth(user)


def acme_row(world):
    with tenant_context(world.acme):
        return WebhookLog.objects.get(event_id="evt_same_everywhere")


def acme_roles(world):
    with tenant_context(world.acme):
        return dict(Membership.objects.values_list("user__username", "role"))


def manychat_secret(world):
    with tenant_context(world.acme):
        return TenantIntegration.objects.get(provider="manychat").webhook_secret


@pytest.fixture
def nobody(world):
    return staff("nobody")


@pytest.fixture
def viewer(world):
    return staff("viewer", VIEW)


@pytest.fixture
def operator(world):
    return staff("operator", OPERATOR)


# --- a staff user without permissions: 403 wherever a tenant's data is read ------------------
def test_staff_without_permissions_read_nothing_through_the_api(world, nobody, client):
    headers = api(nobody)
    for url in API_LISTS:
        response = client.get(f"{url}?tenant=acme", **headers)
        assert response.status_code == 403, url
        assert SHARED_EMAIL not in response.content.decode(), url
    assert client.get(f"/api/v1/webhook-events/{acme_row(world).pk}/?tenant=acme", **headers).status_code == 403
    assert client.get("/api/webhooks/manychat/generate-url/acme/", **headers).status_code == 403


def test_staff_without_permissions_see_no_page_of_a_tenant(world, nobody):
    client = browser(nobody)
    for url in PAGES + [f"/webhooks/{acme_row(world).pk}/"]:
        response = client.get(url, {"tenant": "acme"})
        assert response.status_code == 403, url
        assert SHARED_EMAIL not in response.content.decode() and "mc-4242" not in response.content.decode(), url
    assert "Acme" not in client.get("/tenants/pick/").content.decode()


def test_staff_without_permissions_change_nothing(world, nobody):
    client = browser(nobody)
    client.post("/members/invite/?tenant=acme", {"email": "backdoor@example.com", "role": "owner"})
    client.post("/setup/manychat/?tenant=acme", {"is_active": "on", "generate_webhook_secret": "on"})
    client.post(f"/webhooks/{acme_row(world).pk}/replay/?tenant=acme")
    assert "backdoor@example.com" not in acme_roles(world)
    assert manychat_secret(world) == SHARED_WEBHOOK_SECRET
    response = Client().post(f"/api/v1/webhook-events/{acme_row(world).pk}/replay/?tenant=acme", **api(nobody))
    assert response.status_code == 403


# --- view permissions: look, never change -----------------------------------------------------
def test_view_only_staff_read_the_named_tenant_only(world, viewer, client):
    headers = api(viewer)
    for url in API_LISTS:
        assert client.get(f"{url}?tenant=acme", **headers).status_code == 200, url
    contacts = client.get("/api/v1/contacts/?tenant=acme", **headers).json()["results"]
    assert [c["email"] for c in contacts] == [SHARED_EMAIL]
    assert client.get("/api/v1/tenant/?tenant=acme", **headers).json()["slug"] == "acme"
    pages = browser(viewer)
    for url in PAGES:
        assert pages.get(url, {"tenant": "acme"}).status_code == 200, url


def test_view_only_staff_cannot_invite_replay_decide_or_rotate(world, viewer):
    client = browser(viewer)
    row = acme_row(world)
    members = client.get("/members/?tenant=acme").content.decode()
    assert "Invite someone" not in members
    assert client.post("/members/invite/", {"email": "backdoor@example.com", "role": "owner"}).status_code == 403
    assert client.post(f"/webhooks/{row.pk}/replay/").status_code == 403
    assert client.post("/setup/manychat/", {"is_active": "on", "generate_webhook_secret": "on"}).status_code == 403
    assert client.post("/signups/decide/", {"decision": "approve", "ids": ["1"]}).status_code == 403
    response = Client().post(f"/api/v1/webhook-events/{row.pk}/replay/?tenant=acme", **api(viewer))
    assert response.status_code == 403
    assert "backdoor@example.com" not in acme_roles(world)
    assert manychat_secret(world) == SHARED_WEBHOOK_SECRET


def test_one_view_permission_opens_only_its_own_data(world):
    contacts_only = staff("contacts_only", ["tenants.view_tenant", "contacts.view_contact"])
    headers, client = api(contacts_only), Client()
    assert client.get("/api/v1/contacts/?tenant=acme", **headers).status_code == 200
    assert client.get("/api/v1/webhook-events/?tenant=acme", **headers).status_code == 403
    assert browser(contacts_only).get("/webhooks/?tenant=acme").status_code == 403


def test_changing_members_without_act_as_owner_makes_no_owner(world):
    manager = staff("manager", VIEW + ["tenants.change_membership"])
    client = browser(manager)
    client.get("/members/?tenant=acme")
    assert client.post("/members/invite/", {"email": "backdoor@example.com", "role": "owner"}).status_code == 400
    assert "backdoor@example.com" not in acme_roles(world)
    with tenant_context(world.acme):
        alice = Membership.objects.get(user=world.alice)
    client.post(f"/members/{alice.pk}/remove/")
    assert acme_roles(world)["alice"] == "owner"


def test_changing_an_integration_without_rotate_secrets_replaces_no_secret(world):
    editor = staff("editor", VIEW + ["integrations.change_tenantintegration"])
    client = browser(editor)
    client.get("/setup/manychat/?tenant=acme")
    response = client.post("/setup/manychat/", {"is_active": "on", "generate_webhook_secret": "on"})
    assert response.status_code == 403
    assert manychat_secret(world) == SHARED_WEBHOOK_SECRET
    # A change that touches no secret is theirs to make.
    assert client.post("/setup/manychat/", {"is_active": ""}).status_code == 302


# --- the full operator -------------------------------------------------------------------------
def test_the_full_operator_acts_as_owner(world, operator):
    client = browser(operator)
    client.get("/members/?tenant=acme")
    assert client.post("/members/invite/", {"email": "charlie@example.com", "role": "admin"}).status_code == 302
    client.post("/setup/manychat/", {"is_active": "on", "generate_webhook_secret": "on"})
    assert manychat_secret(world) != SHARED_WEBHOOK_SECRET
    response = Client().post(f"/api/v1/webhook-events/{acme_row(world).pk}/replay/?tenant=acme", **api(operator))
    assert response.status_code in (202, 409)  # allowed: queued, or nothing to replay for this row


# --- memberships still count, and the audit line ----------------------------------------------
def test_a_staff_member_of_a_tenant_acts_there_as_a_member_and_nowhere_else(world, nobody):
    with tenant_context(world.globex):
        Membership.objects.create(user=nobody, role=Membership.Role.MEMBER)
    client = browser(nobody)
    assert client.get("/webhooks/?tenant=globex").status_code == 200
    assert client.get("/webhooks/?tenant=acme").status_code == 403


def test_every_staff_request_for_a_tenant_is_audited_with_its_reason(world, viewer, nobody, caplog):
    caplog.set_level(logging.INFO, logger="engarde.audit")
    Client().get("/api/v1/contacts/?tenant=acme", **api(viewer))
    Client().get("/api/v1/contacts/?tenant=acme", **api(nobody))
    browser(viewer).post(f"/webhooks/{acme_row(world).pk}/replay/?tenant=acme")
    lines = [r.getMessage() for r in caplog.records if r.name == "engarde.audit" and "staff user" in r.getMessage()]
    assert any(
        f"staff user {viewer.pk} (viewer) GET /api/v1/contacts/ for tenant acme: 200" in line
        and "contacts.view_contact granted" in line for line in lines
    ), lines
    assert any(
        f"staff user {nobody.pk} (nobody) GET /api/v1/contacts/ for tenant acme: 403" in line
        and "tenants.view_tenant refused" in line for line in lines
    ), lines
    assert any("POST /webhooks/" in line and ": 403" in line and "webhooks.change_webhooklog refused" in line
               for line in lines), lines


# --- the tenant chosen with ?tenant= stays chosen ---------------------------------------------
def badge(client, url) -> str:
    page = client.get(url).content.decode()
    return page.split('data-testid="current-tenant"', 1)[1].split("</span>", 1)[0]


def test_a_tenant_chosen_with_the_query_stays_chosen_until_changed(world, viewer):
    with tenant_context(world.globex):
        Membership.objects.create(user=world.alice, role=Membership.Role.MEMBER)
    for user in (world.alice, viewer):
        client = browser(user)
        assert "Globex" in badge(client, "/webhooks/?tenant=globex")
        assert "Globex" in badge(client, "/signups/") and "Globex" in badge(client, "/members/")
        assert "Acme" in badge(client, "/?tenant=acme")
        assert "Acme" in badge(client, "/webhooks/")


def test_the_admin_rotates_a_token_only_with_rotate_secrets(world):
    from django.urls import reverse

    with tenant_context(world.acme):
        integration = TenantIntegration.objects.get(provider="manychat")
    url = reverse("admin:integrations_tenantintegration_rotate_token", args=[integration.pk])
    changer = staff("changer", ["integrations.change_tenantintegration", "integrations.view_tenantintegration"])
    response = browser(changer).post(url, follow=True)
    assert "needs the “rotate secrets” permission" in response.content.decode()
    assert manychat_secret(world) == SHARED_WEBHOOK_SECRET
    rotator = staff("rotator", ["integrations.change_tenantintegration", "tenants.rotate_secrets"])
    browser(rotator).post(url)
    assert manychat_secret(world) != SHARED_WEBHOOK_SECRET
