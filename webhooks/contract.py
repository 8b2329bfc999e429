"""What the inbox needs of a platform: the types a delivery travels in, the calls the receiving
pipeline and processing make on a source (``Source``), what a handler gets (``Event``), and how
processing finds and marks a tenant's connection to a source (``Connections``). Defined here, below
integrations, so that ``webhooks`` depends on no provider; ``integrations.providers.base.Provider``
implements ``Source`` and re-exports these names for the provider packages, and ``integrations``
registers its providers and its connections in ``webhooks.sources`` at start-up.
"""

from __future__ import annotations

import hashlib
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

if TYPE_CHECKING:
    from webhooks.models import WebhookLog

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

    pk: Any
    tenant_id: Any
    tenant: Any


@dataclass
class Event:
    """What a handler gets: the parsed payload of one stored delivery, run inside its tenant's context.

    ``data`` is the payload validated by the event type's schema (``Provider.schemas``), ``None``
    when it has none; ``fetched`` is what the event type's fetcher (``Provider.fetchers``) got from
    the platform before the row was claimed, ``None`` when it has none. ``integration`` is the
    tenant's connection (a ``TenantIntegration``)."""

    payload: Any
    log: "WebhookLog"
    integration: Any
    extra: dict = field(default_factory=dict)
    data: Any = None
    fetched: Any = None

    @property
    def tenant(self):
        return self.integration.tenant


Handler = Callable[[Event], None]
#: Calls the platform for what the handler needs; runs outside any transaction, returns the answer.
Fetcher = Callable[[Event], Any]


class Source(Protocol):
    """What the receiving pipeline (``webhooks.ingest``) and processing (``webhooks.processing``)
    call on a platform."""

    name: str
    label: str
    ignored_events: frozenset[str]
    secret_headers: Any
    #: event type -> fetcher, run before the row is claimed (see ``webhooks.processing``)
    fetchers: Mapping[str, Fetcher]

    def verification_secrets(self, integration: Connection) -> list[str]: ...
    def verify(self, request: WebhookRequest, integration: Connection) -> None: ...
    def parse(self, body: bytes) -> Any: ...
    def handshake(self, request: WebhookRequest, payload: Any, integration: Connection) -> dict | None: ...
    def event_type(self, payload: Any, request: WebhookRequest) -> str: ...
    def event_id(self, payload: Any, request: WebhookRequest) -> str: ...
    def handler_for(self, event_type: str) -> Handler | None: ...
    def validate(self, event_type: str, payload: Any) -> Any: ...
    def batch_scope(self, events: list[Event]) -> AbstractContextManager[None]:
        """Entered around the handlers of ``events`` of this source inside their write transaction:
        a drain batch's (``processing.process_batch``) or one event's (``processing.process``).
        Where a provider takes the locks its writes need and, in a batch, looks up together what
        its handlers would look up one by one (Stripe: its payments). Nothing by default."""


class Connections(Protocol):
    """How processing reads and marks a tenant's connection to a source (``TenantIntegration``),
    always inside the tenant's context. ``integrations.connections`` implements it."""

    def get(self, source: str, *, credentials: bool) -> Connection:
        """The active tenant's connection to ``source`` with its tenant loaded; its encrypted
        credentials only when ``credentials`` (a fetcher needs them), never its webhook secrets.
        Raises when the tenant has none (a transient failure: the tenant may reconnect)."""

    def event_processed(self, connection: Connection, at: datetime) -> None:
        """A delivery was processed at ``at`` (the "last event" the dashboard shows); operators
        told of a problem hear of the recovery."""

    def processing_failed(self, source: str, message: str, at: datetime, dead: bool = False) -> None:
        """Processing a delivery of ``source`` failed with ``message`` (the "last error"); ``dead``:
        the delivery will not be retried. Operators hear of a change of state."""

    def secrets(self, source: str) -> list[str]:
        """Every secret value held for the tenant's ``source`` (webhook secrets, credentials):
        what a stored failure reason or traceback must not show. Empty when there is none."""
