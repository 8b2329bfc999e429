from integrations.providers.base import CredentialField, Provider


class MetaAdsProvider(Provider):
    name = "meta"
    label = "Meta Ads"
    docs_url = "https://developers.facebook.com/docs/marketing-api/insights"
    credential_fields = (
        CredentialField("access_token", "Long-lived access token"),
        CredentialField("ad_account_id", "Ad account ID", secret=False, help_text="act_…"),
    )
