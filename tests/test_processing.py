"""The processing state machine: received → processing → processed; a failing handler → failed
(will retry, with backoff) → dead; a processed row is never processed twice; the sweeper
publishes what a lost publish left behind.

A failure worth retrying comes from a platform registered for these tests only (``Flaky``): its
handler upserts a contact and then fails as a call to a platform that is down does (its API
answered 503), so the rollback of what it wrote is part of what is tested. It does not depend on
how any real provider's handler or schema treats odd input (test_fuzz.py does that).

How a worker's retries are shown: ``Task.apply()`` runs a task the way the in-process mode does
(``request.is_eager``), and ``process_webhook`` deliberately never sleeps there and counts attempts
on the row instead of Celery's retry number.
So the worker's N-th delivery is reproduced with the request a worker would set
(``push_request(retries=N, is_eager=False, called_directly=False)``) around the real task body;
the only thing replaced is the broker publish of the retry message, which has no broker to go
to in tests and is recorded instead.
"""

import json
import random
from contextlib import contextmanager
from datetime import timedelta

import pytest
from celery.exceptions import Retry
from django.db import DataError
from django.test import override_settings
from django.utils import timezone

from conftest import requires_postgres
from contacts.models import Contact, Payment
from contacts.services import upsert_contact
from integrations.models import TenantIntegration
from integrations.http import ApiError
from integrations.providers.base import Provider, WebhookAuth, hmac_sha256_hex
from integrations.registry import PROVIDERS
from tenants.context import operator_context, tenant_context
from webhooks import processing
from webhooks.models import WebhookLog
from webhooks.processing import retry_delay
from webhooks.tasks import process_webhook, sweep_webhooks
from webhooks.testing import connect, fixture_bytes, post_stripe, rows, webhook_path

CHECKOUT_PI = "pi_3QxCheckout00000001"


FLAKY_TOKEN = "flaky-token-0123456789abcdefghij"
FLAKY_EMAIL = "broken.checkout@example.com"
FLAKY_ERROR = "Flaky answered 503 to GET /v1/orders/1"


def flaky_order(event) -> None:
    upsert_contact(source="flaky", email=FLAKY_EMAIL)
    raise ApiError("Flaky answered 503 to GET /v1/orders/1")


class FlakyPlatform(Provider):
    """A token platform whose one event type fails after writing, the way a platform that is down
    fails: worth retrying."""

    name, label, webhook_auth = "flaky", "Flaky", WebhookAuth.TOKEN
    handlers = {"order": flaky_order}

    def event_id(self, payload, request):
        return str(payload["id"])


@pytest.fixture
def fail(stripe, client, django_capture_on_commit_callbacks, monkeypatch):
    """Deliver an ``order`` of the Flaky platform (connected at both tenants): returns its row,
    ``failed`` after its first attempt; ``process=False`` leaves it ``received``."""
    monkeypatch.setitem(PROVIDERS, "flaky", FlakyPlatform())
    for tenant in (stripe.acme, stripe.globex):
        connect(tenant, "flaky", FLAKY_TOKEN)
    sent = iter(range(1, 1000))

    def send(tenant, process: bool = True) -> WebhookLog:
        body = json.dumps({"type": "order", "id": f"order-{next(sent)}"}).encode()
        with django_capture_on_commit_callbacks(execute=process):
            response = client.post(webhook_path(tenant, "flaky"), data=body, content_type="application/json",
                                   HTTP_X_WEBHOOK_TOKEN=FLAKY_TOKEN)
        assert response.status_code == 200, response.content
        return rows(tenant, source="flaky")[-1]

    return send


@pytest.fixture
def post(client, django_capture_on_commit_callbacks):
    """POST a signed Stripe body. ``process=False`` stores it without running what is queued on
    commit: the publish is lost, as when the broker was down, and the row stays ``received``."""

    def send(tenant, body: bytes | None = None, process: bool = True):
        body = fixture_bytes("stripe", "checkout_session_completed") if body is None else body
        if process:
            with django_capture_on_commit_callbacks(execute=True):
                response = post_stripe(client, tenant, body)
        else:
            response = post_stripe(client, tenant, body)
        assert response.status_code == 200, response.content
        return rows(tenant, source="stripe", event_id=json.loads(body)["id"])[0]

    return send


