"""A local fake of Easy!Appointments' REST API for the tests: a small threaded HTTP server on
127.0.0.1 answering ``GET /index.php/api/v1/appointments|customers|customers/<id>|services|providers``
as E!A 1.5 does:

* authentication with an API token (``Authorization: Bearer``) or an admin user (Basic); anything
  else is 401 ``{"message": "…"}``;
* ``page`` (from 1) and ``length`` (E!A's default 20) over each list; appointments also narrowed
  by ``from``/``till`` (days, inclusive) on their ``start``;
* appointments as the API lists them: ``start``/``end`` (``YYYY-MM-DD HH:MM:SS``, E!A's own clock),
  ``customerId``, ``providerId``, ``serviceId``, ``status``.

``server.fail(fragment, status=429, headers={"Retry-After": "3"}, times=1)`` makes the next
requests whose path contains ``fragment`` fail. ``server.requests`` records each request (path,
query, how it authenticated, whether that was good), never the secret. ``look_alike(n)`` builds an
account; two accounts made with it hold the very same ids, names and times, and differ only in
their customers' e-mails (and whatever a test changes), as two tenants' installations can.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import parse_qsl, unquote, urlsplit

from integrations.fake_platform import FakePlatform, JsonHandler

PREFIX = "/index.php/api/v1/"


@dataclass
class Fault:
    match: str
    status: int = 500
    body: dict = field(default_factory=lambda: {"message": "Internal Server Error"})
    headers: dict = field(default_factory=dict)
    times: int = 1


@dataclass
class Account:
    """One installation's data and the credentials it accepts."""

    token: str = ""
    users: dict = field(default_factory=dict)  # username -> password
    appointments: list[dict] = field(default_factory=list)
    customers: list[dict] = field(default_factory=list)
    services: list[dict] = field(default_factory=list)
    providers: list[dict] = field(default_factory=list)


def look_alike(domain: str, *, token: str = "", users: dict | None = None, bookings: int = 6) -> Account:
    """Two services, two providers, three customers (e-mails at ``domain``) and ``bookings``
    appointments spread over 1–4 December 2026, at the same ids and times for every domain."""
    customers = [
        {"id": 1, "firstName": "Jordan", "lastName": "Blake", "email": f"jordan.blake@{domain}", "phone": "+441632960001"},
        {"id": 2, "firstName": "Casey", "lastName": "Morgan", "email": f"casey.morgan@{domain}", "phone": "+441632960002"},
        {"id": 3, "firstName": "Robin", "lastName": "Lee", "email": f"robin.lee@{domain}", "phone": ""},
    ]
    services = [{"id": 1, "name": "Initial consultation", "duration": 30}, {"id": 2, "name": "Follow-up", "duration": 15}]
    providers = [{"id": 10, "firstName": "Dana", "lastName": "Kim"}, {"id": 11, "firstName": "Sam", "lastName": "Ortiz"}]
    slots = [  # (start, customer, service, provider, status)
        ("2026-12-01 09:00:00", 1, 1, 10, "Booked"),  # a Tuesday
        ("2026-12-01 09:30:00", 2, 2, 10, "Confirmed"),
        ("2026-12-02 14:00:00", 1, 2, 11, "Booked"),
        ("2026-12-03 09:15:00", 3, 1, 11, "Cancelled"),
        ("2026-12-04 16:00:00", 2, 1, 10, "Booked"),
        ("2026-12-05 10:00:00", 3, 2, 11, ""),  # a Saturday, no status (E!A before 1.5)
    ]
    appointments = []
    for n, (start, customer, service, provider, status) in enumerate((slots * (bookings // len(slots) + 1))[:bookings]):
        appointments.append({
            "id": 1000 + n, "book": start, "start": start, "end": start[:-5] + "45:00", "hash": f"h{n}",
            "location": "", "notes": "", "customerId": customer, "providerId": provider, "serviceId": service,
            "status": status, "googleCalendarId": None,
        })
    return Account(token=token, users=dict(users or {}), appointments=appointments, customers=customers,
                   services=services, providers=providers)


class FakeEasyAppointments(FakePlatform):
    fault_class = Fault

    def __init__(self, *accounts: Account):
        super().__init__(_Handler)
        self.accounts = list(accounts)

    @property
    def url(self) -> str:
        """The installation URL a tenant's integration holds."""
        return self.origin

class _Handler(JsonHandler):
    server: FakeEasyAppointments

    def account(self) -> tuple[Account | None, str]:
        header = self.headers.get("Authorization") or ""
        scheme, _, value = header.partition(" ")
        if scheme == "Bearer":
            return next((a for a in self.server.accounts if a.token and a.token == value), None), "bearer"
        if scheme == "Basic":
            try:
                user, _, password = base64.b64decode(value).decode().partition(":")
            except ValueError:
                return None, "basic"
            return next((a for a in self.server.accounts if user in a.users and a.users[user] == password), None), "basic"
        return None, "none"

    def do_GET(self):  # noqa: N802 (http.server's naming)
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query))
        account, how = self.account()
        fault = self.server.record({"path": parts.path, "query": query, "auth": how, "ok": account is not None},
                                   parts.path)
        if fault:
            return self.answer(fault.status, fault.body, fault.headers)
        if not parts.path.startswith(PREFIX):
            return self.answer(404, {"message": "Not found"})
        if account is None:
            return self.answer(401, {"message": "The provided credentials do not match any admin user!"})
        segments = [unquote(s) for s in parts.path.removeprefix(PREFIX).split("/") if s]
        match segments:
            case ["appointments"]:
                rows = account.appointments
                if query.get("from"):
                    rows = [a for a in rows if a["start"][:10] >= date.fromisoformat(query["from"]).isoformat()]
                if query.get("till"):
                    rows = [a for a in rows if a["start"][:10] <= date.fromisoformat(query["till"]).isoformat()]
                return self.page(rows, query)
            case ["customers"]:
                return self.page(account.customers, query)
            case ["customers", customer_id]:
                customer = next((c for c in account.customers if str(c["id"]) == customer_id), None)
                if customer is None:
                    return self.answer(404, {"message": "The requested record was not found!"})
                return self.answer(200, customer)
            case ["services"]:
                return self.page(account.services, query)
            case ["providers"]:
                return self.page(account.providers, query)
        self.answer(404, {"message": "Not found"})

    def page(self, rows: list[dict], query: dict) -> None:
        length = max(int(query.get("length") or 20), 1)
        number = max(int(query.get("page") or 1), 1)
        self.answer(200, rows[(number - 1) * length: number * length])
