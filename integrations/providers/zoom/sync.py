"""The Zoom attendee sync: registrants of upcoming and recent meetings and webinars.

What a webhook missed (Zoom drops a delivery after three tries; an endpoint set up late missed
everything before) is filled in from the API with the tenant's own Server-to-Server OAuth app:

1. The objects: ``users/<user>/meetings?type=upcoming`` and ``?type=previous_meetings`` (those
   that started in the last ``ZOOM_LOOKBACK_DAYS``, or since ``--since``), and
   ``users/<user>/webinars``, skipping instant and personal-room meetings (no registration there).
   ``<user>`` is the integration's "Zoom user" value, else ``me``.
2. Their registrants, approved, pending and denied (``/meetings/<id>/registrants?status=…``,
   ``/webinars/<id>/registrants``), 300 a page. Each page is written in one short
   ``tenant_context`` transaction with the sync's position (``checkpoint``), after it arrived.
3. Each registrant goes through the webhook handlers' own upsert
   (``handlers.record_registration``), under the same key (``handlers.signup_key``): a
   registration seen by the webhook and by the sync is one contact and one sign-up. Approved and
   pending registrants are queued like a ``registration_created`` delivery (a sign-up already
   there is left as it is, so the tenant's decisions stand); denied ones are settled as denied. A
   sign-up already in the queue costs nothing on the next run: its contact is not rewritten every
   half hour. Zoom lists no cancelled registrants; only the webhook reports a cancellation.

A stopped run (rate limit, 5xx) resumes after the last list it finished (``pending.after`` in the
cursor); upserts are idempotent, so a list is at worst read twice. A meeting whose registrants
Zoom refuses with a 400 or 404 (registration not enabled, deleted meanwhile) is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from datetime import timezone as dt_timezone

from django.conf import settings
from django.utils import timezone
from pydantic import ValidationError

from contacts.models import PendingSignup
from contacts.values import InvalidValue, parse_moment
from integrations.providers.zoom.client import UNKNOWN_USER_CODE, ZoomClient, ZoomRefused, app_credentials
from integrations.providers.zoom.handlers import record_registration, signup_key
from integrations.providers.zoom.schemas import Registrant
from integrations.sync import PermanentSyncError, SyncResult, TransientSyncError, checkpoint

#: Zoom's registrant statuses, in the order they are read (the resume position counts on it).
STATUSES = ("approved", "pending", "denied")
#: Meeting types that cannot take registrations: instant (1) and personal meeting room (4).
NO_REGISTRATION_TYPES = frozenset({1, 4})
MAX_KEY_LENGTH = PendingSignup._meta.get_field("external_id").max_length


@dataclass(frozen=True)
class ZoomObject:
    """A meeting or webinar whose registrants are read."""

    kind: str  # meeting | webinar
    id: str  # as text: the key
    raw_id: object  # as Zoom sent it (a number): the metadata
    topic: str
    start_time: str

    def sort_key(self) -> tuple:
        return (self.kind, len(self.id), self.id)


def _position(obj: ZoomObject, status: str) -> list:
    return [obj.kind, obj.id, STATUSES.index(status)]


def _after(position: list, resume: list | None) -> bool:
    """Whether ``position`` comes after ``resume`` in the order the run reads lists."""
    if not resume:
        return True
    kind, object_id, status = position
    r_kind, r_id, r_status = resume
    return (kind, len(object_id), object_id, status) > (r_kind, len(str(r_id)), str(r_id), r_status)


class ZoomSync:
    """One run for one integration. ``now`` is a seam for tests."""

    def __init__(self, integration, since: date | None = None, now: datetime | None = None, client=None):
        missing = [name for name, value in zip(("account ID", "client ID", "client secret"), app_credentials(integration))
                   if not value]
        if missing:
            raise PermanentSyncError(
                f"Zoom sync needs the Server-to-Server OAuth app's {', '.join(missing)}; enter them on the setup page."
            )
        self.integration = integration
        self.client = client or ZoomClient(integration)
        self.now = now or timezone.now()
        self.since = since
        self.user = self.client.user_path(str(integration.value("user_id") or "").strip())
        self.counts = {"meetings": 0, "webinars": 0, "registrants": 0, "new": 0, "denied": 0, "skipped": 0,
                       "without registration": 0}
        self.notes: list[str] = []

    # --- the run ----------------------------------------------------------------------------
    def run(self) -> SyncResult:
        cursor = dict(self.integration.sync_cursor or {})
        resume = (cursor.get("pending") or {}).get("after") if self.since is None else None
        base = {k: v for k, v in cursor.items() if k != "pending"}
        objects = sorted(self.objects(), key=ZoomObject.sort_key)
        for obj in objects:
            for status in STATUSES:
                position = _position(obj, status)
                if not _after(position, resume):
                    continue
                has_registration = self.pull(obj, status, base, resume)
                resume = position if has_registration else _position(obj, STATUSES[-1])
                checkpoint(self.integration, {**base, "pending": {"after": resume}})
                if not has_registration:
                    break  # no registration on this object: its other lists would answer the same
        done = {**base, "synced_through": self.now.isoformat()}
        return SyncResult(self.summary(), cursor=done, counts=dict(self.counts))

    def objects(self) -> list[ZoomObject]:
        """Upcoming and recent meetings, and webinars, each once."""
        start = self.window_start()
        found: dict[tuple[str, str], ZoomObject] = {}
        meetings = f"users/{self.user}/meetings"
        try:
            for params in ({"type": "upcoming"}, {"type": "previous_meetings", "from": start.date().isoformat(),
                                                   "to": self.now.date().isoformat()}):
                for page in self.client.pages(meetings, params, "meetings"):
                    for item in page:
                        self._keep(found, "meeting", item, start)
        except ZoomRefused as exc:
            raise self._listing_error(exc) from None
        try:
            for page in self.client.pages(f"users/{self.user}/webinars", {}, "webinars"):
                for item in page:
                    self._keep(found, "webinar", item, start)
        except ZoomRefused as exc:
            if exc.code == UNKNOWN_USER_CODE or exc.status == 404:
                raise self._listing_error(exc) from None
            # An account without the webinar add-on answers 400 here: meetings still sync.
            self.notes.append(f"webinars not listed ({exc.message})")
        self.counts["meetings"] = sum(1 for key in found if key[0] == "meeting")
        self.counts["webinars"] = sum(1 for key in found if key[0] == "webinar")
        return list(found.values())

    def window_start(self) -> datetime:
        if self.since is not None:
            return datetime.combine(self.since, time.min, dt_timezone.utc)
        return self.now - timedelta(days=settings.ZOOM_LOOKBACK_DAYS)

    def _keep(self, found: dict, kind: str, item: dict, start: datetime) -> None:
        raw_id = item.get("id")
        if isinstance(raw_id, bool) or not isinstance(raw_id, (int, str)) or not str(raw_id).strip():
            return
        if kind == "meeting" and item.get("type") in NO_REGISTRATION_TYPES:
            return
        try:
            starts = parse_moment(item.get("start_time") or None)
        except InvalidValue:
            starts = None
        if starts is not None and starts < start:
            return  # an old one (recurring meetings without a fixed time have no start: kept)
        object_id = str(raw_id).strip()
        if len(object_id) > 64:
            return
        found.setdefault((kind, object_id), ZoomObject(kind, object_id, raw_id, str(item.get("topic") or "")[:300],
                                                       str(item.get("start_time") or "")[:40]))

    def _listing_error(self, exc: ZoomRefused) -> Exception:
        if exc.code == UNKNOWN_USER_CODE or exc.status == 404:
            return PermanentSyncError(
                f"Zoom does not know the user whose meetings are synced ({exc.message}). Set “Zoom user” on the "
                "setup page to a user ID or e-mail of the account, or leave it empty for the app's owner."
            )
        return TransientSyncError(str(exc))

    def pull(self, obj: ZoomObject, status: str, base: dict, resume) -> bool:
        """One registrant list, page by page. False when Zoom has no registration for the object."""
        path = f"{obj.kind}s/{obj.id}/registrants"
        try:
            for page in self.client.pages(path, {"status": status}, "registrants"):
                position = {**base, "pending": {"after": resume}}
                checkpoint(self.integration, position, write=lambda page=page: self.write(obj, status, page))
        except ZoomRefused as exc:
            if exc.status in (400, 404):
                self.counts["without registration"] += 1
                return False
            raise TransientSyncError(str(exc)) from None
        return True

    # --- one page ---------------------------------------------------------------------------
    def write(self, obj: ZoomObject, status: str, page: list[dict]) -> None:
        """Runs inside ``checkpoint``'s tenant transaction."""
        registrants = []
        for item in page:
            try:
                registrants.append(Registrant.model_validate({**item, "status": item.get("status") or status}))
            except ValidationError:  # no e-mail, no id: nobody to file
                self.counts["skipped"] += 1
        self.counts["registrants"] += len(page)
        keys = {}
        for registrant in registrants:
            key = signup_key(obj.kind, obj.id, registrant.id)
            if len(key) > MAX_KEY_LENGTH:  # checked before the contact is made: never a contact without its sign-up
                self.counts["skipped"] += 1
            else:
                keys[key] = registrant
        known = dict(PendingSignup.objects.filter(source="zoom", external_id__in=list(keys))
                     .values_list("external_id", "status"))
        settled = {PendingSignup.Status.DENIED, PendingSignup.Status.CANCELLED}
        for key, registrant in keys.items():
            denied = status == "denied"
            if key in known and (not denied or known[key] in settled):
                continue  # already filed: the tenant's queue (and the contact) stay as they are
            try:
                record_registration(obj.kind, obj.id, registrant, topic=obj.topic, start_time=obj.start_time,
                                    raw_object_id=obj.raw_id,
                                    decision=PendingSignup.Status.DENIED if denied else None)
            except InvalidValue:  # a value the database cannot hold (an over-long id)
                self.counts["skipped"] += 1
                continue
            self.counts["denied" if denied else "new"] += 1

    def summary(self) -> str:
        c = self.counts
        line = (f"{c['meetings']} meetings, {c['webinars']} webinars, {c['registrants']} registrants "
                f"({c['new']} new, {c['denied']} denied, {c['skipped']} skipped)")
        if self.client.truncated:
            self.notes.append(f"{len(self.client.truncated)} lists longer than {settings.ZOOM_MAX_PAGES} pages cut short")
        return "; ".join([line, *self.notes])