def reload(tenant, row) -> WebhookLog:
    with tenant_context(tenant):
        return WebhookLog.objects.get(pk=row.pk)


def integration_of(tenant, provider: str) -> TenantIntegration:
    with tenant_context(tenant):
        return TenantIntegration.objects.get(provider=provider)


@contextmanager
def worker_delivery(args: tuple, retries: int):
    """``process_webhook`` as a worker runs its delivery number ``retries + 1`` of the message
    with ``args``; yields the list the retry messages it publishes are recorded in."""
    task = process_webhook._get_current_object()
    published = []
    task.apply_async = lambda args=None, kwargs=None, **options: published.append((tuple(args or ()), options))
    task.push_request(id=f"delivery-{retries}", args=list(args), kwargs={}, retries=retries, is_eager=False,
                      called_directly=False)
    try:
        yield published
    finally:
        task.pop_request()
        del task.apply_async


def run_as_worker(row, retries: int):
    args = (row.pk, str(row.tenant_id))
    with worker_delivery(args, retries) as published:
        try:
            outcome = process_webhook.run(*args)
        except Retry as retry:
            outcome = retry
    return outcome, published


# --- a failing handler --------------------------------------------------------------------------
def test_a_failing_handler_leaves_the_row_failed_with_its_reason(stripe, fail):
    row = fail(stripe.acme)
    assert row.status == WebhookLog.Status.FAILED
    assert row.attempts == 1 and row.processed_at is None
    assert row.error == FLAKY_ERROR and "Traceback" in row.traceback
    # The handler's writes were rolled back with it: the customer it upserted is not there.
    with tenant_context(stripe.acme):
        assert not Contact.objects.filter(email=FLAKY_EMAIL).exists()
    integration = integration_of(stripe.acme, "flaky")
    assert integration.last_error == FLAKY_ERROR and integration.last_error_at is not None
    # Only that tenant's integration.
    assert integration_of(stripe.globex, "flaky").last_error == ""


def test_a_failure_that_quotes_a_secret_of_the_tenant_is_stored_without_it(stripe, fail, monkeypatch):
    """An exception's text can quote what a handler sent a platform (a URL with a key, a header):
    the stored reason, the traceback and the integration's last error never keep the secret."""

    def leaky_order(event) -> None:
        raise ApiError(f"Flaky answered 503 to GET /v1/orders/1?key={FLAKY_TOKEN}")

    monkeypatch.setitem(PROVIDERS["flaky"].handlers, "order", leaky_order)
    row = fail(stripe.acme)
    assert row.status == WebhookLog.Status.FAILED
    assert FLAKY_TOKEN not in row.error and FLAKY_TOKEN not in row.traceback
    assert row.error == "Flaky answered 503 to GET /v1/orders/1?key=[redacted]"
    assert "[redacted]" in row.traceback
    assert FLAKY_TOKEN not in integration_of(stripe.acme, "flaky").last_error


def test_in_process_mode_leaves_a_failure_for_the_sweeper_or_a_replay(stripe, fail):
    """``apply()`` is the in-process mode (no broker): it never waits for a backoff. The row stays
    ``failed`` (for the sweeper or a replay) until it has had as many attempts as a worker would
    make, counted on the row itself, and is ``dead`` after that."""
    row = fail(stripe.acme)  # attempt 1, at delivery time
    with override_settings(WEBHOOK_MAX_RETRIES=2):
        assert process_webhook.apply(args=(row.pk, str(stripe.acme.pk))).get() == "failed"
        row = reload(stripe.acme, row)
        assert (row.status, row.attempts) == (WebhookLog.Status.FAILED, 2)
        process_webhook.apply(args=(row.pk, str(stripe.acme.pk)))
    row = reload(stripe.acme, row)
    assert (row.status, row.attempts) == (WebhookLog.Status.DEAD, 3)


