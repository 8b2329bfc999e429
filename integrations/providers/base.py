"""What every provider states about itself. The admin, the setup pages, the commands and the API
all build from these declarations; none of them names a provider.

A provider package (``integrations/providers/<name>/``) holds ``provider.py`` with one ``Provider``
subclass, and is registered with one line in ``integrations/registry.py``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable, Mapping

from django.conf import settings

# The delivery contract is the inbox's (webhooks sits below integrations); providers use it from here.
from webhooks.contract import (  # noqa: F401
    TEST_EVENT_TYPE,
    Event,
    Fetcher,
    Handler,
    Malformed,
    PermanentError,
    VerificationFailed,
    WebhookRequest,
    body_hash,
)

if TYPE_CHECKING:
    from integrations.models import TenantIntegration
    from integrations.sync import SyncResult


#: Deeper than any platform nests its events; deeper input is malformed, not a RecursionError later.
MAX_JSON_DEPTH = 64


def load_json(body: bytes) -> Any:
    """``json.loads`` that refuses, as ``ValueError``, what must not get further: nesting deeper
    than ``MAX_JSON_DEPTH`` (the parser's own limit is a ``RecursionError``, which is no
    ``ValueError`` and escaped as a 500; a payload just under it fails later, in whatever walks it)."""
    try:
        payload = json.loads(body)
    except RecursionError:
        raise ValueError("the JSON is nested too deeply") from None
    # Each level opens with a bracket, so a body with few of them cannot nest deeply (brackets in
    # strings only raise the count): the walk is for the rare body with many (a long array).
    if _opening_brackets(body) > MAX_JSON_DEPTH and json_depth(payload) > MAX_JSON_DEPTH:
        raise ValueError(f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels")
    return payload


def _opening_brackets(body: bytes | str) -> int:
    if isinstance(body, str):
        return body.count("{") + body.count("[")
    return body.count(b"{") + body.count(b"[")


def json_depth(value: Any) -> int:
    """How deep objects and arrays nest in ``value``, measured without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in item if isinstance(child, (dict, list)))
    return deepest


def hmac_sha256_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def constant_time_in(candidate: str, expected: list[str]) -> bool:
    """Whether ``candidate`` equals any of ``expected``, comparing every one in constant time."""
    candidate_bytes = candidate.encode()
    found = False
    for value in expected:
        found |= hmac.compare_digest(candidate_bytes, value.encode())
    return found


#: No credential any platform issues is longer; a 200,000-character paste is a mistake.
MAX_CREDENTIAL_LENGTH = 1000


def clean_credential(value, *, label: str, max_length: int = MAX_CREDENTIAL_LENGTH,
                     choices: tuple = (), validators: tuple = ()) -> str:
    """``value`` stripped and checked, or ``ValidationError`` with a sentence naming ``label``.
    Empty stays empty (whether it is required is the integration's business)."""
    from django.core.exceptions import ValidationError

    value = str(value or "").strip()
    if not value:
        return ""
    if len(value) > max_length:
        raise ValidationError(f"{label} is at most {max_length} characters; this is {len(value)}.")
    # A pasted line break would end up in an HTTP header, where requests refuses it and quotes it
    # in its error: refuse it here instead.
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValidationError(f"Remove the line breaks or control characters from {label}.")
    if choices and value not in {key for key, _ in choices}:
        allowed = "; ".join(f"“{key}” for {text.lower()}" if key else f"empty for {text.lower()}" for key, text in choices)
        raise ValidationError(f"{label} is one of: {allowed}.")
    for validator in validators:
        validator(value)
    return value


