"""The Stripe backfill against a local fake of ``GET /v1/events`` (``fake_api.FakeStripe``): what a
webhook outage lost is stored and processed once, what arrived is a duplicate, and nothing of one
tenant reaches another.

acme and globex each have their own key and look-alike events (the same event ids, the same
charges): every test about data checks the other tenant too. Events are legacy charges
(``charge.succeeded`` without a PaymentIntent), which name their payer: no lookups are needed, so
the fake answers ``/v1/events`` only and any other call fails the test. A spy on the handler counts
how often each event is processed.
"""

import io
import json
import threading
import time
import uuid
from datetime import UTC, date, datetime

import pytest
import responses
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections
from django.test import Client

from conftest import requires_postgres
from contacts.models import Payment
from integrations.models import TenantIntegration
from integrations.providers.stripe import handlers as stripe_handlers
from integrations.providers.stripe.backfill import MAX_TYPES_PER_REQUEST, SKIPPED
from integrations.providers.stripe.fake_api import FakeStripe, event
from integrations.state import state_of
from integrations.sync import run_sync
from tenants.context import tenant_context
from tenants.models import Tenant
from webhooks.models import WebhookLog
from webhooks.testing import connect, webhook_path

API = "https://api.stripe.test"
KEYS = {"acme": "rk_test_acme_backfill_0123456789ab", "globex": "rk_test_globex_backfill_0123456789"}
SIGNING = {"acme": "whsec_acme_backfill_0123456789abcdef", "globex": "whsec_globex_backfill_0123456789abcd"}
T0 = int(time.time()) - 6 * 3600  # the events happened in the last hours


def charge_event(n: int, tenant_slug: str = "acme", created: int | None = None) -> dict:
    """A legacy charge (no PaymentIntent): one payment keyed on the charge, payer in billing_details."""
    charge = {
        "id": f"ch_backfill{n:06d}", "object": "charge", "amount": 1000 + n, "amount_captured": 1000 + n,
        "amount_refunded": 0, "captured": True, "created": created or T0 + n, "currency": "eur", "customer": None,
        "paid": True, "payment_intent": None, "refunded": False, "status": "succeeded", "livemode": False,
        "billing_details": {"email": f"payer{n}@{tenant_slug}.example", "name": f"Payer {n}", "phone": None},
        "metadata": {}, "description": f"Class {n}",
    }
    return event(f"evt_backfill{n:06d}", "charge.succeeded", created or T0 + n, charge)


def body_of(evt: dict) -> bytes:
    return json.dumps(evt).encode()


@pytest.fixture
def stripe(settings):
    settings.STRIPE_API_BASE = API
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = FakeStripe(API).install(mock)
        fake.accounts.update({KEYS["acme"]: [], KEYS["globex"]: []})
        yield fake


@pytest.fixture
def tenants(world):
    for tenant in (world.acme, world.globex):
        integration = connect(tenant, "stripe", SIGNING[tenant.slug], secret_key=KEYS[tenant.slug])
        with tenant_context(tenant):  # connected before the events happened
            TenantIntegration.objects.filter(pk=integration.pk).update(
                created_at=datetime.fromtimestamp(T0 - 60, UTC))
    return world


@pytest.fixture
def processed(monkeypatch):
    """How often each event id went through the charge.succeeded handler."""
    seen: dict[str, int] = {}
    original = stripe_handlers.HANDLERS["charge.succeeded"]

    def counting(evt):
        seen[evt.log.event_id] = seen.get(evt.log.event_id, 0) + 1
        return original(evt)

    monkeypatch.setitem(stripe_handlers.HANDLERS, "charge.succeeded", counting)
    return seen


def integration_of(tenant) -> TenantIntegration:
    with tenant_context(tenant):
        return TenantIntegration.objects.get(provider="stripe")


