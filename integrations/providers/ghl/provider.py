from integrations.providers.base import CredentialField, Provider, WebhookAuth


class GoHighLevelProvider(Provider):
    name = "ghl"
    label = "GoHighLevel"
    # Marketplace webhooks are signed with GoHighLevel's published key (GHL_WEBHOOK_PUBLIC_KEY);
    # workflow "custom webhook" actions are unsigned and carry this tenant's token instead.
    webhook_auth = WebhookAuth.PLATFORM_KEY
    webhook_secret_label = "Workflow webhook token"
    docs_url = "https://marketplace.gohighlevel.com/docs/webhook/WebhookIntegrationGuide"
    credential_fields = (
        CredentialField("api_key", "Private integration token", required=False),
        CredentialField(
            "location_id", "Location ID", secret=False,
            help_text="Deliveries whose locationId differs are rejected: GoHighLevel's signing key is shared by all its customers.",
        ),
    )
