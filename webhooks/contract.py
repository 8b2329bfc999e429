"""What the inbox needs of a platform: the types a delivery travels in and the calls the
receiving pipeline makes on a source (``Source``). Defined here, below integrations, so that
``webhooks`` depends on no provider; ``integrations.providers.base.Provider`` implements ``Source``
and re-exports these names for the provider packages.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol

#: The event type of an operator's test delivery: verified and stored like any other, never handled.
TEST_EVENT_TYPE = "engarde.test"


class PermanentError(Exception):
    """A handler failure that no retry can fix (a refused ``api_url``, a value we can never
    store): processing marks the row ``dead`` at once, with this message as the reason. Anything
    else a handler raises is taken as transient and retried with backoff."""


class Malformed(PermanentError):
    """The delivery does not fit what its handler reads: the row is ``malformed`` at once. The
    message is one sentence for the tenant that names the field (``the Stripe event has no
    `data.object```); ``Provider.validate`` raises it from a schema's errors, and a handler may
    raise it for a rule across fields ("the lead has no e-mail")."""


class VerificationFailed(Exception):
    """A delivery did not prove it came from the tenant's platform account.

    The message is the reason stored on the ``rejected`` row and shown to operators: it must
    never contain a secret or a signature value."""


@dataclass(frozen=True)
class WebhookRequest:
    """What a provider sees of a delivery: the raw bytes, never a re-serialised body."""

    body: bytes
    headers: Mapping[str, str]  # case-insensitive (Django's HttpHeaders)
    query: Mapping[str, str]
    remote_addr: str | None = None


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class Connection(Protocol):
    """A tenant's connection to a source (``TenantIntegration``), as the inbox sees it."""

    tenant_id: Any


class Source(Protocol):
    """What the receiving pipeline (``webhooks.ingest``) calls on a platform."""

    name: str
    ignored_events: frozenset[str]
    secret_headers: Any

    def verification_secrets(self, integration: Connection) -> list[str]: ...
    def verify(self, request: WebhookRequest, integration: Connection) -> None: ...
    def parse(self, body: bytes) -> Any: ...
    def handshake(self, request: WebhookRequest, payload: Any, integration: Connection) -> dict | None: ...
    def event_type(self, payload: Any, request: WebhookRequest) -> str: ...
    def event_id(self, payload: Any, request: WebhookRequest) -> str: ...
    def handler_for(self, event_type: str) -> Callable | None: ...
