"""One payment per money movement, whichever of its Stripe events comes first.

A customer paying once makes several events: a checkout session, an invoice (subscriptions), a
PaymentIntent, a charge. They are one ``Payment``, found and keyed by the **join key**:

* the PaymentIntent id (``pi_…``) whenever the money moved through one: a one-off checkout names
  it (``payment_intent``), an invoice names it (``payment_intent`` until basil, ``payments`` since,
  or ``/v1/invoice_payments`` looked up with the secret key), a charge names it;
* else the invoice id (``in_…``): a subscription checkout (no ``payment_intent``) names its
  ``invoice``, and an invoice whose PaymentIntent is not known yet;
* else the charge id (``ch_…``): a legacy charge made without a PaymentIntent.

``Payment.payment_event_id`` holds the best key known so far and ``external_id`` the PaymentIntent
(or legacy charge), ``invoice_id`` the invoice. An event that brings the two together (an invoice
naming its PaymentIntent) merges the rows it finds into one, keyed on the PaymentIntent. Checkout
session ids never key a payment: a session with nothing to pay (setup mode,
``no_payment_required``) records none.

Stripe does not keep order, so a field is only ever filled in, and a status only moves forward:
a late ``payment_failed`` never undoes ``succeeded``, and refunds and disputes have their own
fields.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

from contacts.models import Payment
from contacts.services import hold_payment_keys, payment_keys_absent, record_payment
from contacts.values import clean_json, clean_text, fit, strings_in

#: How far along a payment is; an event never moves it back.
RANK = {
    Payment.Status.PENDING: 0, Payment.Status.FAILED: 1, Payment.Status.CANCELED: 1, Payment.Status.SUCCEEDED: 2,
    Payment.Status.PARTIALLY_REFUNDED: 3, Payment.Status.REFUNDED: 3,
}


@dataclass(frozen=True)
class Keys:
    """The ids one event knows of its money movement."""

    payment_intent: str | None = None
    invoice: str | None = None
    charge: str | None = None
    subscription: str | None = None

    @property
    def best(self) -> str:
        return self.payment_intent or self.invoice or self.charge or ""

    @property
    def all(self) -> list[str]:
        return [key for key in (self.payment_intent, self.invoice, self.charge) if key]


#: The id prefixes of the objects a payment is keyed on (PaymentIntent, charge, invoice, payment).
KEY_PREFIXES = ("pi_", "ch_", "in_", "py_")


def ids_in(payload, prefixes: tuple[str, ...], limit: int = 2000) -> set[str]:
    """Every string of a payload (or of what a fetcher got) shaped like the id of one of the
    objects ``prefixes`` name: what a batch's handlers may look things up by (more than they use
    is harmless). An id a query could not carry (NUL, a lone surrogate) is no candidate: the
    handler's own lookup meets it and refuses the row, and the rest of the batch is not held up."""
    return {value for value in strings_in(payload, limit)
            if value.startswith(prefixes) and len(value) <= 255 and clean_text(value) == value}


def keys_in(payload, limit: int = 2000) -> set[str]:
    """The ids of PaymentIntents, charges, invoices and payments in a payload."""
    return ids_in(payload, KEY_PREFIXES, limit)


#: A Stripe customer's id prefix: a payer's contact is found by its customer first.
CUSTOMER_PREFIX = "cus_"


@contextmanager
def looked_up_together(events):
    """``StripeProvider.batch_scope``: the ids of the events' payments (in their payloads and in what
    their fetchers got) held for the transaction, and in a drain batch looked up in one query
    (``contacts.services.payment_keys_looked_up_together``); in a batch, their customers' contacts
    too (``contacts_looked_up_together``). Each payload is scanned once for both."""
    from contacts.services import contacts_looked_up_together, payment_keys_looked_up_together

    found = set().union(*(ids_in(part, (*KEY_PREFIXES, CUSTOMER_PREFIX))
                          for event in events for part in (event.payload, event.fetched)))
    customers = {value for value in found if value.startswith(CUSTOMER_PREFIX)}
    with payment_keys_looked_up_together("stripe", found - customers), \
            contacts_looked_up_together("stripe_customer_id", customers):
        yield


