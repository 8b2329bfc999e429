"""The receiver's fast path (issue 11): a delivery to a connection this process has seen, stored
with one PostgreSQL statement, and everything unusual left to the view.

The view (``webhooks.views._receive``) fills a per-process cache when it finds a tenant's active
integration for a URL that names the tenant by its id: the tenant id, the integration (as the view
read it: webhook secrets decrypted, the previous secret's grace expiry, ``settings``; credentials
not loaded) and its ``secrets_version``. The next POST to that URL is verified with the provider's
own ``verify`` on that integration, parsed and named with the provider's own ``parse``,
``handshake``, ``event_type``, ``event_id`` and ``handler_for``, redacted with ``ingest.redacted``
(the view's redaction), counted against ``WEBHOOK_RATE_LIMIT`` with the same counter, and stored by
``webhooks_store_delivery`` (migration ``webhooks`` 0007) in one round trip: the function sets the
tenant transaction-locally itself, checks that the tenant and the integration are still active and
that the cached version is current, and inserts or counts the duplicate. So a rotated secret, a
deactivated integration or tenant is seen by the very next delivery: the function answers
``stale``, the entry is dropped, and the delivery goes the view's way (which fills the cache anew).

Anything else goes the view's way too, unchanged: a cache miss, a slug in the URL (a slug can move
to another tenant; the id cannot), a body too large or of the wrong type, a delivery that does not
verify (rejected rows and their sample stay in ``ingest``), a body that does not parse, a
handshake, an event type without a handler (ignored), an event id the database cannot hold, any
database error, and SQLite (no such function; the fast path is PostgreSQL only). The view is the one
place for every unusual case; this module only takes the common one off its hands.

Why it is safe outside the ORM: ``webhooks_store_delivery`` is ``SECURITY INVOKER``, so it runs as
the runtime role with every row-level policy in force and can do nothing that role could not do
with plain SQL; it sets the same ``app.tenant_id`` the policies read, from the id the cache holds
for the URL, and the integration it checks must be that tenant's (RLS hides any other). The cached
secrets are the ones the view would have read; the version check makes them current at the moment
the row is written, as the view's own read is.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from django.conf import settings
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
    connections,
    transaction,
)

from webhooks.contract import Source, WebhookRequest
from webhooks.drain import hand_off
from webhooks.ingest import Outcome, redacted, storable

log = logging.getLogger(__name__)

#: Connections kept per process; past it the oldest is dropped (it is read again on its next miss).
MAX_ENTRIES = 10_000
#: After the function is missing or not granted (code deployed before ``migrate``, or
#: ``setup_app_role`` not run again since): the view's way for this long, then try again.
PAUSE_SECONDS = 60.0

STORE = "SELECT outcome, log_id FROM webhooks_store_delivery(%s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s::inet)"


@dataclass(frozen=True)
class Entry:
    """One tenant's connection to one source, as the view read it."""

    tenant_id: uuid.UUID
    integration_id: int
    secrets_version: int
    provider: Source
    integration: Any  # the TenantIntegration (credentials deferred), shared read-only


_entries: dict[tuple[uuid.UUID, str], Entry] = {}
_lock = threading.Lock()
_paused_until = 0.0


def enabled(using: str = DEFAULT_DB_ALIAS) -> bool:
    """``WEBHOOK_FAST_PATH`` on, PostgreSQL, and not paused after a missing function or grant."""
    return bool(settings.WEBHOOK_FAST_PATH) and connections[using].vendor == "postgresql" and (
        time.monotonic() >= _paused_until
    )


