"""The Eventbrite attendee sync against a local fake of Eventbrite (``fake_api.FakeEventbrite``),
two tenants whose Eventbrite accounts hold the very same organization, event and attendee ids and
e-mails under different private tokens. What the sync did is read back in each tenant's context,
as the restricted role on PostgreSQL; one test checks the rows with raw SQL under RLS."""

from __future__ import annotations

import io
import json
import logging
import uuid
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.utils import timezone

from conftest import requires_postgres
from contacts.models import Contact, Payment, PendingSignup
from integrations.http import make_session
from integrations.models import TenantIntegration
from integrations.providers.eventbrite.client import DEFAULT_RATE_LIMIT_WAIT, EventbriteClient
from integrations.providers.eventbrite.fake_api import Account, Event, FakeEventbrite, Organization, attendee
from integrations.providers.eventbrite.sync import OVERLAP, STAMP, EventbriteSync
from integrations.registry import get_provider
from integrations.state import state_of
from integrations.sync import claim, run_sync
from integrations.tasks import sync_due_integrations
from tenants.context import tenant_context
from tenants.models import Tenant
from webhooks.models import WebhookLog
from webhooks.testing import connect, webhook_path

TOKENS = {"acme": "EBACMEPRIVATETOKEN0123456789", "globex": "EBGLOBEXPRIVATETOKEN98765432"}
URL_TOKENS = {"acme": "eb-url-token-acme-0123456789abcdef", "globex": "eb-url-token-globex-987654321abcde"}
ORG, LIVE, RECENT, OLD, DRAFT = "310000000001", "710000000001", "710000000002", "710000000003", "710000000004"


def moment(days: float) -> str:
    return (timezone.now() + timedelta(days=days)).strftime(STAMP)


def look_alike(name: str, token: str) -> Account:
    """One tenant's Eventbrite: an organization with a live event (five attendees: one checked in,
    one free ticket, one refunded), one that ended five days ago, one that ended sixty days ago
    (outside the window) and a draft. Both tenants' accounts hold the same ids and e-mails."""
    live = [attendee(n, LIVE, first_name=name) for n in range(1, 6)]
    live[1]["checked_in"], live[1]["status"] = True, "Checked In"
    live[2]["costs"]["gross"] = {"currency": "USD", "value": 0, "major_value": "0.00"}
    live[3].update(refunded=True, cancelled=True, status="Not Attending")
    return Account(token=token, name=f"{name} organizer", organizations=[Organization(ORG, f"{name} events", [
        Event(LIVE, f"{name} winter gala", "live", moment(3), moment(3.2), live),
        Event(RECENT, f"{name} last week", "ended", moment(-5.2), moment(-5), [attendee(10, RECENT, first_name=name)]),
        Event(OLD, "two months ago", "ended", moment(-60.2), moment(-60), [attendee(20, OLD, first_name=name)]),
        Event(DRAFT, "draft", "draft", moment(30), moment(30.2), [attendee(30, DRAFT, first_name=name)]),
    ])])


@pytest.fixture
def fake(settings):
    server = FakeEventbrite().start()
    settings.EVENTBRITE_API_BASE = server.api_base
    yield server
    server.stop()


@pytest.fixture
def eventbrite(world, fake):
    integrations = {}
    for tenant in (world.acme, world.globex):
        fake.add(look_alike(tenant.name, TOKENS[tenant.slug]))
        integrations[tenant.slug] = connect(tenant, "eventbrite", URL_TOKENS[tenant.slug],
                                            private_token=TOKENS[tenant.slug])
    return integrations


def state(tenant) -> TenantIntegration:
    with tenant_context(tenant):
        return TenantIntegration.objects.select_related("tenant").get(provider="eventbrite")


def sync(tenant, **kwargs):
    return run_sync(state(tenant).pk, str(tenant.pk), **kwargs)


def signups(tenant) -> dict[str, str]:
    with tenant_context(tenant):
        return dict(PendingSignup.objects.filter(source="eventbrite").values_list("external_id", "status"))


