"""Operators (``ADMIN_NOTIFICATION_EMAILS``) get one e-mail when a tenant's integration starts
failing, when its deliveries go dead, and when it recovers: never two for one change, even from
workers racing, never a secret, and the tenant named by its name."""

from __future__ import annotations

import json
import threading
import uuid

import pytest
from django.db import connections, transaction
from django.urls import reverse

from conftest import requires_postgres
from integrations.models import TenantIntegration
from integrations.notifications import review
from integrations.providers.meta import provider as meta_provider
from integrations.sync import SyncResult, TransientSyncError, run_sync
from tenants.context import tenant_context
from tenants.models import Tenant
from webhooks.models import WebhookLog
from webhooks.processing import replay
from webhooks.testing import (
    BROKEN_EMAIL, BROKEN_ERROR, break_checkouts, connect, fixture_bytes, post_stripe, rows, webhook_path,
)

OPERATORS = ["ops@engarde.test", "oncall@engarde.test"]
META_TOKEN = "EAAB-notify-secret-token-0123456789"


class OperatorMail(list):
    """The mails sent to the operators (a processed checkout also mails the tenant's owner)."""

    def __init__(self, outbox):
        super().__init__()
        self.outbox = outbox

    def _mine(self):
        return [m for m in self.outbox if set(m.to) & set(OPERATORS)]

    def __len__(self):
        return len(self._mine())

    def __iter__(self):
        return iter(self._mine())

    def __getitem__(self, index):
        return self._mine()[index]

    def __eq__(self, other):
        return self._mine() == other


@pytest.fixture
def operators(settings, mailoutbox):
    settings.ADMIN_NOTIFICATION_EMAILS = list(OPERATORS)
    return OperatorMail(mailoutbox)


def checkout(event_id: str, email: str) -> bytes:
    payload = json.loads(fixture_bytes("stripe", "checkout_session_completed"))
    payload["id"] = event_id
    session = payload["data"]["object"]
    session["id"], session["payment_intent"] = f"cs_{event_id}", f"pi_{event_id}"
    session["customer_details"]["email"] = email
    return json.dumps(payload).encode()


@pytest.fixture
def deliver(client, django_capture_on_commit_callbacks):
    """POST a signed Stripe checkout to a tenant and run what is queued on commit (processing,
    then any notification), as a worker would right after."""

    def post(tenant, event_id: str, email: str = "someone@example.com"):
        with django_capture_on_commit_callbacks(execute=True):
            response = post_stripe(client, tenant, checkout(event_id, email))
        assert response.status_code == 200, response.content
        return rows(tenant, source="stripe", event_id=event_id)[0]

    return post


def notified_state(tenant, provider: str = "stripe") -> str:
    with tenant_context(tenant):
        return TenantIntegration.objects.get(provider=provider).notified_state


def test_first_failure_mails_once_and_a_second_failure_not_again(stripe, operators, deliver, monkeypatch, settings):
    break_checkouts(monkeypatch)
    row = deliver(stripe.acme, "evt_broken_1", BROKEN_EMAIL)
    assert row.status == WebhookLog.Status.FAILED
    (message,) = operators
    assert sorted(message.to) == sorted(OPERATORS)
    assert message.subject == "[En Garde] Acme: Stripe is failing (Failing)"
    assert "Tenant: Acme (acme)" in message.body and "Platform: Stripe" in message.body
    assert "State: Failing" in message.body and f"Reason: {BROKEN_ERROR}" in message.body
    with tenant_context(stripe.acme):
        integration = TenantIntegration.objects.get(provider="stripe")
    admin = reverse("admin:integrations_tenantintegration_change", args=[integration.pk])
    assert f"Admin page: {settings.PUBLIC_BASE_URL}{admin}\n" in message.body
    assert str(stripe.acme.pk) not in message.subject + message.body  # the name, not the UUID
    assert "Globex" not in message.subject + message.body
    assert notified_state(stripe.acme) == "failing" and notified_state(stripe.globex) == "ok"

    deliver(stripe.acme, "evt_broken_2", BROKEN_EMAIL)  # failing still: no news
    assert len(operators) == 1
    deliver(stripe.acme, "evt_fine_while_failing")  # processed, but the state is still failing
    assert len(operators) == 1


def test_recovery_mails_once(stripe, operators, deliver, monkeypatch, django_capture_on_commit_callbacks):
    break_checkouts(monkeypatch)
    failed = deliver(stripe.acme, "evt_broken_1", BROKEN_EMAIL)
    assert len(operators) == 1
    monkeypatch.undo()  # the handler is fixed
    with django_capture_on_commit_callbacks(execute=True), tenant_context(stripe.acme):
        assert replay(failed)
    assert len(operators) == 1  # processed now, but the last error is newer than the last event
    deliver(stripe.acme, "evt_after_the_fix")
    assert [r.status for r in rows(stripe.acme, source="stripe")] == ["processed", "processed"]
    assert len(operators) == 2
    recovered = operators[1]
    assert recovered.subject == "[En Garde] Acme: Stripe recovered (Receiving)"
    assert "State: Receiving" in recovered.body
    assert notified_state(stripe.acme) == "ok"
    deliver(stripe.acme, "evt_later")  # working, and operators know: nothing more
    assert len(operators) == 2


