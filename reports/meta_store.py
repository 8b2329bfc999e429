"""Where the Meta sync's pages go: bulk upserts into ``MetaAd``, ``MetaAdCreative`` and
``MetaAdInsight`` (one ``INSERT … ON CONFLICT … DO UPDATE`` per page). Registered with the sync
(``integrations.providers.meta.sync.register_store``) by ``reports.apps`` at start-up, because
the ads data are this app's and ``integrations`` must not import upwards."""

from reports.models import MetaAd, MetaAdCreative, MetaAdInsight

TABLES = {
    "ads": (MetaAd, ["ad_id"], [
        "name", "adset_id", "adset_name", "campaign_id", "campaign_name", "status", "creative_id", "synced_at",
    ]),
    "creatives": (MetaAdCreative, ["creative_id"], [
        "name", "title", "body", "image_url", "thumbnail_url", "call_to_action", "link_url", "synced_at",
    ]),
    "insight rows": (MetaAdInsight, ["ad_id", "date"], [
        "adset_id", "campaign_id", "spend", "impressions", "reach", "clicks", "unique_clicks", "ctr", "cpc", "cpm",
        "actions", "action_values", "currency", "synced_at",
    ]),
}


class MetaAdsStore:
    def write(self, kind: str, rows: list[dict]) -> int:
        """Upsert one page for the active tenant; returns how many rows it wrote."""
        model, unique, update = TABLES[kind]
        # One row per key in a page: PostgreSQL refuses to update one row twice in one statement.
        by_key = {tuple(row[f] for f in unique): row for row in rows if all(row[f] for f in unique)}
        if by_key:
            model.objects.bulk_create(
                [model(**row) for row in by_key.values()], update_conflicts=True,
                unique_fields=["tenant", *unique], update_fields=update,
            )
        return len(by_key)
