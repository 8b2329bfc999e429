"""Zoom registrations → a contact and a sign-up for the tenant to approve.

A registration is someone asking for a seat, not someone who came: it goes to the sign-up queue.
The sign-up's key is ``<meeting|webinar>:<its id>:<registrant id>`` (``signup_key``): Zoom's
registrant ids are only unique within one meeting or webinar, so a webinar registration must never
land on a meeting's sign-up that happens to share the id. Cancelled, denied and approved
registrations settle that sign-up (``contacts.services.settle_signup``), dated by Zoom's
``event_ts``. Live meeting events (started, joined, ended) say nothing about who signed up and are
ignored. The attendee sync (``zoom.sync``) files what it reads through ``record_registration`` too,
so a registration the webhook and the sync both see is one contact and one sign-up.
"""

from contacts.models import PendingSignup
from contacts.services import add_pending_signup, settle_signup, upsert_contact


def signup_key(kind: str, object_id, registrant_id) -> str:
    """What a Zoom sign-up is called here; the attendee sync must use the same key."""
    return f"{kind}:{object_id}:{registrant_id}"


def record_registration(kind: str, object_id, registrant, *, topic: str = "", start_time: str = "",
                        raw_object_id=None, decision: str | None = None, at=None):
    """The one way a Zoom registration becomes the tenant's contact and sign-up, for the webhook
    handlers and the attendee sync (``zoom.sync``) alike, so both find the same row.

    ``registrant`` is a ``schemas.Registrant``; ``object_id`` the meeting's or webinar's id as
    text (the key), ``raw_object_id`` as Zoom sent it (a number: the metadata keeps its type).
    Without ``decision`` the sign-up is queued (an existing one is left as it is); with one
    (cancelled, denied, approved) it is settled, dated ``at``."""
    contact, _ = upsert_contact(source="zoom", email=registrant.email, first_name=registrant.first_name,
                                last_name=registrant.last_name, phone=registrant.phone)
    metadata = {
        "kind": kind, f"{kind}_id": object_id if raw_object_id is None else raw_object_id,
        "registrant_id": registrant.id, "topic": topic, "start_time": start_time,
        "registrant_status": registrant.status,
    }
    key = signup_key(kind, object_id, registrant.id)
    if decision is None:
        return add_pending_signup(contact=contact, source="zoom", external_id=key, metadata=metadata)[0]
    return settle_signup(contact=contact, source="zoom", external_id=key, status=decision, at=at, metadata=metadata)


def _record(event, kind: str, decision: str | None = None):
    """One registration event (``event.data``: ``schemas.RegistrationEvent``; a registrant
    without an e-mail is malformed there)."""
    obj = event.data.payload.object
    # The id as Zoom sent it (a number for meetings and webinars): the raw payload keeps its type.
    raw_id = event.payload["payload"]["object"]["id"]
    return record_registration(kind, obj.id, obj.registrant, topic=obj.topic, start_time=obj.start_time,
                               raw_object_id=raw_id, decision=decision, at=event.data.event_ts)


def _created(kind):
    def handler(event):
        _record(event, kind)
    handler.__name__ = f"{kind}_registration_created"
    return handler


def _settled(kind, status):
    def handler(event):
        _record(event, kind, decision=status)
    handler.__name__ = f"{kind}_registration_{status}"
    return handler


#: What each handled event does, in the tenant's words (the setup page and the README list these).
WHAT_IT_DOES = {
    "registration_created": "adds the registrant as a contact and a pending sign-up",
    "registration_cancelled": "takes the sign-up out of the queue as cancelled, dated when Zoom sent it",
    "registration_denied": "takes the sign-up out of the queue as denied, dated when Zoom sent it",
    "registration_approved": "marks a pending sign-up approved",
}
HANDLERS, EVENT_DOCS = {}, {}
for _kind in ("meeting", "webinar"):
    HANDLERS[f"{_kind}.registration_created"] = _created(_kind)
    HANDLERS[f"{_kind}.registration_cancelled"] = _settled(_kind, PendingSignup.Status.CANCELLED)
    HANDLERS[f"{_kind}.registration_denied"] = _settled(_kind, PendingSignup.Status.DENIED)
    HANDLERS[f"{_kind}.registration_approved"] = _settled(_kind, PendingSignup.Status.APPROVED)
    EVENT_DOCS.update({f"{_kind}.{name}": f"{_kind}: {text}" for name, text in WHAT_IT_DOES.items()})

IGNORED_EVENTS = frozenset(
    {
        "meeting.created", "meeting.updated", "meeting.deleted", "meeting.started", "meeting.ended",
        "meeting.participant_joined", "meeting.participant_left",
        "webinar.created", "webinar.updated", "webinar.deleted", "webinar.started", "webinar.ended",
        "webinar.participant_joined", "webinar.participant_left",
        "recording.completed",
    }
)
