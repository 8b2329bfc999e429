"""Easy!Appointments bookings of one tenant: the date range, the stats, Claude's insights, and the
two actions (bookers into the sign-up queue, bookers into the Brevo list). Used by the API
(``reports/bookings_api.py``) and the ``/insights/`` page (``reports/pages.py``).

Every call to E!A, Claude or Brevo happens *outside* any transaction: callers read what they need
(``connection_of``) in a short ``tenant_context``, call the platform, and write (``queue_bookers``)
in another short one.

E!A keeps appointment times on its own clock, without a zone (``2026-12-01 09:00:00``); they are
read as the tenant's local time, so a day of the range is the tenant's day.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import engarde.days as engarde_days
from django.conf import settings
from django.utils import timezone

log = logging.getLogger(__name__)

MAX_RANGE_DAYS = 366
DEFAULT_RANGE_DAYS = 30
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
ANALYSIS_TYPES = ("overview", "demographics", "patterns", "conversion")
NO_STATUS = "unspecified"
SOURCE = "easyappointments"


class BadRequest(Exception):
    """A 400: ``field`` names the parameter, the message is the reason."""

    def __init__(self, field: str, reason: str):
        super().__init__(reason)
        self.field, self.reason = field, reason


class NotConnected(Exception):
    """A 409: the platform (E!A, or Brevo for the list) is not connected, with the reason."""


class PlatformFailed(Exception):
    """A 502: E!A (or Brevo) failed or refused; the message is the reason, free of secrets."""


class ClaudeUnavailable(Exception):
    """A 503: no ``ANTHROPIC_API_KEY``."""


# --- the range ------------------------------------------------------------------------------------


def today_in(tenant) -> date:
    from zoneinfo import ZoneInfo

    return timezone.now().astimezone(ZoneInfo(tenant.timezone or "UTC")).date()


def parse_day(value, name: str) -> date:
    try:
        return engarde_days.parse_day(value, name, bounded=False)
    except ValueError as exc:
        raise BadRequest(name, f"{exc}.") from None


def parse_range(values, tenant) -> tuple[date, date]:
    """``date_from`` and ``date_to`` (inclusive, the tenant's days) as given, ``BadRequest`` for one
    that is not a ``YYYY-MM-DD`` day. Missing: the last 30 days up to today (``date_to`` alone: the
    30 days up to it). ``check_range`` then judges the range itself."""
    raw_from, raw_to = values.get("date_from"), values.get("date_to")
    date_to = parse_day(raw_to, "date_to") if raw_to not in (None, "") else today_in(tenant)
    date_from = parse_day(raw_from, "date_from") if raw_from not in (None, "") else (
        date_to - timedelta(days=DEFAULT_RANGE_DAYS - 1) if date_to > engarde_days.EARLIEST + timedelta(days=DEFAULT_RANGE_DAYS)
        else engarde_days.EARLIEST)
    return date_from, date_to


def check_range(date_from: date, date_to: date) -> None:
    """``BadRequest`` for an inverted range, or one longer than 366 days."""
    for name, day in (("date_from", date_from), ("date_to", date_to)):
        try:
            engarde_days.check_bounds(day, name)
        except ValueError as exc:
            raise BadRequest(name, f"{exc}.") from None
    if date_from > date_to:
        raise BadRequest("date_to", f"date_to ({date_to}) is before date_from ({date_from}).")
    if (date_to - date_from).days + 1 > MAX_RANGE_DAYS:
        raise BadRequest("date_to", f"The range is {(date_to - date_from).days + 1} days; at most {MAX_RANGE_DAYS}.")


def date_range(values, tenant) -> tuple[date, date]:
    date_from, date_to = parse_range(values, tenant)
    check_range(date_from, date_to)
    return date_from, date_to


def analysis_type(value) -> str:
    value = value or "overview"
    if value not in ANALYSIS_TYPES:
        raise BadRequest("analysis_type", f"analysis_type must be one of: {', '.join(ANALYSIS_TYPES)}.")
    return value


# --- E!A's data -----------------------------------------------------------------------------------


def connection_of(provider: str = SOURCE):
    """The active tenant's integration with ``provider`` (run inside its ``tenant_context``), or
    ``NotConnected`` with the reason."""
    from integrations.models import TenantIntegration
    from integrations.registry import label_of

    integration = TenantIntegration.objects.filter(provider=provider, is_active=True).select_related("tenant").first()
    label = label_of(provider)
    if integration is None:
        raise NotConnected(f"{label} is not connected for this tenant: connect it on its setup page first.")
    if provider == SOURCE and not (integration.value("url") and integration.value("password")):
        raise NotConnected(f"{label} is connected for webhooks only: enter the installation URL and the API "
                           "password or token on its setup page to read bookings.")
    return integration


@dataclass
class Bookings:
    """What E!A lists for a range: its appointments in the range, and names by id."""

    appointments: list[dict]
    services: dict
    providers: dict
    customers: dict

    def in_status(self, status_filter: str) -> list[dict]:
        if (status_filter or "all").lower() == "all":
            return self.appointments
        return [a for a in self.appointments if str(a.get("status") or "").lower() == status_filter.lower()]


def start_of(appointment: dict) -> datetime | None:
    value = appointment.get("start") or appointment.get("start_datetime") or ""
    try:
        return datetime.fromisoformat(str(value).replace("T", " ")[:19])
    except ValueError:
        return None


def _name(person: dict) -> str:
    return f"{person.get('firstName') or person.get('first_name') or ''} {person.get('lastName') or person.get('last_name') or ''}".strip()


def _ref(appointment: dict, key: str):
    """An appointment's ``customerId`` (or the nested object's id, or the database spelling)."""
    value = appointment.get(f"{key}Id") or appointment.get(f"id_users_{key}") or appointment.get(f"id_{key}s")
    nested = appointment.get(key)
    if value in (None, "") and isinstance(nested, dict):
        value = nested.get("id")
    return str(value) if value not in (None, "") else ""


def fetch_bookings(integration, date_from: date, date_to: date, *, customers: bool = False) -> Bookings:
    """E!A's appointments starting within the range (and services, providers and, when asked,
    customers by id). Call outside any transaction. ``PlatformFailed`` with the reason."""
    from integrations.providers.easyappointments.client import EasyAppointmentsClient, EasyAppointmentsRefused
    from integrations.providers.easyappointments.client import NotConnected as ClientNotConnected
    from integrations.sync import SyncError

    try:
        client = EasyAppointmentsClient.for_integration(integration)
        rows = client.appointments(date_from, date_to)
        services = {str(s.get("id")): str(s.get("name") or f"Service {s.get('id')}") for s in client.services()}
        providers = {str(p.get("id")): _name(p) or f"Provider {p.get('id')}" for p in client.providers()}
        people = {str(c.get("id")): c for c in client.customers()} if customers else {}
    except ClientNotConnected as exc:
        raise NotConnected(str(exc)) from None
    except (SyncError, EasyAppointmentsRefused) as exc:
        raise PlatformFailed(str(exc)) from None
    chosen = []
    for appointment in rows:
        start = start_of(appointment)
        if start is not None and date_from <= start.date() <= date_to:
            chosen.append(appointment)
    return Bookings(chosen, services, providers, people)


def booking_stats(bookings: Bookings, date_from: date, date_to: date) -> dict:
    """The answer of ``booking-stats``: counts of the range's appointments."""
    by_status, by_service, by_provider = Counter(), Counter(), Counter()
    by_weekday = dict.fromkeys(WEEKDAYS, 0)
    by_hour = {f"{hour:02d}": 0 for hour in range(24)}
    customers = set()
    for appointment in bookings.appointments:
        start = start_of(appointment)
        by_status[str(appointment.get("status") or "").strip() or NO_STATUS] += 1
        service = _ref(appointment, "service")
        by_service[bookings.services.get(service) or (f"Service {service}" if service else "unknown")] += 1
        provider = _ref(appointment, "provider")
        by_provider[bookings.providers.get(provider) or (f"Provider {provider}" if provider else "unknown")] += 1
        by_weekday[WEEKDAYS[start.weekday()]] += 1
        by_hour[f"{start.hour:02d}"] += 1
        if customer := _ref(appointment, "customer"):
            customers.add(customer)
    return {
        "date_from": date_from.isoformat(), "date_to": date_to.isoformat(),
        "total_bookings": len(bookings.appointments), "unique_customers": len(customers),
        "by_status": dict(by_status.most_common()), "by_service": dict(by_service.most_common()),
        "by_provider": dict(by_provider.most_common()), "by_weekday": by_weekday, "by_hour": by_hour,
    }


