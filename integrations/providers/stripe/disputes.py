"""Disputes and refunds of Stripe payments: the payment shows it is disputed (and then won or
lost), and ``amount_refunded`` stays what Stripe says, partial refunds and failed refunds included.

A dispute or refund names its charge and PaymentIntent; the payment is found through the join key
(``payments.py``). A dispute of a payment we never saw records that payment first (its amount is
the dispute's, which is the charge's unless Stripe disputed part of it), so the books show it.
"""

from __future__ import annotations

from decimal import Decimal

from contacts.models import Payment
from contacts.money import minor_units, parse_amount
from contacts.values import fit
from integrations.providers.stripe.payments import Keys, find, record

EVENTS = (
    "charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed",
    "charge.dispute.funds_withdrawn", "charge.dispute.funds_reinstated",
)
EVENT_DOCS = {
    "charge.dispute.created": "marks the payment disputed, with the reason and amount",
    "charge.dispute.updated": "keeps the dispute's status current",
    "charge.dispute.closed": "marks the dispute won or lost",
    "charge.dispute.funds_withdrawn": "keeps the dispute open (Stripe took the funds back meanwhile)",
    "charge.dispute.funds_reinstated": "keeps the dispute's status (the funds came back: usually won)",
}
#: Stripe's dispute statuses → ours. ``warning_closed`` (an inquiry closed without a chargeback)
#: and ``prevented`` cost nothing: won.
OUTCOME = {"won": Payment.Dispute.WON, "warning_closed": Payment.Dispute.WON, "prevented": Payment.Dispute.WON,
           "lost": Payment.Dispute.LOST}
#: Refund statuses that no longer take money back.
UNDONE = ("failed", "canceled")


def dispute_changed(event):
    dispute = event.data.data.object
    keys = Keys(payment_intent=dispute.payment_intent, charge=dispute.charge)
    amount = parse_amount(dispute.amount, dispute.currency, minor=True)
    payment = next(iter(find(keys)), None) or record(
        keys, amount=amount, currency=dispute.currency, status=Payment.Status.SUCCEEDED,
        description="Disputed payment", occurred_at=event.data.created,
    )
    seen = payment.metadata.get("dispute_event_at")
    when = event.data.created.isoformat() if event.data.created else ""
    if seen and when and when < seen:
        return  # Stripe does not keep order: an older state of the dispute
    payment.dispute = OUTCOME.get(dispute.status, Payment.Dispute.OPEN)
    payment.dispute_status = fit(Payment, "dispute_status", dispute.status)
    payment.dispute_reason = fit(Payment, "dispute_reason", dispute.reason)
    payment.disputed_amount = amount
    payment.metadata = {**payment.metadata, "dispute_id": dispute.id, "dispute_event_at": when,
                        "dispute_last_event": event.log.event_type}
    payment.save()


def set_refunded(payment: Payment, refunded: Decimal) -> None:
    """The charge's total refunded, as Stripe states it (between nothing and the whole amount)."""
    refunded = max(Decimal(0), min(refunded, payment.amount))
    payment.amount_refunded = refunded
    if refunded >= payment.amount:
        payment.status = Payment.Status.REFUNDED
    elif refunded > 0:
        payment.status = Payment.Status.PARTIALLY_REFUNDED
    elif payment.status in (Payment.Status.REFUNDED, Payment.Status.PARTIALLY_REFUNDED):
        payment.status = Payment.Status.SUCCEEDED  # every refund failed or was canceled
    payment.save(update_fields=["amount_refunded", "status", "updated_at"])


def refund_updated(event):
    """A refund's status changed. With the secret key the charge is re-read (``charge_refunded``
    from the fetch phase): its ``amount_refunded`` is the truth. Without it, a refund that failed or
    was canceled is taken off once, and a succeeded one counts at least its own amount."""
    refund = event.data.data.object
    payment = next(iter(find(Keys(payment_intent=refund.payment_intent, charge=refund.charge))), None)
    if payment is None:
        return  # a refund of a payment we never saw, and the refund alone does not say what was paid
    fetched = (event.fetched or {}).get("charge_refunded")
    if fetched is not None:
        set_refunded(payment, parse_amount(minor_units(fetched, "amount_refunded"), payment.currency, minor=True))
        return
    amount = parse_amount(refund.amount, refund.currency, minor=True)
    undone = set(payment.metadata.get("refunds_undone") or [])
    if refund.status in UNDONE and refund.id not in undone:
        payment.metadata = {**payment.metadata, "refunds_undone": sorted(undone | {refund.id})}
        payment.save(update_fields=["metadata", "updated_at"])
        set_refunded(payment, payment.amount_refunded - amount)
    elif refund.status == "succeeded" and payment.amount_refunded < amount:
        set_refunded(payment, amount)
