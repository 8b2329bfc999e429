"""Two events of one money movement processed at the same moment make one payment, in a drain
batch or one by one (``contacts.services.hold_payment_keys``).

The race, under READ COMMITTED: an invoice's event (it knows only ``in_…``) and its PaymentIntent's
event (``pi_…`` naming the invoice) each look for a payment, find none, and insert one keyed on a
different id, so no unique key refuses the second. A drain batch that looked its ids up at its start
widened that window to the whole batch. The ids are now held (advisory locks, per tenant) before
they are looked up: here a writer holds the invoice's id with its payment not yet committed, the
PaymentIntent's event must wait for it, and then finds that payment instead of making a second.

Committed for real on PostgreSQL as the runtime role (RLS on), two connections, no mocks."""

from __future__ import annotations

import json
import threading
import time
from decimal import Decimal

import pytest
from django.db import connection, connections

from conftest import requires_postgres
from contacts.models import Payment
from contacts.services import payment_keys_looked_up_together
from integrations.providers.stripe.payments import Keys, keys_in, record
from tenants.context import tenant_context
from tests.test_reliability import stripe_event
from tests.test_row_queue import make_tenant
from webhooks.drain import drain_once
from webhooks.models import WebhookLog
from webhooks.processing import process

pytestmark = requires_postgres

#: How long the holder waits to see the other writer queue behind it. Not a timing assertion: the
#: other writer waits however long the holder takes; without the lock it never queues, the holder
#: gives up after this and the test fails on the two payments.
WAIT_FOR_WAITER = 10.0


def _someone_waits_for_a_lock(kind: str | None = None) -> bool:
    """Another backend waits for a lock (``advisory``, or any kind)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND (%s::text IS NULL OR wait_event = %s) AND pid <> pg_backend_pid()",
            [kind, kind],
        )
        return cursor.fetchone()[0] > 0


def _hold_until_waited_for(tenant, write, held: threading.Event, seen: list, kind: str | None) -> None:
    """Another worker: ``write`` done in the tenant's transaction, committed only once another
    backend waits for one of its locks (or ``WAIT_FOR_WAITER`` has passed)."""
    try:
        with tenant_context(tenant):
            write()
            held.set()
            deadline = time.monotonic() + WAIT_FOR_WAITER
            while time.monotonic() < deadline and not seen:
                if _someone_waits_for_a_lock(kind):
                    seen.append(True)
                time.sleep(0.02)
    finally:
        held.set()
        connection.close()


def _the_invoices_payment_in_its_scope():
    """The invoice's event as processing runs it: its ids held by the provider's scope."""
    with payment_keys_looked_up_together("stripe", {"in_race_1"}):
        record(Keys(invoice="in_race_1"), amount=Decimal("49.00"), currency="EUR", status="pending",
               description="the invoice's event")


def _the_invoices_payment_by_find_alone():
    """A writer outside any scope: the payment lookup holds the ids itself."""
    record(Keys(invoice="in_race_1"), amount=Decimal("49.00"), currency="EUR", status="pending",
           description="the invoice's event")


def _the_intents_event(tenant) -> int:
    payload = json.loads(stripe_event("evt_race_intent", "pi_race_1", "racer@example.com"))
    payload["data"]["object"]["invoice"] = "in_race_1"
    with tenant_context(tenant):
        return WebhookLog.objects.create(source="stripe", event_id="evt_race_intent",
                                         event_type="payment_intent.succeeded",
                                         body=json.dumps(payload).encode()).pk


@pytest.mark.parametrize("other", [_the_invoices_payment_in_its_scope, _the_invoices_payment_by_find_alone],
                         ids=["in its scope", "by find alone"])
@pytest.mark.parametrize("way", ["drain batch", "one by one"])
@pytest.mark.django_db(transaction=True, databases=["default", "owner"])
def test_an_invoice_and_its_payment_intent_processed_at_once_are_one_payment(way, other):
    tenant = make_tenant("race")
    log_id = _the_intents_event(tenant)
    held, seen = threading.Event(), []
    holder = threading.Thread(target=_hold_until_waited_for, args=(tenant, other, held, seen, "advisory"),
                              daemon=True)
    holder.start()
    try:
        assert held.wait(WAIT_FOR_WAITER)
        if way == "drain batch":
            assert drain_once()[0] == 1
        else:
            assert process(log_id, str(tenant.pk)) == "processed"
    finally:
        holder.join()
        connections["owner"].close()
    with tenant_context(tenant):
        (payment,) = Payment.objects.filter(source="stripe")
        assert (payment.external_id, payment.invoice_id, payment.status) == ("pi_race_1", "in_race_1", "succeeded")
        assert WebhookLog.objects.get(pk=log_id).status == "processed"
    assert seen, "the PaymentIntent's event did not wait for the invoice's writer"


@pytest.mark.django_db(transaction=True, databases=["default", "owner"])
def test_a_writer_that_reaches_the_payment_by_another_id_waits_and_keeps_the_others_refund():
    """A refund (known by the PaymentIntent) and a late invoice event (known only by the invoice)
    write the same payment at once: they hold no id in common, so the row lock decides; the second
    reads the payment as the first left it and does not write back a stale amount or status."""
    from integrations.providers.stripe.payments import find

    tenant = make_tenant("lost")
    with tenant_context(tenant):
        payment = Payment.objects.create(payment_event_id="pi_lost_1", external_id="pi_lost_1", invoice_id="in_lost_1",
                                         source="stripe", amount=Decimal("49.00"), currency="EUR", status="succeeded")

    def refund():
        (found,) = find(Keys(payment_intent="pi_lost_1"))
        found.amount_refunded, found.status = Decimal("10.00"), Payment.Status.PARTIALLY_REFUNDED
        found.save()

    held, seen = threading.Event(), []
    holder = threading.Thread(target=_hold_until_waited_for, args=(tenant, refund, held, seen, None), daemon=True)
    holder.start()
    try:
        assert held.wait(WAIT_FOR_WAITER)
        with tenant_context(tenant):
            record(Keys(invoice="in_lost_1"), amount=Decimal("49.00"), currency="EUR", status="succeeded",
                   description="the invoice's late event")
    finally:
        holder.join()
        connections["owner"].close()
    with tenant_context(tenant):
        (again,) = Payment.objects.filter(source="stripe")
        assert again.pk == payment.pk
        assert (again.amount_refunded, again.status) == (Decimal("10.00"), "partially_refunded")
        assert again.description == "the invoice's late event"
    assert seen


def test_an_id_no_query_could_carry_is_no_candidate():
    """A NUL or a lone surrogate in an id-shaped string: left to the handler's own lookup, which
    refuses the row, instead of failing the batch's one query for everyone."""
    payload = {"a": "pi_ok", "b": ["in_\x00bad", {"c": "ch_\ud800bad", "d": "py_fine"}], "e": "cus_other",
               "f": "pi_" + "x" * 300}
    assert keys_in(payload) == {"pi_ok", "py_fine"}
    assert keys_in(None) == set()


def test_the_events_own_object_is_a_candidate_however_long_its_lists():
    """The scan is bounded (2,000 strings); the object's own ids come before a long nested list."""
    lines = [{"id": f"il_{i}", "invoice_item": f"ii_{i}", "description": "x"} for i in range(3000)]
    payload = {"data": {"object": {"id": "in_big", "lines": {"data": lines}, "payment_intent": "pi_big"}}}
    assert {"in_big", "pi_big"} <= keys_in(payload)