@override_settings(WEBHOOK_MAX_RETRIES=3, WEBHOOK_RETRY_BASE_SECONDS=30.0, WEBHOOK_RETRY_MAX_SECONDS=3600.0)
def test_a_worker_retries_with_backoff_then_the_row_is_dead(stripe, fail):
    row = fail(stripe.acme)  # attempt 1 (in-process, at delivery time)
    for retries in range(3):
        outcome, published = run_as_worker(row, retries)
        assert isinstance(outcome, Retry), outcome
        ceiling = 30.0 * 2**retries
        assert ceiling / 2 <= outcome.when <= ceiling
        # What went to the broker: the same row and tenant, the next retry number, that countdown.
        ((args, options),) = published
        assert args == (row.pk, str(stripe.acme.pk))
        assert options["retries"] == retries + 1 and options["countdown"] == outcome.when
        current = reload(stripe.acme, row)
        assert (current.status, current.attempts) == (WebhookLog.Status.FAILED, retries + 2)
    # The delivery after the last retry: dead, nothing more published.
    outcome, published = run_as_worker(row, 3)
    assert outcome == "dead" and published == []
    row = reload(stripe.acme, row)
    assert (row.status, row.attempts, row.error) == (WebhookLog.Status.DEAD, 5, FLAKY_ERROR)
    # Dead is final for the worker: another delivery of the message changes nothing.
    outcome, published = run_as_worker(row, 0)
    assert outcome == "skipped (dead)" and published == []
    assert reload(stripe.acme, row).attempts == 5


# --- exactly once in effect ---------------------------------------------------------------------
def test_a_processed_row_is_not_processed_twice(stripe, post):
    row = post(stripe.acme)
    assert (row.status, row.attempts) == (WebhookLog.Status.PROCESSED, 1)
    processed_at = row.processed_at
    # The task delivered again (a redelivered message, a second worker): it finds the row done.
    assert process_webhook.apply(args=(row.pk, str(stripe.acme.pk))).get() == "skipped (processed)"
    outcome, published = run_as_worker(row, 0)
    assert outcome == "skipped (processed)" and published == []
    row = reload(stripe.acme, row)
    assert (row.status, row.attempts, row.processed_at) == (WebhookLog.Status.PROCESSED, 1, processed_at)
    with tenant_context(stripe.acme):
        assert Payment.objects.filter(external_id=CHECKOUT_PI).count() == 1


def test_a_task_naming_another_tenant_finds_nothing(stripe, post):
    row = post(stripe.acme, process=False)
    assert process_webhook.apply(args=(row.pk, str(stripe.globex.pk))).get() == "skipped (missing)"
    assert reload(stripe.acme, row).status == WebhookLog.Status.RECEIVED
    with tenant_context(stripe.globex):
        assert not Payment.objects.filter(external_id=CHECKOUT_PI).exists()


def test_record_failure_never_touches_a_row_that_is_done(stripe, post):
    row = post(stripe.acme)
    processing.record_failure(row.pk, str(stripe.acme.pk), RuntimeError("late"), final=True)
    row = reload(stripe.acme, row)
    assert (row.status, row.attempts, row.error) == (WebhookLog.Status.PROCESSED, 1, "")


# --- the sweeper --------------------------------------------------------------------------------
def age(tenant, row, seconds: float) -> None:
    with tenant_context(tenant):
        WebhookLog.objects.filter(pk=row.pk).update(updated_at=timezone.now() - timedelta(seconds=seconds))


