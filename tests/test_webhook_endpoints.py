"""The webhook helper endpoints (generate-url, test), replay through the API, and the admin's
bulk replay: who may call them, what they answer, and that no secret ever comes back out."""

import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from conftest import SHARED_WEBHOOK_SECRET, api_auth, make_user
from contacts.models import Contact, Payment
from integrations.models import TenantIntegration, webhook_url
from integrations.registry import PROVIDERS
from tenants.context import tenant_context
from webhooks.models import WebhookLog
from webhooks.testing import (
    BROKEN_EMAIL,
    BROKEN_ERROR,
    STRIPE_SECRETS,
    break_checkouts,
    connect,
    fixture_bytes,
    post_stripe,
    rows,
)

WEBHOOK_SOURCES = sorted(name for name, provider in PROVIDERS.items() if provider.receives_webhooks)
NO_WEBHOOK_PROVIDERS = sorted(name for name, provider in PROVIDERS.items() if not provider.receives_webhooks)

GENERATE_KEYS = {"tenant_id", "tenant_name", "webhook_url", "instructions"}
TEST_KEYS = {
    "status", "tenant_id", "tenant_name", "webhook_url", "webhook_secret_configured", "connection_active",
    "supported_events", "last_event_at",
}
CHECKOUT_PI = "pi_3QxCheckout00000001"  # the payment intent of the checkout fixture


def generate_path(source, tenant_key, slash=False):
    return f"/api/webhooks/{source}/generate-url/{tenant_key}" + ("/" if slash else "")


def check_path(source, tenant_key, slash=False):
    return f"/api/webhooks/{source}/test/{tenant_key}" + ("/" if slash else "")


ENDPOINTS = {"generate-url": (generate_path, GENERATE_KEYS), "test": (check_path, TEST_KEYS)}


def bearer(user) -> dict:
    return api_auth(user)


def stripe_delivery(client, capture, tenant, name="checkout_session_completed", signed=True):
    """POST a Stripe fixture to the tenant's URL; on-commit work (processing) runs before returning."""
    body = fixture_bytes("stripe", name)
    with capture(execute=True):
        response = post_stripe(client, tenant, body, signed=signed)
    assert response.status_code == (200 if signed else 401), response.content
    return response


def payments_of_checkout(tenant):
    with tenant_context(tenant):
        return Payment.objects.filter(external_id=CHECKOUT_PI).count()


# --- generate-url and test: who gets an answer, and which -----------------------------------------
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
@pytest.mark.parametrize("source", WEBHOOK_SOURCES)
def test_members_get_exactly_the_documented_keys(world, client, source, endpoint):
    path, keys = ENDPOINTS[endpoint]
    for user in (world.alice, world.bob):  # the owner and a plain member
        headers = bearer(user)
        for tenant_key in ("acme", str(world.acme.pk), "ACME"):
            for slash in (False, True):
                response = client.get(path(source, tenant_key, slash), **headers)
                assert response.status_code == 200, (user, tenant_key, response.content)
                body = response.json()
                assert set(body) == keys
                assert body["tenant_id"] == str(world.acme.pk) and body["tenant_name"] == "Acme"
                # Built on the stable id, never the slug, and on the public base URL.
                assert body["webhook_url"] == f"{settings.PUBLIC_BASE_URL}/api/webhooks/{world.acme.pk}/{source}/"
                assert body["webhook_url"] == webhook_url(world.acme, source)


