"""Odd but correctly authenticated deliveries (issue 7.21's fuzz cases) for ManyChat, Denefits,
Perspective, Posh.VIP and Easy!Appointments: one field of a real fixture changed, delivered through
the receiver and processed. What does not fit is ``malformed`` on the first attempt with a sentence
naming the field; what can be fitted (NUL, an over-long name) is processed, cleaned and cut to its
column, while the stored raw body keeps the original bytes. Nothing is ``failed`` or ``dead`` with a
raw ``KeyError``/``TypeError``/``DataError``, on SQLite or on PostgreSQL (``make test`` runs both)."""

import json

import pytest

from contacts.models import Contact, Payment, PendingSignup
from integrations.registry import get_provider
from tenants.context import tenant_context
from webhooks.models import WebhookLog
from webhooks.testing import connect, counts, fixture_bytes, rows, webhook_path

SECRET = "fuzz-secret-0123456789abcdefghijklmnop"
LONG = "x" * 400
MALFORMED, PROCESSED = WebhookLog.Status.MALFORMED, WebhookLog.Status.PROCESSED


def setter(path: str, value):
    """A change of the payload: ``path`` is dotted (``purchase.total_amount``)."""
    def change(payload):
        *parents, last = path.split(".")
        target = payload
        for name in parents:
            target = target[name]
        target[last] = value
    change.__name__ = f"{path}={value!r}"[:60]
    return change


def deleter(path: str):
    def change(payload):
        *parents, last = path.split(".")
        target = payload
        for name in parents:
            target = target[name]
        del target[last]
    change.__name__ = f"del {path}"
    return change


@pytest.fixture
def deliver(world, client, django_capture_on_commit_callbacks):
    """Deliver ``fixture`` of ``source`` with ``change`` applied (a function of the payload, or raw
    bytes replacing the fixture's), authenticated as the platform would, and processed."""

    def send(source: str, fixture: str, change) -> WebhookLog:
        connect(world.acme, source, SECRET)
        if isinstance(change, bytes):
            body = change
        else:
            payload = json.loads(fixture_bytes(source, fixture))
            change(payload)
            body = json.dumps(payload).encode()
        headers, query = get_provider(source).test_delivery_auth(body, SECRET)
        extra = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
        path = webhook_path(world.acme, source) + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(path, data=body, content_type="application/json", **extra)
        assert response.status_code == 200, response.content
        row = rows(world.acme, source=source)[-1]
        assert bytes(row.body) == body  # the raw body keeps the original, NULs and all
        return row

    return send


