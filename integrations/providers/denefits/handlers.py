"""Denefits payment-plan events (relayed by a Make.com scenario) → contacts, sign-ups and payments.

Denefits publishes no webhook format, so the scenario maps its data onto this shape (ours, and
documented on the setup page)::

    {"event": "payment.received",            # or contract.created, payment.failed
     "id": "…",                              # optional: unique per event, else the body hash
     "customer": {"email", "first_name", "last_name" | "name", "phone"},
     "contract": {"id", "amount", "currency", "installments", "status"},
     "payment":  {"id", "amount", "currency", "paid_at" | "failed_at", "reason"}}

Amounts are in major units (``"199.00"`` dollars, not cents); the currency defaults to USD.
Handlers read ``event.data``, checked by ``schemas.py``: a body that does not fit (no
``customer.email``, an amount of ``"NaN"``) is ``malformed`` before they run.
"""

from contacts.models import Payment
from contacts.money import parse_amount
from contacts.services import add_pending_signup, record_payment, upsert_contact

DEFAULT_CURRENCY = "USD"


def _contact(customer):
    first, last = customer.first_name, customer.last_name
    if not (first or last) and customer.name:
        first, _, last = customer.name.partition(" ")
    contact, _ = upsert_contact(source="denefits", email=customer.email, first_name=first, last_name=last,
                                phone=customer.phone)
    return contact


def _payment(event, status: str, key_suffix: str = "") -> None:
    data = event.data
    payment, contract = data.payment, data.contract
    currency = payment.currency or (contract.currency if contract else None) or DEFAULT_CURRENCY
    contract_id = contract.id if contract else None
    record_payment(
        # One row per Denefits payment; a failure gets its own key so that a later success of
        # the same installment is still recorded (record_payment keeps the first row for a key).
        payment_event_id=f"denefits:{payment.id}{key_suffix}", source="denefits",
        amount=parse_amount(payment.amount, currency, what="payment.amount"), currency=currency, status=status,
        contact=_contact(data.customer), external_id=payment.id,
        description=f"Denefits contract {contract_id}" if contract_id else "Denefits payment",
        metadata={k: v for k, v in (("contract_id", contract_id), ("reason", payment.reason)) if v},
        occurred_at=payment.paid_at or payment.failed_at,
    )


def payment_received(event) -> None:
    _payment(event, Payment.Status.SUCCEEDED)


def payment_failed(event) -> None:
    _payment(event, Payment.Status.FAILED, key_suffix=":failed")


def contract_created(event) -> None:
    """A signed financing contract is a new customer committing to the tenant's offer: a contact,
    plus a sign-up the tenant approves (as for an Eventbrite order). No money moved yet, so no
    payment; each installment arrives as ``payment.received``."""
    contract = event.data.contract
    given = contract.model_dump(include={"amount", "currency", "installments", "status"}, exclude_unset=True)
    metadata = {key: str(value) if key == "amount" else value for key, value in given.items()}
    add_pending_signup(contact=_contact(event.data.customer), source="denefits", external_id=contract.id,
                       metadata=metadata)


HANDLERS = {
    "contract.created": contract_created,
    "payment.received": payment_received,
    "payment.failed": payment_failed,
}
# Known to the scenario template, deliberately not acted on: nothing in our model follows them.
IGNORED_EVENTS = frozenset({"contract.updated", "contract.completed", "contract.cancelled", "test"})
