"""A local fake of the Eventbrite API for the attendee sync's tests (and the webhook's fetch): a
small threaded HTTP server on 127.0.0.1 answering as Eventbrite does under ``/v3``:

* ``GET /v3/users/me/organizations/`` — ``{"organizations": [...], "pagination": {...}}``;
* ``GET /v3/organizations/<id>/events/?status=live,ended`` — the organization's events in those
  states (``all``: every one);
* ``GET /v3/events/<id>/attendees/?changed_since=YYYY-MM-DDTHH:MM:SSZ`` — its attendees changed
  at or after that time;
* ``GET /v3/orders/<id>/?expand=attendees`` — an order made of its attendees (for the webhook);
* ``GET /v3/users/me/`` — the token's user ("check connection").

Lists come ``page_size`` at a time (``server.page_size``) with ``pagination.continuation`` and
``has_more_items``. An unknown token is 401 ``INVALID_AUTH``, another account's object 403
``NOT_AUTHORIZED``, an unknown one 404 ``NOT_FOUND``. It can be told to fail
(``server.fail(path_fragment, status=429, headers={"Retry-After": "7"}, times=1)``, or a 5xx) and
records every request (``server.requests``: path, query and which account's token came, never the
token itself). Two accounts may hold the very same organization, event and attendee ids and
e-mails, as two tenants' look-alike data does here.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from integrations.fake_platform import FakePlatform, JsonHandler


def money(cents: int, currency: str = "USD") -> dict:
    return {"currency": currency, "value": cents, "major_value": f"{cents / 100:.2f}",
            "display": f"${cents / 100:.2f}"}


def attendee(n: int, event_id: str, *, order: str | None = None, cents: int = 2500, changed: str = "2026-11-20T10:00:00Z",
             first_name: str = "Person", domain: str = "example.com", **flags) -> dict:
    """An attendee as Eventbrite lists it (``flags``: checked_in, cancelled, refunded, status)."""
    cancelled, refunded = flags.get("cancelled", False), flags.get("refunded", False)
    return {
        "id": f"29{n:08d}", "changed": changed, "created": "2026-11-01T09:00:00Z", "quantity": 1,
        "event_id": event_id, "order_id": order or f"40{n:08d}", "ticket_class_name": "General Admission",
        "ticket_class_id": "1234567001",
        "profile": {"first_name": f"{first_name} {n}", "last_name": "Attendee", "name": f"{first_name} {n} Attendee",
                    "email": f"person{n}@{domain}", "addresses": {}},
        "costs": {"base_price": money(cents), "gross": money(cents), "eventbrite_fee": money(0), "tax": money(0)},
        "barcodes": [], "answers": [],
        "checked_in": flags.get("checked_in", False), "cancelled": cancelled, "refunded": refunded,
        "status": flags.get("status") or ("Not Attending" if cancelled or refunded else
                                          "Checked In" if flags.get("checked_in") else "Attending"),
    }


@dataclass
class Event:
    id: str
    name: str = "Event"
    status: str = "live"
    start: str = "2026-12-10T18:00:00Z"
    end: str = "2026-12-10T22:00:00Z"
    attendees: list[dict] = field(default_factory=list)

    def listed(self, org_id: str) -> dict:
        return {"id": self.id, "name": {"text": self.name, "html": self.name}, "status": self.status,
                "organization_id": org_id, "currency": "USD",
                "start": {"utc": self.start, "timezone": "America/New_York"},
                "end": {"utc": self.end, "timezone": "America/New_York"}}


@dataclass
class Organization:
    id: str
    name: str = "Organization"
    events: list[Event] = field(default_factory=list)


@dataclass
class Account:
    """One Eventbrite user (a tenant's private token) and the organizations it belongs to."""

    token: str
    name: str = "Organizer"
    organizations: list[Organization] = field(default_factory=list)

    def events(self) -> list[Event]:
        return [event for org in self.organizations for event in org.events]


@dataclass
class Fault:
    match: str  # a substring of the path
    status: int = 500
    times: int = 1
    headers: dict = field(default_factory=dict)
    body: dict = field(default_factory=lambda: {"status_code": 500, "error": "INTERNAL_ERROR",
                                                "error_description": "An internal error occurred."})


class FakeEventbrite(FakePlatform):
    fault_class = Fault

    def __init__(self):
        super().__init__(_Handler)
        self.accounts: dict[str, Account] = {}  # token -> account
        self.page_size = 50
        #: False: an order's attendees come without their ``costs`` (only the order's total)
        self.ticket_costs_in_orders = True

    @property
    def api_base(self) -> str:
        return f"{self.origin}/v3"

    def add(self, account: Account) -> Account:
        self.accounts[account.token] = account
        return account


def _error(status: int, error: str, description: str) -> dict:
    return {"status_code": status, "error": error, "error_description": description}


class _Handler(JsonHandler):
    server: FakeEventbrite

    def do_GET(self):  # noqa: N802 (http.server's naming)
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query))
        header = self.headers.get("Authorization") or ""
        account = self.server.accounts.get(header[7:] if header.startswith("Bearer ") else "")
        fault = self.server.record({"path": parts.path, "query": query, "account": account.name if account else None},
                                   parts.path)
        if fault:
            return self.answer(fault.status, fault.body, fault.headers)
        if account is None:
            return self.answer(401, _error(401, "INVALID_AUTH", "The OAuth token you provided was invalid."))
        segments = [s for s in parts.path.removeprefix("/v3/").split("/") if s]
        match segments:
            case ["users", "me"]:
                return self.answer(200, {"id": "1928374650", "name": account.name})
            case ["users", "me", "organizations"]:
                return self.page([{"id": o.id, "name": o.name} for o in account.organizations], "organizations", query)
            case ["organizations", org_id, "events"]:
                org = next((o for o in account.organizations if o.id == org_id), None)
                if org is None:
                    return self.refused(org_id)
                wanted = set((query.get("status") or "live").split(","))
                events = [e.listed(org.id) for e in org.events if "all" in wanted or e.status in wanted]
                return self.page(events, "events", query)
            case ["events", event_id, "attendees"]:
                event = next((e for e in account.events() if e.id == event_id), None)
                if event is None:
                    return self.refused(event_id)
                since = query.get("changed_since") or ""
                return self.page([a for a in event.attendees if a["changed"] >= since], "attendees", query)
            case ["orders", order_id]:
                held = [a for e in account.events() for a in e.attendees if a["order_id"] == order_id]
                if not held:
                    return self.refused(order_id)
                if not self.server.ticket_costs_in_orders:
                    held = [{k: v for k, v in a.items() if k != "costs"} | {"_gross": a["costs"]["gross"]["value"]}
                            for a in held]
                return self.answer(200, self.order(order_id, held, query.get("expand") == "attendees"))
        self.answer(404, _error(404, "NOT_FOUND", "The path you requested does not exist."))

    def refused(self, object_id: str) -> None:
        """Another account's object is 403, as Eventbrite answers; one nobody has, 404."""
        others = [a for a in self.server.accounts.values()]
        known = any(object_id in (o.id, *(e.id for e in o.events), *(x["order_id"] for e in o.events for x in e.attendees))
                    for a in others for o in a.organizations)
        if known:
            return self.answer(403, _error(403, "NOT_AUTHORIZED", "You do not have permission to access the resource you requested."))
        self.answer(404, _error(404, "NOT_FOUND", "The object you requested does not exist."))

    @staticmethod
    def order(order_id: str, held: list[dict], expand: bool) -> dict:
        first = held[0]
        total = sum(a.pop("_gross") if "_gross" in a else a["costs"]["gross"]["value"] for a in held)
        order = {"id": order_id, "changed": max(a["changed"] for a in held), "created": first["created"],
                 "email": first["profile"]["email"], "first_name": first["profile"]["first_name"],
                 "last_name": first["profile"]["last_name"], "event_id": first["event_id"],
                 "status": "refunded" if all(a["refunded"] for a in held) else "placed",
                 "costs": {"gross": money(total)}}
        return order | ({"attendees": held} if expand else {})

    def page(self, items: list[dict], key: str, query: dict) -> None:
        size = self.server.page_size
        token = query.get("continuation") or ""
        offset = int(base64.urlsafe_b64decode(token.encode()).decode().split(":")[1]) if token else 0
        more = offset + size < len(items)
        pagination = {"object_count": len(items), "page_number": offset // size + 1, "page_size": size,
                      "page_count": max((len(items) + size - 1) // size, 1), "has_more_items": more}
        if more:
            pagination["continuation"] = base64.urlsafe_b64encode(f"offset:{offset + size}".encode()).decode()
        self.answer(200, {"pagination": pagination, key: items[offset:offset + size]})