# --- Claude ---------------------------------------------------------------------------------------

SYSTEM = (
    "You write a short analysis (at most six sentences, plain text, no markdown) of a small business's "
    "bookings for its owner. You get aggregates only, as JSON: counts by status, service, provider, weekday "
    "and hour, and the number of distinct customers. Focus of the analysis: {focus}. Use the numbers; do not "
    "invent figures the data does not hold; say so when the data is too thin to tell."
)
FOCUS = {
    "overview": "the overall volume, the busiest services and providers, and what stands out",
    "demographics": "what the counts say about the customers (repeat bookers versus one-off, per service); "
                    "no personal data is available, say so rather than guess",
    "patterns": "when people book: weekdays and hours, peaks and quiet times, and what to staff or open",
    "conversion": "how bookings end (statuses such as booked, confirmed, cancelled): the share that is "
                  "cancelled or unconfirmed and what might lower it",
}


def claude_prompt(stats: dict, kind: str) -> str:
    """Exactly what Claude is sent: the stats, with providers (staff, who are people) numbered
    instead of named. No customer's name, e-mail or phone is in the stats at all."""
    providers = {f"Provider {n}": count for n, count in enumerate(stats["by_provider"].values(), start=1)}
    return json.dumps({"analysis_type": kind, **stats, "by_provider": providers}, sort_keys=True)