@override_settings(WEBHOOK_SWEEP_AFTER_SECONDS=120, WEBHOOK_RETRY_MAX_SECONDS=3600.0)
def test_the_sweeper_wakes_one_drain_for_stuck_rows_and_retries_long_failed_ones(stripe, post, fail):
    """The row queue (the default): the sweeper wakes one drain, which takes every waiting row of
    every tenant (a stuck row's neighbours too), and publishes the retry of a failed row whose
    retry message was lost; a failed row still within its backoff is left alone."""
    failed_long_ago = fail(stripe.globex)  # first: their drains would take the rows stored before
    failed_recently = fail(stripe.acme)
    stuck = post(stripe.acme, process=False)
    waiting = post(stripe.globex, process=False)
    age(stripe.acme, stuck, 121)
    age(stripe.globex, waiting, 60)
    age(stripe.globex, failed_long_ago, 2 * 3600 + 1)
    age(stripe.acme, failed_recently, 3600)

    assert sweep_webhooks.apply().get() == 2  # one drain, one retry

    assert (reload(stripe.acme, stuck).status, reload(stripe.acme, stuck).attempts) == (WebhookLog.Status.PROCESSED, 1)
    assert reload(stripe.globex, waiting).status == WebhookLog.Status.PROCESSED
    assert reload(stripe.globex, failed_long_ago).attempts == 2  # tried again (and failed again)
    assert reload(stripe.acme, failed_recently).attempts == 1
    with tenant_context(stripe.globex):
        assert Payment.objects.filter(external_id=CHECKOUT_PI).count() == 1


@override_settings(WEBHOOK_QUEUE="tasks", WEBHOOK_SWEEP_AFTER_SECONDS=120, WEBHOOK_RETRY_MAX_SECONDS=3600.0)
def test_the_sweeper_publishes_stuck_rows_of_every_tenant_and_only_those(stripe, post, fail):
    """``WEBHOOK_QUEUE=tasks``: one message per stuck row, and only for the stuck ones."""
    # Stored, but their publish was lost: "received".
    stuck = post(stripe.acme, process=False)
    fresh = post(stripe.globex, process=False)
    # Failed, and their retry message was lost (or not yet due).
    failed_long_ago = fail(stripe.globex)
    failed_recently = fail(stripe.acme)
    for row in (stuck, fresh, failed_long_ago, failed_recently):
        assert row.status in (WebhookLog.Status.RECEIVED, WebhookLog.Status.FAILED)
    age(stripe.acme, stuck, 121)
    age(stripe.globex, fresh, 60)
    age(stripe.globex, failed_long_ago, 2 * 3600 + 1)
    age(stripe.acme, failed_recently, 3600)  # past the sweep delay, not past twice the longest backoff

    assert sweep_webhooks.apply().get() == 2

    stuck, fresh = reload(stripe.acme, stuck), reload(stripe.globex, fresh)
    assert (stuck.status, stuck.attempts) == (WebhookLog.Status.PROCESSED, 1)
    assert (fresh.status, fresh.attempts) == (WebhookLog.Status.RECEIVED, 0)
    assert reload(stripe.globex, failed_long_ago).attempts == 2  # tried again (and failed again)
    assert reload(stripe.acme, failed_recently).attempts == 1
    with tenant_context(stripe.acme):
        assert Payment.objects.filter(external_id=CHECKOUT_PI).count() == 1
    with tenant_context(stripe.globex):
        assert not Payment.objects.filter(external_id=CHECKOUT_PI).exists()  # fresh: not yet


@override_settings(WEBHOOK_SWEEP_AFTER_SECONDS=120, WEBHOOK_RETRY_MAX_SECONDS=3600.0)
def test_the_sweeper_leaves_finished_rows_alone_however_old(stripe, post, fail, client,
                                                            django_capture_on_commit_callbacks):
    processed = post(stripe.acme)
    with django_capture_on_commit_callbacks(execute=True):  # unsigned: rejected
        post_stripe(client, stripe.acme, fixture_bytes("stripe", "payment_intent_succeeded"), signed=False)
    (rejected,) = rows(stripe.acme, source="stripe", status=WebhookLog.Status.REJECTED)
    dead = fail(stripe.acme)
    processing.record_failure(dead.pk, str(stripe.acme.pk), KeyError("id"), final=True)
    ignored = post(stripe.acme, fixture_bytes("stripe", "customer_created"))
    for row in (processed, rejected, dead, ignored):
        age(stripe.acme, row, 30 * 24 * 3600)
    assert [reload(stripe.acme, r).status for r in (processed, rejected, dead, ignored)] == [
        "processed", "rejected", "dead", "ignored",
    ]
    assert sweep_webhooks.apply().get() == 0