def payments(tenant) -> dict[str, tuple]:
    with tenant_context(tenant):
        return {p.payment_event_id: (p.amount, p.currency, p.status, p.amount_refunded, p.contact.email)
                for p in Payment.objects.filter(source="eventbrite").select_related("contact")}


def contact(tenant, email):
    with tenant_context(tenant):
        return Contact.objects.filter(email=email).first()


def attendee_requests(server, event_id=LIVE) -> list[dict]:
    with server.lock:
        return [r for r in server.requests if r["path"] == f"/v3/events/{event_id}/attendees/"]


def live_attendees(server, tenant) -> list[dict]:
    return server.accounts[TOKENS[tenant.slug]].organizations[0].events[0].attendees


FIRST_LINE = "1 organizations, 2 events, 6 attendees changed (1 cancelled or refunded, 1 checked in, 0 skipped)"


# --- what one sync does -----------------------------------------------------------------------------


def test_first_sync_files_attendees_of_live_and_recently_ended_events(world, eventbrite, fake):
    fake.page_size = 2  # five live attendees: three pages, along the continuation
    outcome = sync(world.acme)

    assert outcome.status == "synced", outcome.message
    assert outcome.line() == f"eventbrite: {FIRST_LINE}"
    assert signups(world.acme) == {"2900000001": "pending", "2900000002": "pending", "2900000003": "pending",
                                   "2900000004": "cancelled", "2900000005": "pending", "2900000010": "pending"}
    person1 = contact(world.acme, "person1@example.com")
    assert (person1.first_name, person1.last_name, person1.source) == ("Acme 1", "Attendee", "eventbrite")
    # A paid ticket is a payment in major units (2500 cents); the free one is none; the refunded one is refunded.
    paid = (Decimal("25.00"), "USD", "succeeded", Decimal("0"))
    assert payments(world.acme) == {
        "attendee:2900000001": (*paid, "person1@example.com"), "attendee:2900000002": (*paid, "person2@example.com"),
        "attendee:2900000004": (Decimal("25.00"), "USD", "refunded", Decimal("25.00"), "person4@example.com"),
        "attendee:2900000005": (*paid, "person5@example.com"), "attendee:2900000010": (*paid, "person10@example.com"),
    }
    assert [(e["kind"], e["attendee_id"], e["event_id"]) for e in contact(world.acme, "person2@example.com").activity] == [
        ("checked_in", "2900000002", LIVE)]
    with tenant_context(world.acme):
        row = PendingSignup.objects.get(external_id="2900000001")
    assert row.metadata == {"order_id": "4000000001", "event_id": LIVE, "ticket_class": "General Admission"}

    # Read: the events in the status filter and the window only, every page, with the tenant's token.
    pages = attendee_requests(fake)
    assert len(pages) == 3 and "continuation" not in pages[0]["query"] and pages[1]["query"]["continuation"]
    assert {r["path"] for r in fake.requests if "/attendees/" in r["path"]} == {
        f"/v3/events/{LIVE}/attendees/", f"/v3/events/{RECENT}/attendees/"}
    listings = [r for r in fake.requests if r["path"] == f"/v3/organizations/{ORG}/events/"]
    assert len(listings) == 2 and {r["query"]["status"] for r in listings} == {"live,started,ended"}
    assert {r["account"] for r in fake.requests} == {"Acme organizer"}
    # The first run goes EVENTBRITE_BACKFILL_DAYS back.
    first = datetime.strptime(pages[0]["query"]["changed_since"], STAMP).replace(tzinfo=dt_timezone.utc)
    assert abs((timezone.now() - first) - timedelta(days=365)) < timedelta(minutes=1)

    integration = state(world.acme)
    assert integration.last_synced_at and integration.last_sync_error == "" and integration.sync_started_at is None
    assert set(integration.sync_cursor) == {"changed_since"}
    assert signups(world.globex) == {} and payments(world.globex) == {}  # same ids at globex: nothing crossed


