from integrations.providers.base import CredentialField, Provider, WebhookAuth


class ZoomProvider(Provider):
    name = "zoom"
    label = "Zoom"
    webhook_auth = WebhookAuth.SIGNATURE
    webhook_secret_label = "Secret token (Features → Event subscriptions)"
    docs_url = "https://developers.zoom.us/docs/api/webhooks/"
    credential_fields = (
        CredentialField("account_id", "Account ID", secret=False, help_text="Of the Server-to-Server OAuth app."),
        CredentialField("client_id", "Client ID", secret=False),
        CredentialField("client_secret", "Client secret"),
    )
