"""Easy!Appointments webhooks → contacts and their appointment history.

E!A posts ``{"action": "<action>", "payload": {...}}``. We read the API's shape of an appointment
(``id``, ``start``, ``end``, ``customer`` {``email``, ``firstName``, ``lastName``, ``phone``},
``service`` {``name``}, ``provider`` {``firstName``, ``lastName``}) and accept the database
spellings too (``start_datetime``, ``first_name``, ``phone_number``), as ``schemas.py`` declares;
handlers read ``event.data``. An upstream E!A that sends only ``id_users_customer`` and no customer
object is ``malformed`` with that reason: there is nobody to attach the appointment to without an
API look-up (see the setup page).
"""

from contacts.services import record_activity, upsert_contact
from integrations.providers.base import Malformed


def _contact(person, where: str):
    if person is None or not person.email:
        raise Malformed(f"the Easy!Appointments payload has no `{where}.email` (E!A sent no customer object?)")
    contact, _ = upsert_contact(source="easyappointments", email=person.email, first_name=person.first_name,
                                last_name=person.last_name, phone=person.phone)
    return contact


def _appointment_details(appointment) -> dict:
    staff = appointment.provider
    return {
        "appointment_id": appointment.id,
        "start": appointment.start,
        "end": appointment.end,
        "service": appointment.service.name if appointment.service else "",
        "provider": f"{staff.first_name} {staff.last_name}".strip() if staff else "",
    }


def appointment_save(event) -> None:
    """A booking or a change of one. The activity key is the appointment and its start, so a
    redelivery adds nothing while a reschedule is a new line in the contact's history."""
    appointment = event.data.payload
    details = _appointment_details(appointment)
    contact = _contact(appointment.customer, "payload.customer")
    record_activity(contact, "appointment", key=f"easyappointments:{details['appointment_id']}:{details['start']}",
                    **details)


def appointment_delete(event) -> None:
    appointment = event.data.payload
    details = _appointment_details(appointment)
    contact = _contact(appointment.customer, "payload.customer")
    record_activity(contact, "appointment_cancelled",
                    key=f"easyappointments:{details['appointment_id']}:cancelled", **details)


def customer_save(event) -> None:
    _contact(event.data.payload, "payload")


HANDLERS = {
    "appointment_save": appointment_save,
    # Forks that split the save action; the same meaning.
    "appointment_create": appointment_save,
    "appointment_update": appointment_save,
    "appointment_delete": appointment_delete,
    "customer_save": customer_save,
}
# E!A's other actions: staff, services and blocked time are not contacts. A deleted customer is
# not deleted here: the tenant's contact list is not the booking tool's to prune.
IGNORED_EVENTS = frozenset({
    "customer_delete", "unavailability_save", "unavailability_delete", "provider_save", "provider_delete",
    "secretary_save", "secretary_delete", "admin_save", "admin_delete", "service_save", "service_delete",
    "service_category_save", "service_category_delete",
})