@dataclass(frozen=True)
class CredentialField:
    """One thing a tenant enters to connect a platform.

    ``secret`` fields are stored encrypted in ``TenantIntegration.credentials`` and never shown
    again (a masked tail at most); the others go to the plain ``settings`` JSON. ``choices``
    (value, label) makes it a choice; ``validators`` (see ``integrations.providers.validators``)
    check it by what the platform issues. ``clean`` applies them for every way in: the setup
    page, the admin and ``connect_integration``.
    """

    name: str
    label: str
    secret: bool = True
    required: bool = True
    help_text: str = ""
    max_length: int = MAX_CREDENTIAL_LENGTH
    choices: tuple[tuple[str, str], ...] = ()
    validators: tuple[Callable[[str], None], ...] = ()
    #: what a value looks like (the input's placeholder; tests build valid values from it)
    example: str = ""

    def clean(self, value) -> str:
        return clean_credential(value, label=self.label, max_length=self.max_length, choices=self.choices,
                                validators=self.validators)


class WebhookAuth:
    """How a platform authenticates its deliveries (the kind of ``webhook_secret`` it needs)."""

    NONE = "none"  # no webhooks
    SIGNATURE = "signature"  # the platform signs with a secret it gives the tenant: entered by hand
    TOKEN = "token"  # unsigned platform: we generate a token the tenant puts in the URL or a header
    PLATFORM_KEY = "platform-key"  # signed with the platform's published key (settings), plus a token


