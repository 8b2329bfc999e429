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

An attendee is filed by ``record_attendee``, keyed on the attendee id: the order handlers and the
hourly attendee sync (``sync.py``) both call it, so an attendee seen by the webhook and by the sync
is one contact, one sign-up, one payment and one check-in line.
"""

from contacts.models import Contact, Payment, PendingSignup
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
    """The order's money (``costs.gross``) as one payment, when its attendees carry no price of
    their own (an order fetched without them, or without their costs) and none of them was booked
    (``record_attendee``): a ticket is never booked twice, once alone and once in its order."""
    gross = order.costs.gross if order.costs else None
    if gross is None or not gross.value or any(_paid(a) for a in order.attendees):
        return
    booked = Payment.objects.filter(source="eventbrite", metadata__order_id=order.id)
    if booked.exclude(payment_event_id=order_payment_id(order.id)).exists():
        return
    record_payment(
        payment_event_id=order_payment_id(order.id), source="eventbrite", external_id=order.id, contact=contact,
        amount=parse_amount(gross.value, gross.currency, minor=True, what="costs.gross.value"),
        currency=gross.currency, description=f"Order {order.id}", metadata={"order_id": order.id},
        occurred_at=order.created,
    )


def order_payment_id(order_id: str) -> str:
    return f"order:{order_id}"


def attendee_payment_id(attendee_id: str) -> str:
    return f"attendee:{attendee_id}"


def _paid(attendee: Attendee) -> bool:
    gross = attendee.costs.gross if attendee.costs else None
    return gross is not None and bool(gross.value)


#: How far a ticket's payment may move: forward only (Eventbrite never un-refunds a ticket).
PAYMENT_STEPS = {Payment.Status.SUCCEEDED: 0, Payment.Status.CANCELED: 1, Payment.Status.REFUNDED: 2}


def _attendee_payment(attendee: Attendee, contact, details: dict, *, refunded: bool) -> Payment | None:
    """The ticket's money (its ``costs.gross``: ``value`` in minor units), one payment per
    attendee, whose status follows the ticket: refunded, cancelled (not refunded), else succeeded.
    A free ticket is no payment; nor is a ticket whose order was booked whole (``_order_payment``)."""
    if not _paid(attendee):
        return None
    order_id = details.get("order_id") or ""
    if order_id and Payment.objects.filter(payment_event_id=order_payment_id(order_id)).exists():
        return None
    gross = attendee.costs.gross
    amount = parse_amount(gross.value, gross.currency, minor=True, what="costs.gross.value")
    status = (Payment.Status.REFUNDED if refunded else
              Payment.Status.CANCELED if attendee.cancelled else Payment.Status.SUCCEEDED)
    payment, created = record_payment(
        payment_event_id=attendee_payment_id(attendee.id), source="eventbrite", external_id=attendee.id,
        contact=contact, amount=amount, currency=gross.currency, status=status,
        description=f"{details.get('ticket_class') or 'Ticket'} (order {order_id})" if order_id else "Ticket",
        metadata=details, occurred_at=attendee.created,
    )
    if not created:
        if PAYMENT_STEPS.get(status, 0) <= PAYMENT_STEPS.get(payment.status, 0):
            return payment  # as it was, or further along: an older answer changes nothing
        payment.status = status
    elif status != Payment.Status.REFUNDED:
        return payment
    if status == Payment.Status.REFUNDED:
        payment.amount_refunded = payment.amount
    payment.save(update_fields=["status", "amount_refunded", "updated_at"])
    return payment


def record_check_in(contact, attendee: Attendee, details: dict) -> None:
    """One check-in line per attendee, whichever path saw it first."""
    record_activity(contact, "checked_in", key=f"eventbrite:{attendee.id}:checked_in", **details)


def record_attendee(attendee: Attendee, *, order_id: str = "", event_id: str = "", at=None,
                    refunded: bool = False):
    """The one way an Eventbrite attendee becomes the tenant's contact, sign-up, payment and
    check-in, for the order handlers and the attendee sync alike (all keyed on the attendee id, so
    both paths find the same rows). Returns the contact.

    A ticket holder is queued (a sign-up already there is left as it is: the tenant's decision
    stands); a cancelled or refunded ticket (``refunded``: the order says so) settles the sign-up
    as cancelled, dated ``at`` (else the attendee's ``changed``). A paid ticket is a payment whose
    status follows the ticket; ``checked_in`` adds the check-in to the contact's activity. The
    attendee must have an e-mail (``InvalidValue`` otherwise, from ``upsert_contact``)."""
    details = {"order_id": attendee.order_id or order_id, "event_id": attendee.event_id or event_id,
               "ticket_class": attendee.ticket_class_name}
    contact = _contact(attendee.profile)
    refunded = refunded or attendee.refunded
    if refunded or attendee.cancelled:
        when = at or parse_moment(attendee.changed or None, "changed")
        settle_signup(contact=contact, source="eventbrite", external_id=attendee.id,
                      status=PendingSignup.Status.CANCELLED, at=when, metadata=details)
    else:
        add_pending_signup(contact=contact, source="eventbrite", external_id=attendee.id, metadata=details)
    _attendee_payment(attendee, contact, details, refunded=refunded)
    if attendee.checked_in:
        record_check_in(contact, attendee, {"attendee_id": attendee.id, **details})
    return contact


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
        record_attendee(attendee, order_id=order.id, event_id=order.event_id)
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
            record_attendee(attendee, order_id=order.id, event_id=order.event_id, at=when, refunded=True)
    if whole and order.email:
        buyer = _contact(order)
        if PendingSignup.objects.filter(source="eventbrite", external_id=order.id).exists():
            settle_signup(contact=buyer, source="eventbrite", external_id=order.id,
                          status=PendingSignup.Status.CANCELLED, at=when)
        _order_payment(order, buyer)  # a refund of an order we never saw still books its money
    # The order's own payment (booked whole); a ticket's own payment was settled by record_attendee.
    if whole:
        mark_refunded(source="eventbrite", external_id=order.id)
    elif refunded and (amount := _costs(refunded)):
        mark_refunded(source="eventbrite", external_id=order.id, amount_refunded=amount)


def _costs(attendees: list[Attendee]):
    """What the refunded attendees paid (their ``costs.gross``), for an order booked whole."""
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
    record_check_in(_contact(attendee.profile), attendee, details)


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
    "order.placed": "adds each ticket holder as a contact and a pending sign-up, and each paid ticket's gross as a "
                    "payment (the order's gross when Eventbrite lists no price per ticket)",
    "order.updated": "the same, from the order as it is now; a retry of a change already handled (same "
                     "`changed`) does nothing",
    "order.refunded": "marks the refunded tickets' payments (or the order's) refunded and takes the refunded "
                      "attendees' sign-ups out of the queue",
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
