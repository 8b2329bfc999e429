"""What a stored delivery may keep of its request: secrets out, by name and by value.

By name: the headers the row's provider declares as carrying a signature or a token
(``Provider.secret_headers``, passed in by the caller: this layer knows no provider), the generic
credential headers, and any name that says it holds a secret (so another platform's signature
header sent to the wrong URL is caught too). By value: wherever one of the tenant's webhook secrets appears (a header whose name the
sender chose, such as Easy!Appointments' custom header, or a body that echoes the URL), it is
replaced. Pages and the API redact again on display with the secrets in force then, so a row
stored before a change of secret or by an older version shows no secret either.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterable, Mapping

REDACTED = "[redacted]"
REDACTED_BYTES = REDACTED.encode()

#: Credential headers that are nobody's in particular.
GENERIC_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key"})
#: A header whose name says it carries a credential, whatever the sender called it.
SECRET_NAME = re.compile(r"secret|token|signature|passw|auth|api[-_]?key|session", re.IGNORECASE)
#: Shorter values are not redacted by value: they would match ordinary text.
MIN_SECRET_LENGTH = 8


def _usable(secrets: Iterable[str]) -> list[str]:
    # Longest first, so a secret that contains another is replaced whole.
    return sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)


def redact_text(text: str, secrets: Iterable[str]) -> str:
    return _replaced(text, _usable(secrets))


def _replaced(text: str, usable: list[str]) -> str:
    for secret in usable:
        text = text.replace(secret, REDACTED)
    return text


def redact_bytes(body: bytes, secrets: Iterable[str]) -> bytes:
    """The body as stored: any of the tenant's secrets in it replaced. Senders such as Eventbrite
    echo the endpoint URL, token included, inside the payload; a stored row must not hold it."""
    for secret in _usable(secrets):
        body = body.replace(secret.encode(), REDACTED_BYTES)
    return body


#: Header names longer than this are decided each time, not kept: the cache is filled before
#: verification, so a forger's made-up names must not take much room or push the real ones out.
CACHED_NAME_LENGTH = 64


def is_secret_header(name: str, provider_headers: Iterable[str] = ()) -> bool:
    provider_headers = tuple(provider_headers)
    if len(name) > CACHED_NAME_LENGTH:
        return _decide_secret_header(name, provider_headers)
    return _cached_secret_header(name, provider_headers)


def _decide_secret_header(name: str, provider_headers: tuple[str, ...]) -> bool:
    lower = name.lower()
    return (lower in GENERIC_SECRET_HEADERS or lower in {h.lower() for h in provider_headers}
            or bool(SECRET_NAME.search(name)))


#: Kept per process: a receiver sees the same few header names again and again.
_cached_secret_header = lru_cache(maxsize=1024)(_decide_secret_header)


def redact_headers(headers: Mapping[str, str], secrets: Iterable[str] = (),
                   provider_headers: Iterable[str] = ()) -> dict[str, str]:
    """``headers`` with every secret-bearing one replaced whole and every secret value replaced
    inside the others. ``provider_headers``: the provider's ``secret_headers``."""
    secrets, provider_headers = _usable(secrets), tuple(provider_headers)
    return {
        name: REDACTED if is_secret_header(name, provider_headers) else _replaced(str(value), secrets)
        for name, value in headers.items()
    }


def known_secrets(integration) -> list[str]:
    """Every webhook secret of the integration we still hold, in grace or not, and the source's
    platform-wide fallback: what a stored row must not show."""
    if integration is None:
        return []
    from django.conf import settings

    found = [integration.webhook_secret, integration.previous_webhook_secret,
             settings.WEBHOOK_FALLBACK_SECRETS.get(integration.provider, "")]
    return [s for s in found if s]
