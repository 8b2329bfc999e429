"""Zoom's API with the tenant's own Server-to-Server OAuth app: tokens, pages, errors.

* **Token.** ``POST ZOOM_OAUTH_URL`` with the form ``grant_type=account_credentials&account_id=…``
  and HTTP Basic ``client_id:client_secret`` (in the body, as OAuth token requests are: Zoom's
  forum reports 400s for the older query-string form). Zoom issues no refresh token and lets
  several tokens be valid at once, so the token is kept in Django's cache (Redis in production:
  every worker shares it) until ``TOKEN_MARGIN_SECONDS`` before its ``expires_in``, encrypted
  with the credential keys. The cache key is the integration's id and a keyed hash of the three
  values (never the secret): new credentials find no old token.
* **401.** A token Zoom no longer accepts (revoked, expired early) is dropped from the cache and
  fetched anew once; a second 401 is permanent.
* **Errors.** A refused token request (bad client id or secret, wrong account, app not activated)
  and a missing scope are permanent (``PermanentSyncError``, with Zoom's own reason in the
  sentence); 429 is transient with Zoom's wait (``Retry-After`` in seconds, an ISO 8601 time or an
  HTTP date; a daily limit without one waits until midnight UTC); 5xx are retried by the session,
  then transient. Other refusals are ``ZoomRefused`` for the caller to judge (a meeting without
  registration answers 400 to its registrants).
* **Secrets.** The token and the client secret never reach a log line, an error or a stored row:
  requests' exceptions quote URLs and are reduced to their class name, and Zoom's text is scrubbed
  of both before it is quoted.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Iterator
from urllib.parse import quote, urlsplit

import requests
from django.conf import settings
from django.core.cache import cache

from integrations.crypto import DecryptionError, decrypt, encrypt
from integrations.http import MAX_RETRY_AFTER, ApiError, RateLimited, make_session, parse_retry_after
from integrations.sync import PermanentSyncError, TransientSyncError
from engarde.errors import Explained, unreachable

log = logging.getLogger(__name__)

#: A cached token is dropped this long before Zoom says it expires (a sync's last call must not
#: carry a token that dies on the way).
TOKEN_MARGIN_SECONDS = 60
#: Zoom's largest page of registrants, meetings and webinars.
PAGE_SIZE = 300
#: A 429 without a usable ``Retry-After``: Zoom's per-second limits clear quickly.
DEFAULT_RATE_LIMIT_WAIT = 60.0
#: Zoom's error code for a token without the scope an endpoint needs.
MISSING_SCOPE_CODE = 4711
#: Zoom's error code for an unknown user (``users/<id>`` with a wrong id or e-mail).
UNKNOWN_USER_CODE = 1001
CREDENTIAL_NAMES = ("account_id", "client_id", "client_secret")


class TokenRefused(ApiError):
    """Zoom refused the app's credentials: retrying with the same ones cannot help."""

    def __init__(self, status: int, reason: str):
        super().__init__(f"Zoom answered {status} to the token request: {reason}")
        self.status, self.reason = status, reason


class ZoomRefused(Explained):
    """A 4xx from the API that is not about the token: the caller decides what it means."""

    def __init__(self, status: int, code, message: str, path: str):
        super().__init__(f"Zoom answered {status} to {path}" + (f" (code {code})" if code else "") + f": {message}")
        self.status, self.code, self.message, self.path = status, code, message, path


# --- what Zoom says, made safe to quote ----------------------------------------------------------


def _answer(response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def scrub(text, *secrets: str, limit: int = 200) -> str:
    """Zoom's own words, fit for a stored sentence: printable, short, with no secret in them."""
    text = re.sub(r"[\x00-\x1f\x7f]+", " ", str(text or "")).strip()
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text[:limit].rstrip(" .") or "no reason given"


def reason_of(response, *secrets: str) -> str:
    """The token endpoint says why in ``reason`` (Zoom) or ``error_description`` (OAuth)."""
    body = _answer(response)
    return scrub(body.get("reason") or body.get("error_description") or body.get("message") or body.get("error")
                 or response.reason, *secrets)


def retry_after(headers, now: datetime | None = None) -> float:
    """Seconds to wait after a 429. Zoom's ``Retry-After`` may be seconds, an ISO 8601 time
    (``2020-05-31T00:00:00Z``, for daily limits) or an HTTP date (``integrations.http`` reads them
    all); without one a daily limit (``X-RateLimit-Type: Daily-limit``) waits until midnight UTC,
    anything else a minute."""
    now = now or datetime.now(dt_timezone.utc)
    seconds = parse_retry_after(headers.get("Retry-After"), now)
    if seconds is not None:
        return seconds
    if (headers.get("X-RateLimit-Type") or "").lower().startswith("daily"):
        midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), dt_timezone.utc)
        return min(max((midnight - now).total_seconds(), 1.0), MAX_RETRY_AFTER)
    return DEFAULT_RATE_LIMIT_WAIT


