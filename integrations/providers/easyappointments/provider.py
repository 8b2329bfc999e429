from integrations.providers.base import CredentialField, Provider, WebhookAuth


class EasyAppointmentsProvider(Provider):
    name = "easyappointments"
    label = "Easy!Appointments"
    webhook_auth = WebhookAuth.TOKEN
    webhook_secret_label = "Webhook token (X-Webhook-Token header)"
    credential_fields = (
        CredentialField("url", "Installation URL", secret=False, help_text="e.g. https://booking.example.com"),
        CredentialField("username", "API user", secret=False, required=False),
        CredentialField("password", "API password or token", required=False),
    )
