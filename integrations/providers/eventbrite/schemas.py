"""What the Eventbrite handlers read: the delivery (a pointer) and the object its ``api_url`` names,
which the fetch phase validates the same way (``ORDER``/``ATTENDEE``), so a handler never meets
an odd value from either."""

from __future__ import annotations

from pydantic import ValidationError

from integrations.providers.base import Malformed
from integrations.providers.schema import Currency, Email, Id, MinorUnits, Moment, Schema, Text, describe


class Config(Schema):
    action: Text


class Delivery(Schema):
    config: Config
    api_url: Text


class Money(Schema):
    """Eventbrite's money: ``value`` in minor units (5499), ``major_value`` the same as text
    ("54.99"), ``display`` for people. ``value`` is what is booked."""

    currency: Currency
    value: MinorUnits = 0


class Costs(Schema):
    gross: Money | None = None


class Profile(Schema):
    email: Email = ""
    first_name: Text = ""
    last_name: Text = ""
    cell_phone: Text = ""


class Attendee(Schema):
    id: Id
    changed: Text = ""
    created: Moment = None
    event_id: Text = ""
    order_id: Text = ""
    ticket_class_name: Text = ""
    status: Text = ""
    cancelled: bool = False
    refunded: bool = False
    checked_in: bool = False
    profile: Profile = Profile()
    costs: Costs | None = None


class Order(Schema):
    id: Id
    changed: Text = ""
    created: Moment = None
    status: Text = ""
    event_id: Text = ""
    email: Email = ""
    first_name: Text = ""
    last_name: Text = ""
    costs: Costs | None = None
    attendees: list[Attendee] = []


def fetched_as(model: type, answer, action: str):
    """Eventbrite's answer as ``model``, or ``Malformed`` naming the field that does not fit."""
    try:
        return model.model_validate(answer)
    except ValidationError as exc:
        raise Malformed(describe(exc, f"what Eventbrite answered for the {action} delivery's api_url")) from exc


SCHEMAS = dict.fromkeys(
    ("order.placed", "order.updated", "order.refunded", "attendee.updated", "attendee.checked_in",
     "attendee.checked_out"), Delivery)
