from integrations.providers.base import CredentialField, Provider
from integrations.providers.validators import whole_number


class BrevoProvider(Provider):
    name = "brevo"
    label = "Brevo"
    docs_url = "https://developers.brevo.com/reference/createcontact"
    credential_fields = (
        CredentialField("api_key", "API key"),
        CredentialField(
            "list_id", "List ID", secret=False, help_text="New contacts are added to this list (Contacts → Lists: its ID).",
            validators=(whole_number("A Brevo list id"),), example="7",
        ),
    )

    def check_connection(self, integration) -> str:
        from integrations.providers.brevo.client import BrevoClient

        if not integration.value("api_key"):
            raise ValueError("enter the API key first")
        return BrevoClient(integration.value("api_key")).test_connection()

    def contacts_created(self, tenant_id, contact_ids):
        """One list sync task per contact (each is its own Brevo request, retried on its own after a
        429), and none at all for a tenant without an active Brevo connection: one query for the
        whole batch instead of a message and a task per contact that would find nothing to do."""
        # Imported here: the tasks module imports the models, which import this registry.
        from engarde.queue import enqueue
        from integrations.models import TenantIntegration
        from integrations.tasks import sync_contact_to_brevo
        from tenants.context import tenant_context

        with tenant_context(tenant_id):
            if not TenantIntegration.objects.filter(provider=self.name, is_active=True).exists():
                return
        for contact_id in contact_ids:
            enqueue(sync_contact_to_brevo, tenant_id, contact_id)

    def setup_steps(self, webhook_url):
        return [
            "In Brevo open your profile menu → SMTP & API → API keys, and generate a key for En Garde.",
            "Open Contacts → Lists, pick (or create) the list new contacts should join, and note its ID.",
            "Enter the key and the list ID here, save, then use “Check connection”.",
        ]