def backfill(tenant, capture, since=None, process=True, published=None):
    """One run. ``process``: the pages' on-commit publishes run the worker's processing (else they
    are only collected, into ``published`` when given: what would have gone to the queue)."""
    with capture(execute=process) as callbacks:
        outcome = run_sync(integration_of(tenant).pk, str(tenant.pk), since=since)
    if published is not None:
        published.extend(callbacks)
    return outcome


def deliver(client, tenant, evt: dict, capture):
    from integrations.providers.stripe.tests import stripe_signature

    body = body_of(evt)
    with capture(execute=True):
        response = client.post(webhook_path(tenant, "stripe"), data=body, content_type="application/json",
                               HTTP_STRIPE_SIGNATURE=stripe_signature(body, SIGNING[tenant.slug]))
    assert response.status_code == 200, response.content
    return response.json()


def rows(tenant) -> dict[str, WebhookLog]:
    with tenant_context(tenant):
        return {r.event_id: r for r in WebhookLog.objects.filter(source="stripe")}


def payments(tenant) -> dict[str, Payment]:
    with tenant_context(tenant):
        # (the world's look-alike payment, pi_same, is not the backfill's)
        return {p.external_id: p for p in Payment.objects.select_related("contact").filter(source="stripe")
                .exclude(external_id="pi_same")}


# --- recovering what was lost ------------------------------------------------------------------------
def test_exactly_the_missing_events_are_recovered_and_processed_once(
        tenants, stripe, processed, client, django_capture_on_commit_callbacks):
    events = [charge_event(n) for n in range(1, 6)]
    stripe.add(KEYS["acme"], *events)
    for evt in events[:3]:  # these arrived; 4 and 5 were lost during an outage
        deliver(client, tenants.acme, evt, django_capture_on_commit_callbacks)

    outcome = backfill(tenants.acme, django_capture_on_commit_callbacks)

    assert (outcome.status, outcome.line()) == ("synced", "stripe: recovered 2 of 5 events")
    assert outcome.result.counts == {"seen": 5, "recovered": 2}
    assert processed == {e["id"]: 1 for e in events}  # every event once, the lost ones included
    stored = rows(tenants.acme)
    assert {k: (r.origin, r.status, r.delivery_count) for k, r in stored.items()} == {
        **{e["id"]: ("delivery", "processed", 1) for e in events[:3]},
        **{e["id"]: ("backfill", "processed", 0) for e in events[3:]},
    }
    recovered = stored["evt_backfill000004"]
    assert (recovered.headers, recovered.remote_addr) == ({}, None)  # no signature was ever checked
    assert json.loads(bytes(recovered.body)) == events[3]
    assert payments(tenants.acme)["ch_backfill000005"].contact.email == "payer5@acme.example"
    assert rows(tenants.globex) == {} and payments(tenants.globex) == {}


def test_the_next_run_starts_at_the_high_water_mark_and_finds_only_new_events(
        tenants, stripe, processed, django_capture_on_commit_callbacks):
    stripe.add(KEYS["acme"], charge_event(1), charge_event(2, created=T0 + 5000))
    assert backfill(tenants.acme, django_capture_on_commit_callbacks).line() == "stripe: recovered 2 of 2 events"
    first_query = stripe.requests[0]["query"]
    assert first_query["created[gte]"] == str(T0 - 60)  # the first run: since the integration was made
    assert integration_of(tenants.acme).sync_cursor["created"] == T0 + 5000

    stripe.add(KEYS["acme"], charge_event(3, created=T0 + 9000))
    assert backfill(tenants.acme, django_capture_on_commit_callbacks).line() == "stripe: recovered 1 of 2 events"
    later = stripe.requests[-1]["query"]
    assert later["created[gte]"] == str(T0 + 5000 - settings.STRIPE_BACKFILL_OVERLAP_SECONDS)
    assert processed == {"evt_backfill000001": 1, "evt_backfill000002": 1, "evt_backfill000003": 1}
    assert integration_of(tenants.acme).sync_cursor["created"] == T0 + 9000


