"""The Zoom attendee sync against a local fake of Zoom (``fake_zoom.FakeZoom``: the OAuth endpoint
and the API), two tenants whose Zoom accounts hold the very same meeting ids, registrant ids and
e-mails under different apps. What the sync did is read back in each tenant's context, as the
restricted role on PostgreSQL; the last test checks the rows with raw SQL under RLS."""

from __future__ import annotations

import io
import json
import logging
import time
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from conftest import requires_postgres
from contacts.models import Contact, PendingSignup
from integrations.models import TenantIntegration
from integrations.providers.base import hmac_sha256_hex
from integrations.providers.zoom.client import DEFAULT_RATE_LIMIT_WAIT, cache_key, retry_after
from integrations.providers.zoom.fake_zoom import Account, FakeZoom, Meeting, registrant
from integrations.registry import get_provider
from integrations.state import state_of
from integrations.sync import run_sync
from integrations.tasks import sync_due_integrations
from tenants.context import tenant_context
from webhooks.models import WebhookLog
from webhooks.testing import connect, fixture_bytes

APPS = {
    "acme": {"account_id": "AcmeAcct0123456789abcd", "client_id": "AcmeClnt0123456789abcd",
             "client_secret": "acme-zoom-client-secret-0123456789"},
    "globex": {"account_id": "GlobexAcct0123456789ab", "client_id": "GlobexClnt0123456789ab",
               "client_secret": "globex-zoom-client-secret-987654321"},
}
WEBHOOK_SECRETS = {"acme": "zoom-secret-token-acme-0123456789", "globex": "zoom-secret-token-globex-987654321"}
MEETING, WEBINAR = 85746065432, 98765432109  # the ids of the webhook fixtures
JILL = {"id": "abcdefghij0-klmnopq23456", "email": "jill.chill@example.com", "first_name": "Jill", "last_name": "Chill",
        "phone": "+16505550100", "status": "approved"}


