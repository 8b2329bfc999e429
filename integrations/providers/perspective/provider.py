from integrations.providers.base import CredentialField, Provider, WebhookAuth


class PerspectiveProvider(Provider):
    name = "perspective"
    label = "Perspective"
    webhook_auth = WebhookAuth.TOKEN
    webhook_secret_label = "Webhook token (X-Webhook-Token header)"
    credential_fields = (CredentialField("api_key", "API key", required=False),)
