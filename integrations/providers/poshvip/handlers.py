"""Posh.VIP purchases and tickets → contacts, payments, the sign-up queue and activity.

Shapes (unconfirmed, from the seed documents): ``purchase.{id, event_id, event_name, total_amount,
currency, tickets, customer.{email, first_name, last_name, phone}}``; ticket events add
``ticket.{id, type, holder}``, where ``holder`` is who holds the ticket now (after a transfer, the
new holder; ``transfer.to`` is read too).

Amounts: ``total_amount`` is read as currency units (45.00 for $45), the form the documents show.
A tenant whose deliveries carry whole cents sets ``amount_unit`` to "cents"; even then only whole
numbers are divided, since 45.50 cannot be a count of cents.
"""

from decimal import Decimal, InvalidOperation

from django.utils.dateparse import parse_datetime

from contacts.models import Payment
from contacts.services import (
    add_pending_signup,
    from_minor_units,
    mark_refunded,
    record_activity,
    record_payment,
    upsert_contact,
)


def _person(details):
    """The tenant's contact for a Posh customer or holder, or None when it carries no e-mail."""
    if not isinstance(details, dict) or not details.get("email"):
        return None
    contact, _ = upsert_contact(
        source="poshvip", email=details["email"], first_name=details.get("first_name") or "",
        last_name=details.get("last_name") or "", phone=details.get("phone") or "",
    )
    return contact


def _amount(purchase: dict, integration) -> Decimal:
    raw = purchase.get("total_amount")
    if raw is None or isinstance(raw, bool):
        return Decimal(0)
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        raise ValueError(f"purchase {purchase.get('id')!r}: total_amount {raw!r} is not a number") from None
    whole = isinstance(raw, int) or (isinstance(raw, str) and raw.strip().isdigit())
    if whole and integration.value("amount_unit").strip().lower() == "cents":
        return from_minor_units(int(value), purchase.get("currency") or "USD")
    return value


def _record(event, purchase: dict, contact, status=Payment.Status.SUCCEEDED):
    currency = purchase.get("currency") or "USD"
    return record_payment(
        payment_event_id=f"poshvip:{purchase['id']}", source="poshvip", amount=_amount(purchase, event.integration),
        currency=currency, status=status, contact=contact, external_id=str(purchase["id"]),
        description=purchase.get("event_name") or "", metadata={"event_id": purchase.get("event_id") or ""},
        occurred_at=parse_datetime(str(event.payload.get("created_at") or "")),
    )


def purchase_created(event):
    purchase = event.payload["purchase"]
    contact = _person(purchase.get("customer"))
    if _amount(purchase, event.integration) > 0:  # a free RSVP is a sign-up, not a payment
        _record(event, purchase, contact)
    if contact is not None:
        add_pending_signup(
            contact=contact, source="poshvip", external_id=str(purchase["id"]),
            metadata={"event_id": purchase.get("event_id") or "", "event_name": purchase.get("event_name") or "",
                      "tickets": purchase.get("tickets") or []},
        )


def purchase_refunded(event):
    purchase = event.payload["purchase"]
    external_id = str(purchase["id"])
    if mark_refunded(source="poshvip", external_id=external_id) or _amount(purchase, event.integration) <= 0:
        return
    # A refund for a purchase we never saw (connected later): record it so the books are complete.
    _record(event, purchase, _person(purchase.get("customer")), status=Payment.Status.REFUNDED)
    mark_refunded(source="poshvip", external_id=external_id)


def _ticket_details(event) -> dict:
    purchase, ticket = event.payload["purchase"], event.payload.get("ticket") or {}
    # Keyed on the stored event id (purchase, event, ticket): a replay finds its entry and adds none.
    return {"key": f"poshvip:{event.log.event_id}", "purchase_id": str(purchase["id"]),
            "ticket_id": str(ticket.get("id") or ""), "event_name": purchase.get("event_name") or ""}


def ticket_checked_in(event):
    ticket = event.payload.get("ticket") or {}
    contact = _person(ticket.get("holder")) or _person(event.payload["purchase"].get("customer"))
    if contact is None:
        raise ValueError("check-in without a holder or customer e-mail")
    record_activity(contact, "checked_in", **_ticket_details(event))


def ticket_transferred(event):
    ticket = event.payload.get("ticket") or {}
    giver = _person(event.payload["purchase"].get("customer"))
    holder = _person(ticket.get("holder") or (event.payload.get("transfer") or {}).get("to"))
    if giver is None and holder is None:
        raise ValueError("transfer without a customer or holder e-mail")
    details = _ticket_details(event)
    if giver is not None:
        record_activity(giver, "transferred", direction="out", to_email=holder.email if holder else "", **details)
    if holder is not None and holder != giver:
        record_activity(holder, "transferred", direction="in", from_email=giver.email if giver else "", **details)


HANDLERS = {
    "purchase.created": purchase_created,
    "purchase.refunded": purchase_refunded,
    "ticket.checked_in": ticket_checked_in,
    "ticket.transferred": ticket_transferred,
}
# The documents name only the four events above; anything else is stored as unhandled, for an operator to see.
IGNORED_EVENTS: frozenset[str] = frozenset()
