"""Eventbrite deliveries → contacts, sign-ups, payments and check-ins.

A delivery says only what happened and where to look (``config.action``, ``api_url``): ``fetch``
gets the object with the tenant's private token (``client.py``, which refuses any URL outside the
Eventbrite API) *before* the row is claimed, outside any transaction (``Provider.fetchers``), and
checks it against ``schemas.Order``/``Attendee``; each handler works from that answer
(``event.fetched``). A fetch that fails raises, so the row is retried and never marked processed
on partial knowledge; a refused ``api_url`` is dead at once (no retry makes it safe).

Without ``X-Eventbrite-Delivery`` an ``order.updated`` or ``attendee.updated`` retry is the very
same body as a new change, so the receiver cannot tell them apart: each is stored. The fetched
object's ``changed`` time can: the handler files the change under ``<kind>:<id>:<changed>`` in the
contact's activity, and a delivery whose change is already filed writes nothing.
"""

from contacts.models import Contact, PendingSignup
from contacts.money import parse_amount
from contacts.services import (
    add_pending_signup,
    mark_refunded,
    record_activity,
    record_payment,
    settle_signup,
    upsert_contact,
)
from contacts.values import parse_moment
from integrations.providers.base import Malformed
from integrations.providers.eventbrite.client import EventbriteClient
from integrations.providers.eventbrite.schemas import Attendee, Order, fetched_as

#: action -> what Eventbrite's answer is (and what to ``expand`` in it).
ANSWERS = {
    "order.placed": (Order, "attendees"), "order.updated": (Order, "attendees"), "order.refunded": (Order, "attendees"),
    "attendee.updated": (Attendee, ""), "attendee.checked_in": (Attendee, ""), "attendee.checked_out": (Attendee, ""),
}


def fetch(event):
    """The object the delivery names, as Eventbrite has it now, checked against its schema."""
    model, expand = ANSWERS[event.log.event_type]
    client = EventbriteClient(event.integration.value("private_token"))
    answer = client.get(event.data.api_url, expand=expand)
    return fetched_as(model, answer, event.log.event_type)


def _contact(person):
    """An attendee's ``profile`` or an order's buyer: both have email, first/last name."""
    contact, _ = upsert_contact(source="eventbrite", email=person.email, first_name=person.first_name,
                                last_name=person.last_name, phone=getattr(person, "cell_phone", ""))
    return contact


def _already_filed(email: str, key: str) -> bool:
    """Whether the contact with this e-mail has this change in its activity already."""
    contact = Contact.objects.filter(email=email).only("activity").first() if email else None
    return contact is not None and any(entry.get("key") == key for entry in contact.activity)


def _order_payment(order: Order, contact) -> None:
    """The order's money (``costs.gross``), once per order; a free order is no payment."""
    gross = order.costs.gross if order.costs else None
    if gross is None or not gross.value:
        return
    record_payment(
        payment_event_id=f"order:{order.id}", source="eventbrite", external_id=order.id, contact=contact,
        amount=parse_amount(gross.value, gross.currency, minor=True, what="costs.gross.value"),
        currency=gross.currency, description=f"Order {order.id}", occurred_at=order.created,
    )


def order_placed(event) -> None:
    """One contact and one sign-up per attendee that holds a ticket (keyed on the attendee id, so
    ``order.updated`` and redeliveries add nothing twice), and the order's payment. An order fetched
    without attendees, or whose attendees carry no e-mail of their own, signs up its buyer under
    the order id."""
    order: Order = event.fetched
    change = f"eventbrite:order:{order.id}:{order.changed}"
    if event.log.event_type == "order.updated" and _already_filed(order.email, change):
        return  # a retry of a change handled before
    holding = [a for a in order.attendees if not (a.cancelled or a.refunded)]
    with_email = [a for a in holding if a.profile.email]
    for attendee in with_email:
        add_pending_signup(
            contact=_contact(attendee.profile), source="eventbrite", external_id=attendee.id,
            metadata={"order_id": order.id, "event_id": attendee.event_id or order.event_id,
                      "ticket_class": attendee.ticket_class_name},
        )
    buyer = _contact(order) if order.email else None
    if buyer is not None:
        _order_payment(order, buyer)
        if event.log.event_type == "order.updated":
            record_activity(buyer, "order_updated", key=change, order_id=order.id, status=order.status)
    if with_email or (order.attendees and not holding):
        return  # done, or every ticket was cancelled: nobody to sign up
    if buyer is None:
        raise Malformed(f"Eventbrite's order {order.id} has no buyer e-mail and no attendee with one")
    add_pending_signup(contact=buyer, source="eventbrite", external_id=order.id,
                       metadata={"order_id": order.id, "event_id": order.event_id})


