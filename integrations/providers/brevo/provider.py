from integrations.providers.base import CredentialField, Provider


class BrevoProvider(Provider):
    name = "brevo"
    label = "Brevo"
    docs_url = "https://developers.brevo.com/reference/createcontact"
    credential_fields = (
        CredentialField("api_key", "API key"),
        CredentialField("list_id", "List ID", secret=False, help_text="New contacts are added to this list."),
    )
