"""The Eventbrite attendee sync: what the webhooks missed, hourly, with the tenant's private token.

Eventbrite gives up on a webhook after a few tries and an endpoint set up late missed everything
before it; the API has it all. One run (``integrations.sync.run_sync`` holds the claim):

1. The token's organizations (``users/me/organizations/``), then each one's events
   (``organizations/<id>/events/?status=EVENTBRITE_EVENT_STATUS``): those live or started, and
   those that ended in the last ``EVENTBRITE_ENDED_DAYS`` (or since ``--since``).
2. Each event's attendees changed since the high-water mark
   (``events/<id>/attendees/?changed_since=YYYY-MM-DDTHH:MM:SSZ``; the first run goes
   ``EVENTBRITE_BACKFILL_DAYS`` back, ``--since`` from that day), page by page along
   ``continuation``. Each page is written, after it arrived, in one short ``tenant_context``
   transaction with the run's position (``checkpoint``); no transaction is open during a request.
3. Each attendee goes through the webhook handlers' own ``handlers.record_attendee``, keyed on the
   attendee id: a contact, a sign-up (queued, or settled as cancelled for a cancelled or refunded
   ticket), a payment per paid ticket whose status follows refunds and cancellations, and the
   check-in. The webhook and the sync thus find one row. Each attendee is written in a savepoint: one
   Eventbrite refuses to fit (no e-mail, an odd amount) is skipped and counted, never half-filed.

The high-water mark (``sync_cursor["changed_since"]``) is when the last finished run *started*,
less ``OVERLAP``: a change made while a run was reading is read by the next one (the upserts are
idempotent, so reading one twice costs nothing). A stopped run (429, 5xx) keeps its mark and the
events it finished (``pending``) and resumes with the others; the mark moves only when a run ends.

Errors: 401 and 403 (a revoked or wrong token) stop the sync with Eventbrite's reason until the
token changes; 429 is transient with Eventbrite's wait; 5xx are retried by the HTTP session, then
transient; an event whose attendees Eventbrite refuses with 400 or 404 (deleted meanwhile) is
skipped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from datetime import timezone as dt_timezone

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from pydantic import ValidationError

from contacts.values import InvalidValue, parse_moment
from integrations.http import ApiError, RateLimited
from integrations.providers.eventbrite.client import EventbriteClient, EventbriteRefused
from integrations.providers.eventbrite.handlers import record_attendee
from integrations.providers.eventbrite.schemas import Attendee
from integrations.sync import PermanentSyncError, SyncResult, TransientSyncError, checkpoint

#: Re-read this much before the last run's start: Eventbrite's clock and ours may differ a little,
#: and a change saved as a run began must not fall between two runs.
OVERLAP = timedelta(minutes=5)
#: Events in these states are read whatever their end (they are running now).
RUNNING = frozenset({"live", "started"})
#: Eventbrite's ``changed_since`` format.
STAMP = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class EventbriteEvent:
    organization_id: str
    id: str
    name: str
    status: str

    @property
    def key(self) -> str:
        return f"{self.organization_id}:{self.id}"


def stamp(moment: datetime) -> str:
    return moment.astimezone(dt_timezone.utc).strftime(STAMP)


def parse_stamp(value) -> datetime | None:
    """A stamp this sync stored, or ``None`` for anything else (the run then starts afresh)."""
    try:
        return datetime.strptime(value, STAMP).replace(tzinfo=dt_timezone.utc) if isinstance(value, str) else None
    except ValueError:
        return None


def _id(value) -> str:
    """An Eventbrite id (digits, as text), or "" for anything else (it goes into a path)."""
    text = str(value).strip() if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    return text if text.isdigit() and len(text) <= 64 else ""


class EventbriteSync:
    """One run for one integration. ``now`` and ``client`` are seams for tests."""

    def __init__(self, integration, since: date | None = None, now: datetime | None = None, client=None):
        token = str(integration.value("private_token") or "").strip()
        if not token:
            raise PermanentSyncError("Eventbrite sync needs the private token; enter it on the setup page.")
        self.integration = integration
        self.client = client or EventbriteClient(token)
        self.client.label = getattr(getattr(integration, "tenant", None), "slug", "") or str(integration.tenant_id)
        self.now = now or timezone.now()
        self.since = since
        self.counts = {"organizations": 0, "events": 0, "attendees": 0, "cancelled": 0, "checked in": 0,
                       "skipped": 0, "events skipped": 0}

    # --- the run ----------------------------------------------------------------------------
    def run(self) -> SyncResult:
        cursor = dict(self.integration.sync_cursor or {})
        base = {k: v for k, v in cursor.items() if k != "pending"}
        pending = cursor.get("pending") if self.since is None else None
        if isinstance(pending, dict) and parse_stamp(pending.get("changed_since")) and parse_stamp(pending.get("started")):
            changed_since, started = pending["changed_since"], pending["started"]
            done = [key for key in pending.get("done") or [] if isinstance(key, str)]
        else:
            changed_since, started, done = self.changed_since(base), stamp(self.now), []
        position = {"changed_since": changed_since, "started": started, "done": done}
        for event in self.events():
            if event.key in done:
                continue
            self.pull(event, changed_since, {**base, "pending": position})
            done.append(event.key)
            checkpoint(self.integration, {**base, "pending": position})
        mark = parse_stamp(started) - OVERLAP
        return SyncResult(self.summary(), cursor={**base, "changed_since": stamp(mark)}, counts=dict(self.counts))

    def changed_since(self, cursor: dict) -> str:
        """``--since`` at 00:00 UTC, else the last run's mark, else ``EVENTBRITE_BACKFILL_DAYS`` back."""
        if self.since is not None:
            return stamp(datetime.combine(self.since, time.min, dt_timezone.utc))
        mark = parse_stamp(cursor.get("changed_since"))
        if mark is not None:
            return stamp(mark)
        return stamp(self.now - timedelta(days=settings.EVENTBRITE_BACKFILL_DAYS))

    def window_start(self) -> datetime:
        """Ended events count from here on."""
        start = self.now - timedelta(days=settings.EVENTBRITE_ENDED_DAYS)
        if self.since is not None:
            start = min(start, datetime.combine(self.since, time.min, dt_timezone.utc))
        return start

    def events(self) -> list[EventbriteEvent]:
        """Every organization's running and recently ended events, each once, in a stable order."""
        found: dict[str, EventbriteEvent] = {}
        start = self.window_start()
        for page in self._list("users/me/organizations/", {}, "organizations"):
            for organization in page:
                org_id = _id(organization.get("id"))
                if not org_id:
                    continue
                self.counts["organizations"] += 1
                params = {"status": settings.EVENTBRITE_EVENT_STATUS, "order_by": "start_desc"}
                for events in self._list(f"organizations/{org_id}/events/", params, "events"):
                    for item in events:
                        event = self._event(org_id, item, start)
                        if event is not None:
                            found.setdefault(event.key, event)
        self.counts["events"] = len(found)
        return sorted(found.values(), key=lambda e: (len(e.organization_id), e.organization_id, len(e.id), e.id))

    def _event(self, org_id: str, item: dict, start: datetime) -> EventbriteEvent | None:
        event_id = _id(item.get("id"))
        if not event_id:
            return None
        status = str(item.get("status") or "")
        end = item.get("end") if isinstance(item.get("end"), dict) else {}
        try:
            ends = parse_moment(end.get("utc") or None)
        except InvalidValue:
            ends = None
        if status not in RUNNING and ends is not None and ends < start:
            return None  # ended before the window
        name = item.get("name") if isinstance(item.get("name"), dict) else {}
        return EventbriteEvent(org_id, event_id, str(name.get("text") or "")[:300], status)

    def pull(self, event: EventbriteEvent, changed_since: str, position: dict) -> None:
        """The event's changed attendees, page by page, each page written with the position."""
        path = f"events/{event.id}/attendees/"
        try:
            for page in self.client.pages(path, {"changed_since": changed_since}, "attendees"):
                checkpoint(self.integration, position, write=lambda page=page: self.write(event, page))
        except EventbriteRefused as exc:
            if exc.status in (400, 404):
                self.counts["events skipped"] += 1
                return
            raise self._error(exc) from None
        except (RateLimited, ApiError) as exc:
            raise self._error(exc) from None

    def _list(self, path: str, params: dict, key: str):
        """``client.pages`` with Eventbrite's errors as sync errors."""
        try:
            yield from self.client.pages(path, params, key)
        except (RateLimited, ApiError) as exc:
            raise self._error(exc) from None

    def _error(self, exc: Exception) -> Exception:
        if isinstance(exc, RateLimited):
            return TransientSyncError(f"Eventbrite is rate-limiting this token; resuming in {exc.retry_after:.0f} s",
                                      retry_after=exc.retry_after)
        if isinstance(exc, EventbriteRefused) and exc.status in (401, 403):
            return PermanentSyncError(
                f"Eventbrite refused the private token ({exc.status} {exc.error}: {exc.description}) for "
                f"{exc.path}. Enter a valid private token on the setup page (Account Settings → Developer "
                "Links → API Keys); the sync starts again when it changes."
            )
        return TransientSyncError(str(exc))

    # --- one page ---------------------------------------------------------------------------
    def write(self, event: EventbriteEvent, page: list[dict]) -> None:
        """Runs inside ``checkpoint``'s tenant transaction; each attendee in a savepoint."""
        for item in page:
            self.counts["attendees"] += 1
            try:
                attendee = Attendee.model_validate(item)
            except ValidationError:
                self.counts["skipped"] += 1
                continue
            if not attendee.profile.email:
                self.counts["skipped"] += 1  # nobody to file: Eventbrite collected no e-mail
                continue
            try:
                with transaction.atomic():
                    record_attendee(attendee, event_id=event.id)
            except InvalidValue:  # a value the database cannot hold, an amount that is not money
                self.counts["skipped"] += 1
                continue
            if attendee.cancelled or attendee.refunded:
                self.counts["cancelled"] += 1
            if attendee.checked_in:
                self.counts["checked in"] += 1

    def summary(self) -> str:
        c = self.counts
        line = (f"{c['organizations']} organizations, {c['events']} events, {c['attendees']} attendees changed "
                f"({c['cancelled']} cancelled or refunded, {c['checked in']} checked in, {c['skipped']} skipped)")
        notes = []
        if c["events skipped"]:
            notes.append(f"{c['events skipped']} events whose attendees Eventbrite refused")
        if self.client.truncated:
            notes.append(f"{len(self.client.truncated)} lists longer than {settings.EVENTBRITE_MAX_PAGES} pages cut short")
        return "; ".join([line, *notes])
