import logging

from django.apps import AppConfig

log = logging.getLogger(__name__)


class IntegrationsConfig(AppConfig):
    name = "integrations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from contacts.signals import contacts_created
        from integrations import checks  # noqa: F401  (registers the system checks)
        from integrations.connections import TenantIntegrations
        from integrations.registry import PROVIDERS
        from webhooks import sources

        # Processing (webhooks, a layer below) runs the providers' handlers through this registry.
        sources.register(PROVIDERS, TenantIntegrations())
        contacts_created.connect(tell_providers_contacts_created, dispatch_uid="integrations.providers")


def tell_providers_contacts_created(sender, tenant_id: str, contact_ids: list[int], **kwargs) -> None:
    """Every provider hears of new contacts through ``Provider.contacts_created`` (the default does nothing)."""
    from integrations.registry import PROVIDERS

    for provider in PROVIDERS.values():
        try:
            provider.contacts_created(tenant_id, contact_ids)
        except Exception:  # one provider's failure must not keep the next from hearing of them
            log.exception("provider %s: contacts_created failed for tenant %s", provider.name, tenant_id)
