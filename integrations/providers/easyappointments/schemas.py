"""What the Easy!Appointments handlers read (see ``handlers.py`` and
``integrations.providers.schema``): the API's spellings first, the database's as alternatives."""

from pydantic import AliasChoices, Field

from integrations.providers.schema import Email, Id, Schema, Text


def _either(*names: str):
    return Field("", validation_alias=AliasChoices(*names))


class Person(Schema):
    id: Text = ""
    email: Email = ""
    first_name: Text = _either("firstName", "first_name")
    last_name: Text = _either("lastName", "last_name")
    phone: Text = _either("phone", "phoneNumber", "phone_number", "mobile", "mobile_number")


class Service(Schema):
    name: Text = ""


class Appointment(Schema):
    id: Id
    start: Text = _either("start", "start_datetime")
    end: Text = _either("end", "end_datetime")
    #: The customer's id, which is all that upstream E!A's bare database row carries.
    customer_id: Text = _either("customerId", "id_users_customer")
    customer: Person | None = None
    service: Service | None = None
    provider: Person | None = None


class AppointmentEvent(Schema):
    payload: Appointment


class CustomerEvent(Schema):
    payload: Person


SCHEMAS = {
    "appointment_save": AppointmentEvent,
    "appointment_create": AppointmentEvent,
    "appointment_update": AppointmentEvent,
    "appointment_delete": AppointmentEvent,
    "customer_save": CustomerEvent,
}
