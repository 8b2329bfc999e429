"""What the Zoom handlers read of a registration event (``integrations.providers.schema``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BeforeValidator

from contacts.values import parse_moment
from integrations.providers.schema import Id, RequiredEmail, Schema, Text


def _milliseconds(value: Any) -> datetime | None:
    """``event_ts`` is milliseconds since the epoch; out of range or not a number is refused."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("is not a time in milliseconds")
    return parse_moment(value / 1000, "event_ts")


EventTime = Annotated[datetime | None, BeforeValidator(_milliseconds)]


class Registrant(Schema):
    id: Id
    email: RequiredEmail  # Zoom requires one to register: without it there is nobody to file
    first_name: Text = ""
    last_name: Text = ""
    phone: Text = ""
    status: Text = ""


class Registration(Schema):
    """A meeting or webinar, with the registration."""

    id: Id
    topic: Text = ""
    start_time: Text = ""
    registrant: Registrant


class Payload(Schema):
    object: Registration


class RegistrationEvent(Schema):
    event_ts: EventTime = None
    payload: Payload


SCHEMAS = {
    f"{kind}.registration_{change}": RegistrationEvent
    for kind in ("meeting", "webinar") for change in ("created", "cancelled", "denied", "approved")
}