def insights(stats: dict, kind: str) -> str:
    """Claude's text. ``ClaudeUnavailable`` without a key; ``PlatformFailed`` when Claude fails or
    times out (its class only in the reason)."""
    from reports.summary import ask_claude

    if not settings.ANTHROPIC_API_KEY:
        raise ClaudeUnavailable("Insights need ANTHROPIC_API_KEY, which this installation does not set.")
    try:
        return ask_claude(SYSTEM.format(focus=FOCUS[kind]), claude_prompt(stats, kind), max_tokens=600)
    except Exception as exc:
        log.warning("booking insights from Claude failed (%s)", exc.__class__.__name__)
        timed_out = "Timeout" in exc.__class__.__name__
        raise PlatformFailed("Claude did not answer in time" if timed_out else
                             f"Claude failed ({exc.__class__.__name__})") from None


# --- the bookers ----------------------------------------------------------------------------------


@dataclass
class Booker:
    customer_id: str
    email: str
    first_name: str
    last_name: str
    phone: str
    appointments: int


def bookers(bookings: Bookings, status_filter: str = "all") -> tuple[list[Booker], int]:
    """The distinct customers of the range's appointments in that status, and how many of them
    E!A has no e-mail for (or no record at all): those are skipped."""
    counts = Counter(_ref(a, "customer") for a in bookings.in_status(status_filter))
    counts.pop("", None)
    found, skipped = [], 0
    for customer_id, n in counts.items():
        person = bookings.customers.get(customer_id) or {}
        email = str(person.get("email") or "").strip()
        if not email:
            skipped += 1
            continue
        found.append(Booker(customer_id, email, str(person.get("firstName") or person.get("first_name") or ""),
                            str(person.get("lastName") or person.get("last_name") or ""),
                            str(person.get("phone") or person.get("phone_number") or ""), n))
    return found, skipped


