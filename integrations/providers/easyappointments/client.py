"""Easy!Appointments' REST API (``<url>/index.php/api/v1/…``) with the tenant's credentials.

* **Credentials.** ``url``, ``username``, ``password``: with ``username`` empty, ``password`` is
  E!A's API token (``Authorization: Bearer``); with it, an E!A admin user and password (Basic).
* **Where.** The URL is checked by ``ensure_public_https`` and every connection goes through
  ``pinned_session`` to the address that was checked, with ``integration.allowed_networks("url")``:
  an operator-set URL may be plain http inside ``OUTBOUND_PRIVATE_NETWORKS``; a URL the tenant typed
  stays public https.
* **Paging.** ``page`` (from 1) and ``length``, until a page is shorter than ``length`` (or empty);
  at most ``EASYAPPOINTMENTS_MAX_PAGES`` pages, and a page that repeats the previous one ends the
  list (an installation that ignores ``page`` would otherwise loop).
* **Errors.** 401/403 are ``PermanentSyncError`` with the reason (the credentials, or the user is
  not an admin); 429 is ``TransientSyncError`` with E!A's ``Retry-After``; 5xx (after the session's
  own retries) and network trouble are ``TransientSyncError``; any other 4xx is ``EasyAppointmentsRefused``.
  Messages name the status and the path, never the password or token; requests' exceptions are
  reduced to their class name (their text quotes URLs).
"""

from __future__ import annotations

import logging
from urllib.parse import quote, urlsplit

import requests
from django.conf import settings

from integrations.http import UnsafeUrl, ensure_public_https, pinned_session, retry_after_seconds
from integrations.sync import PermanentSyncError, TransientSyncError
from engarde.errors import Explained, unreachable

log = logging.getLogger(__name__)

API_PATH = "/index.php/api/v1"
#: Rows asked for per page (E!A's own default is 20).
PAGE_LENGTH = 100
LABEL = "Easy!Appointments"


class EasyAppointmentsRefused(Explained):
    """A 4xx other than 401/403/429 (a customer that does not exist is a 404): the caller judges."""

    def __init__(self, status: int, path: str):
        super().__init__(f"{LABEL} answered {status} to GET {path}")
        self.status, self.path = status, path


class NotConnected(Explained):
    """The tenant has no usable E!A connection (no URL or no password/token)."""


class EasyAppointmentsClient:
    def __init__(self, url: str, username: str, password: str, allowed_networks: tuple = (),
                 session: requests.Session | None = None):
        url = (url or "").strip().rstrip("/")
        if not url or not password:
            raise NotConnected("Easy!Appointments is not connected: enter the installation URL and the API "
                               "password or token on its setup page")
        try:
            ensure_public_https(url, allowed_networks)
        except UnsafeUrl as exc:
            raise PermanentSyncError(f"the Easy!Appointments URL is refused: {exc}") from None
        self.base = f"{url}{API_PATH}"
        self.session = session or pinned_session(tuple(allowed_networks))
        if username:
            self._auth = {"auth": (username, password)}
        else:
            self._auth = {"headers": {"Authorization": f"Bearer {password}"}}
        self._uses_token = not username

    @classmethod
    def for_integration(cls, integration, session: requests.Session | None = None) -> "EasyAppointmentsClient":
        return cls(integration.value("url"), integration.value("username"), integration.value("password"),
                   allowed_networks=integration.allowed_networks("url"), session=session)

    def __repr__(self):  # never the credentials, should a client end up in a log line
        return f"<EasyAppointmentsClient {urlsplit(self.base).hostname}>"

    # --- the API ------------------------------------------------------------------------------
    def appointments(self, date_from=None, date_to=None) -> list[dict]:
        """Every appointment, or those E!A lists ``from``/``till`` these days (E!A 1.5 reads both;
        callers still filter on ``start``, which older versions do not narrow)."""
        params = {}
        if date_from:
            params["from"] = date_from.isoformat()
        if date_to:
            params["till"] = date_to.isoformat()
        return self.pages("appointments", params)

    def customers(self) -> list[dict]:
        return self.pages("customers")

    def customer(self, customer_id) -> dict:
        return self.get(f"customers/{quote(str(customer_id), safe='')}")

    def services(self) -> list[dict]:
        return self.pages("services")

    def providers(self) -> list[dict]:
        return self.pages("providers")

    def pages(self, resource: str, params: dict | None = None) -> list[dict]:
        rows, previous = [], None
        for number in range(1, max(settings.EASYAPPOINTMENTS_MAX_PAGES, 1) + 1):
            page = self.get(resource, {**(params or {}), "page": number, "length": PAGE_LENGTH})
            if not isinstance(page, list):
                raise TransientSyncError(f"{LABEL} answered GET {API_PATH}/{resource} with something that is not a list")
            items = [item for item in page if isinstance(item, dict)]
            if items and items == previous:  # the installation ignores ``page``: nothing more will come
                return rows
            rows.extend(items)
            if len(page) < PAGE_LENGTH:
                return rows
            previous = items
        log.warning("easyappointments: %s has more than %s pages; the rest is left out", resource,
                    settings.EASYAPPOINTMENTS_MAX_PAGES)
        return rows

    def get(self, resource: str, params: dict | None = None):
        path = f"{API_PATH}/{resource}"
        try:
            response = self.session.get(f"{self.base}/{resource}", params=params, allow_redirects=False, **self._auth)
        except UnsafeUrl as exc:
            raise PermanentSyncError(f"the Easy!Appointments URL is refused: {exc}") from None
        except requests.RequestException as exc:
            raise TransientSyncError(unreachable(LABEL, exc)) from None
        status = response.status_code
        if status == 401:
            what = "API token" if self._uses_token else "API user name or password"
            raise PermanentSyncError(f"{LABEL} refused the {what} (401 to GET {path}): check them on the setup page")
        if status == 403:
            raise PermanentSyncError(f"{LABEL} refused GET {path} (403): the API user must be an E!A administrator")
        if status == 429:
            wait = retry_after_seconds(response, default=30.0)
            raise TransientSyncError(f"{LABEL} is rate-limiting us (429 to GET {path}); retry in {wait:.0f} s",
                                     retry_after=wait)
        if status >= 500:
            raise TransientSyncError(f"{LABEL} answered {status} to GET {path}")
        if not 200 <= status < 300:
            raise EasyAppointmentsRefused(status, path)
        try:
            return response.json()
        except ValueError:
            raise TransientSyncError(f"{LABEL} answered GET {path} with something that is not JSON") from None