# --- the token ------------------------------------------------------------------------------------


def app_credentials(integration) -> tuple[str, str, str]:
    """(account id, client id, client secret) of the tenant's Server-to-Server OAuth app."""
    return tuple(str(integration.value(name) or "").strip() for name in CREDENTIAL_NAMES)


def cache_key(integration) -> str:
    """Per integration and per credential version; a keyed hash, so the key (which Redis lists in
    the clear) tells nothing about the secret, and new credentials never find an old token."""
    version = hmac.new(settings.SECRET_KEY.encode(), "\0".join(app_credentials(integration)).encode(),
                       hashlib.sha256).hexdigest()[:32]
    return f"zoom:s2s-token:{integration.pk}:{version}"


def request_token(account_id: str, client_id: str, client_secret: str,
                  session: requests.Session | None = None) -> dict:
    """One token request: Zoom's answer (``access_token``, ``expires_in``, ``scope``).

    Raises ``TokenRefused`` (4xx: the credentials or the app), ``RateLimited`` (429), ``ApiError``
    (5xx after the session's retries, or no token in the answer) or ``requests.RequestException``."""
    session = session or make_session()
    response = session.post(settings.ZOOM_OAUTH_URL, data={"grant_type": "account_credentials", "account_id": account_id},
                            auth=(client_id, client_secret), allow_redirects=False)
    if response.status_code == 429:
        raise RateLimited(retry_after(response.headers))
    if 400 <= response.status_code < 500:
        raise TokenRefused(response.status_code, reason_of(response, client_secret, client_id))
    if response.status_code != 200:
        raise ApiError(f"Zoom answered {response.status_code} to the token request")
    answer = _answer(response)
    if not isinstance(answer.get("access_token"), str) or not answer["access_token"]:
        raise ApiError("Zoom answered the token request without a token")
    return answer


class Tokens:
    """The integration's access token: from the cache while it is good, else from Zoom."""

    def __init__(self, integration, session: requests.Session | None = None):
        self.integration = integration
        self.session = session or make_session()
        self.key = cache_key(integration)
        self.fetched = 0  # token requests this object made (the sync's summary, the tests)

    def get(self) -> str:
        cached = cache.get(self.key)
        if cached:
            try:
                return decrypt(cached)
            except DecryptionError:  # keys rotated since: as good as no token
                cache.delete(self.key)
        return self.renew()

    def drop(self) -> None:
        cache.delete(self.key)

    def renew(self) -> str:
        """A new token from Zoom, cached for every worker until shortly before it expires."""
        self.drop()
        account_id, client_id, client_secret = app_credentials(self.integration)
        if not (account_id and client_id and client_secret):
            raise ValueError("enter the account ID, client ID and client secret first")
        answer = request_token(account_id, client_id, client_secret, self.session)
        self.fetched += 1
        self.scope = str(answer.get("scope") or "")
        token = answer["access_token"]
        try:
            lifetime = int(answer.get("expires_in"))
        except (TypeError, ValueError):
            lifetime = 0  # unknown: used for this run only
        if lifetime - TOKEN_MARGIN_SECONDS > 0:
            cache.set(self.key, encrypt(token), timeout=lifetime - TOKEN_MARGIN_SECONDS)
        return token


# --- the API ----------------------------------------------------------------------------------------


def tenant_label(integration) -> str:
    tenant = getattr(integration, "tenant", None)
    return getattr(tenant, "slug", "") or str(integration.tenant_id)