def queue_bookers(people: list[Booker], skipped: int, *, auto_invite: bool, user) -> dict:
    """Each booker a contact (source ``easyappointments``) and one sign-up, keyed on E!A's customer
    id so a second call adds nothing; ``auto_invite`` approves the pending ones as the Sign-ups page
    does. Run inside the tenant's context (one short transaction)."""
    from contacts.models import PendingSignup
    from contacts.services import add_pending_signup, decide_signups, upsert_contact
    from contacts.values import InvalidValue

    added = already = 0
    signups = []
    for person in people:
        try:
            contact, _ = upsert_contact(source=SOURCE, email=person.email, first_name=person.first_name,
                                        last_name=person.last_name, phone=person.phone)
        except InvalidValue:
            skipped += 1
            continue
        signup, created = add_pending_signup(contact=contact, source=SOURCE, external_id=f"customer:{person.customer_id}",
                                             metadata={"easyappointments_customer_id": person.customer_id})
        added, already = added + created, already + (not created)
        signups.append(signup.pk)
    approved = decide_signups(signups, PendingSignup.Status.APPROVED, user) if auto_invite and signups else 0
    return {"added": added, "already_queued": already, "skipped": skipped, "approved": approved}


def brevo_target(list_id) -> tuple[str, int]:
    """The tenant's Brevo key and the list to fill (``list_id``, else the tenant's own). Inside the
    tenant's context. ``NotConnected`` / ``BadRequest``."""
    integration = connection_of("brevo")
    api_key = integration.value("api_key")
    if not api_key:
        raise NotConnected("Brevo is connected without an API key: enter it on its setup page.")
    if list_id in (None, ""):
        list_id = str(integration.value("list_id") or "").strip()
        if not list_id:
            raise BadRequest("list_id", "Name a list_id: this tenant's Brevo connection has no list.")
    if isinstance(list_id, bool) or not str(list_id).isdigit() or not 0 < int(str(list_id)) < 2**31:
        raise BadRequest("list_id", "list_id must be a Brevo list id (a whole number).")
    return api_key, int(str(list_id))


def sync_to_brevo(people: list[Booker], api_key: str, list_id: int, client=None) -> dict:
    """Upsert the bookers into the Brevo list, ``BREVO_BATCH_SIZE`` at a time and at most that many
    a second (Brevo allows 10 contact requests a second). A 429 waits Brevo's
    ``x-sib-ratelimit-reset`` (at most ``BREVO_MAX_WAIT_SECONDS``) and tries the contact again,
    up to three times; then, and for any other refusal, the contact counts as failed. Outside any
    transaction."""
    import requests

    from integrations.http import ApiError, RateLimited
    from integrations.providers.brevo.client import BrevoClient

    client = client or BrevoClient(api_key)
    synced = failed = 0
    size = max(settings.BREVO_BATCH_SIZE, 1)
    for start in range(0, len(people), size):
        began = time.monotonic()
        for person in people[start:start + size]:
            attributes = {k: v for k, v in (("FIRSTNAME", person.first_name), ("LASTNAME", person.last_name)) if v}
            for attempt in range(4):
                try:
                    client.upsert_contact(person.email, attributes, [list_id])
                    synced += 1
                    break
                except RateLimited as exc:
                    if attempt == 3:
                        failed += 1
                        break
                    time.sleep(min(exc.retry_after, settings.BREVO_MAX_WAIT_SECONDS))
                except (ApiError, requests.RequestException) as exc:
                    log.warning("brevo upsert of a booker failed: %s", exc if isinstance(exc, ApiError) else
                                exc.__class__.__name__)
                    failed += 1
                    break
        if start + size < len(people):
            time.sleep(max(0.0, 1.0 - (time.monotonic() - began)))
    return {"synced": synced, "failed": failed, "list_id": list_id}