def test_stripes_delivery_after_the_backfill_is_a_duplicate(
        tenants, stripe, processed, client, django_capture_on_commit_callbacks):
    """Stripe retries for three days: the delivery of an event the backfill already stored is
    counted on that row and not processed again."""
    evt = charge_event(7)
    stripe.add(KEYS["acme"], evt)
    backfill(tenants.acme, django_capture_on_commit_callbacks)
    assert deliver(client, tenants.acme, evt, django_capture_on_commit_callbacks)["status"] == "duplicate"
    row = rows(tenants.acme)[evt["id"]]
    assert (row.origin, row.delivery_count, row.attempts) == ("backfill", 1, 1)
    assert processed == {evt["id"]: 1}


def test_a_delivery_arriving_while_the_backfill_runs_is_processed_once(
        tenants, stripe, processed, client, django_capture_on_commit_callbacks):
    """The delivery lands between Stripe's answer and the backfill's insert: the unique key makes
    the backfill's copy the duplicate."""
    events = [charge_event(n) for n in (1, 2)]
    stripe.add(KEYS["acme"], *events)
    stripe.before_page = lambda page: deliver(client, tenants.acme, events[0], django_capture_on_commit_callbacks)
    outcome = backfill(tenants.acme, django_capture_on_commit_callbacks)
    assert outcome.line() == "stripe: recovered 1 of 2 events"
    assert processed == {events[0]["id"]: 1, events[1]["id"]: 1}
    assert rows(tenants.acme)[events[0]["id"]].origin == "delivery"


def test_only_the_types_we_handle_are_asked_for_in_groups_stripe_accepts(tenants, stripe, django_capture_on_commit_callbacks):
    ignored = event("evt_backfill_customer", "customer.created", T0 + 5, {"id": "cus_1", "object": "customer"})
    stripe.add(KEYS["acme"], charge_event(1), ignored)
    assert backfill(tenants.acme, django_capture_on_commit_callbacks).line() == "stripe: recovered 1 of 1 events"
    asked = [set(r["query"]["types[]"]) for r in stripe.requests]
    assert all(len(types) <= MAX_TYPES_PER_REQUEST for types in asked)
    assert set().union(*asked) == set(stripe_handlers.HANDLERS)  # every handled type, nothing else
    assert set(rows(tenants.acme)) == {"evt_backfill000001"}


# --- paging ---------------------------------------------------------------------------------------------
def stored_once(tenant, events) -> bool:
    stored = rows(tenant)
    return set(stored) == {e["id"] for e in events} and {(r.origin, r.status) for r in stored.values()} == {
        ("backfill", "received")}


def test_pages_of_100_are_followed_with_starting_after(tenants, stripe, django_capture_on_commit_callbacks):
    """250 events: three pages, each after the last id of the one before. (Stored and published
    here, not processed: processing is the other tests' business and would only cost time.)"""
    events = [charge_event(n) for n in range(1, 251)]
    stripe.add(KEYS["acme"], *events)
    published = []
    outcome = backfill(tenants.acme, django_capture_on_commit_callbacks, process=False, published=published)
    assert outcome.line() == "stripe: recovered 250 of 250 events"
    charge_pages = [r["query"] for r in stripe.requests if "charge.succeeded" in r["query"]["types[]"]]
    assert [q.get("starting_after") for q in charge_pages] == [None, "evt_backfill000151", "evt_backfill000051"]
    assert {q["limit"] for q in charge_pages} == {"100"}
    assert stored_once(tenants.acme, events)
    assert len(published) == 250  # one publish per recovered event