# (source, fixture, change, the field the sentence must name)
MALFORMED_CASES = [
    # Posh.VIP
    ("poshvip", "purchase_created", setter("purchase", "pur_1"), "`purchase` in the Posh.VIP purchase.created event is not an object"),
    ("poshvip", "purchase_created", setter("purchase", [1, 2]), "`purchase` in the Posh.VIP purchase.created event is not an object"),
    ("poshvip", "purchase_created", deleter("purchase.id"), "has no `purchase.id`"),
    ("poshvip", "purchase_created", setter("purchase.id", "p" * 300), "`purchase.id`"),
    ("poshvip", "purchase_created", setter("purchase.total_amount", "abc"), "`purchase.total_amount`"),
    ("poshvip", "purchase_created", setter("purchase.total_amount", "NaN"), "`purchase.total_amount`"),
    ("poshvip", "purchase_created", setter("purchase.total_amount", "Infinity"), "`purchase.total_amount`"),
    ("poshvip", "purchase_created", setter("purchase.total_amount", "1e1000"), "`purchase.total_amount`"),
    ("poshvip", "purchase_created", fixture_bytes("poshvip", "purchase_created").replace(b"90.00", b"1e1000"),
     "`purchase.total_amount`"),  # a JSON number too large for a float: infinity
    ("poshvip", "purchase_created", fixture_bytes("poshvip", "purchase_created").replace(b"90.00", b"NaN"),
     "`purchase.total_amount`"),  # Python's JSON reads the NaN literal
    ("poshvip", "purchase_created", setter("purchase.total_amount", "90.001"), "purchase.total_amount"),
    ("poshvip", "purchase_created", setter("purchase.currency", "USDX"), "`purchase.currency`"),
    ("poshvip", "purchase_created", setter("created_at", 2**63), "`created_at`"),
    ("poshvip", "purchase_created", setter("created_at", "not a date"), "`created_at`"),
    ("poshvip", "purchase_created", setter("purchase.customer", "jordan"), "`purchase.customer`"),
    ("poshvip", "purchase_created", setter("purchase.customer.email", "jordan-at-example"), "`purchase.customer.email`"),
    ("poshvip", "purchase_created", setter("purchase.tickets", "two"), "`purchase.tickets`"),
    ("poshvip", "ticket_checked_in", setter("ticket", 5), "`ticket`"),
    ("poshvip", "ticket_checked_in", setter("ticket.holder", ["a"]), "`ticket.holder`"),
    # Denefits
    ("denefits", "payment_received", setter("payment", "PMT"), "`payment`"),
    ("denefits", "payment_received", setter("customer", []), "`customer`"),
    ("denefits", "payment_received", deleter("customer.email"), "`customer.email`"),
    ("denefits", "payment_received", setter("payment.amount", "abc"), "`payment.amount`"),
    ("denefits", "payment_received", setter("payment.amount", "NaN"), "`payment.amount`"),
    ("denefits", "payment_received", setter("payment.amount", "Infinity"), "`payment.amount`"),
    ("denefits", "payment_received", setter("payment.amount", "1e1000"), "`payment.amount`"),
    ("denefits", "payment_received", setter("payment.amount", "12.345"), "payment.amount"),
    ("denefits", "payment_received", setter("payment.amount", 10**15), "payment.amount"),
    ("denefits", "payment_received", setter("payment.currency", "CADX"), "`payment.currency`"),
    ("denefits", "payment_received", setter("payment.paid_at", 2**63), "`payment.paid_at`"),
    ("denefits", "contract_created", setter("contract", True), "`contract`"),
    ("denefits", "contract_created", setter("contract.installments", 12.5), "`contract.installments`"),
    # Perspective
    ("perspective", "lead", setter("contact", "pat"), "`contact`"),
    ("perspective", "lead", setter("answers", 5), "`answers`"),
    ("perspective", "lead", setter("funnel", "Main"), "`funnel`"),
    ("perspective", "lead", setter("contact.email", "no address"), "e-mail"),
    # Easy!Appointments
    ("easyappointments", "appointment_save", setter("payload", "7"), "`payload`"),
    ("easyappointments", "appointment_save", setter("payload", [1]), "`payload`"),
    ("easyappointments", "appointment_save", setter("payload.customer", "ana"), "`payload.customer`"),
    ("easyappointments", "appointment_save", deleter("payload.id"), "`payload.id`"),
    ("easyappointments", "appointment_save", setter("payload.service", 3), "`payload.service`"),
    ("easyappointments", "customer_save", setter("payload", None), "`payload`"),
    # ManyChat
    ("manychat", "subscriber", setter("id", {"x": 1}), "`id`"),
    ("manychat", "subscriber", setter("custom_fields", 5), "`custom_fields`"),
    ("manychat", "subscriber", setter("email", "nobody"), "`email`"),
    ("manychat", "subscriber_updated", setter("subscriber", "mc-1"), "`subscriber`"),
]


@pytest.mark.parametrize(("source", "fixture", "change", "names"), MALFORMED_CASES,
                         ids=[f"{case[0]}-{getattr(case[2], '__name__', 'raw')}" for case in MALFORMED_CASES])
def test_what_does_not_fit_is_malformed_at_once_naming_the_field(deliver, world, source, fixture, change, names):
    before = counts(world.acme)
    row = deliver(source, fixture, change)
    assert (row.status, row.attempts) == (MALFORMED, 1), row.error
    assert names in row.error, row.error
    assert "Traceback" in row.traceback
    assert {**counts(world.acme), "rows": before["rows"]} == before  # nothing of the attempt stays