@pytest.mark.parametrize("source", WEBHOOK_SOURCES)
def test_generate_url_gives_the_providers_steps_with_the_url(world, client, source):
    body = client.get(generate_path(source, "acme"), **bearer(world.bob)).json()
    assert body["instructions"] == PROVIDERS[source].setup_steps(body["webhook_url"])
    assert all(isinstance(step, str) for step in body["instructions"])
    assert any(body["webhook_url"] in step for step in body["instructions"])


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_a_session_login_works_like_a_token(world, client, endpoint):
    path, keys = ENDPOINTS[endpoint]
    client.force_login(world.bob)
    response = client.get(path("stripe", "acme"))
    assert response.status_code == 200 and set(response.json()) == keys
    assert client.get(path("stripe", "globex")).status_code == 404


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_staff_get_any_tenant(world, client, endpoint):
    path, keys = ENDPOINTS[endpoint]
    headers = bearer(world.oscar)
    for tenant in (world.acme, world.globex):
        for tenant_key in (tenant.slug, str(tenant.pk)):
            response = client.get(path("manychat", tenant_key), **headers)
            assert response.status_code == 200, response.content
            assert set(response.json()) == keys and response.json()["tenant_id"] == str(tenant.pk)
    assert client.get(path("manychat", "no-such-tenant"), **headers).status_code == 404


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
@pytest.mark.parametrize("source", WEBHOOK_SOURCES)
def test_anonymous_and_bad_tokens_get_401_with_a_challenge(world, client, source, endpoint):
    path, _ = ENDPOINTS[endpoint]
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer eg_not-a-token"}, {"HTTP_AUTHORIZATION": "Bearer "}):
        response = client.get(path(source, "acme"), **headers)
        assert response.status_code == 401, (headers, response.status_code)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "Acme" not in response.content.decode()


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
@pytest.mark.parametrize("source", WEBHOOK_SOURCES)
def test_outsiders_get_404_as_if_the_tenant_did_not_exist(world, client, source, endpoint):
    path, _ = ENDPOINTS[endpoint]
    nowhere = client.get(path(source, "no-such-tenant"), **bearer(world.alice))
    assert nowhere.status_code == 404
    for user, tenant in (
        (world.charlie, world.acme), (world.dana, world.acme), (world.alice, world.globex), (world.bob, world.globex),
    ):
        headers = bearer(user)
        for tenant_key in (tenant.slug, str(tenant.pk)):
            response = client.get(path(source, tenant_key), **headers)
            assert response.status_code == 404, (user, tenant_key)
            assert response.content == nowhere.content  # nothing tells "exists" from "not yours"


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_unknown_sources_and_providers_without_webhooks_are_404(world, client, endpoint):
    path, _ = ENDPOINTS[endpoint]
    assert NO_WEBHOOK_PROVIDERS  # meta and brevo: APIs we call, not platforms that post to us
    for headers in (bearer(world.alice), bearer(world.oscar)):
        for source in ("nope", *NO_WEBHOOK_PROVIDERS):
            assert client.get(path(source, "acme"), **headers).status_code == 404, source


def test_no_secret_appears_in_any_answer(world, client):
    secrets = {SHARED_WEBHOOK_SECRET, "mc-api-key-of-acme-0000", "mc-api-key-of-globex-0000"}
    for source in WEBHOOK_SOURCES:
        if source != "manychat":  # manychat is connected by the world, with the shared secret
            secret = f"whsec-{source}-of-acme-0123456789abcdef"
            connect(world.acme, source, secret)
            secrets.add(secret)
    answers = []
    for user in (world.alice, world.bob, world.oscar, world.dana, world.charlie, None):
        headers = bearer(user) if user else {}
        for source in [*WEBHOOK_SOURCES, *NO_WEBHOOK_PROVIDERS]:
            for path, _ in ENDPOINTS.values():
                response = client.get(path(source, "acme"), **headers)
                answers.append(response.content.decode() + json.dumps(dict(response.headers)))
    text = "\n".join(answers)
    for secret in secrets:
        assert secret not in text
        assert secret[-12:] not in text  # not even a tail


