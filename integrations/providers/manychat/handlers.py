"""ManyChat "External Request" bodies → contacts.

ManyChat does not send webhooks of its own: a flow's External Request step posts whatever JSON the
flow author builds. We ask for ManyChat's "Full Subscriber Data" as the body (``id``,
``first_name``, ``last_name``, ``email``, ``phone``, ``custom_fields`` …), optionally with an
``event`` (or ``type``) such as ``"subscriber.updated"`` or ``"new_subscriber"``; without one, a body
that carries a subscriber ``id`` is the event ``"subscriber"``. A flow author may also wrap the
subscriber in ``{"subscriber": {...}}``: both shapes are read (``schemas.py``, which the handler's
``event.data`` comes from: a body without a subscriber id is ``malformed`` before this runs).
"""

from contacts.services import upsert_contact

#: the event type of a body that is a subscriber object and names no event of its own.
DEFAULT_EVENT = "subscriber"


def subscriber_of(payload: dict) -> dict:
    """The subscriber object: the body itself, or its ``subscriber`` member when wrapped (for the
    event type and id, read before any schema)."""
    wrapped = payload.get("subscriber")
    return wrapped if isinstance(wrapped, dict) else payload


def subscriber(event) -> None:
    """Create or fill in the tenant's contact for this subscriber, matched on the ManyChat id
    first (the e-mail may be missing or change), then on the e-mail."""
    data = event.data
    first, last = data.first_name, data.last_name
    if not (first or last) and data.name:
        first, _, last = data.name.partition(" ")
    upsert_contact(
        source="manychat", mc_id=data.id, email=data.email, first_name=first, last_name=last,
        phone=data.phone or data.whatsapp_phone, custom_fields=data.custom_fields,
    )


HANDLERS = {
    DEFAULT_EVENT: subscriber,
    "subscriber.updated": subscriber,
    "subscriber.created": subscriber,
    "new_subscriber": subscriber,
}
# A flow author testing the wiring may send these; they carry nothing to store.
IGNORED_EVENTS = frozenset({"ping", "test"})
