"""A local fake of Stripe's ``GET /v1/events`` for the backfill's tests, on ``responses`` (an
unregistered URL fails the test; the callback runs in the calling thread, so a test can look at that
thread's database connection at the moment Stripe is asked).

It answers as Stripe documents it: one account per secret key (any other key is a 401 with
Stripe's error object), newest first, ``created[gte]``, ``types[]`` (at most 20, else a 400),
``limit`` (1 to 100, default 10), ``starting_after`` (an event id of that account, else a 404),
``{"object": "list", "url": "/v1/events", "has_more", "data"}``. It can be told to fail
(``fail(status, times, retry_after, after)``: a 429 with ``Retry-After``, a 500, …) and to run something
just before it answers a page (``before_page``: a webhook delivery racing the backfill). Every
request is kept in ``requests`` (the query, and whether the key was right), never the key itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import parse_qs, urlsplit

import responses

MAX_TYPES = 20


def event(event_id: str, event_type: str, created: int, obj: dict | None = None, api_version="2025-09-30.clover") -> dict:
    """An event as the list returns it (the same shape a webhook delivery has)."""
    return {
        "id": event_id, "object": "event", "api_version": api_version, "created": created,
        "data": {"object": obj or {}}, "livemode": False, "pending_webhooks": 0,
        "request": {"id": None, "idempotency_key": None}, "type": event_type,
    }


@dataclass
class Failure:
    status: int
    times: int
    retry_after: str | None = None
    after: int = 0  # pages answered first


@dataclass
class FakeStripe:
    base: str
    accounts: dict[str, list[dict]] = field(default_factory=dict)  # secret key -> its events
    requests: list[dict] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    before_page: Callable[[dict], None] | None = None

    def add(self, key: str, *events: dict) -> None:
        self.accounts.setdefault(key, []).extend(events)

    def fail(self, status: int, times: int = 1, retry_after: str | None = None, after: int = 0) -> None:
        """The next ``times`` requests (once ``after`` more pages were answered) get ``status``."""
        self.failures.append(Failure(status, times, retry_after, after))

    def install(self, mock: responses.RequestsMock) -> "FakeStripe":
        mock.add_callback(responses.GET, f"{self.base}/v1/events", callback=self._answer)
        return self

    def pages(self) -> list[dict]:
        return [r for r in self.requests if r["status"] == 200]

    # --- answering ------------------------------------------------------------------------------
    def _answer(self, request):
        query = parse_qs(urlsplit(request.url).query)
        key = (request.headers.get("Authorization") or "").removeprefix("Bearer ")
        record = {"query": {k: v if k == "types[]" else v[0] for k, v in query.items()}, "key_ok": key in self.accounts}
        self.requests.append(record)
        status, body, headers = self._page(key, query)
        record["status"] = status
        if status == 200 and self.before_page is not None:
            self.before_page(body)
        return status, {"Content-Type": "application/json", **headers}, json.dumps(body)

    def _page(self, key: str, query: dict) -> tuple[int, dict, dict]:
        if key not in self.accounts:
            return 401, error("invalid_request_error", "Invalid API Key provided: rk_****"), {}
        if self.failures and self.failures[0].after > 0:
            self.failures[0].after -= 1
        elif self.failures:
            failure = self.failures[0]
            failure.times -= 1
            if failure.times <= 0:
                self.failures.pop(0)
            headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
            kind = "rate_limit_error" if failure.status == 429 else "api_error"
            return failure.status, error(kind, f"fake Stripe answers {failure.status}"), headers
        types = query.get("types[]", [])
        if len(types) > MAX_TYPES:
            return 400, error("invalid_request_error", f"types: at most {MAX_TYPES}"), {}
        limit = int(query.get("limit", ["10"])[0])
        if not 1 <= limit <= 100:
            return 400, error("invalid_request_error", "limit must be between 1 and 100"), {}
        gte = int(query.get("created[gte]", ["0"])[0])
        events = sorted(self.accounts[key], key=lambda e: (e["created"], e["id"]), reverse=True)
        events = [e for e in events if e["created"] >= gte and (not types or e["type"] in types)]
        after = query.get("starting_after", [None])[0]
        if after is not None:
            ids = [e["id"] for e in events]
            if after not in ids:
                return 404, error("invalid_request_error", f"No such event: '{after}'"), {}
            events = events[ids.index(after) + 1:]
        page = events[:limit]
        return 200, {"object": "list", "url": "/v1/events", "has_more": len(events) > limit, "data": page}, {}


def error(kind: str, message: str) -> dict:
    return {"error": {"type": kind, "message": message}}