def moment(days: float) -> str:
    """A start time ``days`` from now, far from the window's edges (30 days back)."""
    return (timezone.now() + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def look_alike(name: str, app: dict) -> Account:
    """One tenant's Zoom account: an upcoming meeting (Jill and three more), a recent one, an old
    one (outside the window), an instant one and one without registration, and a webinar with a
    pending and a denied registrant. Both tenants' accounts hold the same ids and e-mails."""
    return Account(
        **app,
        meetings=[
            Meeting(MEETING, f"{name} gala briefing", moment(2), registrants=[dict(JILL)] + [
                registrant(n, first_name=name) for n in range(1, 4)]),
            Meeting(111000111, f"{name} last week", moment(-5), previous=True,
                    registrants=[registrant(n, first_name=name) for n in range(10, 12)]),
            Meeting(222000222, "two months ago", moment(-60), previous=True, registrants=[registrant(99)]),
            Meeting(333000333, "instant", moment(1), type=1),
            Meeting(444000444, "no registration", moment(3), registration=False),
        ],
        webinars=[Meeting(WEBINAR, f"{name} winter workshop", moment(9), type=5, registrants=[
            registrant(20, "pending", first_name=name), registrant(21, "denied", first_name=name)])],
    )


@pytest.fixture
def zoom_api(settings):
    server = FakeZoom().start()
    settings.ZOOM_OAUTH_URL, settings.ZOOM_API_BASE = server.oauth_url, server.api_base
    cache.clear()  # tokens of an earlier test's fake must not be found
    yield server
    server.stop()


@pytest.fixture
def zoom(world, zoom_api):
    """Zoom connected at acme and globex, each with its own app and webhook secret."""
    integrations = {}
    for tenant in (world.acme, world.globex):
        zoom_api.accounts[APPS[tenant.slug]["account_id"]] = look_alike(tenant.name, APPS[tenant.slug])
        integrations[tenant.slug] = connect(tenant, "zoom", WEBHOOK_SECRETS[tenant.slug], **APPS[tenant.slug])
    return integrations


def sync(tenant, integration=None, **kwargs):
    integration = integration or state(tenant)
    return run_sync(integration.pk, str(tenant.pk), **kwargs)


def state(tenant) -> TenantIntegration:
    with tenant_context(tenant):
        return TenantIntegration.objects.select_related("tenant").get(provider="zoom")


def signups(tenant) -> dict[str, str]:
    """The tenant's Zoom sign-ups by key (the world's own look-alike "reg-1" left out)."""
    with tenant_context(tenant):
        return dict(PendingSignup.objects.filter(source="zoom", external_id__contains=":")
                    .values_list("external_id", "status"))


def contact(tenant, email):
    with tenant_context(tenant):
        return Contact.objects.filter(email=email).first()


def oauth_calls(server) -> int:
    return len(server.token_requests)


def registrant_paths(server) -> list[str]:
    return [p for p in server.paths("/registrants")]


# --- what one sync does -----------------------------------------------------------------------------


def test_first_sync_files_registrants_of_upcoming_and_recent_meetings_and_webinars(world, zoom, zoom_api):
    outcome = sync(world.acme)

    assert outcome.status == "synced", outcome.message
    assert outcome.line() == "zoom: 3 meetings, 1 webinars, 8 registrants (7 new, 1 denied, 0 skipped)"
    acme = signups(world.acme)
    assert acme == {
        f"meeting:{MEETING}:{JILL['id']}": "pending",
        **{f"meeting:{MEETING}:reg{n:05d}-Qz2LmN4pR8sT": "pending" for n in (1, 2, 3)},
        **{f"meeting:111000111:reg{n:05d}-Qz2LmN4pR8sT": "pending" for n in (10, 11)},
        f"webinar:{WEBINAR}:reg00020-Qz2LmN4pR8sT": "pending",
        f"webinar:{WEBINAR}:reg00021-Qz2LmN4pR8sT": "denied",
    }
    jill = contact(world.acme, "jill.chill@example.com")
    assert (jill.first_name, jill.last_name, jill.phone, jill.source) == ("Jill", "Chill", "+16505550100", "zoom")
    with tenant_context(world.acme):
        row = PendingSignup.objects.get(external_id=f"meeting:{MEETING}:{JILL['id']}")
        denied = PendingSignup.objects.get(external_id=f"webinar:{WEBINAR}:reg00021-Qz2LmN4pR8sT")
    assert row.metadata["meeting_id"] == MEETING and row.metadata["topic"] == "Acme gala briefing"
    assert denied.decided_at is not None and denied.decided_by is None
    # Read: the window's meetings only, each list once, 300 a page, with the tenant's token.
    read = registrant_paths(zoom_api)
    assert "/v2/meetings/222000222/registrants" not in read and "/v2/meetings/333000333/registrants" not in read
    assert read.count("/v2/meetings/444000444/registrants") == 1  # refused once: its other lists are not asked
    assert all(r["token_ok"] and r["query"].get("page_size", "300") == "300" for r in zoom_api.requests)
    assert signups(world.globex) == {}  # globex holds the same ids: nothing crossed over
    integration = state(world.acme)
    assert integration.last_synced_at and integration.last_sync_error == "" and integration.sync_started_at is None
    assert set(integration.sync_cursor) == {"synced_through"}


def test_two_tenants_with_look_alike_accounts_each_keep_their_own(world, zoom, zoom_api):
    assert sync(world.acme).status == "synced"
    assert sync(world.globex).status == "synced"

    assert signups(world.acme).keys() == signups(world.globex).keys()  # the very same Zoom keys
    assert contact(world.acme, "person1@example.com").first_name == "Acme 1"
    assert contact(world.globex, "person1@example.com").first_name == "Globex 1"
    with tenant_context(world.globex):
        topics = set(PendingSignup.objects.filter(external_id__contains=":").values_list("metadata__topic", flat=True))
    assert topics == {"Globex gala briefing", "Globex last week", "Globex winter workshop"}
    issued = {r["account_id"] for r in zoom_api.token_requests}
    assert issued == {APPS["acme"]["account_id"], APPS["globex"]["account_id"]}


def test_a_later_sync_leaves_filed_signups_and_the_tenants_decisions_alone(world, zoom, zoom_api):
    sync(world.acme)
    with tenant_context(world.acme):
        PendingSignup.objects.filter(external_id=f"meeting:{MEETING}:{JILL['id']}").update(status="dismissed")
        Contact.objects.filter(email="jill.chill@example.com").update(first_name="Jillian")
    account = zoom_api.accounts[APPS["acme"]["account_id"]]
    account.meetings[0].registrants[1]["status"] = "denied"  # the host denied person 1 on Zoom
    account.meetings[0].registrants.append(registrant(4, first_name="Acme"))

    assert sync(world.acme).line() == "zoom: 3 meetings, 1 webinars, 9 registrants (1 new, 1 denied, 0 skipped)"
    acme = signups(world.acme)
    assert acme[f"meeting:{MEETING}:{JILL['id']}"] == "dismissed"  # the tenant's decision stands
    assert acme[f"meeting:{MEETING}:reg00001-Qz2LmN4pR8sT"] == "denied"
    assert acme[f"meeting:{MEETING}:reg00004-Qz2LmN4pR8sT"] == "pending"
    assert contact(world.acme, "jill.chill@example.com").first_name == "Jillian"  # not rewritten every run


def test_paging_reads_every_registrant_of_a_long_list(world, zoom, zoom_api):
    account = zoom_api.accounts[APPS["acme"]["account_id"]]
    account.meetings[0].registrants = [registrant(n, first_name="Acme") for n in range(650)]

    assert sync(world.acme).status == "synced"

    pages = [r for r in zoom_api.requests if r["path"] == f"/v2/meetings/{MEETING}/registrants"
             and r["query"]["status"] == "approved"]
    assert len(pages) == 3 and all(r["query"]["page_size"] == "300" for r in pages)
    assert "next_page_token" not in pages[0]["query"] and pages[1]["query"]["next_page_token"]
    assert sum(key.startswith(f"meeting:{MEETING}:") for key in signups(world.acme)) == 650


def test_paging_is_bounded(world, zoom, zoom_api, settings, caplog):
    settings.ZOOM_MAX_PAGES = 2
    account = zoom_api.accounts[APPS["acme"]["account_id"]]
    account.meetings[0].registrants = [registrant(n) for n in range(700)]
    outcome = sync(world.acme)
    assert outcome.status == "synced" and outcome.message.endswith("1 lists longer than 2 pages cut short")
    assert sum(key.startswith(f"meeting:{MEETING}:") for key in signups(world.acme)) == 600
    assert "has more than 2 pages" in caplog.text and "tenant acme" in caplog.text


def test_registrants_without_an_email_are_skipped_not_fatal(world, zoom, zoom_api):
    account = zoom_api.accounts[APPS["acme"]["account_id"]]
    account.meetings[0].registrants[1]["email"] = ""
    account.meetings[0].registrants[2]["id"] = "x" * 300  # a key longer than the column
    outcome = sync(world.acme)
    assert outcome.line() == "zoom: 3 meetings, 1 webinars, 8 registrants (5 new, 1 denied, 2 skipped)"
    assert contact(world.acme, "person2@example.com") is None  # no contact without its sign-up


# --- the token ------------------------------------------------------------------------------------


def test_the_token_is_cached_and_shared_so_the_next_sync_asks_no_new_one(world, zoom, zoom_api):
    assert sync(world.acme).status == "synced"
    assert oauth_calls(zoom_api) == 1
    first = zoom_api.token_requests[0]
    assert first == {"account_id": APPS["acme"]["account_id"], "in_body": True, "in_query": False,
                     "grant_type": "account_credentials"}

    assert sync(world.acme).status == "synced"  # a new run (another worker): the cache has it
    assert oauth_calls(zoom_api) == 1
    key = cache_key(state(world.acme))
    stored = cache.get(key)
    (token,) = zoom_api.issued()
    assert stored and token not in stored  # encrypted at rest in the cache
    for value in APPS["acme"].values():
        assert value not in key
    assert key.startswith(f"zoom:s2s-token:{zoom['acme'].pk}:")


def test_new_credentials_find_no_old_token(world, zoom, zoom_api):
    sync(world.acme)
    old_key = cache_key(state(world.acme))
    account = zoom_api.accounts.pop(APPS["acme"]["account_id"])
    account.client_secret = "acme-zoom-client-secret-NEW-000000"
    zoom_api.accounts[account.account_id] = account
    with tenant_context(world.acme):
        integration = TenantIntegration.objects.get(provider="zoom")
        integration.set_values({"client_secret": account.client_secret})
        integration.save()
    assert cache_key(state(world.acme)) != old_key
    assert sync(world.acme).status == "synced"
    assert oauth_calls(zoom_api) == 2


def test_a_token_close_to_its_end_is_not_cached(world, zoom, zoom_api):
    zoom_api.expires_in = 60  # not more than the minute kept in hand
    sync(world.acme)
    sync(world.acme)
    assert oauth_calls(zoom_api) == 2 and cache.get(cache_key(state(world.acme))) is None


def test_a_401_drops_the_cached_token_and_fetches_a_new_one_once(world, zoom, zoom_api):
    sync(world.acme)
    zoom_api.expire_tokens()  # revoked on Zoom's side while still in our cache
    zoom_api.requests.clear()

    assert sync(world.acme).status == "synced"

    assert oauth_calls(zoom_api) == 2
    assert [r["token_ok"] for r in zoom_api.requests[:2]] == [False, True]  # one refusal, then the new token
    assert all(r["token_ok"] for r in zoom_api.requests[1:])
    assert cache.get(cache_key(state(world.acme))) is not None


def test_a_second_401_with_a_new_token_is_permanent(world, zoom, zoom_api):
    zoom_api.fail("/users/me/meetings", status=401, times=2, body={"code": 124, "message": "Invalid access token."})
    outcome = sync(world.acme)
    assert outcome.status == "disabled"
    assert outcome.message.startswith("Zoom refused a new access token for /v2/users/me/meetings (401: Invalid access token")
    assert oauth_calls(zoom_api) == 2


@pytest.mark.parametrize("change, reason", [
    (dict(client_secret="acme-zoom-client-secret-WRONG-0000"), "Invalid client_id or client_secret"),
    (dict(activated=False), "The app has been disabled"),
])
def test_a_refused_token_marks_the_integration_failing_with_zooms_reason(world, zoom, zoom_api, caplog, change,
                                                                         reason):
    caplog.set_level(logging.DEBUG)
    account = zoom_api.accounts[APPS["acme"]["account_id"]]
    wrong = change.pop("client_secret", None)
    for name, value in change.items():
        setattr(account, name, value)
    if wrong:
        with tenant_context(world.acme):
            integration = TenantIntegration.objects.get(provider="zoom")
            integration.set_values({"client_secret": wrong})
            integration.save()

    outcome = sync(world.acme)

    assert outcome.status == "disabled" and not outcome.retryable
    integration = state(world.acme)
    assert reason in integration.sync_disabled_reason and reason in integration.last_sync_error
    assert integration.sync_disabled_reason.startswith("Zoom refused the app's credentials (40")
    assert state_of(integration).key == "sync-failing"
    assert f"zoom token request for tenant acme refused" in caplog.text and reason in caplog.text
    secrets = [APPS["acme"]["client_secret"], wrong or "", *zoom_api.issued()]
    for text in (caplog.text, integration.sync_disabled_reason, json.dumps(integration.sync_cursor), outcome.message):
        assert not any(secret and secret in text for secret in secrets)
    assert sync(world.acme).status == "skipped"  # stopped until the credentials change
    assert oauth_calls(zoom_api) == 1
    assert signups(world.acme) == {}


def test_a_missing_scope_is_permanent_and_check_connection_says_which_and_starts_it_again(world, zoom, zoom_api):
    account = zoom_api.accounts[APPS["acme"]["account_id"]]
    account.scope = "meeting:read:list_meetings:admin webinar:read:list_webinars:admin"
    outcome = sync(world.acme)
    assert outcome.status == "disabled"
    assert outcome.message.startswith("The Zoom app lacks a scope for /v2/meetings/")
    assert "meeting:read:list_registrants:admin" in outcome.message

    provider = get_provider("zoom")
    detail = provider.check_connection(state(world.acme))
    assert detail == ("token issued, but the app lacks the scopes meeting:read:list_registrants:admin, "
                      "webinar:read:list_registrants:admin that the attendee sync needs")
    assert state(world.acme).sync_disabled_reason  # still stopped: the scopes are still missing

    account.scope = "meeting:read:admin webinar:read:admin"  # an older app's classic scopes cover them
    assert provider.check_connection(state(world.acme)).startswith("token issued (scopes: meeting:read:admin")
    assert state(world.acme).sync_disabled_reason == ""
    assert sync(world.acme).status == "synced"


# --- rate limits and failures ---------------------------------------------------------------------


def test_a_429_is_honoured_and_the_next_run_resumes_after_the_last_finished_list(world, zoom, zoom_api):
    zoom_api.fail(f"/webinars/{WEBINAR}/registrants", status=429, headers={"Retry-After": "7"},
                  body={"code": 429, "message": "You have reached the maximum per-second rate limit for this API."})
    outcome = sync(world.acme)

    assert outcome.status == "failed" and outcome.retryable and outcome.retry_after == 7
    integration = state(world.acme)
    assert integration.last_sync_error == f"Zoom rate-limited /v2/webinars/{WEBINAR}/registrants; resuming in 7 s"
    assert integration.sync_disabled_reason == "" and integration.sync_started_at is None
    assert integration.sync_cursor["pending"]["after"] == ["meeting", str(MEETING), 2]  # the last list read
    assert len(signups(world.acme)) == 6  # every meeting's registrants are in

    zoom_api.requests.clear()
    assert sync(world.acme).line() == "zoom: 3 meetings, 1 webinars, 2 registrants (1 new, 1 denied, 0 skipped)"
    assert {p for p in registrant_paths(zoom_api)} == {f"/v2/webinars/{WEBINAR}/registrants"}
    assert len(signups(world.acme)) == 8 and set(state(world.acme).sync_cursor) == {"synced_through"}


def test_the_task_waits_at_least_as_long_as_zoom_asked(world, zoom, zoom_api, settings):
    from integrations.tasks import sync_backoff

    settings.SYNC_RETRY_BASE_SECONDS = 1
    zoom_api.fail("/users/me/meetings", status=429, headers={"Retry-After": "90"})
    outcome = sync(world.acme)
    assert outcome.retry_after == 90 and sync_backoff(0, outcome.retry_after) == 90


@pytest.mark.parametrize("headers, seconds", [
    ({"Retry-After": "7"}, 7.0),
    ({"Retry-After": "2026-12-02T10:30:00Z"}, 1800.0),  # Zoom's daily limits name a time
    ({"Retry-After": "Wed, 02 Dec 2026 10:05:00 GMT"}, 300.0),
    ({"Retry-After": "1796206200"}, 600.0),  # epoch seconds
    ({"X-RateLimit-Type": "Daily-limit"}, 14 * 3600.0),  # no Retry-After: until midnight UTC
    ({}, DEFAULT_RATE_LIMIT_WAIT),
    ({"Retry-After": "soon"}, DEFAULT_RATE_LIMIT_WAIT),
    ({"Retry-After": "2026-12-02T09:00:00Z"}, 1.0),  # already past: at once, never negative
])
def test_retry_after_reads_seconds_times_and_dates(headers, seconds):
    now = datetime(2026, 12, 2, 10, 0, tzinfo=dt_timezone.utc)
    assert retry_after(headers, now=now) == seconds


def test_a_5xx_is_retried_by_the_session_then_transient(world, zoom, zoom_api):
    zoom_api.fail("/users/me/webinars", status=503)
    assert sync(world.acme).status == "synced"  # one 503, retried at once

    zoom_api.fail(f"/meetings/{MEETING}/registrants", status=500, times=20)
    outcome = sync(world.acme)
    assert outcome.status == "failed" and outcome.retryable
    assert state(world.acme).last_sync_error == f"Zoom answered 500 to /v2/meetings/{MEETING}/registrants"
    assert state(world.acme).sync_disabled_reason == ""


def test_an_unreachable_zoom_is_transient_and_names_no_url(world, zoom, settings, caplog):
    caplog.set_level(logging.DEBUG)
    settings.ZOOM_OAUTH_URL = "http://127.0.0.1:1/oauth/token"
    outcome = sync(world.acme)
    assert outcome.status == "failed" and outcome.retryable
    assert outcome.message == "Zoom could not be reached for a token (the connection failed)"
    assert APPS["acme"]["client_secret"] not in caplog.text


def test_an_account_without_webinars_still_syncs_its_meetings(world, zoom, zoom_api):
    zoom_api.accounts[APPS["acme"]["account_id"]].webinar_plan = False
    outcome = sync(world.acme)
    assert outcome.status == "synced"
    assert outcome.message == ("3 meetings, 0 webinars, 6 registrants (6 new, 0 denied, 0 skipped); "
                               "webinars not listed (Webinar plan is missing)")


def test_an_unknown_zoom_user_is_permanent_with_what_to_do(world, zoom, zoom_api):
    with tenant_context(world.acme):
        integration = TenantIntegration.objects.get(provider="zoom")
        integration.set_values({"user_id": "host@acme.test"})
        integration.save()
    outcome = sync(world.acme)
    assert outcome.status == "disabled"
    assert "Zoom does not know the user whose meetings are synced (User does not exist: host@acme.test)" in outcome.message
    assert zoom_api.paths("/users/") == ["/v2/users/host@acme.test/meetings"]

    zoom_api.accounts[APPS["acme"]["account_id"]].users = ("host@acme.test",)
    with tenant_context(world.acme):  # a changed value lifts the stop (set_values)
        integration = TenantIntegration.objects.get(provider="zoom")
        integration.set_values({"user_id": ""})
        integration.set_values({"user_id": "host@acme.test"})
        integration.save()
    assert sync(world.acme).status == "synced"


# --- webhook and sync find the same row ----------------------------------------------------------------


def zoom_headers(body: bytes, secret: str) -> dict:
    t = str(int(time.time()))
    signature = "v0=" + hmac_sha256_hex(secret, f"v0:{t}:".encode() + body)
    return {"HTTP_X_ZM_REQUEST_TIMESTAMP": t, "HTTP_X_ZM_SIGNATURE": signature}


def deliver(client, tenant, fixture: str, capture) -> None:
    body = fixture_bytes("zoom", fixture)
    with capture(execute=True):
        response = client.post(f"/api/webhooks/{tenant.pk}/zoom/", data=body, content_type="application/json",
                               **zoom_headers(body, WEBHOOK_SECRETS[tenant.slug]))
    assert response.status_code == 200, response.content
    with tenant_context(tenant):
        assert WebhookLog.objects.filter(source="zoom").latest("pk").status == WebhookLog.Status.PROCESSED


JILL_KEY = f"meeting:{MEETING}:{JILL['id']}"


def test_webhook_then_sync_is_one_contact_and_one_signup(world, zoom, zoom_api, client,
                                                         django_capture_on_commit_callbacks):
    deliver(client, world.acme, "meeting_registration_created", django_capture_on_commit_callbacks)
    assert signups(world.acme) == {JILL_KEY: "pending"}

    assert sync(world.acme).status == "synced"

    with tenant_context(world.acme):
        assert Contact.objects.filter(email="jill.chill@example.com").count() == 1
        assert PendingSignup.objects.filter(external_id=JILL_KEY).count() == 1
    assert len(signups(world.acme)) == 8


def test_sync_then_webhook_is_one_contact_and_one_signup_and_later_events_settle_it(
        world, zoom, zoom_api, client, django_capture_on_commit_callbacks):
    assert sync(world.acme).status == "synced"
    deliver(client, world.acme, "meeting_registration_created", django_capture_on_commit_callbacks)
    with tenant_context(world.acme):
        assert Contact.objects.filter(email="jill.chill@example.com").count() == 1
        assert PendingSignup.objects.filter(external_id=JILL_KEY).count() == 1
    deliver(client, world.acme, "meeting_registration_cancelled", django_capture_on_commit_callbacks)
    assert signups(world.acme)[JILL_KEY] == "cancelled"
    assert sync(world.acme).status == "synced"  # Zoom still lists her as approved: the cancellation stands
    assert signups(world.acme)[JILL_KEY] == "cancelled"
    assert signups(world.globex) == {}


# --- schedule and setup -------------------------------------------------------------------------------


def test_the_beat_syncs_zoom_every_half_hour_and_never_a_webhook_only_zoom(world, zoom_api, settings,
                                                                           django_capture_on_commit_callbacks):
    zoom_api.accounts[APPS["globex"]["account_id"]] = look_alike("Globex", APPS["globex"])
    connect(world.acme, "zoom", WEBHOOK_SECRETS["acme"])  # webhook only: no app
    connect(world.globex, "zoom", WEBHOOK_SECRETS["globex"], **APPS["globex"])
    assert get_provider("zoom").sync_interval == timedelta(minutes=30)

    with django_capture_on_commit_callbacks(execute=True):
        assert sync_due_integrations() == 1
    assert len(signups(world.globex)) == 8 and signups(world.acme) == {}
    assert state(world.acme).last_synced_at is None and state_of(state(world.acme)).key == "connected"
    with django_capture_on_commit_callbacks(execute=True):
        assert sync_due_integrations() == 0  # globex synced a moment ago

    settings.ZOOM_SYNC_INTERVAL_MINUTES = 30
    with tenant_context(world.globex):
        TenantIntegration.objects.filter(provider="zoom").update(last_synced_at=timezone.now() - timedelta(minutes=31))
    with django_capture_on_commit_callbacks(execute=True):
        assert sync_due_integrations() == 1


def test_command_prints_the_summary_as_its_last_line(world, zoom, zoom_api, capsys):
    call_command("sync_integration", "acme", "zoom")
    assert capsys.readouterr().out.strip().splitlines()[-1] == (
        "zoom: 3 meetings, 1 webinars, 8 registrants (7 new, 1 denied, 0 skipped)")
    assert signups(world.globex) == {}


def test_command_since_widens_the_window_to_that_day(world, zoom, zoom_api):
    day = (timezone.now() - timedelta(days=70)).date().isoformat()
    call_command("sync_integration", "acme", "zoom", "--since", day, stdout=io.StringIO())
    assert f"meeting:222000222:reg00099-Qz2LmN4pR8sT" in signups(world.acme)
    previous = [r for r in zoom_api.requests if r["query"].get("type") == "previous_meetings"]
    assert previous[0]["query"]["from"] == day


@pytest.mark.parametrize("args, message", [
    (["nope", "zoom"], "no tenant with slug 'nope'"),
    (["acme", "zoom", "--since", "yesterday"], "--since must be a date as YYYY-MM-DD"),
    (["acme", "zoom", "--since", "2026-13-01"], "--since must be a date as YYYY-MM-DD"),
])
def test_command_refuses_bad_input_in_one_line(world, zoom, args, message):
    with pytest.raises(CommandError, match=message) as error:
        call_command("sync_integration", *args)
    assert "\n" not in str(error.value)


def test_command_refuses_a_webhook_only_zoom_and_a_refused_token_in_one_line(world, zoom_api):
    with pytest.raises(CommandError, match="^Zoom is not connected for acme$"):
        call_command("sync_integration", "acme", "zoom")
    connect(world.acme, "zoom", WEBHOOK_SECRETS["acme"])
    with pytest.raises(CommandError) as error:
        call_command("sync_integration", "acme", "zoom")
    assert str(error.value) == ("Zoom for acme syncs only with Account ID, Client ID, Client secret set; "
                                "enter them on the setup page")
    connect(world.acme, "zoom", **APPS["acme"])  # an app Zoom does not know
    with pytest.raises(CommandError) as error:
        call_command("sync_integration", "acme", "zoom")
    message = str(error.value)
    assert message.startswith("zoom: Zoom refused the app's credentials (400): Invalid account_id")
    assert "\n" not in message and APPS["acme"]["client_secret"] not in message


# --- the credential fields -------------------------------------------------------------------------------


@pytest.mark.parametrize("name, value, words", [
    ("account_id", "my account", "A Zoom account ID is the letters and digits"),
    ("account_id", "abc", "A Zoom account ID"),
    ("client_id", "https://marketplace.zoom.us/", "A Zoom client ID"),
    ("client_secret", "short", "A Zoom client secret"),
    ("client_secret", "has a space in it 0123456789", "without spaces"),
    ("user_id", "someone@", "The Zoom user is a user ID"),
    ("user_id", "../../users", "The Zoom user is a user ID"),
])
def test_credential_fields_refuse_what_zoom_does_not_issue(name, value, words):
    with pytest.raises(ValidationError) as refused:
        get_provider("zoom").field(name).clean(value)
    assert words in " ".join(refused.value.messages)


@pytest.mark.parametrize("name, value", [
    ("account_id", "D8cJuqWVQ623CI4Q8yQK0Q"), ("client_id", "Iq8rNw2uT3mZ0aKcY5vXbA"),
    ("client_secret", "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6"), ("user_id", "host@example.com"),
    ("user_id", "z8yCxjabcdEFGHfp8uQ"), ("user_id", "me"),
])
def test_credential_fields_accept_what_zoom_issues(name, value):
    assert get_provider("zoom").field(name).clean(f" {value} ") == value


def test_the_app_is_optional_and_encrypted_where_secret(world):
    provider = get_provider("zoom")
    assert not any(field.required for field in provider.credential_fields)
    assert [f.name for f in provider.secret_fields] == ["client_secret"]
    integration = connect(world.acme, "zoom", WEBHOOK_SECRETS["acme"])
    assert integration.is_configured  # webhook-only Zoom is complete
    connect(world.acme, "zoom", **APPS["acme"])
    with connection.cursor() as cursor:
        with tenant_context(world.acme):
            cursor.execute("SELECT credentials FROM integrations_tenantintegration WHERE provider = 'zoom'")
            (stored,) = cursor.fetchone()
    assert APPS["acme"]["client_secret"] not in stored


def test_the_setup_page_says_where_the_app_values_and_scopes_are(world):
    steps = " ".join(get_provider("zoom").setup_steps("https://hub.example/api/webhooks/t/zoom/"))
    for words in ("Server-to-Server OAuth app", "App Credentials", "Account ID, Client ID and Client secret",
                  "meeting:read:list_registrants:admin", "webinar:read:list_registrants:admin", "every 30 minutes",
                  "internal use"):
        assert words in steps


@requires_postgres
def test_rls_shows_each_tenant_only_its_own_zoom_signups(world, zoom, zoom_api):
    sync(world.acme)
    sync(world.globex)
    for tenant in (world.acme, world.globex):
        with tenant_context(tenant), connection.cursor() as cursor:
            cursor.execute("SELECT count(*), count(DISTINCT tenant_id) FROM contacts_pendingsignup "
                           "WHERE source = 'zoom' AND external_id LIKE 'meeting:%%'")
            assert cursor.fetchone() == (6, 1)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM contacts_pendingsignup")
        assert cursor.fetchone() == (0,)  # no tenant: nothing


@pytest.mark.django_db(transaction=True, databases=["default", "owner"])
def test_a_syncs_new_contacts_are_told_in_one_digest_per_page_each_once(world, zoom, zoom_api, mailoutbox):
    """Committed for real: each registrant list's new contacts are announced together once its page
    has committed (``checkpoint``, contacts.signals), so Acme's owner gets an e-mail per page listing
    them, not one per registrant, each contact in exactly one; globex's admins hear nothing."""
    from django.db import connections

    try:
        with tenant_context(world.acme):
            before = set(Contact.objects.values_list("pk", flat=True))
        assert sync(world.acme).status == "synced"
        with tenant_context(world.acme):
            new = list(Contact.objects.exclude(pk__in=before).order_by("pk"))
        assert len(new) > len(mailoutbox) > 0
        assert {address for message in mailoutbox for address in message.to} == {"alice@example.com"}
        assert any(message.subject.startswith("[Acme] ") and " new contacts from zoom" in message.subject
                   for message in mailoutbox)
        for contact in new:
            assert sum(contact.email in message.body for message in mailoutbox) == 1, contact.email
        with tenant_context(world.acme):
            assert not Contact.objects.filter(pk__in=[c.pk for c in new], notified_at__isnull=True).exists()
    finally:
        connections["owner"].close()
