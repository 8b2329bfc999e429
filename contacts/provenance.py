"""Which delivery made or touched a contact, so the contact's page can list them.

The worker that processes a stored delivery says so with ``delivery_scope(log_id)`` around the
provider's handler; ``upsert_contact`` then links the contact it returns to that delivery. Kept as
a context variable so no handler (of eleven providers) has to pass the row along, and so
``contacts`` never imports ``webhooks`` (layers point down: webhooks → contacts).
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from typing import Iterator

_delivery: contextvars.ContextVar[tuple[int, str] | None] = contextvars.ContextVar("engarde_delivery", default=None)


@contextmanager
def delivery_scope(log_id: int, source: str) -> Iterator[None]:
    """Contacts upserted inside this block were made or touched by delivery ``log_id``."""
    token = _delivery.set((log_id, source))
    try:
        yield
    finally:
        _delivery.reset(token)


_pending: contextvars.ContextVar[list | None] = contextvars.ContextVar("engarde_pending_links", default=None)


@contextmanager
def links_written_together() -> Iterator[None]:
    """The links made inside the block are written in one statement when it ends without an error
    (the drain's batch: one INSERT for the batch instead of one per contact). Use it inside the
    transaction the handlers run in, so the links commit or roll back with their contacts; on an
    error nothing is written (the transaction is rolled back anyway)."""
    if _pending.get() is not None:
        yield
        return
    pending: list = []
    token = _pending.set(pending)
    try:
        yield
    finally:
        _pending.reset(token)
    _write(pending)


def link_current_delivery(contact) -> None:
    """Remember that the delivery being processed (if any) made or touched ``contact``. Idempotent:
    a replay or a second upsert in the same handler adds nothing."""
    current = _delivery.get()
    if current is None or contact.pk is None:
        return
    from contacts.models import ContactDelivery

    log_id, source = current
    link = ContactDelivery(tenant_id=contact.tenant_id, contact=contact, webhook_log_id=log_id, source=source)
    pending = _pending.get()
    if pending is not None:
        pending.append(link)
    else:
        _write([link])


def _write(links: list) -> None:
    if not links:
        return
    from contacts.models import ContactDelivery

    ContactDelivery.objects.bulk_create(links, ignore_conflicts=True)
