import logging

from celery import shared_task

from contacts.models import Contact
from integrations.http import RateLimited
from integrations.models import TenantIntegration
from integrations.providers.brevo.client import BrevoClient
from tenants.context import tenant_context

log = logging.getLogger(__name__)


@shared_task(name="integrations.sync_contact_to_brevo", bind=True, acks_late=True, max_retries=8)
def sync_contact_to_brevo(self, tenant_id: str, contact_id: int) -> str:
    """Upsert one contact into the tenant's Brevo list, when the tenant has Brevo connected."""
    with tenant_context(tenant_id):
        integration = TenantIntegration.objects.filter(provider="brevo", is_active=True).first()
        contact = Contact.objects.filter(pk=contact_id).first()
        if integration is None or contact is None or not contact.email:
            return "skipped"
        api_key, list_id = integration.value("api_key"), integration.value("list_id")
    if not api_key:
        return "skipped"
    list_ids = [int(list_id)] if str(list_id).isdigit() else []
    attributes = {k: v for k, v in (("FIRSTNAME", contact.first_name), ("LASTNAME", contact.last_name)) if v}
    try:
        BrevoClient(api_key).upsert_contact(contact.email, attributes, list_ids)
    except RateLimited as exc:
        raise self.retry(countdown=exc.retry_after, exc=exc)
    return "synced"