def find(keys: Keys) -> list[Payment]:
    """The tenant's Stripe payments that any of these ids names (more than one: not merged yet),
    locked for the rest of the transaction.

    Two locks, for two races. The ids are held first (``hold_payment_keys``): a concurrent writer
    of the same movement that knows one of these ids waits, so two events never each insert a row.
    The rows found are then locked (``FOR UPDATE``): a writer that reached the same row through an
    id this event does not know (an invoice's event by ``in_…``, a refund by ``pi_…``) waits too,
    and reads the row as the other left it, so neither writes back a stale amount or status."""
    from django.db.models import Q

    if payment_keys_absent("stripe", keys.all):
        return []  # a drain batch looked these ids up together: none is a payment (contacts.services)
    hold_payment_keys("stripe", keys.all)  # before looking: a concurrent writer of them waits, or we do
    query = Q(payment_event_id__in=keys.all) | Q(external_id__in=keys.all)
    if keys.invoice:
        query |= Q(invoice_id=keys.invoice)
    return list(Payment.objects.filter(query, source="stripe").order_by("pk").select_for_update())


def record(keys: Keys, *, amount: Decimal, currency: str, status: str, contact=None, description: str = "",
           metadata: dict | None = None, occurred_at=None, failure_reason: str = "") -> Payment:
    """Create or complete the payment of this money movement (see the module's docstring)."""
    found = find(keys)
    if not found:
        payment, created = record_payment(
            payment_event_id=keys.best, source="stripe", amount=amount, currency=currency, status=status,
            contact=contact, external_id=keys.payment_intent or keys.charge or "", description=description,
            metadata=metadata, occurred_at=occurred_at,
        )
        if created:
            _complete(payment, keys, failure_reason=failure_reason)
            return payment
        found = [payment]  # made by a concurrent delivery just now: complete it like any other
    payment = _merge(found, keys)
    _update(payment, keys, amount=amount, status=status, contact=contact, description=description,
            metadata=metadata, occurred_at=occurred_at, failure_reason=failure_reason)
    return payment


def _merge(found: list[Payment], keys: Keys) -> Payment:
    """Several rows for one movement (seen first through events that did not know each other):
    keep the one furthest along, fill it in from the others, delete them."""
    keep = max(found, key=lambda p: (RANK.get(p.status, 0), p.amount_refunded, -p.pk))
    for other in found:
        if other.pk == keep.pk:
            continue
        keep.contact = keep.contact or other.contact
        keep.invoice_id = keep.invoice_id or other.invoice_id
        keep.subscription_id = keep.subscription_id or other.subscription_id
        keep.external_id = keep.external_id or other.external_id
        keep.description = keep.description or other.description
        keep.occurred_at = min(filter(None, (keep.occurred_at, other.occurred_at)), default=None)
        keep.metadata = {**other.metadata, **keep.metadata}
        for field in ("dispute", "dispute_status", "dispute_reason", "disputed_amount", "failure_reason"):
            setattr(keep, field, getattr(keep, field) or getattr(other, field))
        keep.amount_refunded = max(keep.amount_refunded, other.amount_refunded)
        other.delete()
    return keep


def _complete(payment: Payment, keys: Keys, failure_reason: str = "") -> None:
    changed = _fill_ids(payment, keys)
    if failure_reason:
        payment.failure_reason = fit(Payment, "failure_reason", failure_reason)
        changed = True
    if changed:
        payment.save()


def _fill_ids(payment: Payment, keys: Keys) -> bool:
    before = (payment.payment_event_id, payment.external_id, payment.invoice_id, payment.subscription_id)
    if keys.payment_intent:
        # The PaymentIntent is the best key there is: the row takes it (merging freed it).
        payment.payment_event_id = payment.external_id = keys.payment_intent
    elif keys.charge and not payment.external_id:
        payment.external_id = keys.charge
    payment.invoice_id = payment.invoice_id or (keys.invoice or "")
    payment.subscription_id = payment.subscription_id or (keys.subscription or "")
    return before != (payment.payment_event_id, payment.external_id, payment.invoice_id, payment.subscription_id)


def _update(payment: Payment, keys: Keys, *, amount, status, contact, description, metadata, occurred_at,
            failure_reason) -> None:
    _fill_ids(payment, keys)
    if RANK.get(status, 0) >= RANK.get(payment.status, 0) and RANK.get(payment.status, 0) < 3:
        if status == Payment.Status.SUCCEEDED or payment.status != Payment.Status.SUCCEEDED:
            payment.amount = amount if amount else payment.amount
        payment.status = status
    if failure_reason and payment.status in (Payment.Status.FAILED, Payment.Status.CANCELED):
        payment.failure_reason = fit(Payment, "failure_reason", failure_reason)
    payment.contact = payment.contact or contact
    payment.description = payment.description or fit(Payment, "description", description)
    payment.occurred_at = payment.occurred_at or occurred_at
    if metadata:
        payment.metadata = {**clean_json(metadata), **payment.metadata}
    payment.save()
