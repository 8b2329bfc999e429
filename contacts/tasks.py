import logging

from celery import shared_task
from django.core.mail import send_mail

from contacts.models import Contact
from tenants.context import tenant_context
from tenants.models import Membership

log = logging.getLogger(__name__)


@shared_task(name="contacts.notify_new_contact", acks_late=True)
def notify_new_contact(tenant_id: str, contact_id: int) -> int:
    """E-mail the tenant's owners and admins (only theirs) that a contact arrived. Returns how many."""
    with tenant_context(tenant_id):
        contact = Contact.objects.filter(pk=contact_id).first()
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
    name = contact.full_name or contact.email or "someone"
    send_mail(
        subject=f"[{tenant_name}] New contact from {contact.source}: {name}",
        message=(
            f"A new contact arrived from {contact.source}.\n\n"
            f"Name: {contact.full_name or '-'}\nE-mail: {contact.email or '-'}\nPhone: {contact.phone or '-'}\n"
        ),
        from_email=None,
        recipient_list=recipients,
    )
    return len(recipients)