def test_a_429_mid_way_resumes_from_the_page_it_reached(tenants, stripe, django_capture_on_commit_callbacks):
    events = [charge_event(n) for n in range(1, 251)]
    stripe.add(KEYS["acme"], *events)
    group = next(i for i, r in enumerate(sorted(stripe_handlers.HANDLERS)) if r == "charge.succeeded") // 20
    stripe.fail(429, retry_after="7", after=group + 1)  # the other group's page(s), then the first charge page
    published = []
    outcome = backfill(tenants.acme, django_capture_on_commit_callbacks, process=False, published=published)
    assert (outcome.status, outcome.retryable, outcome.retry_after) == ("failed", True, 7.0)
    assert "429" in outcome.message
    integration = integration_of(tenants.acme)
    assert integration.sync_cursor["run"]["after"] == "evt_backfill000151"
    assert integration.sync_cursor["run"]["recovered"] == 100
    assert state_of(integration).key == "sync-failing"

    assert len(published) == 100
    outcome = backfill(tenants.acme, django_capture_on_commit_callbacks, process=False, published=published)
    assert outcome.line() == "stripe: recovered 250 of 250 events"  # the counts go on from the first run
    resumed = [r["query"].get("starting_after") for r in stripe.requests[2 + group:]
               if "charge.succeeded" in r["query"]["types[]"]]
    assert resumed == ["evt_backfill000151", "evt_backfill000051"]  # from where it stopped, not from the top
    assert stored_once(tenants.acme, events) and len(published) == 250
    assert state_of(integration_of(tenants.acme)).key != "sync-failing"


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_5xx_is_retried_later_with_the_sentence_kept(tenants, stripe, django_capture_on_commit_callbacks, status):
    stripe.add(KEYS["acme"], charge_event(1))
    stripe.fail(status)
    outcome = backfill(tenants.acme, django_capture_on_commit_callbacks)
    assert (outcome.status, outcome.retryable) == ("failed", True)
    integration = integration_of(tenants.acme)
    assert integration.last_sync_error == f"Stripe answered {status} to GET /v1/events"
    assert integration.sync_disabled_reason == "" and rows(tenants.acme) == {}
    assert backfill(tenants.acme, django_capture_on_commit_callbacks).line() == "stripe: recovered 1 of 1 events"


def test_an_unreachable_stripe_is_retried_later(tenants, settings, django_capture_on_commit_callbacks):
    settings.STRIPE_API_BASE = API
    with responses.RequestsMock() as mock:
        mock.get(f"{API}/v1/events", body=__import__("requests").ConnectionError("refused"))
        outcome = backfill(tenants.acme, django_capture_on_commit_callbacks)
    assert (outcome.status, outcome.retryable, outcome.message) == ("failed", True, "Stripe could not be reached (the connection failed)")


def test_a_refused_key_stops_the_backfill_until_the_credentials_change(tenants, stripe, caplog,
                                                                       django_capture_on_commit_callbacks):
    stripe.accounts.pop(KEYS["acme"])  # Stripe no longer knows acme's key: 401
    outcome = backfill(tenants.acme, django_capture_on_commit_callbacks)
    assert outcome.status == "disabled"
    integration = integration_of(tenants.acme)
    assert "401" in integration.sync_disabled_reason
    assert state_of(integration).key == "sync-failing"
    everything = " ".join([integration.sync_disabled_reason, integration.last_sync_error, outcome.message, caplog.text])
    assert KEYS["acme"] not in everything and KEYS["acme"][-8:] not in everything
    assert backfill(tenants.acme, django_capture_on_commit_callbacks).status == "skipped"  # stopped
    assert len(stripe.requests) == 1

    with tenant_context(tenants.acme):
        integration.set_values({"secret_key": "rk_test_acme_backfill_new_0123456"})
        integration.save()
    stripe.add("rk_test_acme_backfill_new_0123456", charge_event(1))
    assert backfill(tenants.acme, django_capture_on_commit_callbacks).line() == "stripe: recovered 1 of 1 events"


