"""The Stripe backfill: events a webhook outage lost, listed from Stripe and processed once.

Stripe keeps every event for 30 days at ``GET /v1/events``. Daily (``STRIPE_BACKFILL_INTERVAL_HOURS``),
and on demand (``manage.py sync_integration SLUG stripe --since YYYY-MM-DD``), the tenant's events of
the types we handle are listed with the tenant's own secret key and each is stored through the same
path as a verified delivery (``webhooks.ingest.store_fetched``): the unique key
``(tenant, source, event_id)`` makes an event that arrived by webhook a duplicate, and one that did
not a new row, processed by the normal worker once its page commits. The outcome is "recovered N of
M events": N new rows among the M events listed.

* **Where a run starts.** From the high-water mark (``sync_cursor["created"]``: the newest event of
  the last finished run) minus ``STRIPE_BACKFILL_OVERLAP_SECONDS``, since Stripe's list can show an
  event a moment after its ``created`` time; the first run from when the integration was made (at
  most ``STRIPE_BACKFILL_MAX_DAYS`` back: Stripe keeps no more); ``--since`` from that day, 00:00 UTC.
* **Paging.** Stripe lists newest first: ``limit=100`` and ``starting_after`` the last id of the
  page, while ``has_more``. ``types[]`` takes at most 20 types, so the handled types are asked for
  in groups of 20. Each page is fetched outside any transaction, then stored with the position
  reached in one ``checkpoint`` (which also refreshes the sync's claim): a run stopped by a 429, a
  5xx or a crash resumes from that page, and the counts go on from where they were.
* **Errors.** A 401 (no such key, or revoked) or 403 (a restricted key without Read on Events) stops
  the backfill until the credentials change (``PermanentSyncError``); a 429 comes back after Stripe's
  ``Retry-After``, a 5xx or an unreachable Stripe with backoff (``TransientSyncError``). Messages
  name the status and the path, never the key (Stripe's own 401 message quotes part of it).
* **No secret key**: the run is skipped, not failed; the setup page says why (``notice``).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import requests
from django.conf import settings
from django.utils import timezone

from integrations.http import ApiError, RateLimited, make_session
from integrations.providers.stripe.api import LookupRefused, StripeApi
from integrations.sync import PermanentSyncError, SyncResult, TransientSyncError, checkpoint
from webhooks.ingest import store_fetched
from engarde.errors import unreachable

PAGE_LIMIT = 100
MAX_TYPES_PER_REQUEST = 20  # Stripe's limit on types[]
PATH = "/v1/events"
SKIPPED = "backfill skipped: no secret key is set"


def handled_type_groups(provider) -> list[list[str]]:
    types = sorted(provider.handlers)
    return [types[i:i + MAX_TYPES_PER_REQUEST] for i in range(0, len(types), MAX_TYPES_PER_REQUEST)]


def notice(integration) -> str:
    """What the setup page says about the backfill (the state line says when it fails)."""
    if not integration.value("secret_key"):
        return ("Missed events are not backfilled: no secret key is set. Enter one (a restricted key needs Read on "
                "Events) and En Garde lists your Stripe events daily and processes any that a webhook outage lost.")
    last = (integration.sync_cursor or {}).get("last_run")
    if integration.last_synced_at and last:
        return (f"Daily backfill of missed events: the last run recovered {last['recovered']} of "
                f"{last['seen']} events listed by Stripe.")
    return "Daily backfill of missed events: not run yet."


class StripeBackfill:
    def __init__(self, integration, since: date | None = None, now: datetime | None = None):
        self.integration = integration
        self.since = since
        self.now = now or timezone.now()
        self.provider = integration.provider_obj
        self.groups = handled_type_groups(self.provider)
        self.api = None

    def run(self) -> SyncResult:
        key = self.integration.value("secret_key")
        if not key:
            return SyncResult(SKIPPED, cursor=dict(self.integration.sync_cursor or {}), counts={"skipped": 1})
        # No retries inside the session: a 429 or 5xx ends this run as a TransientSyncError and the
        # sync task comes back with backoff (never sooner than Stripe's Retry-After), instead of a
        # worker sleeping through Stripe's wait. The stored cursor makes the next run resume here.
        self.api = StripeApi(key, self.integration.tenant_id, session=make_session(total_retries=0))
        cursor = dict(self.integration.sync_cursor or {})
        run = self._resume_or_start(cursor)
        restarted = False
        while run["group"] < len(self.groups):
            try:
                page = self._list(run)
            except _PositionGone:
                if restarted or run["after"] is None:
                    raise TransientSyncError("Stripe no longer knows where the backfill stopped; it starts again") from None
                restarted, run["after"] = True, None  # listing again is harmless: stored events are duplicates
                continue
            events = [e for e in page.get("data") or [] if isinstance(e, dict)]
            last_id = events[-1].get("id") if events else None
            wanted = [e for e in events if self._storable(e)]
            run["seen"] += len(wanted)
            run["top"] = max([run["top"] or 0, *(e["created"] for e in wanted)]) or None
            more = bool(page.get("has_more")) and isinstance(last_id, str)
            run["group"], run["after"] = (run["group"], last_id) if more else (run["group"] + 1, None)
            cursor["run"] = run

            def write(wanted=wanted):
                # Counted inside the page's transaction, before the cursor (which holds ``run``) is
                # written with it: a run resumed later goes on from the right numbers.
                run["recovered"] += self._store(wanted)

            checkpoint(self.integration, cursor, write=write)
        newest = max(run["top"] or 0, cursor.get("created") or 0) or run["gte"]
        finished = {"created": newest, "last_run": {"seen": run["seen"], "recovered": run["recovered"], "from": run["gte"]}}
        return SyncResult(f"recovered {run['recovered']} of {run['seen']} events", cursor=finished,
                          counts={"seen": run["seen"], "recovered": run["recovered"]})

    # --- where to start --------------------------------------------------------------------------
    def _resume_or_start(self, cursor: dict) -> dict:
        pending = cursor.get("run")
        if self.since is None and isinstance(pending, dict) and pending.get("group", 0) < len(self.groups):
            return {"gte": int(pending["gte"]), "group": int(pending["group"]), "after": pending.get("after"),
                    "top": pending.get("top"), "seen": int(pending.get("seen", 0)),
                    "recovered": int(pending.get("recovered", 0))}
        return {"gte": self._start(cursor), "group": 0, "after": None, "top": None, "seen": 0, "recovered": 0}

    def _start(self, cursor: dict) -> int:
        if self.since is not None:
            return int(datetime.combine(self.since, datetime.min.time(), tzinfo=UTC).timestamp())
        oldest = int((self.now - timedelta(days=settings.STRIPE_BACKFILL_MAX_DAYS)).timestamp())
        if cursor.get("created"):
            return max(int(cursor["created"]) - settings.STRIPE_BACKFILL_OVERLAP_SECONDS, oldest)
        connected = self.integration.created_at or self.now
        return max(int(connected.timestamp()), oldest)

    # --- Stripe ----------------------------------------------------------------------------------
    def _list(self, run: dict) -> dict:
        """One page, outside any transaction; Stripe's answer mapped to the sync's errors."""
        params = {"created[gte]": run["gte"], "limit": PAGE_LIMIT, "types[]": self.groups[run["group"]]}
        if run["after"]:
            params["starting_after"] = run["after"]
        try:
            return self.api.get(PATH, params)
        except requests.RequestException as exc:
            raise TransientSyncError(unreachable("Stripe", exc)) from None
        except RateLimited as exc:
            raise TransientSyncError(f"Stripe is rate-limiting the backfill (429 to GET {PATH})",
                                     retry_after=exc.retry_after) from None
        except LookupRefused as exc:
            if exc.status == 401:
                raise PermanentSyncError("Stripe refused the secret key (401): enter a current secret or restricted "
                                         "key.") from None
            if exc.status == 403:
                raise PermanentSyncError("the secret key may not list events (403): give the restricted key Read on "
                                         "Events, or enter another key.") from None
            if run["after"]:  # 404 for the event the page starts after: it is older than Stripe keeps
                raise _PositionGone from None
            raise TransientSyncError(f"Stripe answered 404 to GET {PATH}") from None
        except ApiError as exc:
            raise TransientSyncError(str(exc), retry_after=exc.retry_after) from None

    def _storable(self, event: dict) -> bool:
        """An event of a type we handle, with an id and a time (the list is asked for those types
        only; anything else it holds is left alone)."""
        return (isinstance(event.get("id"), str) and bool(event["id"]) and isinstance(event.get("created"), int)
                and event.get("type") in self.provider.handlers)

    def _store(self, events: list[dict]) -> int:
        """Inside the checkpoint's tenant transaction: each event through the delivery's store path."""
        recovered = 0
        for event in events:
            body = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
            try:
                recovered += store_fetched(self.provider.name, event["id"], event["type"], body) is not None
            except ValueError:  # an id or type the database cannot hold: not Stripe's, not ours to store
                continue
        return recovered


class _PositionGone(Exception):
    """Stripe answered 404 to ``starting_after``: that event is past its 30 days."""
