"""Posh.VIP purchases and tickets → contacts, payments, the sign-up queue and activity.

Shapes (unconfirmed, from the seed documents): ``purchase.{id, event_id, event_name, total_amount,
currency, tickets, customer.{email, first_name, last_name, phone}}``; ticket events add
``ticket.{id, type, holder}``, where ``holder`` is who holds the ticket now (after a transfer, the
new holder; ``transfer.to`` is read too).

Amounts: ``total_amount`` is read as currency units (45.00 for $45), the form the documents show.
A tenant whose deliveries carry whole cents sets ``amount_unit`` to "cents"; even then only whole
numbers are divided, since 45.50 cannot be a count of cents.

Handlers read ``event.data``, the payload validated by ``schemas.py``: a delivery that does not fit
is ``malformed`` before any of this runs.
"""

from decimal import Decimal

from contacts.models import Payment
from contacts.money import parse_amount
from contacts.services import add_pending_signup, mark_refunded, record_activity, record_payment, upsert_contact
from integrations.providers.base import Malformed

DEFAULT_CURRENCY = "USD"


def _person(details):
    """The tenant's contact for a Posh customer or holder, or None when it carries no e-mail."""
    if details is None or not details.email:
        return None
    contact, _ = upsert_contact(source="poshvip", email=details.email, first_name=details.first_name,
                                last_name=details.last_name, phone=details.phone)
    return contact


def _amount(purchase, integration) -> Decimal:
    """In currency units. A whole number (``4500``, not ``45.00``) counts cents when the tenant
    says its deliveries do; the money parser refuses what would be a fraction of a cent."""
    raw = purchase.total_amount
    if raw is None:
        return Decimal(0)
    whole = raw.as_tuple().exponent >= 0
    cents = whole and integration.value("amount_unit").strip().lower() == "cents"
    return parse_amount(raw, _currency(purchase), minor=cents, what="purchase.total_amount")


def _currency(purchase) -> str:
    return purchase.currency or DEFAULT_CURRENCY


def _record(event, purchase, contact, status=Payment.Status.SUCCEEDED):
    return record_payment(
        payment_event_id=f"poshvip:{purchase.id}", source="poshvip", amount=_amount(purchase, event.integration),
        currency=_currency(purchase), status=status, contact=contact, external_id=purchase.id,
        description=purchase.event_name, metadata={"event_id": purchase.event_id},
        occurred_at=event.data.created_at,
    )


def purchase_created(event):
    purchase = event.data.purchase
    contact = _person(purchase.customer)
    if _amount(purchase, event.integration) > 0:  # a free RSVP is a sign-up, not a payment
        _record(event, purchase, contact)
    if contact is not None:
        add_pending_signup(
            contact=contact, source="poshvip", external_id=purchase.id,
            metadata={"event_id": purchase.event_id, "event_name": purchase.event_name, "tickets": purchase.tickets},
        )


def purchase_refunded(event):
    purchase = event.data.purchase
    if mark_refunded(source="poshvip", external_id=purchase.id) or _amount(purchase, event.integration) <= 0:
        return
    # A refund for a purchase we never saw (connected later): record it so the books are complete.
    _record(event, purchase, _person(purchase.customer), status=Payment.Status.REFUNDED)
    mark_refunded(source="poshvip", external_id=purchase.id)


def _ticket_details(event) -> dict:
    purchase, ticket = event.data.purchase, event.data.ticket
    # Keyed on the stored event id (purchase, event, ticket): a replay finds its entry and adds none.
    return {"key": f"poshvip:{event.log.event_id}", "purchase_id": purchase.id,
            "ticket_id": ticket.id if ticket else "", "event_name": purchase.event_name}


def ticket_checked_in(event):
    ticket, purchase = event.data.ticket, event.data.purchase
    contact = _person(ticket.holder if ticket else None) or _person(purchase.customer)
    if contact is None:
        raise Malformed("the Posh.VIP check-in has no `ticket.holder.email` and no `purchase.customer.email`")
    record_activity(contact, "checked_in", **_ticket_details(event))


def ticket_transferred(event):
    data = event.data
    giver = _person(data.purchase.customer)
    holder = _person((data.ticket.holder if data.ticket else None) or (data.transfer.to if data.transfer else None))
    if giver is None and holder is None:
        raise Malformed("the Posh.VIP transfer has no `purchase.customer.email` and no `ticket.holder.email`")
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
