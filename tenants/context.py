"""Which tenant the current code acts for, in Python and in PostgreSQL.

``tenant_context(tenant)`` is the one way in: it opens a transaction, tells PostgreSQL the tenant
transaction-locally (``set_config('app.tenant_id', ..., true)``, safe with pgbouncer in
transaction mode) and sets a context variable that the fail-closed ORM manager reads. Leaving the
block restores whatever was active before, so nothing leaks into the next request or task that
reuses the connection or the thread.

``operator_context(reason)`` is the explicit, logged way to act across tenants (admin, beat
fan-out, key rotation). Inside it every query goes to the operator database alias
(``tenants.routing``; ``OPERATOR_DATABASE_URL``, a role with BYPASSRLS), whose transaction it opens.
The runtime role has no setting it could flip instead: its policies admit one tenant at most.
Without an operator alias (SQLite, or PostgreSQL as a single role) it uses the default alias.
"""

from __future__ import annotations

import contextvars
import logging
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction

audit_log = logging.getLogger("engarde.audit")


class TenantNotSet(RuntimeError):
    """A tenant-owned model was queried with no tenant (and no operator context) active."""


@dataclass(frozen=True)
class _Scope:
    tenant_id: str | None = None
    operator: bool = False
    reason: str = ""


_scope: contextvars.ContextVar[_Scope] = contextvars.ContextVar("engarde_tenant_scope", default=_Scope())  # noqa: B039 (frozen, immutable)


def current_tenant_id() -> str | None:
    return _scope.get().tenant_id


def is_operator() -> bool:
    return _scope.get().operator


def operator_alias() -> str:
    """Where operator contexts run: ``OPERATOR_DB_ALIAS`` (settings: ``operator`` when
    ``OPERATOR_DATABASE_URL`` is set, else ``default``)."""
    return getattr(settings, "OPERATOR_DB_ALIAS", DEFAULT_DB_ALIAS)


def _set_db(tenant_id: str | None, using: str) -> None:
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('app.tenant_id', %s, true)", [tenant_id or ""])


@contextmanager
def _enter(scope: _Scope, using: str) -> Iterator[None]:
    previous = _scope.get()
    connection = connections[using]
    # The outermost transaction clears a transaction-local setting when it ends; a nested block
    # (a savepoint inside a request, a task or a test) must put the previous value back itself.
    nested = connection.in_atomic_block
    with transaction.atomic(using=using):
        _set_db(scope.tenant_id, using)
        token = _scope.set(scope)
        try:
            yield
        finally:
            _scope.reset(token)
        # Only on the way out without an error: an error rolls the block's savepoint back, and
        # PostgreSQL undoes the block's set_config with it. A statement here would instead run on
        # a transaction the error may have aborted, and mask the error with an InternalError.
        if nested and not connection.needs_rollback:
            _set_db(previous.tenant_id, using)


def _tenant_id(tenant) -> str:
    tenant_id = getattr(tenant, "pk", tenant)
    if tenant_id is None:
        raise TenantNotSet("tenant_context needs a saved tenant")
    return str(tenant_id)


@contextmanager
def tenant_context(tenant, using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Act for one tenant (a ``Tenant`` or its id) inside a transaction."""
    with _enter(_Scope(tenant_id=_tenant_id(tenant)), using):
        yield


@contextmanager
def operator_context(reason: str, using: str | None = None) -> Iterator[None]:
    """Act across tenants, on the operator alias. Logged with its reason; only for operator work."""
    if not reason:
        raise ValueError("operator_context needs a reason; it is written to the audit log")
    audit_log.info("operator context entered: %s", reason)
    with _enter(_Scope(operator=True, reason=reason), using or operator_alias()):
        yield


@contextmanager
def _local_setting(name: str, value: str, using: str) -> Iterator[None]:
    """``name`` set to ``value`` for the transaction (``set_config(…, true)``) while the block runs,
    and put back on the way out when nested in a longer transaction, so it never outlives its use.
    Not on SQLite, which has no such settings (and no policies reading them)."""
    connection = connections[using]
    nested = connection.in_atomic_block
    with transaction.atomic(using=using):
        if connection.vendor != "postgresql":
            yield
            return
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting(%s, true), set_config(%s, %s, true)", [name, name, value])
            previous = cursor.fetchone()[0] or ""
        yield
        # As in _enter: after an error the savepoint's rollback restores the setting.
        if nested and not connection.needs_rollback:
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config(%s, %s, true)", [name, previous])


@contextmanager
def user_context(user_id, using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Let PostgreSQL show one user's own memberships (and nothing else) before a tenant is known.
    Nested in a longer transaction (a request that already acts for a tenant), it puts the previous
    value back on the way out, so the setting never outlives the lookup."""
    with _local_setting("app.user_id", str(user_id), using):
        yield


@contextmanager
def presented_token(key_hash: str, using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Let PostgreSQL show the one API token whose ``key_hash`` is ``key_hash`` (and nothing else)
    before its tenant is known: the token table's read policy (``tenants.rls.TOKEN_OWN_HASH``).
    Transaction-local, and put back on the way out when nested, like ``user_context``."""
    with _local_setting("app.token_hash", key_hash, using):
        yield
