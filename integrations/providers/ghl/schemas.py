"""What the GoHighLevel handlers read of each event type (``integrations.providers.schema``).

GoHighLevel's amounts are in major units (``"amountPaid": 100.5`` is 100.50); invoices and orders
name their id ``_id``.
"""

from __future__ import annotations

from pydantic import Field

from integrations.providers.schema import Currency, Email, Id, MajorAmount, Moment, Schema, Text


class Contact(Schema):
    """ContactCreate / ContactUpdate / ContactTagUpdate: the contact is the payload itself."""

    id: Text = ""
    email: Email = ""
    firstName: Text = ""
    lastName: Text = ""
    phone: Text = ""


class Appointment(Schema):
    id: Text = ""
    contactId: Text = ""
    email: Email = ""
    appointmentStatus: Text = ""
    title: Text = ""
    startTime: Text = ""
    calendarId: Text = ""


class AppointmentEvent(Schema):
    type: Text = ""
    appointment: Appointment


class Person(Schema):
    """An invoice's ``contactDetails`` or an order's ``contactSnapshot``."""

    id: Text = ""
    email: Email = ""
    name: Text = ""
    firstName: Text = ""
    lastName: Text = ""
    phone: Text = ""
    phoneNo: Text = ""


class Invoice(Schema):
    id: Id = Field(alias="_id")
    currency: Currency
    amountPaid: MajorAmount
    amountDue: MajorAmount | None = None
    total: MajorAmount | None = None
    invoiceNumber: Text = ""
    status: Text = ""
    contactDetails: Person | None = None
    updatedAt: Moment = None


class Order(Schema):
    id: Id = Field(alias="_id")
    currency: Currency
    amount: MajorAmount
    status: Text = ""
    fulfillmentStatus: Text = ""
    contactId: Text = ""
    contactSnapshot: Person | None = None
    createdAt: Moment = None


class Workflow(Schema):
    """A workflow's Custom Webhook action: the contact's fields in snake_case."""

    contact_id: Text = ""
    email: Email = ""
    first_name: Text = ""
    last_name: Text = ""
    phone: Text = ""


SCHEMAS = {
    "ContactCreate": Contact, "ContactUpdate": Contact, "ContactTagUpdate": Contact,
    "AppointmentCreate": AppointmentEvent, "AppointmentUpdate": AppointmentEvent, "AppointmentDelete": AppointmentEvent,
    "InvoicePaid": Invoice, "InvoicePartiallyPaid": Invoice, "OrderCreate": Order,
}
