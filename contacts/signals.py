"""The "contacts created" hook: how the layers above hear about new contacts.

contacts/ sits below integrations and never imports a provider or a task. Whoever wants to act on
new contacts connects a receiver: contacts' own e-mail notice (``ContactsConfig.ready``) and every
provider's ``Provider.contacts_created`` (``IntegrationsConfig.ready``; Brevo queues its list sync).

One announcement per committed transaction where it counts: inside ``announced_together()`` (the
row queue's batch, a pull sync around its run) the contacts that committed are collected and
announced when the block ends, or at ``announce_collected()`` (after each page a sync commits), one
``contacts_created`` per tenant with all their ids.
A burst of 500 Stripe payments or a Zoom webinar's 3,000 registrants then queues one notice and
sends each admin one e-mail listing them, not 500 tasks and 500 e-mails. Outside such a block each
contact is announced on its own as its transaction commits.
"""

from __future__ import annotations

import contextvars
import logging
from contextlib import contextmanager
from typing import Iterator

from django.dispatch import Signal

log = logging.getLogger(__name__)

#: Sent once the transaction that created the contacts has committed (never for a rolled-back
#: one), with ``tenant_id`` (str) and ``contact_ids`` (a list of ints, of that tenant only).
#: Receivers run in the request or task that made the contacts: they queue work, they do not do it.
contacts_created = Signal()

_collected: contextvars.ContextVar[dict[str, list[int]] | None] = contextvars.ContextVar(
    "engarde_new_contacts", default=None
)


def announce_contact_created(tenant_id, contact_id: int) -> None:
    """A new contact has committed (``upsert_contact`` registers this with ``on_commit``): kept for
    the end of the enclosing ``announced_together()``, or announced now when there is none."""
    collected = _collected.get()
    if collected is not None:
        collected.setdefault(str(tenant_id), []).append(contact_id)
        return
    _send(str(tenant_id), [contact_id])


@contextmanager
def announced_together() -> Iterator[None]:
    """Contacts committed inside this block are announced when it ends, together, per tenant (also
    when the block raises: what committed is news either way). Nested blocks join the outer one."""
    if _collected.get() is not None:
        yield
        return
    collected: dict[str, list[int]] = {}
    token = _collected.set(collected)
    try:
        yield
    finally:
        _collected.reset(token)
        for tenant_id, contact_ids in collected.items():
            _send(tenant_id, list(dict.fromkeys(contact_ids)))


def announce_collected() -> None:
    """Announce now what the enclosing ``announced_together()`` has collected so far (nothing
    outside one). For a block that commits several transactions (a pull sync, page by page): each
    page's contacts are told once the page has committed, so a run killed later (a deploy, an OOM)
    has not kept back the notices of what it already stored; its resumed run finds those contacts
    made and would never tell them."""
    collected = _collected.get()
    if not collected:
        return
    pending = list(collected.items())
    collected.clear()
    for tenant_id, contact_ids in pending:
        _send(tenant_id, list(dict.fromkeys(contact_ids)))


def _send(tenant_id: str, contact_ids: list[int]) -> None:
    """Tell every receiver. One receiver's bug is logged and does not keep the others from running."""
    for receiver, result in contacts_created.send_robust(sender=None, tenant_id=tenant_id, contact_ids=contact_ids):
        if isinstance(result, Exception):
            log.error("contacts_created receiver %s failed", getattr(receiver, "__qualname__", receiver), exc_info=result)
