import logging
import time

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.core.mail import EmailMessage, mailers
from django.db import OperationalError
from django.utils import timezone

from contacts.models import Contact
from engarde.queue import enqueue, in_process
from tenants.context import tenant_context
from tenants.models import Membership, Tenant

log = logging.getLogger(__name__)


def _one_line(value: str, limit: int = 200) -> str:
    """Text from a webhook payload, safe for a mail header: no line breaks (Django refuses them
    with ``BadHeaderError``, which would lose the notification), runs of whitespace collapsed."""
    return " ".join(str(value).split())[:limit]


def queue_new_contact_notice(sender, tenant_id: str, contact_ids: list[int], **kwargs) -> None:
    """``contacts_created`` receiver: one task for the announced contacts, whatever their number."""
    enqueue(notify_new_contacts, tenant_id, list(contact_ids))


#: A digest lists at most this many contacts; the rest are counted ("… and 1,234 more").
DIGEST_LISTED = 50
#: Claimed contacts are marked this many at a time.
CLAIM_SLICE = 10_000


WINDOW_KEY = "contacts:notice-window:{tenant_id}"  # held while a notice went out less than a window ago
DUE_KEY = "contacts:notice-due:{tenant_id}"  # held while the digest at the window's end is queued


def _keys(tenant_id: str) -> tuple[str, str]:
    """The tenant's window and digest keys."""
    return WINDOW_KEY.format(tenant_id=tenant_id), DUE_KEY.format(tenant_id=tenant_id)


def _held_back(tenant_id: str, contact_ids: list[int]) -> bool:
    """True when a notice went out less than ``NEW_CONTACT_NOTICE_SECONDS`` ago: these contacts
    are marked ``notice_due`` and told in one digest when the window ends (queued once per window),
    instead of one e-mail per admin per drain batch (a webinar's thousands of registrations,
    minutes apart, were thousands of e-mails). Otherwise this notice opens a window.

    Race-free by order: a contact is marked before the digest is queued, and the digest clears its
    key before it reads the marks, so a contact marked while a digest runs is either read by it or
    queues the next one. In-process mode (``make run``) has no window: it cannot wait."""
    window = settings.NEW_CONTACT_NOTICE_SECONDS
    if window <= 0 or in_process():
        return False
    now, (window_key, due_key) = time.time(), _keys(tenant_id)
    if cache.add(window_key, now, timeout=window):
        return False
    opened = cache.get(window_key) or now
    with tenant_context(tenant_id):
        Contact.objects.filter(pk__in=list(contact_ids), notified_at__isnull=True).update(notice_due=True)
    if cache.add(due_key, 1, timeout=window * 2):
        countdown = max(0.0, opened + window - now)
        try:
            notify_new_contacts.apply_async((tenant_id, None), countdown=countdown)
        except Exception as exc:  # the broker is down: the next contact queues the digest again
            cache.delete(due_key)
            log.warning("could not queue the new-contacts digest of %s: %s", tenant_id, exc.__class__.__name__)
    return True


@shared_task(name="contacts.notify_new_contacts", acks_late=True, autoretry_for=(OperationalError,),
             retry_backoff=True, max_retries=3)
