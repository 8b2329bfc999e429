"""Denefits payment-plan events (relayed by a Make.com scenario) → contacts, sign-ups and payments.

Denefits publishes no webhook format, so the scenario maps its data onto this shape (ours, and
documented on the setup page)::

    {"event": "payment.received",            # or contract.created, payment.failed
     "id": "…",                              # optional: unique per event, else the body hash
     "customer": {"email", "first_name", "last_name" | "name", "phone"},
     "contract": {"id", "amount", "currency", "installments", "status"},
     "payment":  {"id", "amount", "currency", "paid_at" | "failed_at", "reason"}}

Amounts are in major units (``"199.00"`` dollars, not cents); the currency defaults to USD.
"""

from datetime import timezone as dt_timezone
from decimal import Decimal, InvalidOperation

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from contacts.models import Payment
from contacts.services import add_pending_signup, record_payment, upsert_contact

DEFAULT_CURRENCY = "USD"


def _part(payload, name: str) -> dict:
    value = payload.get(name)
    return value if isinstance(value, dict) else {}


def _contact(payload):
    customer = _part(payload, "customer")
    if not customer.get("email"):
        raise ValueError("no customer.email in the body: map it in the Make.com scenario")
    first, last = customer.get("first_name") or "", customer.get("last_name") or ""
    if not (first or last) and customer.get("name"):
        first, _, last = str(customer["name"]).strip().partition(" ")
    contact, _ = upsert_contact(source="denefits", email=customer["email"], first_name=first, last_name=last,
                                phone=customer.get("phone") or "")
    return contact


def _amount(value) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValueError(f"amount {value!r} is not a number in major units") from None


def _when(value):
    moment = parse_datetime(value) if isinstance(value, str) else None
    if moment is not None and timezone.is_naive(moment):
        moment = moment.replace(tzinfo=dt_timezone.utc)  # Make.com sends ISO 8601; bare ones are UTC
    return moment


def _payment(event, status: str, key_suffix: str = "") -> None:
    payload = event.payload
    payment, contract = _part(payload, "payment"), _part(payload, "contract")
    if not payment.get("id"):
        raise ValueError("no payment.id in the body: map it in the Make.com scenario")
    currency = payment.get("currency") or contract.get("currency") or DEFAULT_CURRENCY
    record_payment(
        # One row per Denefits payment; a failure gets its own key so that a later success of
        # the same installment is still recorded (record_payment keeps the first row for a key).
        payment_event_id=f"denefits:{payment['id']}{key_suffix}", source="denefits",
        amount=_amount(payment.get("amount", 0)), currency=currency, status=status,
        contact=_contact(payload), external_id=str(payment["id"]),
        description=f"Denefits contract {contract['id']}" if contract.get("id") else "Denefits payment",
        metadata={k: v for k, v in (("contract_id", contract.get("id")), ("reason", payment.get("reason"))) if v},
        occurred_at=_when(payment.get("paid_at") or payment.get("failed_at")),
    )


def payment_received(event) -> None:
    _payment(event, Payment.Status.SUCCEEDED)


def payment_failed(event) -> None:
    _payment(event, Payment.Status.FAILED, key_suffix=":failed")


def contract_created(event) -> None:
    """A signed financing contract is a new customer committing to the tenant's offer: a contact,
    plus a sign-up the tenant approves (as for an Eventbrite order). No money moved yet, so no
    payment; each installment arrives as ``payment.received``."""
    contract = _part(event.payload, "contract")
    if not contract.get("id"):
        raise ValueError("no contract.id in the body: map it in the Make.com scenario")
    metadata = {key: contract[key] for key in ("amount", "currency", "installments", "status") if key in contract}
    add_pending_signup(contact=_contact(event.payload), source="denefits", external_id=str(contract["id"]),
                       metadata=metadata)


HANDLERS = {
    "contract.created": contract_created,
    "payment.received": payment_received,
    "payment.failed": payment_failed,
}
# Known to the scenario template, deliberately not acted on: nothing in our model follows them.
IGNORED_EVENTS = frozenset({"contract.updated", "contract.completed", "contract.cancelled", "test"})