def order_refunded(event) -> None:
    """The order's payment refunded (in full when the order is ``refunded``, else by the refunded
    attendees' own costs), and the refunded attendees' sign-ups out of the queue as cancelled."""
    order: Order = event.fetched
    whole = order.status == "refunded" or (order.attendees and all(a.refunded for a in order.attendees))
    refunded = [a for a in order.attendees if whole or a.refunded]
    when = parse_moment(order.changed, "changed")
    for attendee in refunded:
        if attendee.profile.email:
            settle_signup(contact=_contact(attendee.profile), source="eventbrite", external_id=attendee.id,
                          status=PendingSignup.Status.CANCELLED, at=when,
                          metadata={"order_id": order.id, "event_id": attendee.event_id})
    if whole and order.email:
        buyer = _contact(order)
        if PendingSignup.objects.filter(source="eventbrite", external_id=order.id).exists():
            settle_signup(contact=buyer, source="eventbrite", external_id=order.id,
                          status=PendingSignup.Status.CANCELLED, at=when)
        _order_payment(order, buyer)  # a refund of an order we never saw still books its money
    if whole:
        mark_refunded(source="eventbrite", external_id=order.id)
    elif refunded and (amount := _costs(refunded)):
        mark_refunded(source="eventbrite", external_id=order.id, amount_refunded=amount)


def _costs(attendees: list[Attendee]):
    """What the refunded attendees paid (their ``costs.gross``)."""
    grosses = [a.costs.gross for a in attendees if a.costs and a.costs.gross]
    return sum((parse_amount(g.value, g.currency, minor=True) for g in grosses), start=0)


def _attendee(event):
    attendee: Attendee = event.fetched
    if not attendee.profile.email:
        raise Malformed(f"Eventbrite's attendee {attendee.id} has no e-mail")
    details = {"attendee_id": attendee.id, "event_id": attendee.event_id, "order_id": attendee.order_id,
               "ticket_class": attendee.ticket_class_name}
    return attendee, details


def attendee_updated(event) -> None:
    """Keyed on the attendee's ``changed`` stamp: each change is one line, a retry nothing at all."""
    attendee, details = _attendee(event)
    key = f"eventbrite:{attendee.id}:{attendee.changed}"
    if _already_filed(attendee.profile.email, key):
        return
    record_activity(_contact(attendee.profile), "attendee_updated", key=key, status=attendee.status, **details)


def attendee_checked_in(event) -> None:
    attendee, details = _attendee(event)
    record_activity(_contact(attendee.profile), "checked_in", key=f"eventbrite:{attendee.id}:checked_in", **details)


def attendee_checked_out(event) -> None:
    """Keyed on ``changed``: someone may leave, come back and leave again; a retry adds nothing."""
    attendee, details = _attendee(event)
    record_activity(_contact(attendee.profile), "checked_out",
                    key=f"eventbrite:{attendee.id}:checked_out:{attendee.changed}", **details)


HANDLERS = {
    "order.placed": order_placed,
    "order.updated": order_placed,
    "order.refunded": order_refunded,
    "attendee.updated": attendee_updated,
    "attendee.checked_in": attendee_checked_in,
    "attendee.checked_out": attendee_checked_out,
}
#: Every handled action works from the object ``fetch`` got before the row was claimed.
FETCHERS = dict.fromkeys(HANDLERS, fetch)
EVENT_DOCS = {
    "order.placed": "adds each ticket holder as a contact and a pending sign-up, and the order's gross as a payment",
    "order.updated": "the same, from the order as it is now; a retry of a change already handled (same "
                     "`changed`) does nothing",
    "order.refunded": "marks the order's payment refunded and takes the refunded attendees' sign-ups out of the queue",
    "attendee.updated": "adds the change to the contact's activity (once per `changed` time) and fills in the contact",
    "attendee.checked_in": "adds the check-in to the contact's activity (once per attendee)",
    "attendee.checked_out": "adds the check-out to the contact's activity",
}
# Eventbrite's other actions, and the dashboard's "test" delivery: stored, nothing to do.
IGNORED_EVENTS = frozenset({
    "test", "barcode.checked_in", "barcode.un_checked_in",
    "event.created", "event.published", "event.unpublished", "event.updated", "organizer.updated",
    "ticket_class.created", "ticket_class.deleted", "ticket_class.updated", "venue.updated",
})
