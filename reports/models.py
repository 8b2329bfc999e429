"""Ads data pulled from Meta and the weekly reports.

Meta's ids are kept as Meta's strings (``ad_id``, ``creative_id``), unique per tenant: the same ad
id at two tenants is two rows, and an insight names its ad by Meta's id, so a page of insights is
upserted without looking ads up first. Money and rates are ``Decimal`` (Meta sends them as strings).
"""

from django.db import models

from tenants.models import Tenant, TenantOwned

MONEY = {"max_digits": 18, "decimal_places": 4}
RATE = {"max_digits": 20, "decimal_places": 6, "null": True, "blank": True}


class MetaAd(TenantOwned):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="meta_ads")
    ad_id = models.CharField(max_length=64)
    name = models.CharField(max_length=400, blank=True, default="")
    adset_id = models.CharField(max_length=64, blank=True, default="")
    adset_name = models.CharField(max_length=400, blank=True, default="")
    campaign_id = models.CharField(max_length=64, blank=True, default="")
    campaign_name = models.CharField(max_length=400, blank=True, default="")
    status = models.CharField(max_length=32, blank=True, default="", help_text="Meta's effective status.")
    creative_id = models.CharField(max_length=64, blank=True, default="")
    synced_at = models.DateTimeField(auto_now=True)

    class Meta(TenantOwned.Meta):
        db_table = "reports_metaad"
        ordering = ["name", "ad_id"]
        constraints = [models.UniqueConstraint(fields=["tenant", "ad_id"], name="metaad_unique_tenant_ad")]

    def __str__(self):
        return self.name or self.ad_id


class MetaAdCreative(TenantOwned):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="meta_creatives")
    creative_id = models.CharField(max_length=64)
    name = models.CharField(max_length=400, blank=True, default="")
    title = models.CharField(max_length=400, blank=True, default="")
    body = models.TextField(blank=True, default="")
    image_url = models.URLField(max_length=2000, blank=True, default="")
    thumbnail_url = models.URLField(max_length=2000, blank=True, default="")
    call_to_action = models.CharField(max_length=64, blank=True, default="")
    link_url = models.URLField(max_length=2000, blank=True, default="")
    synced_at = models.DateTimeField(auto_now=True)

    class Meta(TenantOwned.Meta):
        db_table = "reports_metaadcreative"
        ordering = ["creative_id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "creative_id"], name="metacreative_unique_tenant_creative")
        ]

    def __str__(self):
        return self.title or self.name or self.creative_id


class MetaAdInsight(TenantOwned):
    """One ad on one day (``time_increment=1``), as Meta last stated it: a re-pull of a restated
    day changes the numbers in place."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="meta_insights")
    ad_id = models.CharField(max_length=64)
    date = models.DateField()
    adset_id = models.CharField(max_length=64, blank=True, default="")
    campaign_id = models.CharField(max_length=64, blank=True, default="")
    spend = models.DecimalField(default=0, **MONEY)
    impressions = models.BigIntegerField(default=0)
    reach = models.BigIntegerField(default=0)
    clicks = models.BigIntegerField(default=0)
    unique_clicks = models.BigIntegerField(default=0)
    ctr = models.DecimalField(**RATE)
    cpc = models.DecimalField(**RATE)
    cpm = models.DecimalField(**RATE)
    actions = models.JSONField(default=list, blank=True)
    action_values = models.JSONField(default=list, blank=True)
    currency = models.CharField(max_length=3, blank=True, default="", help_text="The ad account's currency.")
    synced_at = models.DateTimeField(auto_now=True)

    class Meta(TenantOwned.Meta):
        db_table = "reports_metaadinsight"
        ordering = ["-date", "ad_id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "ad_id", "date"], name="metainsight_unique_tenant_ad_date")
        ]
        indexes = [models.Index(fields=["tenant", "date"], name="metainsight_tenant_date_idx")]

    def __str__(self):
        return f"{self.ad_id} on {self.date}: {self.spend} {self.currency}"


class WeeklyReport(TenantOwned):
    """One tenant's report for one Monday–Sunday week (in the tenant's time zone).

    The row is the claim: it is created (unique on tenant + week) and moved to ``sending`` by one
    conditional update before anything is sent, so a doubled beat, a retried task or a second
    worker sends it once. A ``sending`` row older than ``REPORT_STALE_AFTER_SECONDS`` belongs to a
    crashed worker and may be taken again."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"
        SENT = "sent"
        FAILED = "failed"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="weekly_reports")
    week_start = models.DateField(help_text="The Monday the week starts on, in the tenant's time zone.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    recipient = models.EmailField(blank=True, default="")
    subject = models.CharField(max_length=255, blank=True, default="")
    summary = models.TextField(blank=True, default="", help_text="Claude's short summary, when there was one.")
    text_body = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantOwned.Meta):
        db_table = "reports_weeklyreport"
        ordering = ["-week_start"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "week_start"], name="weeklyreport_unique_tenant_week")
        ]
        # Operators' cross-tenant analytics (reports/analytics.py): the admin page and the API.
        permissions = [("view_tenant_analytics", "Can view cross-tenant analytics")]

    def __str__(self):
        return f"week of {self.week_start} ({self.status})"
