"""Zoom registrations → a contact and a sign-up for the tenant to approve.

A registration is someone asking for a seat, not someone who came: it goes to the sign-up queue.
The sign-up's key is ``<meeting|webinar>:<its id>:<registrant id>`` (``signup_key``): Zoom's
registrant ids are only unique within one meeting or webinar, so a webinar registration must never
land on a meeting's sign-up that happens to share the id. Cancelled, denied and approved
registrations settle that sign-up (``contacts.services.settle_signup``), dated by Zoom's
``event_ts``. Live meeting events (started, joined, ended) say nothing about who signed up and are
ignored.
"""

from contacts.models import PendingSignup
from contacts.services import add_pending_signup, settle_signup, upsert_contact


def signup_key(kind: str, object_id, registrant_id) -> str:
    """What a Zoom sign-up is called here; the attendee sync must use the same key."""
    return f"{kind}:{object_id}:{registrant_id}"


def _registration(event, kind: str):
    """The contact, the sign-up key and its metadata of one registration event (``event.data``:
    ``schemas.RegistrationEvent``; a registrant without an e-mail is malformed there)."""
    obj = event.data.payload.object
    registrant = obj.registrant
    contact, _ = upsert_contact(source="zoom", email=registrant.email, first_name=registrant.first_name,
                                last_name=registrant.last_name, phone=registrant.phone)
    # The id as Zoom sent it (a number for meetings and webinars): the raw payload keeps its type.
    object_id = event.payload["payload"]["object"]["id"]
    metadata = {
        "kind": kind, f"{kind}_id": object_id, "registrant_id": registrant.id, "topic": obj.topic,
        "start_time": obj.start_time, "registrant_status": registrant.status,
    }
    return contact, signup_key(kind, obj.id, registrant.id), metadata


def _created(kind):
    def handler(event):
        contact, key, metadata = _registration(event, kind)
        add_pending_signup(contact=contact, source="zoom", external_id=key, metadata=metadata)
    handler.__name__ = f"{kind}_registration_created"
    return handler


def _settled(kind, status):
    def handler(event):
        contact, key, metadata = _registration(event, kind)
        settle_signup(contact=contact, source="zoom", external_id=key, status=status,
                      at=event.data.event_ts, metadata=metadata)
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
