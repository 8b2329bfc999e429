"""The drain processes each tenant's claimed rows together (``processing.process_batch``: one
read, one write transaction): fewer statements per event, the processed marks in one UPDATE, and
every failure still handled the one-by-one way, exactly as before. In-process, on PostgreSQL as the runtime role (RLS on); the
real-worker properties (a burst, a SIGKILL mid-batch, fairness) are tests/test_row_queue.py's."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conftest import requires_postgres
from contacts.models import Payment
from integrations.providers.stripe.handlers import HANDLERS
from tenants.context import tenant_context
from tests.test_reliability import stripe_event
from webhooks.drain import drain_once
from webhooks.models import WebhookLog
from webhooks.testing import post_stripe

pytestmark = requires_postgres


@pytest.fixture(autouse=True)
def no_other_rows(stripe):
    """The world comes with a stored delivery per tenant: these tests count only their own."""
    for tenant in (stripe.acme, stripe.globex):
        with tenant_context(tenant):
            WebhookLog.objects.all().delete()


def store(client, tenant, prefix: str, count: int) -> None:
    """Stored and left ``received``: the test's transaction never commits, so no drain was woken."""
    for i in range(count):
        body = stripe_event(f"evt_{prefix}_{i}", f"pi_{prefix}_{i}", f"{prefix}{i}@example.com")
        assert post_stripe(client, tenant, body).json()["status"] == "received"


def states(tenant) -> dict[str, tuple[str, int]]:
    with tenant_context(tenant):
        return {row.event_id: (row.status, row.attempts) for row in WebhookLog.objects.all()}


def test_a_tenants_batch_is_read_locked_and_marked_once_and_every_row_is_processed_once(stripe, client):
    store(client, stripe.acme, "ok", 10)
    with CaptureQueriesContext(connection) as queries:
        assert drain_once() == (10, False)
    assert states(stripe.acme) == {f"evt_ok_{i}": ("processed", 1) for i in range(10)}
    with tenant_context(stripe.acme):
        assert Payment.objects.filter(external_id__startswith="pi_ok_").count() == 10
    sql = [q["sql"] for q in queries.captured_queries]
    # The bodies read once for the batch and its rows locked by one statement, not a read and a
    # locked read per row; the integration read once, not once per row; the processed marks in
    # one statement.
    bodies = [q for q in sql if q.startswith("SELECT") and '"webhooks_webhooklog"."body"' in q]
    assert len(bodies) == 1, bodies
    locks = [q for q in sql if q.startswith('SELECT "webhooks_webhooklog"."id"') and q.endswith("FOR UPDATE")
             and " IN (" in q]
    assert len(locks) == 1, locks
    assert len([q for q in sql if q.startswith("SELECT") and 'FROM "integrations_tenantintegration"' in q]) == 1
    marks = [q for q in sql if q.startswith('UPDATE "webhooks_webhooklog"') and "'processed'" in q]
    assert len(marks) == 1  # the processed marks of the whole batch in one statement


def test_two_tenants_batches_stay_apart(stripe, client):
    store(client, stripe.acme, "a", 3)
    store(client, stripe.globex, "g", 2)
    assert drain_once() == (5, False)
    assert states(stripe.acme) == {f"evt_a_{i}": ("processed", 1) for i in range(3)}
    assert states(stripe.globex) == {f"evt_g_{i}": ("processed", 1) for i in range(2)}
    for tenant, prefix in ((stripe.acme, "a"), (stripe.globex, "g")):
        with tenant_context(tenant):
            assert Payment.objects.filter(external_id__startswith="pi_").exclude(external_id__startswith=f"pi_{prefix}_")\
                .exclude(external_id="pi_same").count() == 0
            assert Payment.objects.filter(external_id__startswith=f"pi_{prefix}_").count() == {"a": 3, "g": 2}[prefix]


def test_one_failing_event_leaves_the_others_processed_and_itself_failed_as_before(stripe, client, monkeypatch):
    real = HANDLERS["payment_intent.succeeded"]

    def breaking(event):
        real(event)  # its writes must not survive
        if event.data.data.object.id == "pi_mix_2":
            raise RuntimeError("the handler broke after writing")

    monkeypatch.setitem(HANDLERS, "payment_intent.succeeded", breaking)
    store(client, stripe.acme, "mix", 5)
    assert drain_once()[0] == 5
    found = states(stripe.acme)
    assert found.pop("evt_mix_2") == ("failed", 1)  # counted once, not once for the batch and again
    assert found == {f"evt_mix_{i}": ("processed", 1) for i in (0, 1, 3, 4)}
    with tenant_context(stripe.acme):
        assert sorted(Payment.objects.filter(external_id__startswith="pi_mix_").values_list("external_id", flat=True)) == [f"pi_mix_{i}" for i in (0, 1, 3, 4)]
        assert WebhookLog.objects.get(event_id="evt_mix_2").error  # the reason tenant users see


def test_a_row_another_drain_claimed_again_is_not_touched(stripe, client):
    """A claim whose lease ran out and that another drain took: its ``updated_at`` is that drain's,
    so the first drain's batch (``claimed_at``) finds nothing of it to process."""
    from django.utils import timezone

    from webhooks.processing import process_batch

    store(client, stripe.acme, "lease", 1)
    with tenant_context(stripe.acme):
        row = WebhookLog.objects.get()
        then = timezone.now() - timezone.timedelta(seconds=600)
        WebhookLog.objects.filter(pk=row.pk).update(status="processing", updated_at=timezone.now())
    assert process_batch(str(stripe.acme.pk), [row.pk], then) == []
    assert states(stripe.acme) == {"evt_lease_0": ("processing", 0)}


@pytest.mark.django_db(transaction=True, databases=["default", "owner"])
def test_a_batchs_new_contacts_are_one_notice_per_admin_not_one_per_contact(mailoutbox):
    """Committed for real: five deliveries stored in one transaction wake one drain, whose batch
    makes five contacts; the owner gets one e-mail listing the five, and each is claimed."""
    from django.db import connections, transaction
    from django.test import Client

    from conftest import make_user
    from contacts.models import Contact
    from tenants.models import Membership
    from tests.test_reliability import post_stripe as post_signed
    from tests.test_row_queue import make_tenant

    tenant = make_tenant("digest")
    owner = make_user("digest_owner")
    with tenant_context(tenant):
        Membership.objects.create(tenant=tenant, user=owner, role=Membership.Role.OWNER)
    client = Client()
    try:
        with transaction.atomic():  # the wake-ups (on commit) run once all five are stored
            for i in range(5):
                body = stripe_event(f"evt_digest_{i}", f"pi_digest_{i}", f"buyer{i}@example.com")
                assert post_signed(client, tenant, body).status_code == 200
        assert states(tenant) == {f"evt_digest_{i}": ("processed", 1) for i in range(5)}
        (message,) = mailoutbox
        assert message.to == ["digest_owner@example.com"]
        assert message.subject == "[digest] 5 new contacts from stripe"
        assert all(f"buyer{i}@example.com" in message.body for i in range(5))
        with tenant_context(tenant):
            assert Contact.objects.filter(notified_at__isnull=True).count() == 0
    finally:
        connections["owner"].close()