def test_the_second_run_asks_for_changes_since_the_first_and_a_refund_updates_the_payment(world, eventbrite, fake):
    before = timezone.now()
    assert sync(world.acme).status == "synced"
    mark = state(world.acme).sync_cursor["changed_since"]
    marked = datetime.strptime(mark, STAMP).replace(tzinfo=dt_timezone.utc)
    assert before - OVERLAP - timedelta(seconds=1) <= marked <= timezone.now() - OVERLAP

    with tenant_context(world.acme):  # the tenant approves person 1 meanwhile
        PendingSignup.objects.filter(external_id="2900000001").update(status="approved")
    live = live_attendees(fake, world.acme)
    live[0].update(refunded=True, cancelled=True, status="Not Attending", changed=moment(0))  # refunded on Eventbrite
    live[4].update(checked_in=True, status="Checked In", changed=moment(0))
    fake.requests.clear()

    outcome = sync(world.acme)

    assert outcome.line() == ("eventbrite: 1 organizations, 2 events, 2 attendees changed "
                              "(1 cancelled or refunded, 1 checked in, 0 skipped)")
    assert {r["query"]["changed_since"] for r in fake.requests if "/attendees/" in r["path"]} == {mark}
    assert payments(world.acme)["attendee:2900000001"] == (
        Decimal("25.00"), "USD", "refunded", Decimal("25.00"), "person1@example.com")
    assert signups(world.acme)["2900000001"] == "cancelled"  # the platform's refund wins over the approval
    assert [e["kind"] for e in contact(world.acme, "person5@example.com").activity] == ["checked_in"]
    assert payments(world.globex) == {}

    # The next run re-reads what changed within OVERLAP of the last start: idempotent, nothing twice.
    assert " 2 attendees changed " in sync(world.acme).line()
    with tenant_context(world.acme):
        assert Payment.objects.filter(source="eventbrite").count() == 5
        assert PendingSignup.objects.filter(source="eventbrite").count() == 6
    assert [e["kind"] for e in contact(world.acme, "person5@example.com").activity] == ["checked_in"]


def test_a_cancelled_ticket_cancels_its_payment_and_the_tenants_decision_otherwise_stands(world, eventbrite, fake):
    sync(world.acme)
    with tenant_context(world.acme):
        PendingSignup.objects.filter(external_id="2900000002").update(status="dismissed")
    live = live_attendees(fake, world.acme)
    live[0].update(cancelled=True, status="Not Attending", changed=moment(0))
    live[1].update(changed=moment(0))  # changed, still holding: the dismissal stands
    sync(world.acme)
    assert payments(world.acme)["attendee:2900000001"][2] == "canceled"
    assert signups(world.acme)["2900000001"] == "cancelled" and signups(world.acme)["2900000002"] == "dismissed"
    assert len(contact(world.acme, "person2@example.com").activity) == 1  # one check-in line, not two


def test_since_widens_the_window_and_the_changes(world, eventbrite, fake):
    day = (timezone.now() - timedelta(days=70)).date()
    call_command("sync_integration", "acme", "eventbrite", "--since", day.isoformat(), stdout=io.StringIO())
    assert "2900000020" in signups(world.acme)  # the event that ended sixty days ago
    assert {r["query"]["changed_since"] for r in fake.requests if "/attendees/" in r["path"]} == {
        f"{day.isoformat()}T00:00:00Z"}


def test_attendees_without_an_email_or_with_odd_money_are_skipped_not_fatal(world, eventbrite, fake):
    live = live_attendees(fake, world.acme)
    live[0]["profile"]["email"] = ""
    live[1]["costs"]["gross"]["value"] = 12.7  # not a whole number of cents
    live[4]["id"] = {"not": "an id"}
    outcome = sync(world.acme)
    assert outcome.status == "synced"
    assert outcome.message.endswith("(1 cancelled or refunded, 0 checked in, 3 skipped)")
    assert contact(world.acme, "person2@example.com") is None  # rolled back whole: no contact without its rows
    assert set(signups(world.acme)) == {"2900000003", "2900000004", "2900000010"}


