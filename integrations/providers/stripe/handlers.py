"""Stripe events → payments, contacts and their subscriptions.

Every handler reads the event's validated model (``event.data``, ``schemas.py``) and what the fetch
phase got from Stripe (``event.fetched``, ``lookups.py``); payments are joined into one per money
movement by ``payments.py`` (its docstring documents the join key). Amounts arrive in minor units
(cents; JPY as they are) and go through the one money parser.
"""

from __future__ import annotations

from contacts.models import Payment
from contacts.money import parse_amount
from contacts.services import upsert_contact
from integrations.providers.stripe import disputes, subscriptions
from integrations.providers.stripe.lookups import details_of_charge, invoice_intent
from integrations.providers.stripe.payments import Keys, record


def money(minor: int, currency: str):
    return parse_amount(minor, currency, minor=True)


def payer(details: dict | None, customer: str | None = None):
    """The contact for a payer's e-mail (and name, phone), linked to the Stripe customer; None
    when the event and its lookups name nobody."""
    details = details or {}
    email = details.get("email") or ""
    if not email:
        return subscriptions.contact_of_customer(customer) if customer else None
    first, _, last = (details.get("name") or "").strip().partition(" ")
    contact, _ = upsert_contact(source="stripe", email=email, first_name=first, last_name=last,
                                phone=details.get("phone") or "", stripe_customer_id=customer or "")
    return contact


def _fetched(event) -> dict:
    return event.fetched or {}


def _notes(event) -> dict:
    """What to keep on the payment about a lookup Stripe refused."""
    error = _fetched(event).get("lookup_error")
    return {"payer_lookup": error} if error else {}


# --- PaymentIntents ----------------------------------------------------------------------------
def _intent_payer(event, intent):
    charges = intent.charges.data if intent.charges else []
    charge = charges[0] if charges else (intent.latest_charge if not isinstance(intent.latest_charge, str) else None)
    details = details_of_charge(charge) if charge is not None else {}
    if not details.get("email"):
        details = _fetched(event).get("payer") or {"email": intent.receipt_email}
    return payer(details, intent.customer)


def _intent(event, status: str, amount_field: str = "amount", failure_reason: str = ""):
    intent = event.data.data.object
    record(
        Keys(payment_intent=intent.id, invoice=intent.invoice), amount=money(getattr(intent, amount_field) or intent.amount,
                                                                             intent.currency),
        currency=intent.currency, status=status, contact=_intent_payer(event, intent), description=intent.description,
        metadata={**intent.metadata, **_notes(event)}, occurred_at=event.data.created, failure_reason=failure_reason,
    )


def payment_intent_succeeded(event):
    _intent(event, Payment.Status.SUCCEEDED, "amount_received")


def payment_intent_payment_failed(event):
    error = event.data.data.object.last_payment_error
    reason = ": ".join(filter(None, (error.decline_code or error.code, error.message))) if error else "payment failed"
    _intent(event, Payment.Status.FAILED, failure_reason=reason)


def payment_intent_canceled(event):
    reason = event.data.data.object.cancellation_reason or "canceled"
    _intent(event, Payment.Status.CANCELED, failure_reason=f"canceled: {reason}" if reason != "canceled" else reason)


# --- charges (legacy charges without a PaymentIntent are payments too) ----------------------------
def _charge(event, status: str, failure_reason: str = ""):
    charge = event.data.data.object
    details = details_of_charge(charge)
    if not details["email"]:
        details = _fetched(event).get("payer") or details
    return record(
        Keys(payment_intent=charge.payment_intent, invoice=charge.invoice, charge=charge.id),
        amount=money(charge.amount, charge.currency), currency=charge.currency, status=status,
        contact=payer(details, charge.customer), description=charge.description,
        metadata={**charge.metadata, **_notes(event)}, occurred_at=event.data.created, failure_reason=failure_reason,
    )


def charge_succeeded(event):
    _charge(event, Payment.Status.SUCCEEDED)


def charge_failed(event):
    charge = event.data.data.object
    _charge(event, Payment.Status.FAILED,
            failure_reason=": ".join(filter(None, (charge.failure_code, charge.failure_message))) or "charge failed")


def charge_refunded(event):
    """``amount_refunded`` is the charge's total refunded so far: partial refunds stay partial.
    A refund of a payment we never saw records the payment first, so the books are complete."""
    charge = event.data.data.object
    payment = _charge(event, Payment.Status.SUCCEEDED)
    disputes.set_refunded(payment, money(charge.amount_refunded, charge.currency))


def charge_refund_updated(event):
    disputes.refund_updated(event)


# --- checkout sessions -------------------------------------------------------------------------
def checkout_session_completed(event, status: str = Payment.Status.SUCCEEDED):
    """One-off checkouts join their PaymentIntent, subscription checkouts their invoice. A session
    with nothing to pay (setup mode, ``no_payment_required``, a free trial) records no payment,
    and an unpaid one (a delayed payment method) waits for ``async_payment_succeeded``."""
    session = event.data.data.object
    details = session.customer_details or None
    contact = payer({"email": (details.email if details else "") or session.customer_email,
                     "name": details.name if details else "", "phone": details.phone if details else ""},
                    session.customer)
    if session.mode == "setup" or session.payment_status == "no_payment_required" or not session.amount_total:
        return
    if status == Payment.Status.SUCCEEDED and session.payment_status != "paid":
        return
    if not (session.payment_intent or session.invoice):
        return  # nothing to join it to: the invoice or PaymentIntent events record it
    record(
        Keys(payment_intent=session.payment_intent, invoice=session.invoice, subscription=session.subscription),
        amount=money(session.amount_total, session.currency), currency=session.currency, status=status,
        contact=contact, description="Checkout", metadata=session.metadata, occurred_at=event.data.created,
    )


