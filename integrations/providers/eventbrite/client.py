"""Eventbrite API client: fetch the object a webhook delivery names, with the tenant's own token.

A delivery carries only ``api_url``; we must request it, so the URL is untrusted input. Anyone who
knows (or guesses) a tenant's URL token could name any host, an internal address, or a path that
makes us send the tenant's Bearer token elsewhere. ``checked_url`` therefore lets through only
URLs under ``settings.EVENTBRITE_API_BASE`` (same scheme, same host and port, no user info, a plain
path below the base, no query), rebuilds the URL from the base, and redirects are never followed.
"""

import re
from urllib.parse import urlsplit

from django.conf import settings

from integrations.http import ApiError, RateLimited, make_session, retry_after_seconds
from integrations.providers.base import PermanentError

# Eventbrite object paths are ids and words: /v3/orders/123/, /v3/events/1/attendees/2/.
PLAIN_PATH = re.compile(r"[A-Za-z0-9_\-/]+")


class UnsafeApiUrl(PermanentError, ValueError):
    """The delivery named a URL outside the Eventbrite API: it is never requested, and the row is
    dead at once (the same body names the same URL on every retry)."""


class EventbriteClient:
    def __init__(self, private_token: str, base_url: str | None = None, session=None):
        if not private_token:
            raise ApiError("no Eventbrite private token is configured for this tenant")
        self.base_url = (base_url or settings.EVENTBRITE_API_BASE).rstrip("/")
        self.session = session or make_session()
        self.session.headers.update({"Authorization": f"Bearer {private_token}", "Accept": "application/json"})

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
