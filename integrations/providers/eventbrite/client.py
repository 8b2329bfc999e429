"""Eventbrite API client, with the tenant's own private token: fetch the object a webhook delivery
names (``get``), and read the lists the attendee sync pages through (``pages``).

A delivery carries only ``api_url``; we must request it, so the URL is untrusted input. Anyone who
knows (or guesses) a tenant's URL token could name any host, an internal address, or a path that
makes us send the tenant's Bearer token elsewhere. ``checked_url`` therefore lets through only
URLs under ``settings.EVENTBRITE_API_BASE`` (same scheme, same host and port, no user info, a plain
path below the base, no query), rebuilds the URL from the base, and redirects are never followed.

The sync's lists (``pages``) follow ``pagination.continuation`` while ``pagination.has_more_items``,
at most ``EVENTBRITE_MAX_PAGES`` pages a list. Errors come as ``integrations.http`` errors for
the sync to judge: ``RateLimited`` (429, with ``Retry-After`` or, without one,
``DEFAULT_RATE_LIMIT_WAIT``), ``EventbriteRefused`` (4xx, with Eventbrite's ``error`` and
``error_description``, scrubbed of the token), ``ApiError`` (5xx after the session's retries, no
answer, no JSON). No message quotes a URL's query or a header.
"""

import logging
import re
from typing import Iterator
from urllib.parse import urlsplit

import requests
from django.conf import settings

from integrations.http import ApiError, RateLimited, make_session, retry_after_seconds
from integrations.providers.base import PermanentError
from engarde.errors import unreachable

log = logging.getLogger(__name__)

#: A 429 without a readable ``Retry-After``: Eventbrite counts its limits per hour (2,000 calls a
#: token is the figure usually quoted, unconfirmed), so a minute's wait would only meet it again.
DEFAULT_RATE_LIMIT_WAIT = 300.0

# Eventbrite object paths are ids and words: /v3/orders/123/, /v3/events/1/attendees/2/.
PLAIN_PATH = re.compile(r"[A-Za-z0-9_\-/]+")


class UnsafeApiUrl(PermanentError, ValueError):
    """The delivery named a URL outside the Eventbrite API: it is never requested, and the row is
    dead at once (the same body names the same URL on every retry)."""


class EventbriteRefused(ApiError):
    """A 4xx from Eventbrite: ``error`` is its code (``INVALID_AUTH``, ``NOT_AUTHORIZED``,
    ``NOT_FOUND``, ``ARGUMENTS_ERROR``), ``description`` its sentence, both safe to show."""

    def __init__(self, status: int, error: str, description: str, path: str):
        super().__init__(f"Eventbrite answered {status} to {path} ({error}: {description})", status=status)
        self.error, self.description, self.path = error, description, path


def scrub(text, secret: str, limit: int = 200) -> str:
    """Eventbrite's own words, fit for a stored sentence: printable, short, without the token."""
    text = re.sub(r"[\x00-\x1f\x7f]+", " ", str(text or "")).strip()
    if secret:
        text = text.replace(secret, "[redacted]")
    return text[:limit].rstrip(" .") or "no reason given"


class EventbriteClient:
    #: whom the client works for, in log lines (the sync sets the tenant's slug)
    label = ""

    def __init__(self, private_token: str, base_url: str | None = None, session=None):
        if not private_token:
            raise ApiError("no Eventbrite private token is configured for this tenant")
        self.base_url = (base_url or settings.EVENTBRITE_API_BASE).rstrip("/")
        self.session = session or make_session()
        self.session.headers.update({"Authorization": f"Bearer {private_token}", "Accept": "application/json"})
        self._token = private_token
        self.truncated: list[str] = []  # lists cut at EVENTBRITE_MAX_PAGES

    def checked_url(self, api_url) -> str:
        """``api_url`` rebuilt on the configured base, or ``UnsafeApiUrl``."""
        base = urlsplit(self.base_url)
        url = urlsplit(api_url if isinstance(api_url, str) else "")
        prefix = base.path.rstrip("/") + "/"
        safe = (
            url.scheme == base.scheme
            and url.netloc.lower() == base.netloc.lower()  # netloc holds user info and port too
            and not (url.query or url.fragment)
            and url.path.startswith(prefix)
            and PLAIN_PATH.fullmatch(url.path) is not None  # no "..", no %-escapes
        )
        if not safe:
            shown = str(api_url)[:200]
            raise UnsafeApiUrl(f"refusing to fetch api_url {shown!r}: it is not under EVENTBRITE_API_BASE {self.base_url}")
        return self.base_url + url.path[len(prefix) - 1:]

    def get(self, api_url, expand: str = "") -> dict:
        url = self.checked_url(api_url)
        response = self.session.get(url, params={"expand": expand} if expand else None, allow_redirects=False)
        path = urlsplit(url).path
        if response.status_code == 429:
            raise RateLimited(retry_after_seconds(response))
        if not 200 <= response.status_code < 300:
            raise ApiError(f"Eventbrite answered {response.status_code} to GET {path}")
        try:
            return response.json()
        except ValueError:
            raise ApiError(f"Eventbrite answered GET {path} with a body that is not JSON") from None

    def test_connection(self) -> dict:
        return self.get(f"{self.base_url}/users/me/")

    # --- the attendee sync's lists -------------------------------------------------------------
    def read(self, path: str, params: dict | None = None) -> dict:
        """One GET of ``<base>/<path>`` for the sync: the JSON object, or the errors above."""
        url = f"{self.base_url}/{path.lstrip('/')}"
        shown = urlsplit(url).path
        try:
            response = self.session.get(url, params=params, allow_redirects=False)
        except requests.RequestException as exc:  # its text quotes the URL: only the class is kept
            raise ApiError(unreachable("Eventbrite", exc, f" for {shown}")) from None
        status = response.status_code
        if status == 429:
            raise RateLimited(retry_after_seconds(response, default=DEFAULT_RATE_LIMIT_WAIT))
        try:
            body = response.json()
        except ValueError:
            body = None
        if 400 <= status < 500:
            body = body if isinstance(body, dict) else {}
            raise EventbriteRefused(status, scrub(body.get("error") or response.reason, self._token, 60),
                                    scrub(body.get("error_description"), self._token), shown)
        if not 200 <= status < 300:
            raise ApiError(f"Eventbrite answered {status} to {shown}", status=status)
        if not isinstance(body, dict):
            raise ApiError(f"Eventbrite answered {shown} with something that is not a JSON object", status=status)
        return body

    def pages(self, path: str, params: dict, key: str) -> Iterator[list[dict]]:
        """Every page of ``key`` (``organizations``, ``events``, ``attendees``), following
        ``continuation`` while ``has_more_items``; at most ``EVENTBRITE_MAX_PAGES`` pages (a
        continuation seen twice ends the list too)."""
        seen, continuation = set(), ""
        for _ in range(max(settings.EVENTBRITE_MAX_PAGES, 1)):
            answer = self.read(path, {**params, **({"continuation": continuation} if continuation else {})})
            items = answer.get(key)
            yield [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []
            pagination = answer.get("pagination") if isinstance(answer.get("pagination"), dict) else {}
            continuation = pagination.get("continuation")
            if (pagination.get("has_more_items") is not True or not isinstance(continuation, str)
                    or not continuation or continuation in seen):
                return
            seen.add(continuation)
        self.truncated.append(path)
        log.warning("eventbrite sync for tenant %s: %s has more than %s pages; the rest waits for the next run",
                    self.label or "?", path, settings.EVENTBRITE_MAX_PAGES)