def test_paging_is_bounded(world, eventbrite, fake, settings, caplog):
    settings.EVENTBRITE_MAX_PAGES = 2
    fake.page_size = 2
    outcome = sync(world.acme)
    assert outcome.status == "synced" and outcome.message.endswith("1 lists longer than 2 pages cut short")
    assert sum(key in signups(world.acme) for key in ("2900000001", "2900000002", "2900000003", "2900000004")) == 4
    assert "2900000005" not in signups(world.acme)
    assert "has more than 2 pages" in caplog.text and "tenant acme" in caplog.text


# --- two tenants ------------------------------------------------------------------------------------


def test_tenant_b_never_writes_tenant_a_rows(world, eventbrite, fake):
    assert sync(world.acme).status == "synced"
    with tenant_context(world.acme):
        before = {c.email: (c.first_name, c.updated_at) for c in Contact.objects.filter(source="eventbrite")}
        acme_payments = {p.pk: (p.status, p.updated_at) for p in Payment.objects.filter(source="eventbrite")}

    assert sync(world.globex).status == "synced"

    assert signups(world.globex).keys() == signups(world.acme).keys()  # the very same Eventbrite ids
    assert payments(world.globex).keys() == payments(world.acme).keys()
    assert contact(world.globex, "person1@example.com").first_name == "Globex 1"
    with tenant_context(world.acme):
        after = {c.email: (c.first_name, c.updated_at) for c in Contact.objects.filter(source="eventbrite")}
        assert {p.pk: (p.status, p.updated_at) for p in Payment.objects.filter(source="eventbrite")} == acme_payments
    assert after == before and after["person1@example.com"][0] == "Acme 1"
    assert {r["account"] for r in fake.requests} == {"Acme organizer", "Globex organizer"}
    assert state(world.globex).sync_cursor.keys() == {"changed_since"}


@requires_postgres
def test_rls_shows_each_tenant_only_its_own_eventbrite_rows(world, eventbrite, fake):
    sync(world.acme)
    sync(world.globex)
    for tenant in (world.acme, world.globex):
        with tenant_context(tenant), connection.cursor() as cursor:
            cursor.execute("SELECT count(*), count(DISTINCT tenant_id) FROM contacts_payment WHERE source = 'eventbrite'")
            assert cursor.fetchone() == (5, 1)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM contacts_payment")
        assert cursor.fetchone() == (0,)  # no tenant: nothing


# --- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("status, error, description", [
    (401, "INVALID_AUTH", "The OAuth token you provided was invalid."),
    (403, "NOT_AUTHORIZED", "You do not have permission to access the resource you requested."),
])
def test_a_refused_token_marks_the_integration_failing_with_eventbrites_reason(world, eventbrite, fake, caplog,
                                                                                status, error, description):
    caplog.set_level(logging.DEBUG)
    if status == 401:
        fake.accounts.pop(TOKENS["acme"])  # the token was revoked
    else:
        fake.fail("/users/me/organizations/", status=403,
                  body={"status_code": 403, "error": error, "error_description": description})

    outcome = sync(world.acme)

    assert outcome.status == "disabled" and not outcome.retryable
    integration = state(world.acme)
    reason = integration.sync_disabled_reason
    assert reason.startswith(f"Eventbrite refused the private token ({status} {error}: {description.rstrip('.')}) "
                             "for /v3/users/me/organizations/")
    assert integration.last_sync_error == reason and state_of(integration).key == "sync-failing"
    for text in (caplog.text, reason, json.dumps(integration.sync_cursor), outcome.message):
        assert TOKENS["acme"] not in text
    assert sync(world.acme).status == "skipped"  # stopped until the token changes
    with tenant_context(world.acme):
        integration = TenantIntegration.objects.get(provider="eventbrite")
        integration.set_values({"private_token": TOKENS["globex"]})  # a new token lifts the stop
        integration.save()
    assert sync(world.acme).status == "synced"


