"""Easy!Appointments webhooks → contacts and their appointment history.

E!A posts ``{"action": "<action>", "payload": {...}}``. We read the API's shape of an appointment
(``id``, ``start``, ``end``, ``customer`` {``email``, ``firstName``, ``lastName``, ``phone``},
``service`` {``name``}, ``provider`` {``firstName``, ``lastName``}) and accept the database
spellings too (``start_datetime``, ``first_name``, ``phone_number``). An upstream E!A that sends
only ``id_users_customer`` and no customer object fails the row with a reason: there is nobody to
attach the appointment to without an API look-up (see the setup page).
"""

from contacts.services import record_activity, upsert_contact


def _pick(data: dict, *names: str) -> str:
    return next((str(data[n]).strip() for n in names if data.get(n) not in (None, "")), "")


def _person(data: dict) -> dict:
    return {
        "email": _pick(data, "email"),
        "first_name": _pick(data, "firstName", "first_name"),
        "last_name": _pick(data, "lastName", "last_name"),
        "phone": _pick(data, "phone", "phoneNumber", "phone_number", "mobile", "mobile_number"),
    }


def _contact(customer):
    person = _person(customer if isinstance(customer, dict) else {})
    if not person["email"]:
        raise ValueError("the payload carries no customer e-mail (E!A sent no customer object?)")
    contact, _ = upsert_contact(source="easyappointments", **person)
    return contact


def _appointment_details(appointment: dict) -> dict:
    service = appointment.get("service") if isinstance(appointment.get("service"), dict) else {}
    provider = appointment.get("provider") if isinstance(appointment.get("provider"), dict) else {}
    staff = _person(provider)
    return {
        "appointment_id": _pick(appointment, "id"),
        "start": _pick(appointment, "start", "start_datetime"),
        "end": _pick(appointment, "end", "end_datetime"),
        "service": _pick(service, "name"),
        "provider": f"{staff['first_name']} {staff['last_name']}".strip(),
    }


def appointment_save(event) -> None:
    """A booking or a change of one. The activity key is the appointment and its start, so a
    redelivery adds nothing while a reschedule is a new line in the contact's history."""
    appointment = event.payload.get("payload") or {}
    details = _appointment_details(appointment)
    if not details["appointment_id"]:
        raise ValueError("the appointment has no id")
    contact = _contact(appointment.get("customer"))
    record_activity(contact, "appointment", key=f"easyappointments:{details['appointment_id']}:{details['start']}",
                    **details)


def appointment_delete(event) -> None:
    appointment = event.payload.get("payload") or {}
    details = _appointment_details(appointment)
    if not details["appointment_id"]:
        raise ValueError("the appointment has no id")
    contact = _contact(appointment.get("customer"))
    record_activity(contact, "appointment_cancelled",
                    key=f"easyappointments:{details['appointment_id']}:cancelled", **details)


def customer_save(event) -> None:
    _contact(event.payload.get("payload"))


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
