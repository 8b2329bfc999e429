import logging

from celery import shared_task
from django.core.mail import EmailMessage, mailers
from django.utils import timezone

from contacts.models import Contact
from engarde.queue import enqueue
from tenants.context import tenant_context
from tenants.models import Membership

log = logging.getLogger(__name__)


def _one_line(value: str, limit: int = 200) -> str:
    """Text from a webhook payload, safe for a mail header: no line breaks (Django refuses them
    with ``BadHeaderError``, which would lose the notification), runs of whitespace collapsed."""
    return " ".join(str(value).split())[:limit]


def queue_new_contact_notice(sender, tenant_id: str, contact_id: int, **kwargs) -> None:
    """``contact_created`` receiver: the e-mail to the tenant's owners and admins goes out from a task."""
    enqueue(notify_new_contact, tenant_id, contact_id)


@shared_task(name="contacts.notify_new_contact", acks_late=True)
def notify_new_contact(tenant_id: str, contact_id: int) -> int:
    """E-mail the tenant's owners and admins (only theirs) that a contact arrived. Returns how many.

    Queued by ``contacts.services.upsert_contact`` once the transaction that created the contact
    commits, so a rolled-back handler never notifies. One message per recipient: the tenant's
    admins do not see each other's addresses, and one bad address does not hold up the others.
    """
    with tenant_context(tenant_id):
        # Claimed once, like healthchecks' report jobs: a redelivered task (acks_late, a worker
        # killed after sending) finds the claim taken and sends nothing again. A worker killed
        # between the claim and the send loses that one notice: at most once, never twice.
        # Inside the tenant, another tenant's contact id matches nothing (ORM wall and RLS).
        claimed = Contact.objects.filter(pk=contact_id, notified_at__isnull=True).update(notified_at=timezone.now())
        contact = Contact.objects.select_related("tenant").filter(pk=contact_id).first() if claimed else None
        if contact is None:
            return 0
        recipients = sorted(
            {
                m.user.email
                for m in Membership.objects.select_related("user").filter(
                    role__in=[Membership.Role.OWNER, Membership.Role.ADMIN], user__is_active=True
                )
                if m.user.email
            }
        )
        tenant_name = contact.tenant.name
    if not recipients:
        return 0
    name = _one_line(contact.full_name or contact.email or "someone")
    subject = _one_line(f"[{tenant_name}] New contact from {contact.source}: {name}")
    body = (
        f"A new contact arrived from {contact.source}.\n\n"
        f"Name: {contact.full_name or '-'}\nE-mail: {contact.email or '-'}\nPhone: {contact.phone or '-'}\n"
    )
    messages = [EmailMessage(subject, body, None, [address]) for address in recipients]
    sent = mailers.default.send_messages(messages) or 0
    log.info("new contact %s of tenant %s: %d notification(s) sent", contact_id, tenant_id, sent)
    return sent
