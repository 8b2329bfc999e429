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

    def contact_created(self, tenant_id, contact_id):
        # Imported here: the tasks module imports the models, which import this registry.
        from engarde.queue import enqueue
        from integrations.tasks import sync_contact_to_brevo

        enqueue(sync_contact_to_brevo, tenant_id, contact_id)

    def setup_steps(self, webhook_url):
        return [
            "In Brevo open your profile menu → SMTP & API → API keys, and generate a key for En Garde.",
            "Open Contacts → Lists, pick (or create) the list new contacts should join, and note its ID.",
            "Enter the key and the list ID here, save, then use “Check connection”.",
        ]
