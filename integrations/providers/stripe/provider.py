from integrations.providers.base import CredentialField, Provider, WebhookAuth


class StripeProvider(Provider):
    name = "stripe"
    label = "Stripe"
    webhook_auth = WebhookAuth.SIGNATURE
    webhook_secret_label = "Signing secret (whsec_…)"
    docs_url = "https://docs.stripe.com/webhooks"
    credential_fields = (
        CredentialField(
            "secret_key", "Secret key", required=False,
            help_text="sk_live_… or a restricted key; used only to test the connection and backfill missed events.",
        ),
    )
