from datetime import timedelta

from django.conf import settings

from integrations.http import get_with_bearer
from integrations.providers.base import CredentialField, Provider
from integrations.providers.validators import matches


class MetaAdsProvider(Provider):
    name = "meta"
    label = "Meta Ads"
    docs_url = "https://developers.facebook.com/docs/marketing-api/insights"
    credential_fields = (
        CredentialField("access_token", "Long-lived access token"),
        CredentialField(
            "ad_account_id", "Ad account ID", secret=False, help_text="act_… followed by digits, or the digits alone",
            example="act_1234567890",
            validators=(matches(r"(act_)?[0-9]{1,20}", "A Meta ad account id is act_ followed by digits "
                                                        "(act_1234567890), or the digits alone."),),
        ),
    )

    def check_connection(self, integration) -> str:
        """GET act_<id>?fields=name,currency with the tenant's access token."""
        token, account = integration.value("access_token"), integration.value("ad_account_id")
        if not (token and account):
            raise ValueError("enter the access token and the ad account ID first")
        account = account if account.startswith("act_") else f"act_{account}"
        answer = get_with_bearer(f"{settings.META_GRAPH_BASE}/{settings.META_GRAPH_VERSION}/{account}", token,
                                 platform="Meta", params={"fields": "name,currency"})
        return f"ad account {answer.get('name', account)}"

    def setup_steps(self, webhook_url):
        return [
            "In Meta Business Settings → Users → System users, create a system user with access to the ad account.",
            "Generate a long-lived token for it with the ads_read permission.",
            "Enter the token and the ad account ID (act_…) here, save, then use “Check connection”.",
            "Ads, creatives and daily insights are then pulled on a schedule; no webhooks are involved.",
        ]

    # --- pull sync (integrations/providers/meta/sync.py) ------------------------------------
    @property
    def sync_interval(self):
        return timedelta(hours=settings.META_SYNC_INTERVAL_HOURS)

    def sync(self, integration, since=None):
        """Ads, creatives and daily ad-level insights into ``reports`` (see ``meta.sync``)."""
        from integrations.providers.meta.sync import MetaSync

        return MetaSync(integration, since=since).run()