def contact(world, **lookup) -> Contact:
    with tenant_context(world.acme):
        return Contact.objects.get(**lookup)


def test_nul_in_text_and_json_is_removed_and_long_text_cut_posh(deliver, world):
    def change(payload):
        purchase = payload["purchase"]
        purchase["customer"]["first_name"] = "Jor\x00dan"
        purchase["customer"]["last_name"] = LONG
        purchase["event_name"] = "Mid\x00night " + LONG
        purchase["tickets"][0]["type"] = "General\x00Admission"
        purchase["tickets"][0]["no\x00te"] = "\ud800"
    row = deliver("poshvip", "purchase_created", change)
    assert row.status == PROCESSED, row.error
    person = contact(world, email="jordan.blake@example.com")
    assert (person.first_name, person.last_name) == ("Jordan", "x" * 150)
    with tenant_context(world.acme):
        payment = Payment.objects.get(source="poshvip")
        assert payment.description == ("Midnight " + LONG)[:255]
        ticket = PendingSignup.objects.get(source="poshvip").metadata["tickets"][0]
        assert ticket["type"] == "GeneralAdmission" and ticket["note"] == "\ufffd"


def test_nul_and_long_values_denefits(deliver, world):
    def change(payload):
        payload["customer"]["first_name"] = "\x00" + LONG
        payload["payment"]["reason"] = "card\x00declined"
        payload["payment"]["id"] = "PMT\x00-1"
    row = deliver("denefits", "payment_failed", change)
    assert row.status == PROCESSED, row.error
    with tenant_context(world.acme):
        payment = Payment.objects.get(source="denefits")
        assert (payment.external_id, payment.metadata["reason"]) == ("PMT-1", "carddeclined")
        assert payment.contact.first_name == "x" * 150


def test_nul_and_long_values_perspective(deliver, world):
    def change(payload):
        payload["contact"]["firstName"] = "Ri\x00ver" + LONG
        payload["answers"] = [{"question": "Goal\x00", "answer": "Grow\x00th"}]
    row = deliver("perspective", "lead", change)
    assert row.status == PROCESSED, row.error
    with tenant_context(world.acme):
        lead = Contact.objects.get(source="perspective")
    assert lead.first_name == ("River" + LONG)[:150]
    assert lead.custom_fields["Goal"] == "Growth"


def test_nul_and_long_values_easyappointments(deliver, world):
    def change(payload):
        payload["payload"]["customer"]["firstName"] = "An\x00a" + LONG
        payload["payload"]["start"] = "2025-12-01 10:00:00\x00"
        payload["payload"]["service"]["name"] = "Con\x00sult"
    row = deliver("easyappointments", "appointment_save", change)
    assert row.status == PROCESSED, row.error
    with tenant_context(world.acme):
        booked = Contact.objects.get(source="easyappointments")
    entry = booked.activity[-1]
    assert booked.first_name == ("Ana" + LONG)[:150]
    assert (entry["start"], entry["service"]) == ("2025-12-01 10:00:00", "Consult")


def test_nul_and_long_values_manychat(deliver, world):
    def change(payload):
        payload["first_name"] = "Ka\x00i"
        payload["phone"] = "+1" + "5" * 100
        payload["custom_fields"] = [{"name": "plan\x00", "value": "pro\x00"}]
    row = deliver("manychat", "subscriber", change)
    assert row.status == PROCESSED, row.error
    with tenant_context(world.acme):
        subscriber = Contact.objects.filter(source="manychat").exclude(mc_id="mc-4242").get()
    assert subscriber.first_name == "Kai" and len(subscriber.phone) == 40
    assert subscriber.custom_fields["plan"] == "pro"


@pytest.mark.parametrize("source", ["manychat", "denefits", "perspective", "poshvip", "easyappointments"])
def test_every_handled_event_type_has_a_schema(source):
    provider = get_provider(source)
    assert set(provider.handlers) <= set(provider.schemas), set(provider.handlers) - set(provider.schemas)
