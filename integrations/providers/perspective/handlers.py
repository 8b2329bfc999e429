"""Perspective funnel leads → contacts.

Perspective publishes no webhook format (unconfirmed), so we read a documented shape and a few
common spellings of it::

    {"event": "lead",                       # optional; none means "lead"
     "id": "…",                             # optional: the lead's id, else the body hash
     "funnel": {"id": "…", "name": "…"},    # optional
     "contact": {"email", "firstName" | "first_name", "lastName" | "last_name",
                 "name" | "fullName", "phone" | "phoneNumber", …any other field},
     "answers": {"question": "answer", …}  or  [{"question" | "label", "answer" | "value"}, …]}

The contact may also sit at the top level. Every answered field we do not map to a column
(answers, extra contact fields, the funnel's name) is kept in ``custom_fields``. ``schemas.py``
checks the envelope (``contact`` and ``funnel`` objects, ``answers`` an object or a list); the
values are cleaned and fitted by ``contacts.services`` (an e-mail that is not one is refused).
"""

from contacts.services import upsert_contact
from integrations.providers.base import Malformed

DEFAULT_EVENT = "lead"

FIELD_NAMES = {
    "email": ("email", "Email", "emailAddress", "email_address"),
    "first_name": ("firstName", "first_name", "firstname"),
    "last_name": ("lastName", "last_name", "lastname"),
    "name": ("name", "fullName", "full_name"),
    "phone": ("phone", "phoneNumber", "phone_number", "mobile"),
}
MAPPED = {spelling for spellings in FIELD_NAMES.values() for spelling in spellings}
ENVELOPE = {"event", "type", "id", "funnel", "contact", "answers", "createdAt", "created_at"}


def contact_of(event) -> dict:
    """The lead's fields: its ``contact`` object (checked by ``schemas.py``), else the body."""
    contact = event.data.contact
    return contact if contact is not None else event.payload


def _first(data: dict, field: str) -> str:
    return next((str(data[k]).strip() for k in FIELD_NAMES[field] if data.get(k) not in (None, "")), "")


def lead(event) -> None:
    data = contact_of(event)
    email = _first(data, "email")
    if not email:
        raise Malformed("the Perspective lead has no `contact.email`: add the e-mail field to the funnel's form")
    first, last = _first(data, "first_name"), _first(data, "last_name")
    if not (first or last):
        first, _, last = _first(data, "name").partition(" ")
    skip = MAPPED | (ENVELOPE if data is event.payload else set())
    extra = {key: value for key, value in data.items() if key not in skip and not isinstance(value, (dict, list))}
    if event.data.funnel is not None and event.data.funnel.name:
        extra["funnel"] = event.data.funnel.name
    upsert_contact(source="perspective", email=email, first_name=first, last_name=last,
                   phone=_first(data, "phone"), custom_fields={**extra, **event.data.answers})


HANDLERS = {DEFAULT_EVENT: lead, "lead.created": lead, "form.submitted": lead}
IGNORED_EVENTS = frozenset({"ping", "test"})
