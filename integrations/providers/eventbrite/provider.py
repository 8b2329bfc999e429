from integrations.providers.base import CredentialField, Provider, WebhookAuth


class EventbriteProvider(Provider):
    name = "eventbrite"
    label = "Eventbrite"
    # Eventbrite does not sign: the token rides in the URL (?token=), as Eventbrite advises.
    webhook_auth = WebhookAuth.TOKEN
    webhook_secret_label = "Webhook URL token (?token=)"
    docs_url = "https://www.eventbrite.com/platform/docs/webhooks"
    credential_fields = (
        CredentialField("api_key", "API key", secret=False, required=False),
        CredentialField("client_secret", "Client secret", required=False),
        CredentialField("private_token", "Private token", help_text="Used to fetch each delivery's api_url."),
    )