def test_eventbrites_words_are_scrubbed_of_the_token(world, eventbrite, fake):
    fake.fail("/users/me/organizations/", status=401,
              body={"error": "INVALID_AUTH", "error_description": f"token {TOKENS['acme']} is invalid"})
    outcome = sync(world.acme)
    assert TOKENS["acme"] not in outcome.message and "token [redacted] is invalid" in outcome.message


def test_a_429_is_transient_with_the_wait_and_the_next_run_resumes_with_the_unfinished_events(world, eventbrite, fake):
    fake.fail(f"/events/{RECENT}/attendees/", status=429, headers={"Retry-After": "7"},
              body={"status_code": 429, "error": "HIT_RATE_LIMIT", "error_description": "Hourly rate limit has been reached."})
    outcome = sync(world.acme)

    assert outcome.status == "failed" and outcome.retryable and outcome.retry_after == 7
    integration = state(world.acme)
    assert integration.last_sync_error == "Eventbrite is rate-limiting this token; resuming in 7 s"
    assert integration.sync_disabled_reason == "" and integration.sync_started_at is None
    pending = integration.sync_cursor["pending"]
    assert pending["done"] == [f"{ORG}:{LIVE}"]
    assert len(signups(world.acme)) == 5  # the live event's attendees are in

    fake.requests.clear()
    assert sync(world.acme).status == "synced"
    assert {r["path"] for r in fake.requests if "/attendees/" in r["path"]} == {f"/v3/events/{RECENT}/attendees/"}
    assert {r["query"]["changed_since"] for r in fake.requests if "/attendees/" in r["path"]} == {pending["changed_since"]}
    assert "2900000010" in signups(world.acme)
    # The mark is the stopped run's start, less the overlap: nothing changed meanwhile is skipped.
    assert state(world.acme).sync_cursor == {"changed_since": (
        datetime.strptime(pending["started"], STAMP) - OVERLAP).strftime(STAMP)}


def test_a_429_without_retry_after_waits_eventbrites_hour_kindly(world, eventbrite, fake):
    fake.fail("/users/me/organizations/", status=429, body={"error": "HIT_RATE_LIMIT"})
    outcome = sync(world.acme)
    assert outcome.retryable and outcome.retry_after == DEFAULT_RATE_LIMIT_WAIT


def test_a_5xx_is_retried_by_the_session_then_transient(world, eventbrite, fake):
    fake.fail(f"/organizations/{ORG}/events/", status=503)
    assert sync(world.acme).status == "synced"  # one 503, retried at once

    fake.fail(f"/events/{LIVE}/attendees/", status=500, times=20)
    outcome = sync(world.acme)
    assert outcome.status == "failed" and outcome.retryable
    assert state(world.acme).last_sync_error == f"Eventbrite answered 500 to /v3/events/{LIVE}/attendees/"
    assert state(world.acme).sync_disabled_reason == ""


def test_an_event_whose_attendees_are_gone_is_skipped(world, eventbrite, fake):
    fake.fail(f"/events/{RECENT}/attendees/", status=404, body={"error": "NOT_FOUND", "error_description": "gone"})
    outcome = sync(world.acme)
    assert outcome.status == "synced" and outcome.message.endswith("; 1 events whose attendees Eventbrite refused")


def test_an_unreachable_eventbrite_is_transient_and_names_no_url(world, eventbrite, settings, caplog):
    settings.EVENTBRITE_API_BASE = "http://127.0.0.1:1/v3"
    outcome = sync(world.acme)
    assert outcome.status == "failed" and outcome.retryable
    assert outcome.message == "Eventbrite could not be reached for /v3/users/me/organizations/ (the connection failed)"
    assert TOKENS["acme"] not in caplog.text


# --- webhook and sync find the same row ------------------------------------------------------------