def test_two_tenants_never_mix(tenants, stripe, processed, django_capture_on_commit_callbacks):
    """The same event ids at both accounts: each tenant's run asks with its own key and stores its
    own events only."""
    stripe.add(KEYS["acme"], *(charge_event(n, "acme") for n in (1, 2)))
    stripe.add(KEYS["globex"], *(charge_event(n, "globex") for n in (1, 2, 3)))
    assert backfill(tenants.acme, django_capture_on_commit_callbacks).line() == "stripe: recovered 2 of 2 events"
    assert {r["key_ok"] for r in stripe.requests} == {True}
    assert rows(tenants.globex) == {}
    assert backfill(tenants.globex, django_capture_on_commit_callbacks).line() == "stripe: recovered 3 of 3 events"
    assert {p.contact.email for p in payments(tenants.acme).values()} == {"payer1@acme.example", "payer2@acme.example"}
    assert {p.contact.email for p in payments(tenants.globex).values()} == {
        "payer1@globex.example", "payer2@globex.example", "payer3@globex.example"}
    assert processed == {"evt_backfill000001": 2, "evt_backfill000002": 2, "evt_backfill000003": 1}  # once per tenant


# --- no key, the command, the setup page, the log -------------------------------------------------------
def test_without_a_secret_key_the_backfill_is_skipped_and_the_setup_page_says_why(
        world, stripe, client, django_capture_on_commit_callbacks):
    connect(world.acme, "stripe", SIGNING["acme"])
    outcome = backfill(world.acme, django_capture_on_commit_callbacks)
    assert (outcome.status, outcome.message) == ("synced", SKIPPED)
    assert stripe.requests == []
    integration = integration_of(world.acme)
    assert state_of(integration).key != "sync-failing" and integration.last_sync_error == ""
    client.force_login(world.alice)
    page = client.get("/setup/stripe/").content.decode()
    assert "Missed events are not backfilled: no secret key is set." in page


def test_the_setup_page_tells_what_the_last_run_recovered(tenants, stripe, client, django_capture_on_commit_callbacks):
    stripe.add(KEYS["acme"], charge_event(1), charge_event(2))
    backfill(tenants.acme, django_capture_on_commit_callbacks)
    client.force_login(tenants.alice)
    page = client.get("/setup/stripe/").content.decode()
    assert "the last run recovered 2 of 2 events listed by Stripe" in page


def test_the_command_recovers_since_a_day_and_prints_the_count(tenants, stripe, django_capture_on_commit_callbacks):
    old = int(datetime(2026, 11, 20, 12, tzinfo=UTC).timestamp())
    stripe.add(KEYS["acme"], charge_event(1, created=old), charge_event(2))
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("sync_integration", "acme", "stripe", "--since", "2026-11-20", stdout=out)
    assert out.getvalue().strip().splitlines()[-1] == "stripe: recovered 2 of 2 events"
    assert stripe.requests[0]["query"]["created[gte]"] == str(int(datetime(2026, 11, 20, tzinfo=UTC).timestamp()))


@pytest.mark.parametrize("args, words", [
    (["nosuch", "stripe"], "no tenant with slug 'nosuch'"),
    (["acme", "stripe", "--since", "20/11/2026"], "--since must be a date as YYYY-MM-DD"),
    (["acme", "stripe", "--since", "2026-11-20\x00"], "--since must be a date as YYYY-MM-DD"),
    (["acme", "strype"], "unknown provider 'strype'"),
])
def test_the_command_refuses_bad_input_in_one_line(tenants, stripe, args, words):
    with pytest.raises(CommandError, match=words.replace("(", r"\(")):
        call_command("sync_integration", *args, stdout=io.StringIO())
    assert stripe.requests == []


def test_the_command_fails_in_one_line_when_stripe_refuses_the_key(tenants, stripe):
    stripe.accounts.pop(KEYS["acme"])
    with pytest.raises(CommandError, match=r"^stripe: Stripe refused the secret key \(401\)"):
        call_command("sync_integration", "acme", "stripe", stdout=io.StringIO())


def test_the_command_for_a_tenant_without_stripe_refuses(world, stripe):
    with pytest.raises(CommandError, match="Stripe is not connected for globex"):
        call_command("sync_integration", "globex", "stripe", stdout=io.StringIO())


