"""Stripe events → payments and contacts. Amounts arrive in minor units (cents), except for
zero-decimal currencies such as JPY, which ``from_minor_units`` leaves as they are."""

from datetime import datetime, timezone

from contacts.models import Payment
from contacts.services import from_minor_units, mark_refunded, record_payment, upsert_contact


def _when(payload) -> datetime | None:
    created = payload.get("created")
    return datetime.fromtimestamp(created, tz=timezone.utc) if isinstance(created, int) else None


def _contact(details: dict | None, fallback_email: str = ""):
    details = details or {}
    email = details.get("email") or fallback_email
    if not email:
        return None
    name = (details.get("name") or "").strip()
    first, _, last = name.partition(" ")
    contact, _ = upsert_contact(source="stripe", email=email, first_name=first, last_name=last,
                                phone=details.get("phone") or "")
    return contact


def checkout_session_completed(event):
    session = event.payload["data"]["object"]
    if session.get("payment_status") not in (None, "paid", "no_payment_required"):
        return  # async payment methods: payment_intent.succeeded will follow
    contact = _contact(session.get("customer_details"), session.get("customer_email") or "")
    currency = session.get("currency") or "usd"
    record_payment(
        payment_event_id=session.get("payment_intent") or session["id"],
        source="stripe", amount=from_minor_units(session.get("amount_total") or 0, currency), currency=currency,
        contact=contact, external_id=session.get("payment_intent") or session["id"],
        description="Checkout", metadata=session.get("metadata") or {}, occurred_at=_when(event.payload),
    )


def payment_intent_succeeded(event):
    intent = event.payload["data"]["object"]
    charge = ((intent.get("charges") or {}).get("data") or [{}])[0] if intent.get("charges") else {}
    email = intent.get("receipt_email") or ""
    contact = _contact(charge.get("billing_details"), email)
    currency = intent.get("currency") or "usd"
    # Keyed on the intent, like checkout: the same payment seen through both events is one row.
    record_payment(
        payment_event_id=intent["id"], source="stripe",
        amount=from_minor_units(intent.get("amount_received") or intent.get("amount") or 0, currency),
        currency=currency, contact=contact, external_id=intent["id"],
        description=intent.get("description") or "", metadata=intent.get("metadata") or {},
        occurred_at=_when(event.payload),
    )


def charge_refunded(event):
    charge = event.payload["data"]["object"]
    currency = charge.get("currency") or "usd"
    refunded = from_minor_units(charge.get("amount_refunded") or 0, currency)
    external_id = charge.get("payment_intent") or charge["id"]
    if not mark_refunded(source="stripe", external_id=external_id, amount_refunded=refunded):
        # A refund for a payment we never saw: record it so the books are complete.
        amount = from_minor_units(charge.get("amount") or 0, currency)
        record_payment(
            payment_event_id=external_id, source="stripe", amount=amount, currency=currency,
            contact=_contact(charge.get("billing_details")), external_id=external_id,
            status=Payment.Status.REFUNDED if refunded >= amount else Payment.Status.PARTIALLY_REFUNDED,
            occurred_at=_when(event.payload),
        )
        mark_refunded(source="stripe", external_id=external_id, amount_refunded=refunded)


HANDLERS = {
    "checkout.session.completed": checkout_session_completed,
    "payment_intent.succeeded": payment_intent_succeeded,
    "charge.refunded": charge_refunded,
}
IGNORED_EVENTS = frozenset(
    {"payment_intent.created", "charge.succeeded", "customer.created", "customer.updated", "invoice.created"}
)