def deliver(client, tenant, fake, action: str, api_url: str, capture) -> None:
    body = json.dumps({"config": {"action": action, "webhook_id": "11894523"}, "api_url": api_url}).encode()
    with capture(execute=True):
        response = client.post(webhook_path(tenant, "eventbrite") + f"?token={URL_TOKENS[tenant.slug]}", data=body,
                               content_type="application/json", HTTP_X_EVENTBRITE_DELIVERY=str(uuid.uuid4()))
    assert response.status_code == 200, response.content
    with tenant_context(tenant):
        assert WebhookLog.objects.filter(source="eventbrite").latest("pk").status == WebhookLog.Status.PROCESSED


def one_of_each(tenant, attendee_id: str, email: str) -> None:
    with tenant_context(tenant):
        assert Contact.objects.filter(email=email).count() == 1
        assert PendingSignup.objects.filter(source="eventbrite", external_id=attendee_id).count() == 1
        assert Payment.objects.filter(source="eventbrite", metadata__order_id=f"40{attendee_id[2:]}").count() == 1


def test_webhook_then_sync_is_one_contact_one_signup_one_payment(world, eventbrite, fake, client,
                                                                 django_capture_on_commit_callbacks):
    deliver(client, world.acme, fake, "order.placed", f"{fake.api_base}/orders/4000000001/",
            django_capture_on_commit_callbacks)
    assert signups(world.acme) == {"2900000001": "pending"}
    assert list(payments(world.acme)) == ["attendee:2900000001"]  # the ticket's own payment, not the order's

    assert sync(world.acme).status == "synced"

    one_of_each(world.acme, "2900000001", "person1@example.com")
    assert len(signups(world.acme)) == 6 and len(payments(world.acme)) == 5
    assert signups(world.globex) == {}


def test_sync_then_webhook_refund_is_one_row_refunded(world, eventbrite, fake, client,
                                                      django_capture_on_commit_callbacks):
    assert sync(world.acme).status == "synced"
    deliver(client, world.acme, fake, "order.placed", f"{fake.api_base}/orders/4000000001/",
            django_capture_on_commit_callbacks)
    one_of_each(world.acme, "2900000001", "person1@example.com")

    live_attendees(fake, world.acme)[0].update(refunded=True, cancelled=True, changed=moment(0))
    deliver(client, world.acme, fake, "order.refunded", f"{fake.api_base}/orders/4000000001/",
            django_capture_on_commit_callbacks)
    one_of_each(world.acme, "2900000001", "person1@example.com")
    assert payments(world.acme)["attendee:2900000001"][2:4] == ("refunded", Decimal("25.00"))
    assert signups(world.acme)["2900000001"] == "cancelled"
    assert sync(world.acme).status == "synced"  # reads the refund again: still one row, refunded
    one_of_each(world.acme, "2900000001", "person1@example.com")
    assert payments(world.globex) == {}


def test_an_order_booked_whole_by_the_webhook_is_not_booked_again_per_ticket(world, eventbrite, fake, client,
                                                                             django_capture_on_commit_callbacks):
    """An order whose attendees carried no price when the webhook fetched it is one payment for the
    order; the sync, which sees the tickets' prices, adds none for its tickets."""
    for a in live_attendees(fake, world.acme):
        a["order_id"] = "4000000001"
    fake.ticket_costs_in_orders = False
    deliver(client, world.acme, fake, "order.placed", f"{fake.api_base}/orders/4000000001/",
            django_capture_on_commit_callbacks)
    assert payments(world.acme) == {"order:4000000001": (
        Decimal("100.00"), "USD", "succeeded", Decimal("0"), "person1@example.com")}  # five tickets, one free

    assert sync(world.acme).status == "synced"
    assert sorted(payments(world.acme)) == ["attendee:2900000010", "order:4000000001"]


# --- schedule, command and setup -----------------------------------------------------------------------


