"""Easy!Appointments webhooks → contacts and their appointment history.

E!A posts ``{"action": "<action>", "payload": {...}}``. We read the API's shape of an appointment
(``id``, ``start``, ``end``, ``customer`` {``email``, ``firstName``, ``lastName``, ``phone``},
``service`` {``name``}, ``provider`` {``firstName``, ``lastName``}) and accept the database
spellings too (``start_datetime``, ``first_name``, ``phone_number``), as ``schemas.py`` declares;
handlers read ``event.data``.

An upstream E!A that sends only the customer's id (``customerId`` or ``id_users_customer``, no
customer object or one without an e-mail; a ``customer_save`` with only ``id``) is looked up:
``fetch_customer`` calls ``GET <url>/index.php/api/v1/customers/{id}`` with the tenant's
credentials (``client.py``) *before* the row is claimed, outside any transaction
(``Provider.fetchers``), and the handler uses that answer (``event.fetched``). A refused look-up
(bad credentials, no such customer, E!A not set up for API calls) is ``dead`` with the reason; a
429, 5xx or network failure is retried. A payload with neither an e-mail nor an id is ``malformed``.
"""

from contacts.services import record_activity, upsert_contact
from integrations.providers.base import Malformed, PermanentError
from integrations.providers.easyappointments.schemas import Person


def _needs_lookup(person) -> bool:
    return person is None or not person.email


def fetch_customer(event):
    """The customer as E!A has it, when the delivery names them only by id; else ``None`` (no call)."""
    payload = event.data.payload
    if event.log.event_type == "customer_save":
        person, customer_id = payload, payload.id
    else:
        person = payload.customer
        customer_id = payload.customer_id or (person.id if person is not None else "")
    if not _needs_lookup(person) or not customer_id:
        return None
    # Imported here: the client uses integrations.sync, which imports the models, which import
    # the registry that imports this module.
    from integrations.providers.easyappointments.client import (
        EasyAppointmentsClient,
        EasyAppointmentsRefused,
        NotConnected,
    )
    from integrations.sync import PermanentSyncError

    try:
        client = EasyAppointmentsClient.for_integration(event.integration)
        answer = client.customer(customer_id)
    except NotConnected:
        raise PermanentError(f"the delivery names customer {customer_id} only by id, and Easy!Appointments is not set "
                             "up for API calls here: enter the installation URL and the API password or token, then "
                             "replay it") from None
    except EasyAppointmentsRefused as exc:
        raise PermanentError(f"looking up customer {customer_id}: {exc}") from None
    except PermanentSyncError as exc:
        raise PermanentError(f"looking up customer {customer_id}: {exc}") from None
    if not isinstance(answer, dict):
        raise PermanentError(f"Easy!Appointments answered the look-up of customer {customer_id} with no object")
    return Person.model_validate(answer)


def _person(event, person):
    """The payload's person, or the one ``fetch_customer`` looked up."""
    return event.fetched if _needs_lookup(person) and event.fetched is not None else person


def _contact(person, where: str):
    if person is None or not person.email:
        raise Malformed(f"the Easy!Appointments payload has no `{where}.email` and no customer id to look it up by")
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
    contact = _contact(_person(event, appointment.customer), "payload.customer")
    record_activity(contact, "appointment", key=f"easyappointments:{details['appointment_id']}:{details['start']}",
                    **details)


def appointment_delete(event) -> None:
    appointment = event.data.payload
    details = _appointment_details(appointment)
    contact = _contact(_person(event, appointment.customer), "payload.customer")
    record_activity(contact, "appointment_cancelled",
                    key=f"easyappointments:{details['appointment_id']}:cancelled", **details)


def customer_save(event) -> None:
    _contact(_person(event, event.data.payload), "payload")


HANDLERS = {
    "appointment_save": appointment_save,
    # Forks that split the save action; the same meaning.
    "appointment_create": appointment_save,
    "appointment_update": appointment_save,
    "appointment_delete": appointment_delete,
    "customer_save": customer_save,
}
#: Every handled action may name its customer by id only: looked up before the row is claimed.
FETCHERS = dict.fromkeys(HANDLERS, fetch_customer)
# E!A's other actions: staff, services and blocked time are not contacts. A deleted customer is
# not deleted here: the tenant's contact list is not the booking tool's to prune.
IGNORED_EVENTS = frozenset({
    "customer_delete", "unavailability_save", "unavailability_delete", "provider_save", "provider_delete",
    "secretary_save", "secretary_delete", "admin_save", "admin_delete", "service_save", "service_delete",
    "service_category_save", "service_category_delete",
})
