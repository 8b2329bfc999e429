"""GoHighLevel contacts and appointments → the tenant's contacts and their activity.

Contacts are matched on GoHighLevel's contact id (``ghl_id``) first, then the e-mail, so one
GoHighLevel contact stays one row here whichever event names it first; an appointment carries only
``contactId`` (an e-mail at most), which is enough to file it. Workflow "custom webhook" deliveries
have no ``type``: we name them ``WORKFLOW_EVENT`` and read their snake_case contact fields.
"""

from contacts.services import record_activity, upsert_contact

WORKFLOW_EVENT = "WorkflowWebhook"


def contact_changed(event):
    contact = event.payload
    upsert_contact(
        source="ghl", ghl_id=contact.get("id") or "", email=contact.get("email") or "",
        first_name=contact.get("firstName") or "", last_name=contact.get("lastName") or "",
        phone=contact.get("phone") or "",
    )


def appointment_changed(event):
    appointment = event.payload["appointment"]
    contact_id, email = appointment.get("contactId") or "", appointment.get("email") or ""
    if not (contact_id or email):
        raise ValueError(f"appointment {appointment.get('id')!r} names no contact")
    contact, _ = upsert_contact(source="ghl", ghl_id=contact_id, email=email)
    # Keyed on the stored event id: a replay of this delivery adds nothing, a later update adds a line.
    record_activity(
        contact, "appointment", key=f"ghl:{event.log.event_id}", change=event.payload.get("type") or "",
        appointment_id=appointment.get("id") or "", status=appointment.get("appointmentStatus") or "",
        title=appointment.get("title") or "", start_time=appointment.get("startTime") or "",
        calendar_id=appointment.get("calendarId") or "",
    )


def workflow_webhook(event):
    contact = event.payload
    upsert_contact(
        source="ghl", ghl_id=contact.get("contact_id") or "", email=contact.get("email") or "",
        first_name=contact.get("first_name") or "", last_name=contact.get("last_name") or "",
        phone=contact.get("phone") or "",
    )


HANDLERS = {
    "ContactCreate": contact_changed,
    "ContactUpdate": contact_changed,
    "ContactTagUpdate": contact_changed,
    "AppointmentCreate": appointment_changed,
    "AppointmentUpdate": appointment_changed,
    WORKFLOW_EVENT: workflow_webhook,
}
# ContactDelete is ignored on purpose: a contact here may have payments and sign-ups from other platforms.
IGNORED_EVENTS = frozenset(
    {
        "ContactDelete", "ContactDndUpdate", "AppointmentDelete",
        "OpportunityCreate", "OpportunityUpdate", "OpportunityDelete", "OpportunityStageUpdate",
        "OpportunityStatusUpdate", "OpportunityMonetaryValueUpdate", "OpportunityAssignedToUpdate",
        "NoteCreate", "NoteUpdate", "NoteDelete", "TaskCreate", "TaskComplete", "TaskDelete",
        "InboundMessage", "OutboundMessage", "ConversationUnreadUpdate",
        "LocationCreate", "LocationUpdate", "AppInstall", "AppUninstall",
    }
)