def test_the_beat_syncs_eventbrite_hourly(world, eventbrite, fake, settings, django_capture_on_commit_callbacks):
    assert get_provider("eventbrite").sync_interval == timedelta(minutes=60)
    with django_capture_on_commit_callbacks(execute=True):
        assert sync_due_integrations() == 2
    assert len(signups(world.acme)) == 6 and len(signups(world.globex)) == 6
    with django_capture_on_commit_callbacks(execute=True):
        assert sync_due_integrations() == 0  # synced a moment ago
    with tenant_context(world.globex):
        TenantIntegration.objects.filter(provider="eventbrite").update(last_synced_at=timezone.now() - timedelta(minutes=61))
    with django_capture_on_commit_callbacks(execute=True):
        assert sync_due_integrations() == 1


def test_command_prints_the_summary_as_its_last_line(world, eventbrite, fake, capsys):
    call_command("sync_integration", "acme", "eventbrite")
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"eventbrite: {FIRST_LINE}"
    assert signups(world.globex) == {}


@pytest.mark.parametrize("args, message", [
    (["nope", "eventbrite"], "^no tenant with slug 'nope'$"),
    (["acme", "eventbrite", "--since", "last week"], "--since must be a date as YYYY-MM-DD"),
    (["acme", "eventbrite", "--since", "2026-02-30"], "--since must be a date as YYYY-MM-DD"),
    (["acme", "eventbrites"], "^unknown provider 'eventbrites'"),
])
def test_command_refuses_bad_input_in_one_line(world, eventbrite, args, message):
    with pytest.raises(CommandError, match=message) as error:
        call_command("sync_integration", *args)
    assert "\n" not in str(error.value)


def test_command_refuses_eventbrite_not_connected_and_a_refused_token_in_one_line(world, fake):
    with pytest.raises(CommandError, match="^Eventbrite is not connected for acme$"):
        call_command("sync_integration", "acme", "eventbrite")
    connect(world.acme, "eventbrite", URL_TOKENS["acme"], private_token="EBNOSUCHTOKEN000000000000")
    with pytest.raises(CommandError) as error:
        call_command("sync_integration", "acme", "eventbrite")
    message = str(error.value)
    assert message.startswith("eventbrite: Eventbrite refused the private token (401 INVALID_AUTH")
    assert "\n" not in message and "EBNOSUCHTOKEN" not in message


def test_the_setup_page_says_the_token_also_syncs(world):
    steps = " ".join(get_provider("eventbrite").setup_steps("https://hub.example/api/webhooks/t/eventbrite/"))
    assert "attendees are also synced every 60 minutes" in steps


# --- no transaction while Eventbrite is asked -----------------------------------------------------------


DATABASES = [alias for alias in ("default", "owner") if alias in django_settings.DATABASES]


@pytest.mark.django_db(transaction=True, databases=DATABASES)
def test_no_transaction_is_open_while_eventbrite_is_asked(fake):
    tenant = Tenant.objects.create(slug=f"eb-{uuid.uuid4().hex[:8]}", name="Outside")
    try:
        fake.add(look_alike("Outside", TOKENS["acme"]))
        fake.page_size = 2
        connect(tenant, "eventbrite", URL_TOKENS["acme"], private_token=TOKENS["acme"])
        with tenant_context(tenant):
            integration = TenantIntegration.objects.select_related("tenant").get(provider="eventbrite")
        seen = []
        session = make_session()
        session.hooks["response"].append(lambda response, *a, **k: seen.append(connection.in_atomic_block))
        claimed = claim(integration.pk, str(tenant.pk), timezone.now(), only_if_due=False)
        EventbriteSync(claimed, client=EventbriteClient(TOKENS["acme"], session=session)).run()
        assert len(seen) == 7 and not any(seen)  # organizations, two pages of events, three of attendees, one more
        with tenant_context(tenant):
            assert PendingSignup.objects.filter(source="eventbrite").count() == 6
    finally:
        for alias in DATABASES:
            connections[alias].close()
