"""Zoom registrations → a contact and a sign-up for the tenant to approve.

A registration is someone asking for a seat, not someone who came: it goes to the sign-up queue,
keyed on Zoom's registrant id so a redelivery or the attendee sync finds the same row. Live
meeting events (started, joined, ended) say nothing about who signed up and are ignored.
"""

from contacts.services import add_pending_signup, upsert_contact


def _registration(event, kind: str):
    obj = event.payload["payload"]["object"]
    registrant = obj["registrant"]
    if not registrant.get("email"):
        # Zoom requires an e-mail to register; without one this is not a registration we can file.
        raise ValueError(f"{kind} registration {registrant.get('id')!r} has no e-mail")
    contact, _ = upsert_contact(
        source="zoom", email=registrant["email"], first_name=registrant.get("first_name") or "",
        last_name=registrant.get("last_name") or "", phone=registrant.get("phone") or "",
    )
    add_pending_signup(
        contact=contact, source="zoom", external_id=str(registrant["id"]),
        metadata={
            "kind": kind, f"{kind}_id": obj.get("id"), "topic": obj.get("topic") or "",
            "start_time": obj.get("start_time") or "", "registrant_status": registrant.get("status") or "",
        },
    )


def meeting_registration_created(event):
    _registration(event, "meeting")


def webinar_registration_created(event):
    _registration(event, "webinar")


HANDLERS = {
    "meeting.registration_created": meeting_registration_created,
    "webinar.registration_created": webinar_registration_created,
}
IGNORED_EVENTS = frozenset(
    {
        "meeting.created", "meeting.updated", "meeting.deleted", "meeting.started", "meeting.ended",
        "meeting.participant_joined", "meeting.participant_left",
        "meeting.registration_approved", "meeting.registration_denied", "meeting.registration_cancelled",
        "webinar.created", "webinar.updated", "webinar.deleted", "webinar.started", "webinar.ended",
        "webinar.participant_joined", "webinar.participant_left",
        "webinar.registration_approved", "webinar.registration_denied", "webinar.registration_cancelled",
        "recording.completed",
    }
)