def test_the_log_shows_a_recovered_event_as_backfilled(tenants, stripe, client, django_capture_on_commit_callbacks):
    stripe.add(KEYS["acme"], charge_event(1))
    backfill(tenants.acme, django_capture_on_commit_callbacks)
    row = rows(tenants.acme)["evt_backfill000001"]
    client.force_login(tenants.alice)
    listing = client.get("/webhooks/").content.decode()
    assert 'data-testid="origin-backfill"' in listing
    detail = client.get(f"/webhooks/{row.pk}/").content.decode()
    assert "backfill (fetched from the platform" in detail and "never arrived as a webhook delivery" in detail
    api = client.get("/api/v1/webhook-events/").json()["results"]
    assert {r["event_id"]: r["origin"] for r in api}["evt_backfill000001"] == "backfill"
    assert {r["origin"] for r in api if r["event_id"] != "evt_backfill000001"} == {"delivery"}  # the world's own


def test_the_daily_schedule_fans_the_backfill_out(tenants, settings):
    from integrations.registry import get_provider
    from integrations.sync import syncing_providers

    assert "stripe" in syncing_providers()
    assert get_provider("stripe").sync_interval.total_seconds() == settings.STRIPE_BACKFILL_INTERVAL_HOURS * 3600 == 86400


# --- a real race: the delivery committed by another connection while the backfill runs ---------------------
DATABASES = [alias for alias in ("default", "owner") if alias in settings.DATABASES]


@requires_postgres
@pytest.mark.django_db(transaction=True, databases=DATABASES)
def test_a_delivery_committed_by_another_worker_mid_backfill_is_processed_once(settings, processed):
    """Stripe is asked outside any transaction; while it answers, the webhook delivery of one of the
    events is received and processed on another connection and committed. The backfill's insert
    of that event then meets the unique key: it is a duplicate, and nothing is processed twice."""
    settings.STRIPE_API_BASE = API
    tenant = Tenant.objects.create(slug=f"bf-{uuid.uuid4().hex[:8]}", name="Backfill race")
    integration = connect(tenant, "stripe", SIGNING["acme"], secret_key=KEYS["acme"])
    with tenant_context(tenant):
        TenantIntegration.objects.filter(pk=integration.pk).update(created_at=datetime.fromtimestamp(T0 - 60, UTC))
    events = [charge_event(n) for n in (1, 2)]
    seen_in_transaction = []

    def delivery_from_another_worker(page):
        seen_in_transaction.append(connection.in_atomic_block)

        def post():
            from integrations.providers.stripe.tests import stripe_signature

            body = body_of(events[0])
            Client().post(webhook_path(tenant, "stripe"), data=body, content_type="application/json",
                          HTTP_STRIPE_SIGNATURE=stripe_signature(body, SIGNING["acme"]))
            connections.close_all()

        worker = threading.Thread(target=post)
        worker.start()
        worker.join(timeout=30)

    try:
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            fake = FakeStripe(API).install(mock)
            fake.add(KEYS["acme"], *events)
            fake.before_page = delivery_from_another_worker
            outcome = run_sync(integration.pk, str(tenant.pk))
        assert outcome.line() == "stripe: recovered 1 of 2 events"
        assert seen_in_transaction and not any(seen_in_transaction)  # Stripe was asked outside transactions
        stored = rows(tenant)
        assert {k: r.origin for k, r in stored.items()} == {events[0]["id"]: "delivery", events[1]["id"]: "backfill"}
        assert {k: r.status for k, r in stored.items()} == {e["id"]: "processed" for e in events}
        assert processed == {e["id"]: 1 for e in events}
    finally:
        for alias in DATABASES:
            connections[alias].close()


def test_since_is_a_day_in_utc():
    from integrations.providers.stripe.backfill import StripeBackfill

    class Stub:
        provider_obj = __import__("integrations.registry", fromlist=["get_provider"]).get_provider("stripe")
        sync_cursor = {}
        created_at = None

    run = StripeBackfill(Stub(), since=date(2026, 11, 1))._resume_or_start({})
    assert run["gte"] == int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())
