from integrations.providers.base import Provider, WebhookAuth


class PoshVipProvider(Provider):
    name = "poshvip"
    label = "Posh.VIP"
    webhook_auth = WebhookAuth.SIGNATURE
    webhook_secret_label = "Webhook signing secret (X-Posh-Signature)"
    credential_fields = ()