def notify_new_contacts(tenant_id: str, contact_ids: list[int] | None) -> int:
    """E-mail the tenant's owners and admins (only theirs) that contacts arrived: one message per
    recipient naming the contact, or, for several, one digest listing them. Returns how many
    messages were sent.

    At most one such e-mail per tenant per ``NEW_CONTACT_NOTICE_SECONDS``: contacts that arrive
    within the window wait for one digest at its end (``_held_back``); that digest is this task
    with ``contact_ids=None`` (every contact of the tenant marked ``notice_due`` and not told yet),
    and it opens the next window.

    Queued once the transaction (or the drain batch, or the sync run) that created the contacts
    has committed, so a rolled-back handler never notifies. One message per recipient: the
    tenant's admins do not see each other's addresses, and one bad address does not hold up the
    others.
    """
    if contact_ids is None:
        window_key, due_key = _keys(tenant_id)
        cache.delete(due_key)  # before the marks are read: see _held_back
        cache.set(window_key, time.time(), timeout=max(1, settings.NEW_CONTACT_NOTICE_SECONDS))
    elif _held_back(tenant_id, contact_ids):
        return 0
    with tenant_context(tenant_id):
        due = Contact.objects.filter(notice_due=True) if contact_ids is None else Contact.objects.filter(pk__in=list(contact_ids))
        # Claimed once, like healthchecks' report jobs: a redelivered task (acks_late, a worker
        # killed after sending) finds the claims taken and sends nothing again. A worker killed
        # between the claim and the send loses that notice: at most once, never twice. A contact
        # locked by another transaction (a handler updating it) is waited for, never skipped: a
        # skipped one would stay unclaimed and untold for good. Locked in id order, so two notice
        # tasks cannot deadlock each other; a deadlock with a handler rolls this claim back whole
        # and the task tries again (autoretry_for). Inside the tenant, another tenant's contact id
        # matches nothing (ORM wall and RLS).
        claimed = list(
            due.select_for_update(no_key=True)
            .filter(notified_at__isnull=True)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if not claimed:
            return 0
        # In slices: a window's digest may claim more contacts than one statement may carry
        # parameters (65,535 with server-side binding, DB_SERVER_SIDE_BINDING).
        now, sources = timezone.now(), set()
        for start in range(0, len(claimed), CLAIM_SLICE):
            part = Contact.objects.filter(pk__in=claimed[start:start + CLAIM_SLICE])
            part.update(notified_at=now, notice_due=False)
            sources.update(part.values_list("source", flat=True).distinct())
        contacts = list(
            Contact.objects.filter(pk__in=claimed[:DIGEST_LISTED])
            .only("first_name", "last_name", "email", "phone", "source")
            .order_by("pk")
        )
        recipients = sorted(
            {
                m.user.email
                for m in Membership.objects.select_related("user").filter(
                    role__in=[Membership.Role.OWNER, Membership.Role.ADMIN], user__is_active=True
                )
                if m.user.email
            }
        )
        sources = sorted(sources)
        tenant_name = Tenant.objects.values_list("name", flat=True).get(pk=tenant_id)
    if not recipients:
        return 0
    subject, body = _notice(tenant_name, contacts, len(claimed), sources)
    messages = [EmailMessage(subject, body, None, [address]) for address in recipients]
    sent = mailers.default.send_messages(messages) or 0
    log.info("%d new contact(s) of tenant %s: %d notification(s) sent", len(claimed), tenant_id, sent)
    return sent


@shared_task(name="contacts.notify_new_contact", acks_late=True)
def notify_new_contact(tenant_id: str, contact_id: int) -> int:
    """One contact's notice: the task name queued before notices were batched, kept so that
    messages still in the broker across an upgrade are sent."""
    return notify_new_contacts(tenant_id, [contact_id])


def _notice(tenant_name: str, contacts: list[Contact], total: int, sources: list[str]) -> tuple[str, str]:
    """Subject and plain-text body: the contact's details for one, a list for several."""
    if total == 1:
        (contact,) = contacts
        name = _one_line(contact.full_name or contact.email or "someone")
        subject = _one_line(f"[{tenant_name}] New contact from {contact.source}: {name}")
        body = (
            f"A new contact arrived from {contact.source}.\n\n"
            f"Name: {contact.full_name or '-'}\nE-mail: {contact.email or '-'}\nPhone: {contact.phone or '-'}\n"
        )
        return subject, body
    origin = sources[0] if len(sources) == 1 else "your platforms"
    subject = _one_line(f"[{tenant_name}] {total:,} new contacts from {origin}")
    lines = [f"{total:,} new contacts arrived.", ""]
    for contact in contacts:
        details = ", ".join(part for part in (contact.email, contact.phone) if part)
        name = _one_line(contact.full_name or contact.email or "someone", 120)
        lines.append(f"- {name}" + (f" ({_one_line(details, 160)})" if details and details != name else "")
                     + f" from {contact.source}")
    if total > len(contacts):
        lines += ["", f"… and {total - len(contacts):,} more: the Contacts page lists them all."]
    return subject, "\n".join(lines) + "\n"
