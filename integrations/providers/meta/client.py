"""Meta's Graph API for the ads sync: pages, usage headers and error codes.

* Pages follow ``paging.next`` only while it stays on ``META_GRAPH_BASE``'s scheme and host (a
  next link elsewhere would carry the token there); otherwise ``paging.cursors.after`` on our own
  URL. Our token replaces any ``access_token`` a next link carries.
* The token goes as the ``access_token`` parameter. It is never logged and never put in an error:
  requests' exceptions quote the URL (and so the token), so only their class name is kept, and
  Meta's own error text is scrubbed of it.
* Usage headers (``X-Business-Use-Case-Usage``, ``X-Ad-Account-Usage``, ``X-App-Usage``): above
  ``META_USAGE_SLOW_PERCENT`` the client pauses before the next page; above
  ``META_USAGE_STOP_PERCENT``, or when Meta names a time to regain access, it stops
  (``TransientSyncError`` with that wait) and the sync resumes later from its cursor.
* Error codes: 190 (token invalid, expired, revoked) and permission errors are permanent; 4, 17,
  32, 613 and 80000–80014 are rate limits; 5xx are retried by the session, then transient.
"""

from __future__ import annotations

import json
import time
from typing import Callable, Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from django.conf import settings

from integrations.http import make_session
from integrations.sync import PermanentSyncError, TransientSyncError
from engarde.errors import unreachable

RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, *range(80000, 80015)})
PERMANENT_CODES = frozenset({190, 102, 10, *range(200, 300)})
DEFAULT_RATE_LIMIT_WAIT = 300.0  # seconds, when Meta says "too many calls" without a time


USAGE_HEADERS = ("X-Business-Use-Case-Usage", "X-Ad-Account-Usage", "X-App-Usage", "X-FB-Ads-Insights-Throttle")
PERCENT_KEYS = ("call_count", "total_cputime", "total_time", "acc_id_util_pct", "app_id_util_pct")


def _usage_entries(headers) -> Iterator[dict]:
    """Every JSON object in the usage headers (the business one nests lists per business id)."""
    for name in USAGE_HEADERS:
        try:
            value = json.loads(headers.get(name) or "null")
        except ValueError:
            continue
        if name == "X-Business-Use-Case-Usage" and isinstance(value, dict):
            yield from (e for group in value.values() if isinstance(group, list) for e in group if isinstance(e, dict))
        elif isinstance(value, dict):
            yield value


def usage(headers) -> tuple[float, float]:
    """(highest percentage of any budget used, seconds to wait before the next call) from the
    usage headers. The wait is Meta's ``estimated_time_to_regain_access`` (minutes) or, once a
    budget is used up, the account's ``reset_time_duration`` (seconds). Unreadable headers count
    as nothing used."""
    percent, regain, reset = 0.0, 0.0, 0.0
    for entry in _usage_entries(headers):
        numbers = {k: float(v) for k, v in entry.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        percent = max([percent] + [numbers[k] for k in PERCENT_KEYS if k in numbers])
        regain = max(regain, numbers.get("estimated_time_to_regain_access", 0.0) * 60.0)
        reset = max(reset, numbers.get("reset_time_duration", 0.0))
    return percent, regain or (reset if percent >= 100 else 0.0)


def pause(seconds: float) -> None:
    """Wait between pages near the rate limit (a seam: tests record the pauses instead)."""
    time.sleep(seconds)


class GraphClient:
    def __init__(self, token: str, *, session: requests.Session | None = None, sleep: Callable | None = None):
        self.token = token
        self.base = f"{settings.META_GRAPH_BASE.rstrip('/')}/{settings.META_GRAPH_VERSION}"
        self.session = session or make_session()
        self.sleep = sleep or pause
        self.after: str | None = None  # cursor of the last page, for a checkpoint
        self.pauses = 0
        self._last_headers = None

    def pages(self, path: str, params: dict, after: str | None = None) -> Iterator[list[dict]]:
        """Every page of ``path``'s ``data``, one list at a time (nothing accumulates)."""
        url = f"{self.base}/{path}"
        query = {**params, "limit": settings.META_PAGE_LIMIT, **({"after": after} if after else {})}
        while url:
            self._respect_usage()
            answer = self._get(url, query)
            paging = answer.get("paging") or {}
            self.after = (paging.get("cursors") or {}).get("after")
            yield answer.get("data") or []
            url, query = self._next(paging, f"{self.base}/{path}", query)

    def _next(self, paging: dict, own_url: str, query: dict) -> tuple[str | None, dict]:
        link = paging.get("next")
        if not link:
            return None, {}
        if self._on_our_host(link):
            parts = urlsplit(link)
            kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "access_token"]
            return urlunsplit(parts._replace(query=urlencode(kept))), {}
        if self.after:  # a next link elsewhere is never followed: ask our host for the same cursor
            return own_url, {**query, "after": self.after}
        return None, {}

    def _on_our_host(self, link: str) -> bool:
        ours, theirs = urlsplit(settings.META_GRAPH_BASE), urlsplit(link)
        return (theirs.scheme, theirs.netloc.lower()) == (ours.scheme, ours.netloc.lower())

    def _respect_usage(self) -> None:
        if self._last_headers is None:
            return
        percent, regain = usage(self._last_headers)
        if regain > 0 or percent >= settings.META_USAGE_STOP_PERCENT:
            raise TransientSyncError(
                f"Meta usage at {percent:.0f}% of its limit; stopped, resuming later", retry_after=max(regain, 60.0)
            )
        if percent >= settings.META_USAGE_SLOW_PERCENT:
            self.pauses += 1
            self.sleep(settings.META_USAGE_PAUSE_SECONDS)

    def _get(self, url: str, query: dict) -> dict:
        path = urlsplit(url).path
        try:
            response = self.session.get(url, params={**query, "access_token": self.token}, allow_redirects=False)
        except requests.RequestException as exc:
            raise TransientSyncError(unreachable("Meta", exc)) from None
        self._last_headers = response.headers
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status_code >= 400 or not isinstance(answer, dict) or "error" in answer:
            raise self._error(response, answer, path)
        return answer

    def _error(self, response, answer, path: str) -> Exception:
        error = (answer or {}).get("error") if isinstance(answer, dict) else None
        error = error if isinstance(error, dict) else {}
        code = error.get("code")
        text = str(error.get("message") or "")[:200].replace(self.token, "[redacted]") if self.token else ""
        where = f"Meta answered {response.status_code} to {path}"
        if code in PERMANENT_CODES:
            reason = "the access token is invalid, expired or revoked" if code in (190, 102) else "permission refused"
            return PermanentSyncError(f"{where} (code {code}): {reason}; enter a new token")
        if code in RATE_LIMIT_CODES or response.status_code == 429:
            _, regain = usage(response.headers)
            wait = regain or DEFAULT_RATE_LIMIT_WAIT
            return TransientSyncError(f"{where} (code {code}): rate limited, resuming in {wait:.0f} s", retry_after=wait)
        if code is None and response.status_code < 400:
            return TransientSyncError(f"Meta answered {path} with something that is not a JSON object")
        return TransientSyncError(". ".join(part for part in (f"{where}{f' (code {code})' if code else ''}", text) if part))