def test_dead_rows_mail_once_and_no_secret_is_in_the_mail(stripe, operators, client,
                                                          django_capture_on_commit_callbacks):
    """A refused Eventbrite ``api_url`` is dead at once. Its reason quotes the URL, and this one
    carries the tenant's private token: the mail must not."""
    url_token, private = "eb-url-token-acme-0123456789", "EB-PRIVATE-ACME-000000"
    connect(stripe.acme, "eventbrite", url_token, private_token=private)

    def post(order: int):
        body = json.dumps({"config": {"action": "order.placed"},
                           "api_url": f"https://evil.example/v3/orders/{order}/?token={private}&u={url_token}"}).encode()
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(webhook_path(stripe.acme, "eventbrite") + f"?token={url_token}",
                                   data=body, content_type="application/json")
        assert response.status_code == 200

    post(1)
    (row,) = rows(stripe.acme, source="eventbrite")
    assert row.status == WebhookLog.Status.DEAD
    (message,) = operators
    assert message.subject == "[En Garde] Acme: Eventbrite deliveries went dead"
    assert "State: Failing" in message.body and "refusing to fetch api_url" in message.body
    for secret in (private, url_token):
        assert secret not in message.subject and secret not in message.body
    assert "[redacted]" in message.body
    assert notified_state(stripe.acme, "eventbrite") == "dead"
    post(2)  # more dead rows: no news
    assert len(operators) == 1


@pytest.fixture
def meta(world):
    return connect(world.acme, "meta", access_token=META_TOKEN, ad_account_id="act_1")


def test_a_failing_sync_mails_once_then_its_recovery_once_without_the_token(
        world, meta, operators, monkeypatch, django_capture_on_commit_callbacks):
    def failing(self, integration, since=None):
        # A platform answer that echoes the request, token and all, into the stored reason.
        raise TransientSyncError(f"Graph API 500 for /act_1/ads?access_token={integration.value('access_token')}")

    monkeypatch.setattr(meta_provider.MetaAdsProvider, "sync", failing)
    with django_capture_on_commit_callbacks(execute=True):
        assert run_sync(meta.pk, str(world.acme.pk)).status == "failed"
    (message,) = operators
    assert message.subject == "[En Garde] Acme: Meta Ads is failing (Sync failing)"
    assert "Reason: The last sync failed: Graph API 500" in message.body
    assert META_TOKEN not in message.subject + message.body and "[redacted]" in message.body
    with django_capture_on_commit_callbacks(execute=True):
        run_sync(meta.pk, str(world.acme.pk))
    assert len(operators) == 1

    monkeypatch.setattr(meta_provider.MetaAdsProvider, "sync", lambda self, integration, since=None: SyncResult("ok"))
    with django_capture_on_commit_callbacks(execute=True):
        assert run_sync(meta.pk, str(world.acme.pk)).status == "synced"
        run_sync(meta.pk, str(world.acme.pk))
    assert len(operators) == 2
    assert operators[1].subject.startswith("[En Garde] Acme: Meta Ads recovered")


def test_no_addresses_no_mail(stripe, settings, mailoutbox, deliver, monkeypatch):
    settings.ADMIN_NOTIFICATION_EMAILS = []
    break_checkouts(monkeypatch)
    deliver(stripe.acme, "evt_broken_1", BROKEN_EMAIL)
    assert mailoutbox == []
    assert notified_state(stripe.acme) == "failing"  # kept all the same: a later address hears only news


def test_a_rolled_back_transition_sends_nothing(stripe, operators, django_capture_on_commit_callbacks):
    with tenant_context(stripe.acme):
        integration = TenantIntegration.objects.get(provider="stripe")
        TenantIntegration.objects.filter(pk=integration.pk).update(last_error="boom", last_error_at="2030-01-01T00:00Z")
    with django_capture_on_commit_callbacks(execute=True):
        try:
            with transaction.atomic():
                assert review(integration.pk, stripe.acme.pk) == "failing"
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
    assert operators == []
    assert notified_state(stripe.acme) == "ok"


# --- two workers racing to the same change --------------------------------------------------------

committed_db = pytest.mark.django_db(transaction=True, databases=["default", "owner"])


@pytest.fixture
def committed_tenant(db):
    tenant = Tenant.objects.create(slug=f"race-{uuid.uuid4().hex[:8]}", name="Racing Widgets")
    integration = connect(tenant, "stripe", "whsec_racing-secret-0123456789")
    with tenant_context(tenant):
        TenantIntegration.objects.filter(pk=integration.pk).update(
            last_error="Stripe answered 500", last_error_at="2030-01-01T00:00Z"
        )
    yield tenant, integration
    connections["owner"].close()


@requires_postgres
@committed_db
def test_two_racing_transitions_send_one_mail(committed_tenant, operators):
    """The first worker changes the row and holds its transaction open; the second's conditional
    update waits on the row, then finds it changed and sends nothing."""
    tenant, integration = committed_tenant
    first_changed, second_may_finish = threading.Event(), threading.Event()
    answers: dict = {}

    def first():
        try:
            with transaction.atomic():
                answers["first"] = review(integration.pk, tenant.pk)
                first_changed.set()
                second_may_finish.wait(timeout=30)
        finally:
            connections.close_all()

    def second():
        try:
            first_changed.wait(timeout=30)
            answers["second"] = review(integration.pk, tenant.pk)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    threads[1].join(timeout=2)
    assert threads[1].is_alive(), "the second update did not wait for the first's row lock"
    second_may_finish.set()
    for thread in threads:
        thread.join(timeout=30)
    assert answers == {"first": "failing", "second": None}
    (message,) = operators
    assert message.subject == "[En Garde] Racing Widgets: Stripe is failing (Failing)"
    assert notified_state(tenant) == "failing"