@override_settings(WEBHOOK_SWEEP_AFTER_SECONDS=120, WEBHOOK_RETRY_MAX_SECONDS=3600.0)
def test_the_sweeper_takes_the_oldest_stuck_rows_first(stripe, post):
    """The sweeper publishes a batch at a time: the oldest must go first, or a backlog larger than
    a batch would starve its oldest rows (the model's own order is newest first)."""
    older = post(stripe.acme, process=False)
    newer = post(stripe.globex, process=False)
    age(stripe.acme, older, 600)
    age(stripe.globex, newer, 300)
    with operator_context("test: the sweeper's order"):
        assert list(processing.stuck_rows().values_list("pk", flat=True)) == [older.pk, newer.pk]


# --- backoff --------------------------------------------------------------------------------------
@override_settings(WEBHOOK_RETRY_BASE_SECONDS=30.0, WEBHOOK_RETRY_MAX_SECONDS=3600.0)
def test_retry_delay_grows_exponentially_with_jitter_within_half_to_full_and_is_capped():
    random.seed(20251122)
    ceilings = []
    for retries in range(12):
        ceiling = min(3600.0, 30.0 * 2**retries)
        ceilings.append(ceiling)
        samples = [retry_delay(retries) for _ in range(300)]
        assert all(ceiling / 2 <= s <= ceiling for s in samples), retries
        assert len(set(samples)) > 250  # jittered, not one fixed value
        assert max(samples) > ceiling * 0.95 and min(samples) < ceiling * 0.55  # spans the band
    assert ceilings[:7] == [30.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0]  # doubles each time
    assert ceilings[7:] == [3600.0] * 5  # then the cap
    for retries in (50, 1100, 10**6):  # far past the cap: still capped, never an overflow
        assert 1800.0 <= retry_delay(retries) <= 3600.0



# --- failures no retry can fix (issue 7.9, 7.21) -------------------------------------------------
POSH_SECRET = "posh-whsec-acme-processing-0123456789"


@pytest.fixture
def posh(stripe, client, django_capture_on_commit_callbacks):
    """POST a signed Posh.VIP purchase with ``change`` applied to its payload; returns the row."""
    connect(stripe.acme, "poshvip", POSH_SECRET)

    def send(change=None, process: bool = True):
        payload = json.loads(fixture_bytes("poshvip", "purchase_created"))
        if change:
            change(payload)
        body = json.dumps(payload).encode()
        headers = {"HTTP_X_POSH_SIGNATURE": hmac_sha256_hex(POSH_SECRET, body)}
        with django_capture_on_commit_callbacks(execute=process):
            response = client.post(webhook_path(stripe.acme, "poshvip"), data=body, content_type="application/json",
                                   **headers)
        assert response.status_code == 200, response.content
        return rows(stripe.acme, source="poshvip")[-1]

    return send


def nan_amount(payload):
    payload["purchase"]["total_amount"] = "NaN"


NAN_SENTENCE = ("`purchase.total_amount` in the Posh.VIP purchase.created event: the amount 'NaN' is not a plain "
                "decimal number (no exponent, NaN or infinity)")


def test_a_delivery_that_does_not_fit_its_schema_is_malformed_at_once_with_a_sentence(stripe, posh):
    row = posh(nan_amount)
    assert (row.status, row.attempts, row.error) == (WebhookLog.Status.MALFORMED, 1, NAN_SENTENCE)
    # Operators get the details: the schema's own report, with the input, in the traceback.
    assert "ValidationError" in row.traceback and "Malformed: `purchase.total_amount`" in row.traceback
    with tenant_context(stripe.acme):
        assert not Payment.objects.filter(source="poshvip").exists()
        assert TenantIntegration.objects.get(provider="poshvip").last_error == NAN_SENTENCE