def checkout_session_async_payment_failed(event):
    checkout_session_completed(event, Payment.Status.FAILED)


# --- invoices (subscriptions) ------------------------------------------------------------------
def _invoice(event, status: str, amount: int, failure_reason: str = ""):
    invoice = event.data.data.object
    details = {"email": invoice.customer_email, "name": invoice.customer_name, "phone": invoice.customer_phone}
    if not details["email"]:
        details = _fetched(event).get("payer") or details
    subscription = invoice.subscription or (
        invoice.parent.subscription_details.subscription
        if invoice.parent and invoice.parent.subscription_details else None)
    intent = invoice_intent(invoice) or _fetched(event).get("payment_intent") or None
    record(
        Keys(payment_intent=intent, invoice=invoice.id, charge=invoice.charge, subscription=subscription),
        amount=money(amount, invoice.currency), currency=invoice.currency, status=status,
        contact=payer(details, invoice.customer), description=f"Invoice {invoice.number or invoice.id}",
        metadata={"billing_reason": invoice.billing_reason, **_notes(event)}, occurred_at=event.data.created,
        failure_reason=failure_reason,
    )


def invoice_paid(event):
    """``invoice.paid`` and ``invoice.payment_succeeded`` (both come for one invoice): the amount
    paid. An invoice paid with nothing (a trial, a credit balance) is no payment."""
    invoice = event.data.data.object
    if invoice.amount_paid:
        _invoice(event, Payment.Status.SUCCEEDED, invoice.amount_paid)


def invoice_payment_failed(event):
    invoice = event.data.data.object
    if invoice.amount_due:
        _invoice(event, Payment.Status.FAILED, invoice.amount_due,
                 failure_reason=f"payment attempt {invoice.attempt_count or 1} failed ({invoice.billing_reason or 'invoice'})")


HANDLERS = {
    "payment_intent.succeeded": payment_intent_succeeded,
    "payment_intent.payment_failed": payment_intent_payment_failed,
    "payment_intent.canceled": payment_intent_canceled,
    "charge.succeeded": charge_succeeded,
    "charge.failed": charge_failed,
    "charge.refunded": charge_refunded,
    "charge.refund.updated": charge_refund_updated,
    "checkout.session.completed": checkout_session_completed,
    "checkout.session.async_payment_succeeded": checkout_session_completed,
    "checkout.session.async_payment_failed": checkout_session_async_payment_failed,
    "invoice.paid": invoice_paid,
    "invoice.payment_succeeded": invoice_paid,
    "invoice.payment_failed": invoice_payment_failed,
    **{name: subscriptions.subscription_changed for name in subscriptions.EVENTS},
    **{name: disputes.dispute_changed for name in disputes.EVENTS},
}
EVENT_DOCS = {
    "payment_intent.succeeded": "records the payment (the PaymentIntent is the join key); the payer from the "
                                "charge, else looked up (customer or latest charge) with the secret key",
    "payment_intent.payment_failed": "records the payment as failed, with the decline code and message",
    "payment_intent.canceled": "records the payment as canceled, with the reason",
    "charge.succeeded": "a legacy charge without a PaymentIntent is a payment; others join their PaymentIntent",
    "charge.failed": "records the payment as failed, with the failure code and message",
    "charge.refunded": "keeps amount_refunded true (partial refunds stay partly refunded)",
    "charge.refund.updated": "a refund that failed or was canceled no longer counts as refunded",
    "checkout.session.completed": "a paid checkout joins its PaymentIntent (one-off) or its invoice (subscription); "
                                  "setup-mode and no-payment-required checkouts record no payment",
    "checkout.session.async_payment_succeeded": "the same, once a delayed payment method has paid",
    "checkout.session.async_payment_failed": "records the checkout's payment as failed",
    "invoice.paid": "records the subscription payment (amount paid, the customer's e-mail, subscription and invoice ids)",
    "invoice.payment_succeeded": "the same as invoice.paid (Stripe sends both: one payment)",
    "invoice.payment_failed": "records the invoice's payment as failed, with the attempt",
    **{name: text for name, text in subscriptions.EVENT_DOCS.items()},
    **{name: text for name, text in disputes.EVENT_DOCS.items()},
}
IGNORED_EVENTS = frozenset({
    "payment_intent.created", "payment_intent.processing", "payment_intent.requires_action",
    "payment_intent.amount_capturable_updated", "charge.captured", "charge.updated", "charge.pending",
    "charge.refund.created", "refund.created", "refund.updated", "customer.created", "customer.updated",
    "customer.deleted", "invoice.created", "invoice.finalized", "invoice.updated", "invoice.upcoming",
    "invoice.sent", "invoice.voided", "invoice.marked_uncollectible", "invoice_payment.paid",
    "invoiceitem.created", "checkout.session.expired", "payment_method.attached", "payment_method.detached",
    "setup_intent.created", "setup_intent.succeeded", "price.created", "price.updated", "product.created",
    "product.updated", "balance.available", "payout.created", "payout.paid",
})
