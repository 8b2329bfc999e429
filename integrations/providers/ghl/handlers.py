"""GoHighLevel contacts and appointments → the tenant's contacts and their activity.

Contacts are matched on GoHighLevel's contact id (``ghl_id``) first, then the e-mail, so one
GoHighLevel contact stays one row here whichever event names it first; an appointment carries only
``contactId`` (an e-mail at most), which is enough to file it. Workflow "custom webhook" deliveries
have no ``type``: we name them ``WORKFLOW_EVENT`` and read their snake_case contact fields.
"""

from contacts.models import Payment
from contacts.money import parse_amount
from contacts.services import record_activity, record_payment, upsert_contact
from integrations.providers.base import Malformed

WORKFLOW_EVENT = "WorkflowWebhook"


def contact_changed(event):
    contact = event.data
    upsert_contact(source="ghl", ghl_id=contact.id, email=contact.email, first_name=contact.firstName,
                   last_name=contact.lastName, phone=contact.phone)


def appointment_changed(event, kind: str = "appointment"):
    appointment = event.data.appointment
    if not (appointment.contactId or appointment.email):
        raise Malformed(f"the GoHighLevel {event.log.event_type} event's appointment names no contact")
    contact, _ = upsert_contact(source="ghl", ghl_id=appointment.contactId, email=appointment.email)
    # Keyed on the stored event id: a replay of this delivery adds nothing, a later update adds a line.
    record_activity(
        contact, kind, key=f"ghl:{event.log.event_id}", change=event.data.type,
        appointment_id=appointment.id, status=appointment.appointmentStatus, title=appointment.title,
        start_time=appointment.startTime, calendar_id=appointment.calendarId,
    )


def appointment_deleted(event):
    """GoHighLevel's AppointmentDelete is a cancellation: it goes on the contact as one."""
    appointment_changed(event, kind="appointment_cancelled")


def _payer(person):
    """The contact an invoice (``contactDetails``) or an order (``contactSnapshot``) names, if any."""
    if person is None or not (person.id or person.email):
        return None
    first, last = person.firstName, person.lastName
    if not (first or last):
        first, _, last = person.name.partition(" ")
    contact, _ = upsert_contact(source="ghl", ghl_id=person.id, email=person.email, first_name=first, last_name=last,
                                phone=person.phone or person.phoneNo)
    return contact


def _record(key: str, amount, what: str, currency: str, status: str, contact, description: str, metadata: dict,
            occurred_at):
    """One payment per GoHighLevel invoice or order (``key``); a later event about it updates the
    amount (an invoice paid in parts: ``amountPaid`` is cumulative, so it only ever grows) and the
    status, never adds a second row."""
    amount = parse_amount(format(amount, "f"), currency, what=what)  # refuses 12.345 USD, naming the field
    payment, created = record_payment(
        payment_event_id=key, source="ghl", amount=amount, currency=currency, status=status, contact=contact,
        external_id=key.split(":", 1)[1], description=description, metadata=metadata, occurred_at=occurred_at,
    )
    if not created and (amount > payment.amount or payment.status != status):
        payment.amount, payment.status = max(amount, payment.amount), status
        payment.metadata = {**payment.metadata, **metadata}
        payment.contact = payment.contact or contact
        payment.save(update_fields=["amount", "status", "metadata", "contact", "updated_at"])
    return payment


def invoice_paid(event):
    """InvoicePaid and InvoicePartiallyPaid: the money received on the invoice so far (``amountPaid``)."""
    invoice = event.data
    _record(
        f"invoice:{invoice.id}", invoice.amountPaid, "amountPaid", invoice.currency, Payment.Status.SUCCEEDED,
        _payer(invoice.contactDetails), f"Invoice {invoice.invoiceNumber or invoice.id}",
        {"invoice_status": invoice.status, "amount_due": str(invoice.amountDue or 0), "total": str(invoice.total or "")},
        invoice.updatedAt,
    )


#: GoHighLevel order status → ours (an order that is not yet paid is a pending payment).
ORDER_STATUS = {
    "completed": Payment.Status.SUCCEEDED, "paid": Payment.Status.SUCCEEDED, "pending": Payment.Status.PENDING,
    "failed": Payment.Status.FAILED, "refunded": Payment.Status.REFUNDED, "cancelled": Payment.Status.CANCELED,
    "canceled": Payment.Status.CANCELED,
}


def order_created(event):
    order = event.data
    contact = _payer(order.contactSnapshot) or (
        upsert_contact(source="ghl", ghl_id=order.contactId)[0] if order.contactId else None)
    _record(
        f"order:{order.id}", order.amount, "amount", order.currency, ORDER_STATUS.get(order.status.lower(), Payment.Status.PENDING),
        contact, "Order", {"order_status": order.status, "fulfillment_status": order.fulfillmentStatus},
        order.createdAt,
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
    "AppointmentDelete": appointment_deleted,
    "InvoicePaid": invoice_paid,
    "InvoicePartiallyPaid": invoice_paid,
    "OrderCreate": order_created,
    WORKFLOW_EVENT: workflow_webhook,
}
EVENT_DOCS = {
    "ContactCreate": "adds or fills in the contact (matched on its GoHighLevel id, then the e-mail)",
    "ContactUpdate": "fills in the contact",
    "ContactTagUpdate": "fills in the contact",
    "AppointmentCreate": "adds the appointment to the contact's activity",
    "AppointmentUpdate": "adds the change to the contact's activity",
    "AppointmentDelete": "records the cancellation in the contact's activity",
    "InvoicePaid": "records the invoice's payment (amountPaid, in major units), one payment per invoice",
    "InvoicePartiallyPaid": "records what is paid on the invoice so far (the same payment grows as it is paid)",
    "OrderCreate": "records the order as a payment (succeeded when completed, else pending)",
    WORKFLOW_EVENT: "a workflow's Custom Webhook: adds or fills in the contact",
}
# ContactDelete is ignored on purpose: a contact here may have payments and sign-ups from other platforms.
IGNORED_EVENTS = frozenset(
    {
        "ContactDelete", "ContactDndUpdate",
        "InvoiceCreate", "InvoiceUpdate", "InvoiceSent", "InvoiceVoid", "InvoiceDelete", "OrderStatusUpdate",
        "OpportunityCreate", "OpportunityUpdate", "OpportunityDelete", "OpportunityStageUpdate",
        "OpportunityStatusUpdate", "OpportunityMonetaryValueUpdate", "OpportunityAssignedToUpdate",
        "NoteCreate", "NoteUpdate", "NoteDelete", "TaskCreate", "TaskComplete", "TaskDelete",
        "InboundMessage", "OutboundMessage", "ConversationUnreadUpdate",
        "LocationCreate", "LocationUpdate", "AppInstall", "AppUninstall",
    }
)
