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
    return _plan(tuple(secrets), ()).text(text)


def redact_bytes(body: bytes, secrets: Iterable[str]) -> bytes:
    """The body as stored: any of the tenant's secrets in it replaced. Senders such as Eventbrite
    echo the endpoint URL, token included, inside the payload; a stored row must not hold it."""
    return _plan(tuple(secrets), ()).body(body)


#: Header names longer than this are decided each time, not kept, and a plan keeps at most
#: ``CACHED_NAMES`` of them: a delivery is redacted whether or not it verifies, so a forger's
#: made-up names must not take much room.
CACHED_NAME_LENGTH = 64
CACHED_NAMES = 128


class _Plan:
    """One tenant's secrets and one provider's secret headers, prepared once per process
    (``_plan``): the secrets longest first and encoded, and what each header name seen so far was
    decided to be. The receiver redacts every delivery it stores with the same few of these."""

    __slots__ = ("secrets", "secret_bytes", "provider_headers", "names")

    def __init__(self, secrets: tuple[str, ...], provider_headers: tuple[str, ...]):
        self.secrets = _usable(secrets)
        self.secret_bytes = [secret.encode() for secret in self.secrets]
        self.provider_headers = frozenset(h.lower() for h in provider_headers)
        self.names: dict[str, bool] = {}

    def is_secret(self, name: str) -> bool:
        decided = self.names.get(name)
        if decided is None:
            lower = name.lower()
            decided = lower in GENERIC_SECRET_HEADERS or lower in self.provider_headers or bool(SECRET_NAME.search(name))
            if len(name) <= CACHED_NAME_LENGTH and len(self.names) < CACHED_NAMES:
                self.names[name] = decided  # one key more or less under a race: still bounded
        return decided

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        return {name: REDACTED if self.is_secret(name) else self.text(str(value)) for name, value in headers.items()}

    def text(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text

    def body(self, body: bytes) -> bytes:
        for secret in self.secret_bytes:
            body = body.replace(secret, REDACTED_BYTES)
        return body


def redaction(secrets: Iterable[str], provider_headers: Iterable[str] = ()) -> _Plan:
    """What ``redact_headers``, ``redact_text`` and ``redact_bytes`` do, prepared for these secrets
    and headers: ``.headers(mapping)``, ``.text(str)``, ``.body(bytes)``."""
    return _plan(tuple(secrets), tuple(provider_headers))


@lru_cache(maxsize=256)
def _plan(secrets: tuple[str, ...], provider_headers: tuple[str, ...]) -> _Plan:
    """Plans hold the secrets they were made for, in this process's memory only (as the fast
    path's cache holds its integrations): a rotated-away secret stays until newer plans push its
    plan out. Nothing here is ever written, logged or answered."""
    return _Plan(secrets, provider_headers)


def is_secret_header(name: str, provider_headers: Iterable[str] = ()) -> bool:
    return _plan((), tuple(provider_headers)).is_secret(name)


def redact_headers(headers: Mapping[str, str], secrets: Iterable[str] = (),
                   provider_headers: Iterable[str] = ()) -> dict[str, str]:
    """``headers`` with every secret-bearing one replaced whole and every secret value replaced
    inside the others. ``provider_headers``: the provider's ``secret_headers``."""
    return _plan(tuple(secrets), tuple(provider_headers)).headers(headers)


def known_secrets(integration) -> list[str]:
    """Every webhook secret of the integration we still hold, in grace or not, and the source's
    platform-wide fallback: what a stored row must not show."""
    if integration is None:
        return []
    from django.conf import settings

    found = [integration.webhook_secret, integration.previous_webhook_secret,
             settings.WEBHOOK_FALLBACK_SECRETS.get(integration.provider, "")]
    return [s for s in found if s]
