"""Eventbrite deliveries → contacts, sign-ups and check-ins.

A delivery says only what happened and where to look (``config.action``, ``api_url``): each
event type's fetcher (``FETCHERS``) gets the object with the tenant's private token (``client.py``,
which refuses any URL outside the Eventbrite API) before the row is claimed, outside any
transaction, and the handler works from that answer (``event.fetched``). A fetch that fails raises,
so the row is retried and never marked processed on partial knowledge; a refused ``api_url`` is
dead at once (no retry makes it safe).
"""

from contacts.services import add_pending_signup, record_activity, upsert_contact
from integrations.providers.eventbrite.client import EventbriteClient


def _fetch(event, expand: str = "") -> dict:
    client = EventbriteClient(event.integration.value("private_token"))
    return client.get(event.payload.get("api_url"), expand=expand)


def fetch_order(event) -> dict:
    return _fetch(event, expand="attendees")


def _contact(person: dict):
    """An attendee's ``profile`` or an order's buyer: both have email, first/last name."""
    contact, _ = upsert_contact(
        source="eventbrite", email=person["email"], first_name=person.get("first_name") or "",
        last_name=person.get("last_name") or "", phone=person.get("cell_phone") or "",
    )
    return contact


def order_placed(event) -> None:
    """One contact and one sign-up per attendee that holds a ticket (keyed on the attendee id, so
    ``order.updated`` and redeliveries add nothing twice). An order fetched without attendees, or
    whose attendees carry no e-mail of their own, signs up its buyer under the order id."""
    order = event.fetched
    order_id = str(order.get("id") or "")
    attendees = [a for a in order.get("attendees") or [] if isinstance(a, dict)]
    holding = [a for a in attendees if not (a.get("cancelled") or a.get("refunded"))]
    with_email = [a for a in holding if (a.get("profile") or {}).get("email")]
    for attendee in with_email:
        add_pending_signup(
            contact=_contact(attendee["profile"]), source="eventbrite", external_id=str(attendee["id"]),
            metadata={"order_id": order_id, "event_id": str(attendee.get("event_id") or order.get("event_id") or ""),
                      "ticket_class": attendee.get("ticket_class_name") or ""},
        )
    if with_email or (attendees and not holding):
        return  # done, or every ticket was cancelled: nobody to sign up
    if not order.get("email"):
        raise ValueError(f"order {order_id} has no buyer e-mail and no attendee with one")
    add_pending_signup(contact=_contact(order), source="eventbrite", external_id=order_id,
                       metadata={"order_id": order_id, "event_id": str(order.get("event_id") or "")})


def _attendee(event):
    attendee = event.fetched
    profile = attendee.get("profile") or {}
    if not profile.get("email"):
        raise ValueError(f"attendee {attendee.get('id')} has no e-mail")
    details = {"attendee_id": str(attendee.get("id") or ""), "event_id": str(attendee.get("event_id") or ""),
               "order_id": str(attendee.get("order_id") or ""), "ticket_class": attendee.get("ticket_class_name") or ""}
    return attendee, _contact(profile), details


def attendee_updated(event) -> None:
    """Keyed on the attendee's ``changed`` stamp: each change is one line, a redelivery none."""
    attendee, contact, details = _attendee(event)
    record_activity(contact, "attendee_updated", key=f"eventbrite:{details['attendee_id']}:{attendee.get('changed', '')}",
                    status=attendee.get("status") or "", **details)


def attendee_checked_in(event) -> None:
    attendee, contact, details = _attendee(event)
    record_activity(contact, "checked_in", key=f"eventbrite:{details['attendee_id']}:checked_in", **details)


HANDLERS = {
    "order.placed": order_placed,
    "order.updated": order_placed,
    "attendee.updated": attendee_updated,
    "attendee.checked_in": attendee_checked_in,
}
FETCHERS = {
    "order.placed": fetch_order,
    "order.updated": fetch_order,
    "attendee.updated": _fetch,
    "attendee.checked_in": _fetch,
}
# Eventbrite's other actions, and the dashboard's "test" delivery: stored, nothing to do.
IGNORED_EVENTS = frozenset({
    "test", "order.refunded", "attendee.checked_out", "barcode.checked_in", "barcode.un_checked_in",
    "event.created", "event.published", "event.unpublished", "event.updated", "organizer.updated",
    "ticket_class.created", "ticket_class.deleted", "ticket_class.updated", "venue.updated",
})