def test_a_worker_does_not_retry_a_malformed_delivery(stripe, posh):
    row = posh(nan_amount, process=False)
    outcome, published = run_as_worker(row, 0)
    assert outcome == WebhookLog.Status.MALFORMED and published == []  # no retry message
    assert reload(stripe.acme, row).attempts == 1
    # Malformed is final until someone replays it (after fixing the scenario or the schema).
    assert process_webhook.apply(args=(row.pk, str(stripe.acme.pk))).get() == "skipped (malformed)"


def test_a_value_a_handler_cannot_store_is_malformed_at_once_and_rolls_back(stripe, posh):
    """The schema lets a customer through; the money parser, in the handler, refuses 12.345 USD
    after the contact was written: nothing of the attempt stays."""
    def fraction_of_a_cent(payload):
        payload["purchase"]["total_amount"] = "12.345"

    row = posh(fraction_of_a_cent)
    assert row.status == WebhookLog.Status.MALFORMED and row.attempts == 1
    assert row.error == "the purchase.total_amount '12.345' is finer than the smallest unit of USD"
    with tenant_context(stripe.acme):
        assert not Contact.objects.filter(email="jordan.blake@example.com").exists()


def test_a_permanent_error_is_dead_at_once_for_a_worker(stripe, client, django_capture_on_commit_callbacks):
    """A refused Eventbrite ``api_url`` (the same body names it on every retry): dead, no retry."""
    connect(stripe.acme, "eventbrite", "eb-url-token-acme-0123456789", private_token="EB-PRIVATE-ACME-000000")
    body = json.dumps({"config": {"action": "order.placed"}, "api_url": "https://evil.example/v3/orders/1/"}).encode()
    response = client.post(webhook_path(stripe.acme, "eventbrite") + "?token=eb-url-token-acme-0123456789",
                           data=body, content_type="application/json")
    assert response.status_code == 200
    (row,) = rows(stripe.acme, source="eventbrite")
    outcome, published = run_as_worker(row, 0)
    assert outcome == WebhookLog.Status.DEAD and published == []
    row = reload(stripe.acme, row)
    assert (row.status, row.attempts) == (WebhookLog.Status.DEAD, 1)
    assert row.error.startswith("refusing to fetch api_url 'https://evil.example/v3/orders/1/'")


@requires_postgres
def test_a_value_the_database_refuses_is_dead_at_once(stripe, post):
    """Defence in depth: were a value to reach PostgreSQL too long for its column (the services fit
    every one), the ``DataError`` is permanent: the same body fails the same way every time."""
    row = post(stripe.acme, process=False)
    with pytest.raises(DataError) as refused, tenant_context(stripe.acme):
        Contact.objects.create(source="x" * 33, email="long@example.com")
    assert processing.outcome_of(refused.value) == WebhookLog.Status.DEAD
    assert processing.record_failure(row.pk, str(stripe.acme.pk), refused.value, final=False) == "dead"


def test_the_traceback_is_for_operators_only(stripe, posh, client):
    row = posh(nan_amount)
    client.force_login(stripe.alice)
    answer = client.get(f"/api/v1/webhook-events/{row.pk}/").json()
    assert answer["error"] == NAN_SENTENCE and "traceback" not in answer
    page = client.get(f"/webhooks/{row.pk}/").content.decode()
    assert "is not a plain" in page and "ValidationError" not in page and "Traceback" not in page
    client.force_login(stripe.oscar)  # an operator, in the admin
    page = client.get(f"/admin/webhooks/webhooklog/{row.pk}/change/").content.decode()
    assert "Traceback" in page and "ValidationError" in page


def test_a_successful_replay_clears_the_reason_and_the_traceback(stripe, posh):
    row = posh(nan_amount)
    with tenant_context(stripe.acme):
        WebhookLog.objects.filter(pk=row.pk).update(body=fixture_bytes("poshvip", "purchase_created"))
        assert processing.replay(reload(stripe.acme, row))
    process_webhook.apply(args=(row.pk, str(stripe.acme.pk)))
    row = reload(stripe.acme, row)
    assert (row.status, row.error, row.traceback) == (WebhookLog.Status.PROCESSED, "", "")