# --- test: what it says about the connection -----------------------------------------------------
def test_connection_status_follows_the_integration(world, client):
    headers = bearer(world.alice)
    # ManyChat: connected by the world, with a secret.
    body = client.get(check_path("manychat", "acme"), **headers).json()
    assert (body["status"], body["webhook_secret_configured"], body["connection_active"]) == ("ready", True, True)
    assert body["supported_events"] == PROVIDERS["manychat"].supported_events
    # Stripe: not connected at all.
    body = client.get(check_path("stripe", "acme"), **headers).json()
    assert body == {
        "status": "not_configured", "tenant_id": str(world.acme.pk), "tenant_name": "Acme",
        "webhook_url": webhook_url(world.acme, "stripe"), "webhook_secret_configured": False,
        "connection_active": False, "supported_events": PROVIDERS["stripe"].supported_events,
        "last_event_at": None,
    }
    # Connected, then switched off: the secret is still there, the connection is not active.
    connect(world.acme, "stripe", STRIPE_SECRETS["acme"])
    assert client.get(check_path("stripe", "acme"), **headers).json()["status"] == "ready"
    with tenant_context(world.acme):
        TenantIntegration.objects.filter(provider="stripe").update(is_active=False)
    body = client.get(check_path("stripe", "acme"), **headers).json()
    assert (body["status"], body["webhook_secret_configured"], body["connection_active"]) == (
        "not_configured", True, False,
    )
    # Another tenant's connection says nothing about this one.
    connect(world.globex, "zoom", "zoom-secret-of-globex-0123456789")
    assert client.get(check_path("zoom", "acme"), **headers).json()["webhook_secret_configured"] is False


def test_last_event_at_is_the_latest_delivery_that_was_not_rejected(stripe, client, django_capture_on_commit_callbacks):
    world, capture, headers = stripe, django_capture_on_commit_callbacks, bearer(stripe.alice)

    def last_event_at():
        return client.get(check_path("stripe", "acme"), **headers).json()["last_event_at"]

    assert last_event_at() is None
    stripe_delivery(client, capture, world.acme)
    (accepted,) = rows(world.acme, source="stripe")
    assert last_event_at() == accepted.received_at.isoformat()

    # A forged delivery arrives later: rejected, so it says nothing about the connection working.
    stripe_delivery(client, capture, world.acme, signed=False)
    (rejected,) = rows(world.acme, source="stripe", status=WebhookLog.Status.REJECTED)
    with tenant_context(world.acme):
        WebhookLog.objects.filter(pk=rejected.pk).update(received_at=timezone.now() + timedelta(minutes=5))
    assert last_event_at() == accepted.received_at.isoformat()

    # Another tenant's deliveries do not count either.
    stripe_delivery(client, capture, world.globex)
    with tenant_context(world.globex):
        WebhookLog.objects.filter(source="stripe").update(received_at=timezone.now() + timedelta(minutes=10))
    assert last_event_at() == accepted.received_at.isoformat()

    # A verified event nobody handles (stored as "ignored") is still a delivery that arrived.
    stripe_delivery(client, capture, world.acme, "customer_created")
    (ignored,) = rows(world.acme, source="stripe", status=WebhookLog.Status.IGNORED)
    assert last_event_at() == ignored.received_at.isoformat()


# --- replay through the API ---------------------------------------------------------------------
def replay_path(row):
    return f"/api/v1/webhook-events/{row.pk}/replay/"


def refreshed(tenant, row):
    with tenant_context(tenant):
        return WebhookLog.objects.get(pk=row.pk)


def test_an_owner_replays_a_delivery_and_it_is_processed_again_without_doubling(
    stripe, client, django_capture_on_commit_callbacks
):
    world, capture = stripe, django_capture_on_commit_callbacks
    stripe_delivery(client, capture, world.acme)
    (row,) = rows(world.acme, source="stripe")
    assert (row.status, row.attempts) == ("processed", 1)
    with tenant_context(world.acme):
        contacts_before = Contact.objects.count()

    with capture(execute=True) as callbacks:
        response = client.post(replay_path(row), **bearer(world.alice))
    assert response.status_code == 202, response.content
    assert response.json() == {"status": "queued", "id": row.pk}
    assert len(callbacks) >= 1  # queued on commit, not run inside the request
    row = refreshed(world.acme, row)
    assert (row.status, row.attempts, row.error) == ("processed", 2, "")
    assert payments_of_checkout(world.acme) == 1
    with tenant_context(world.acme):
        assert Contact.objects.count() == contacts_before


