from integrations.providers.base import CredentialField, Provider, WebhookAuth


class ManyChatProvider(Provider):
    name = "manychat"
    label = "ManyChat"
    webhook_auth = WebhookAuth.TOKEN
    webhook_secret_label = "Webhook token (X-Webhook-Token header)"
    docs_url = "https://help.manychat.com/hc/en-us/articles/14281285374364"
    credential_fields = (
        CredentialField("api_key", "API key", required=False, help_text="Settings → API; the page-id:key pair."),
    )