class ZoomClient:
    """GETs on ``ZOOM_API_BASE`` with the tenant's token, raising sync errors (see the module)."""

    def __init__(self, integration, session: requests.Session | None = None):
        self.integration = integration
        self.session = session or make_session()
        self.tokens = Tokens(integration, self.session)
        self.base = settings.ZOOM_API_BASE.rstrip("/")
        self.truncated: list[str] = []  # lists cut at ZOOM_MAX_PAGES
        self._secret = app_credentials(integration)[2]
        self._token = ""

    def user_path(self, user: str) -> str:
        return quote(user or "me", safe="@.")

    def get(self, path: str, params: dict | None = None) -> dict:
        url = f"{self.base}/{path}"
        response = self._send(url, params, self._current_token())
        if response.status_code == 401:
            # Revoked or expired before its time: a new token, once.
            self.tokens.drop()
            self._token = ""
            response = self._send(url, params, self._current_token(renew=True))
            if response.status_code == 401:
                body = _answer(response)
                raise PermanentSyncError(
                    f"Zoom refused a new access token for {urlsplit(url).path} (401: "
                    f"{self._scrub(body.get('message'))}). Check that the app is activated, then use "
                    "“Check connection” to start the sync again."
                )
        return self._judge(response, urlsplit(url).path)

    def pages(self, path: str, params: dict, key: str) -> Iterator[list[dict]]:
        """Every page of ``key`` (``registrants``, ``meetings``, ``webinars``), ``PAGE_SIZE`` at a
        time, following ``next_page_token``; at most ``ZOOM_MAX_PAGES`` pages (a token seen
        twice ends the list too)."""
        seen, next_token = set(), ""
        for _ in range(max(settings.ZOOM_MAX_PAGES, 1)):
            query = {**params, "page_size": PAGE_SIZE, **({"next_page_token": next_token} if next_token else {})}
            answer = self.get(path, query)
            items = answer.get(key)
            yield [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []
            next_token = answer.get("next_page_token") or ""
            if not isinstance(next_token, str) or not next_token or next_token in seen:
                return
            seen.add(next_token)
        self.truncated.append(path)
        log.warning("zoom sync for tenant %s: %s has more than %s pages; the rest waits for the next run",
                    tenant_label(self.integration), path, settings.ZOOM_MAX_PAGES)

    # --- internals ----------------------------------------------------------------------------
    def _current_token(self, renew: bool = False) -> str:
        if self._token and not renew:
            return self._token
        try:
            self._token = self.tokens.renew() if renew else self.tokens.get()
        except TokenRefused as exc:
            log.warning("zoom token request for tenant %s refused (%s): %s", tenant_label(self.integration),
                        exc.status, exc.reason)
            raise PermanentSyncError(
                f"Zoom refused the app's credentials ({exc.status}): {exc.reason}. Check the account ID, "
                "client ID and client secret, and that the Server-to-Server OAuth app is activated (then use "
                "“Check connection”)."
            ) from None
        except RateLimited as exc:
            raise TransientSyncError(f"Zoom is rate-limiting token requests; retrying in {exc.retry_after:.0f} s",
                                     retry_after=exc.retry_after) from None
        except ApiError as exc:
            log.warning("zoom token request for tenant %s failed: %s", tenant_label(self.integration), exc)
            raise TransientSyncError(str(exc)) from None
        except requests.RequestException as exc:
            raise TransientSyncError(unreachable("Zoom", exc, " for a token")) from None
        except ValueError as exc:
            raise PermanentSyncError(f"Zoom sync: {exc}.") from None
        return self._token

    def _send(self, url: str, params, token: str):
        try:
            return self.session.get(url, params=params, headers={"Authorization": f"Bearer {token}"},
                                    allow_redirects=False)
        except requests.RequestException as exc:
            raise TransientSyncError(unreachable("Zoom", exc)) from None

    def _scrub(self, text) -> str:
        return scrub(text, self._token, self._secret)

    def _judge(self, response, path: str) -> dict:
        status = response.status_code
        if status == 429:
            wait = retry_after(response.headers)
            raise TransientSyncError(f"Zoom rate-limited {path}; resuming in {wait:.0f} s", retry_after=wait)
        if status >= 500:
            raise TransientSyncError(f"Zoom answered {status} to {path}")
        body = _answer(response)
        if status >= 400:
            code, message = body.get("code"), self._scrub(body.get("message"))
            if code == MISSING_SCOPE_CODE or "scope" in message.lower():
                raise PermanentSyncError(
                    f"The Zoom app lacks a scope for {path}: {message}. Add the scopes the setup page lists, "
                    "then use “Check connection” to start the sync again."
                )
            raise ZoomRefused(status, code, message, path)
        if status != 200 or not body:
            raise TransientSyncError(f"Zoom answered {path} with {status} and no JSON object")
        return body