def test_a_failed_delivery_can_be_replayed(stripe, client, django_capture_on_commit_callbacks, monkeypatch):
    world, capture = stripe, django_capture_on_commit_callbacks
    break_checkouts(monkeypatch)
    body = json.loads(fixture_bytes("stripe", "checkout_session_completed"))
    body["data"]["object"]["customer_details"]["email"] = BROKEN_EMAIL
    raw = json.dumps(body).encode()
    with capture(execute=True):
        post_stripe(client, world.acme, raw)
    (row,) = rows(world.acme, source="stripe")
    assert (row.status, row.attempts) == ("failed", 1)
    with capture(execute=True):
        assert client.post(replay_path(row), **bearer(world.alice)).status_code == 202
    row = refreshed(world.acme, row)
    assert (row.status, row.attempts) == ("failed", 2)  # it ran again, and failed again for the same reason
    assert row.error == BROKEN_ERROR


def test_replay_is_for_the_tenants_admins_only(stripe, client, django_capture_on_commit_callbacks):
    world, capture = stripe, django_capture_on_commit_callbacks
    stripe_delivery(client, capture, world.acme)
    (row,) = rows(world.acme, source="stripe")
    with capture(execute=True):
        assert client.post(replay_path(row)).status_code == 401
        assert client.post(replay_path(row), **bearer(world.bob)).status_code == 403  # a member
        assert client.post(replay_path(row), **bearer(world.charlie)).status_code == 403  # no tenant
        assert client.post(replay_path(row), **bearer(world.dana)).status_code == 404  # another tenant's owner
        assert client.post(replay_path(row) + "?tenant=acme", **bearer(world.dana)).status_code == 403
    row = refreshed(world.acme, row)
    assert (row.status, row.attempts) == ("processed", 1)  # nobody above replayed it
    # Staff naming the tenant may.
    with capture(execute=True):
        assert client.post(replay_path(row) + "?tenant=acme", **bearer(world.oscar)).status_code == 202
    assert refreshed(world.acme, row).attempts == 2


def test_rejected_and_unhandled_deliveries_are_not_replayable(stripe, client, django_capture_on_commit_callbacks):
    world, capture = stripe, django_capture_on_commit_callbacks
    stripe_delivery(client, capture, world.acme, signed=False)
    stripe_delivery(client, capture, world.acme, "customer_created")
    rejected = rows(world.acme, source="stripe", status=WebhookLog.Status.REJECTED)[0]
    ignored = rows(world.acme, source="stripe", status=WebhookLog.Status.IGNORED)[0]
    headers = bearer(world.alice)
    with capture(execute=True) as callbacks:
        response = client.post(replay_path(rejected), **headers)
        assert response.status_code == 409
        assert response.json()["status"] == "not_replayable" and "rejected" in response.json()["reason"]
        response = client.post(replay_path(ignored), **headers)
        assert response.status_code == 409 and "customer.created" in response.json()["reason"]
    assert callbacks == []  # nothing queued
    assert refreshed(world.acme, rejected).status == WebhookLog.Status.REJECTED
    assert refreshed(world.acme, ignored).status == WebhookLog.Status.IGNORED


# --- replay in the admin ------------------------------------------------------------------------
CHANGELIST = "admin:webhooks_webhooklog_changelist"


def offered_actions(changelist) -> set[str]:
    form = changelist.context["action_form"]  # None when the user may run no action at all
    return set(dict(form.fields["action"].choices)) if form else set()


