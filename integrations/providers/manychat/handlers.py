"""ManyChat "External Request" bodies → contacts.

ManyChat does not send webhooks of its own: a flow's External Request step posts whatever JSON the
flow author builds. We ask for ManyChat's "Full Subscriber Data" as the body (``id``,
``first_name``, ``last_name``, ``email``, ``phone``, ``custom_fields`` …), optionally with an
``event`` (or ``type``) such as ``"subscriber.updated"`` or ``"new_subscriber"``; without one, a body
that carries a subscriber ``id`` is the event ``"subscriber"``. A flow author may also wrap the
subscriber in ``{"subscriber": {...}}``: both shapes are read.
"""

from contacts.services import upsert_contact

#: the event type of a body that is a subscriber object and names no event of its own.
DEFAULT_EVENT = "subscriber"


def subscriber_of(payload: dict) -> dict:
    """The subscriber object: the body itself, or its ``subscriber`` member when wrapped."""
    wrapped = payload.get("subscriber")
    return wrapped if isinstance(wrapped, dict) else payload


def custom_fields_of(value) -> dict:
    """ManyChat's API lists custom fields as ``[{"name": …, "value": …}, …]``; a flow author may
    build a plain object instead. Both become ``{name: value}``, kept as they came."""
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return {
            str(item["name"]): item.get("value")
            for item in value
            if isinstance(item, dict) and item.get("name")
        }
    return {}


def subscriber(event) -> None:
    """Create or fill in the tenant's contact for this subscriber, matched on the ManyChat id
    first (the e-mail may be missing or change), then on the e-mail."""
    data = subscriber_of(event.payload)
    mc_id = str(data.get("id") or "").strip()
    if not mc_id:
        # Only reachable with an explicit event and no id: say so on the row instead of guessing.
        raise ValueError("the body names no subscriber id: send ManyChat's Full Subscriber Data")
    first, last = data.get("first_name") or "", data.get("last_name") or ""
    if not (first or last) and data.get("name"):
        first, _, last = str(data["name"]).strip().partition(" ")
    upsert_contact(
        source="manychat",
        mc_id=mc_id,
        email=data.get("email") or "",
        first_name=first,
        last_name=last,
        phone=data.get("phone") or data.get("whatsapp_phone") or "",
        custom_fields=custom_fields_of(data.get("custom_fields")),
    )


HANDLERS = {
    DEFAULT_EVENT: subscriber,
    "subscriber.updated": subscriber,
    "subscriber.created": subscriber,
    "new_subscriber": subscriber,
}
# A flow author testing the wiring may send these; they carry nothing to store.
IGNORED_EVENTS = frozenset({"ping", "test"})