class Provider:
    """A platform. Class attributes state what it is; the webhook hooks below state how its
    deliveries are checked, named and handled. The receiver view owns the HTTP, the storing, the
    de-duplication and the status codes (see ``webhooks/views.py``)."""

    name: str = ""
    label: str = ""
    credential_fields: tuple[CredentialField, ...] = ()
    webhook_auth: str = WebhookAuth.NONE
    webhook_secret_label: str = "Webhook secret"
    #: checks of a webhook secret the tenant types in (Stripe's start ``whsec_``)
    webhook_secret_validators: tuple[Callable[[str], None], ...] = ()
    #: how the webhook secret starts, when the platform gives it a fixed start (the placeholder)
    webhook_secret_example: str = ""
    docs_url: str = ""

    @property
    def receives_webhooks(self) -> bool:
        return self.webhook_auth != WebhookAuth.NONE

    @property
    def generates_webhook_secret(self) -> bool:
        """Whether we make the webhook secret (a token) rather than the tenant copying one in."""
        return self.webhook_auth in (WebhookAuth.TOKEN, WebhookAuth.PLATFORM_KEY)

    # --- webhooks --------------------------------------------------------------------------
    #: event type -> handler; a module-level dict in the provider's ``handlers.py``.
    handlers: Mapping[str, Handler] = {}
    #: event type -> pydantic model of what its handler reads (``integrations.providers.schema``);
    #: a module-level dict in the provider's ``schemas.py``. Checked before the handler runs.
    schemas: Mapping[str, type] = {}
    #: event type -> fetcher, for handlers that need the platform's API (Eventbrite's ``api_url``).
    #: Processing runs the fetcher *before* it claims the row, outside any transaction and row
    #: lock, and hands its answer to the handler as ``event.fetched``. Only for these event types
    #: are the tenant's credentials loaded (and so decrypted) at all.
    fetchers: Mapping[str, Fetcher] = {}
    #: event types we know and deliberately do nothing with (stored as ``ignored``).
    ignored_events: frozenset[str] = frozenset()
    #: headers that carry the platform's signature: never stored, shown or logged.
    signature_headers: tuple[str, ...] = ()
    #: event type -> what handling it does, in a tenant's words (setup page, README). Every
    #: handled type has a line.
    event_docs: Mapping[str, str] = {}
    #: header or query parameter a token platform sends its token in.
    token_header: str = "X-Webhook-Token"
    token_query_param: str = "token"
    #: where the token may come. In the URL only where the platform cannot send a header
    #: (Eventbrite; Easy!Appointments before 1.5.1): a URL lands in access and proxy logs.
    token_in_header: bool = True
    token_in_query: bool = False

    @property
    def secret_headers(self) -> tuple[str, ...]:
        """Every header of ours that carries a secret: the signature, and the token's header."""
        token = (self.token_header,) if self.generates_webhook_secret and self.token_in_header else ()
        return self.signature_headers + token

    @property
    def token_location(self) -> str:
        """Where the setup page tells the tenant to put the token."""
        if self.token_in_header and self.token_in_query:
            return f"the {self.token_header} header, or ?{self.token_query_param}= in the URL where the platform sends no header"
        if self.token_in_header:
            return f"the {self.token_header} header only (a token in the URL is refused)"
        return f"?{self.token_query_param}= in the URL only (the platform cannot send a header)"

    @property
    def supported_events(self) -> list[str]:
        return sorted(self.handlers)

    @property
    def handled_events(self) -> list[tuple[str, str]]:
        """(event type, what it does) for the setup page, in a stable order."""
        return [(name, self.event_docs.get(name, "")) for name in self.supported_events]

    @property
    def ignored_list(self) -> list[str]:
        return sorted(self.ignored_events)

    @property
    def fallback_secret_env(self) -> str:
        """The environment variable of this platform's platform-wide fallback secret, or "" when
        it takes none. Every platform that sends webhooks takes one (off unless set)."""
        return f"{self.name.upper()}_WEBHOOK_SECRET" if self.receives_webhooks else ""

    def verification_secrets(self, integration: "TenantIntegration") -> list[str]:
        """The tenant's current (and still-in-grace previous) secret; the platform-wide fallback
        ``<NAME>_WEBHOOK_SECRET`` only when the tenant has none of its own (off unless set)."""
        secrets = integration.valid_webhook_secrets()
        if secrets:
            return secrets
        if not self.fallback_secret_env:
            return []
        fallback = settings.WEBHOOK_FALLBACK_SECRETS.get(self.name, "")
        return [fallback] if fallback else []

    def verify(self, request: WebhookRequest, integration: "TenantIntegration") -> None:
        """Raise ``VerificationFailed`` unless the delivery is authentic. Default: the tenant's
        token where ``token_in_header``/``token_in_query`` allow it, compared in constant time."""
        self.verify_token(request, integration)

    def verify_token(self, request: WebhookRequest, integration: "TenantIntegration") -> None:
        secrets = self.verification_secrets(integration)
        if not secrets:
            raise VerificationFailed("no webhook token is configured for this tenant")
        token = request.headers.get(self.token_header, "") if self.token_in_header else ""
        if not token and self.token_in_query:
            token = request.query.get(self.token_query_param, "")
        if not token:
            if request.query.get(self.token_query_param):
                raise VerificationFailed(f"a token in the URL is refused: send it in the {self.token_header} header")
            raise VerificationFailed("no token in the request")
        if not constant_time_in(token, secrets):
            raise VerificationFailed("token does not match")

    def handshake(self, request: WebhookRequest, payload: Any, integration: "TenantIntegration") -> dict | None:
        """A platform's endpoint check (Zoom's URL validation): the JSON to answer, or None."""
        return None

    def parse(self, body: bytes) -> Any:
        """The payload; ``ValueError`` when the body is not what the platform sends."""
        payload = load_json(body)
        if not isinstance(payload, dict):
            raise ValueError("the body is JSON but not an object")
        return payload

    def event_type(self, payload: Any, request: WebhookRequest) -> str:
        return str(payload.get("type") or payload.get("event") or "")

    def event_id(self, payload: Any, request: WebhookRequest) -> str:
        """The sender's own id, or a documented derived key. Default: the body's SHA-256, so the
        very same bytes delivered twice are one event."""
        return body_hash(request.body)

    def handler_for(self, event_type: str) -> Handler | None:
        return self.handlers.get(event_type)

    def test_event(self, integration: "TenantIntegration", event_id: str, sent_at: datetime) -> dict:
        """The body of an operator's "send a test event" (``integrations/testevents.py``), shaped as
        this platform sends its deliveries, with ``TEST_EVENT_TYPE`` where ``event_type`` reads the
        type: it passes verification and parsing, is stored as ``ignored`` and creates nothing.
        Default: the type under ``type`` and ``event`` (what most platforms use), the id under ``id``."""
        return {"id": event_id, "type": TEST_EVENT_TYPE, "event": TEST_EVENT_TYPE}

    def batch_scope(self, events: list) -> AbstractContextManager[None]:
        """Around the handlers of a drain batch's or one event's ``events`` of this provider
        (``webhooks.contract.Source``): nothing by default; Stripe holds its payments' ids and, in
        a batch, looks them up together."""
        return nullcontext()

    def validate(self, event_type: str, payload: Any) -> Any:
        """The payload as the event type's schema model (``None`` without a schema), or
        ``Malformed`` with a sentence naming the first field that does not fit."""
        from pydantic import ValidationError

        from integrations.providers.schema import describe

        schema = self.schemas.get(event_type)
        if schema is None:
            return None
        try:
            return schema.model_validate(payload)
        except ValidationError as exc:
            raise Malformed(describe(exc, f"the {self.label} {event_type} event")) from exc

    def test_delivery_auth(self, body: bytes, secret: str) -> tuple[dict, dict]:
        """Headers and query parameters that authenticate ``body`` with ``secret`` as the platform
        itself would (for the operators' "send a test event"). Default: the token."""
        if self.token_in_header:
            return {self.token_header: secret}, {}
        return {}, {self.token_query_param: secret}

    def contacts_created(self, tenant_id: str, contact_ids: list[int]) -> None:
        """Contacts of this tenant were just created (their transaction has committed): one call for
        a whole drain batch or sync page (``contacts.signals.announced_together``). Queue work here,
        do not do it: this runs in the request or task that made the contacts. Default: nothing."""

    # --- pull syncs (integrations/sync.py) ---------------------------------------------------
    #: how often the beat starts a sync of one integration (a provider that syncs sets it).
    sync_interval: timedelta = timedelta(hours=6)
    #: optional credential fields the sync cannot run without (Zoom's OAuth app, which a
    #: webhook-only Zoom leaves empty). The beat starts no sync while a plain one among them is
    #: empty (it filters the settings JSON; secrets cannot be filtered on), ``sync_integration``
    #: refuses naming them, and the provider's ``sync`` raises ``PermanentSyncError`` for the rest.
    sync_fields: tuple[str, ...] = ()

    def sync_missing(self, integration: "TenantIntegration") -> list[str]:
        """Labels of the ``sync_fields`` this integration lacks (empty: the sync can run)."""
        return [f.label for f in self.credential_fields if f.name in self.sync_fields and not integration.value(f.name)]

    @property
    def syncs(self) -> bool:
        """Whether this provider pulls data on a schedule (it overrides ``sync``)."""
        return type(self).sync is not Provider.sync

    def sync(self, integration: "TenantIntegration", since=None) -> "SyncResult":
        """Pull the platform's data for one integration (``since``: a ``date`` to start from,
        else the provider's own high-water mark in ``integration.sync_cursor``). Called outside
        any transaction by ``integrations.sync.run_sync``, which holds the claim: write each page
        in a short ``tenant_context`` of its own and call ``integrations.sync.checkpoint``.
        Raise ``PermanentSyncError`` / ``TransientSyncError`` with messages free of secrets."""
        raise NotImplementedError

    def sync_notice(self, integration: "TenantIntegration") -> str:
        """A sentence for the setup page about this provider's sync (why it is skipped, what the
        last run did), or "" for nothing to say. A failing sync is told by the platform's state."""
        return ""

    def setup_steps(self, webhook_url: str) -> list[str]:
        """Numbered steps for the tenant, with its webhook URL filled in."""
        return [f"Send the platform's webhooks to {webhook_url}"]

    def clean_webhook_secret(self, value) -> str:
        return clean_credential(value, label=self.webhook_secret_label, validators=self.webhook_secret_validators)

    def field(self, name: str) -> CredentialField | None:
        return next((f for f in self.credential_fields if f.name == name), None)

    @property
    def secret_fields(self) -> tuple[CredentialField, ...]:
        return tuple(f for f in self.credential_fields if f.secret)

    @property
    def setting_fields(self) -> tuple[CredentialField, ...]:
        return tuple(f for f in self.credential_fields if not f.secret)

    def __repr__(self):
        return f"<Provider {self.name}>"