def admin_replay(client, capture, row_ids):
    selection = {"action": "replay", "_selected_action": [str(pk) for pk in row_ids], "index": "0"}
    with capture(execute=True) as asked:  # the confirmation step queues nothing
        client.post(reverse(CHANGELIST), selection)
    assert not asked
    with capture(execute=True):
        return client.post(reverse(CHANGELIST), {**selection, "post": "yes"}, follow=True)


def test_operators_replay_rows_of_several_tenants_at_once(stripe, client, django_capture_on_commit_callbacks):
    world, capture = stripe, django_capture_on_commit_callbacks
    stripe_delivery(client, capture, world.acme)
    stripe_delivery(client, capture, world.globex)
    stripe_delivery(client, capture, world.acme, signed=False)
    (acme_row,) = rows(world.acme, source="stripe", status=WebhookLog.Status.PROCESSED)
    (globex_row,) = rows(world.globex, source="stripe")
    (rejected,) = rows(world.acme, source="stripe", status=WebhookLog.Status.REJECTED)

    client.force_login(world.oscar)
    changelist = client.get(reverse(CHANGELIST))
    assert "replay" in offered_actions(changelist)

    response = admin_replay(client, capture, [acme_row.pk, globex_row.pk, rejected.pk])
    assert response.status_code == 200
    shown = [str(message) for message in response.context["messages"]]
    assert "2 deliveries queued for replay." in shown
    assert "1 delivery skipped: rejected, or no handler for its event type." in shown
    for tenant, row in ((world.acme, acme_row), (world.globex, globex_row)):
        row = refreshed(tenant, row)
        assert (row.status, row.attempts) == ("processed", 2), tenant  # processed again, in its own tenant
        assert payments_of_checkout(tenant) == 1
    assert refreshed(world.acme, rejected).status == WebhookLog.Status.REJECTED
    entries = LogEntry.objects.filter(change_message__startswith="Replayed")
    assert sorted(int(e.object_id) for e in entries) == sorted([acme_row.pk, globex_row.pk])
    assert all(e.user_id == world.oscar.pk for e in entries)


def test_one_row_replayed_says_one(stripe, client, django_capture_on_commit_callbacks):
    world, capture = stripe, django_capture_on_commit_callbacks
    stripe_delivery(client, capture, world.globex)
    (row,) = rows(world.globex, source="stripe")
    client.force_login(world.oscar)
    response = admin_replay(client, capture, [row.pk])
    assert [str(m) for m in response.context["messages"]] == ["1 delivery queued for replay."]
    assert refreshed(world.globex, row).attempts == 2


def test_staff_who_may_only_view_cannot_replay(stripe, client, django_capture_on_commit_callbacks):
    world, capture = stripe, django_capture_on_commit_callbacks
    stripe_delivery(client, capture, world.acme)
    (row,) = rows(world.acme, source="stripe")
    viewer = make_user("viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_webhooklog"))
    client.force_login(viewer)
    changelist = client.get(reverse(CHANGELIST))
    assert changelist.status_code == 200
    assert "replay" not in offered_actions(changelist)
    admin_replay(client, capture, [row.pk])
    assert refreshed(world.acme, row).attempts == 1
    assert not LogEntry.objects.filter(change_message__startswith="Replayed").exists()


def test_replay_in_the_admin_asks_first(stripe, client):
    world = stripe
    client.force_login(world.oscar)
    with tenant_context(world.acme):
        row = WebhookLog.objects.create(source="stripe", event_id="evt_ask", event_type="charge.refunded",
                                        status=WebhookLog.Status.DEAD, body=b"{}")
    asked = client.post(reverse(CHANGELIST), {"action": "replay", "_selected_action": [str(row.pk)], "index": "0"})
    assert asked.status_code == 200 and "Replay these deliveries?" in asked.text and "evt_ask" in asked.text
    with tenant_context(world.acme):
        assert WebhookLog.objects.get(pk=row.pk).status == WebhookLog.Status.DEAD
    actions = client.get(reverse(CHANGELIST)).context["action_form"].fields["action"].choices
    assert "delete_selected" not in dict(actions)