def _tenant_uuid(tenant_key: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(tenant_key)
    except ValueError:
        return None


def lookup(tenant_key: str, source: str) -> Entry | None:
    tenant_id = _tenant_uuid(tenant_key)
    return _entries.get((tenant_id, source)) if tenant_id else None


def remember(tenant_key: str, source: str, provider: Source, integration) -> None:
    """Called by the view with the active integration it found for the URL's tenant id (not a slug)."""
    tenant_id = _tenant_uuid(tenant_key)
    if tenant_id is None or tenant_id != integration.tenant_id or not enabled():
        return
    entry = Entry(tenant_id, integration.pk, integration.secrets_version, provider, integration)
    with _lock:
        if len(_entries) >= MAX_ENTRIES:
            _entries.pop(next(iter(_entries)), None)
        _entries[(tenant_id, source)] = entry


def forget(entry: Entry) -> None:
    with _lock:
        key = (entry.tenant_id, entry.provider.name)
        if _entries.get(key) is entry:
            del _entries[key]


def clear() -> None:
    """Forget every connection (tests; nothing in the running code needs it: the version check does)."""
    global _paused_until
    with _lock:
        _entries.clear()
    _paused_until = 0.0


def receive(entry: Entry, request: WebhookRequest, admit: Callable[[], int | None]) -> Outcome | None:
    """The answer for a verified delivery of a handled event type, stored; ``None`` for anything
    else, which the caller hands to the view. ``admit`` is the view's rate-limit count (seconds to
    wait, or None), asked once the delivery is known to be one the fast path stores."""
    provider, integration = entry.provider, entry.integration
    try:
        provider.verify(request, integration)
        payload = provider.parse(request.body)
        if provider.handshake(request, payload, integration) is not None:
            return None
        event_type = storable(provider.event_type(payload, request))[:128]
        event_id = storable(provider.event_id(payload, request))[:255]
        if provider.handler_for(event_type) is None:
            return None
        headers, body = redacted(provider, integration, request)
    except Exception:  # VerificationFailed, ValueError, KeyError…: each is the view's to answer, as today
        return None
    wait = admit()
    if wait:
        return Outcome(429, {"status": "rate_limited"}, headers={"Retry-After": str(wait)})
    stored = _store(entry, event_id, event_type, headers, body, request.remote_addr)
    if stored is None:
        return None
    outcome, log_id = stored
    if outcome == "inserted":
        # Autocommit: the row is committed when the statement returns, so on_commit runs at once.
        hand_off(log_id, str(entry.tenant_id))
        return Outcome(200, {"status": "received", "event_id": event_id}, log_id)
    if outcome == "duplicate":
        return Outcome(200, {"status": "duplicate", "event_id": event_id})
    forget(entry)  # stale: a secret, the settings or the active state changed since the view read it
    return None


def _store(entry: Entry, event_id: str, event_type: str, headers: dict, body: bytes,
           remote_addr: str | None) -> tuple[str, int | None] | None:
    """One statement: (outcome, row id), or None after a database error (the view's to answer)."""
    global _paused_until
    connection = connections[DEFAULT_DB_ALIAS]
    params = [entry.tenant_id, entry.integration_id, entry.secrets_version, entry.provider.name, event_id,
              event_type, json.dumps(headers), body, remote_addr]
    try:
        if connection.in_atomic_block:
            # Only in tests (a request runs in autocommit): a savepoint, so an error leaves the
            # surrounding transaction usable for the view.
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(STORE, params)
                return cursor.fetchone()
        if connection.connection is not None:
            # Django would spend a round trip on ``SELECT 1`` before the request's first query
            # (CONN_HEALTH_CHECKS). This statement is that check: a broken connection raises
            # here, is closed, and the view connects anew (or answers 503).
            connection.health_check_done = True
        with connection.cursor() as cursor:
            cursor.execute(STORE, params)
            return cursor.fetchone()
    except (OperationalError, InterfaceError) as exc:
        log.info("webhook fast path: database error (%s), the view answers", exc.__class__.__name__)
        if not connection.in_atomic_block:
            connection.close()
        return None
    except ProgrammingError as exc:
        # The function missing or not granted: say how to fix it once a pause, not per delivery.
        _paused_until = time.monotonic() + PAUSE_SECONDS
        log.warning("webhook fast path paused for %.0f s: %s (run migrate, then setup_app_role)",
                    PAUSE_SECONDS, exc.__class__.__name__)
        return None
    except DatabaseError as exc:
        log.info("webhook fast path: %s, the view answers", exc.__class__.__name__)
        return None
