"""Operators' views of reports: the weekly reports per tenant ("send again") and the
cross-tenant analytics page. Every admin view runs in a logged operator context
(``engarde.admin_site``)."""

from functools import partial

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.template.response import TemplateResponse
from django.urls import path

from reports import analytics
from reports.models import MetaAd, MetaAdInsight, WeeklyReport
from reports.tasks import send_weekly_report


@admin.register(WeeklyReport)
class WeeklyReportAdmin(admin.ModelAdmin):
    list_display = ("tenant", "week_start", "status", "attempts", "recipient", "sent_at", "last_error")
    list_filter = ("status", "tenant")
    search_fields = ("tenant__name", "tenant__slug")
    list_select_related = ("tenant",)
    ordering = ("-week_start", "tenant__name")
    actions = ("send_again",)
    readonly_fields = [f.name for f in WeeklyReport._meta.fields]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Send again (queues a new send, even if already sent)", permissions=["change"])
    def send_again(self, request, queryset):
        chosen = list(queryset.values_list("tenant_id", "week_start"))
        for tenant_id, week_start in chosen:
            transaction.on_commit(partial(send_weekly_report.delay, str(tenant_id), week_start.isoformat(), True))
        self.message_user(request, f"{len(chosen)} report(s) queued to be sent again.", messages.SUCCESS)

    def get_urls(self):
        view = self.admin_site.admin_view(self.analytics_view)
        return [path("analytics/", view, name="reports_analytics"), *super().get_urls()]

    def analytics_view(self, request):
        """Every tenant side by side (staff with ``reports.view_tenant_analytics``)."""
        if not analytics.may_view(request.user):
            raise PermissionDenied("Cross-tenant analytics need the reports.view_tenant_analytics permission.")
        table, key = analytics.sort(analytics.rows(), request.GET.get("sort", "name"))
        columns = [("name", "Tenant"), ("contacts", "Contacts"), ("contacts_7d", "New 7 d"),
                   ("contacts_30d", "New 30 d"), ("events_7d", "Events 7 d"), ("failed_7d", "Failed 7 d"),
                   ("dead_7d", "Dead 7 d"), ("integrations_failing", "Integrations failing"),
                   ("last_report_sent_at", "Last report sent")]
        return TemplateResponse(request, "admin/reports/analytics.html", {
            **self.admin_site.each_context(request), "title": "Cross-tenant analytics", "rows": table,
            "totals": analytics.totals(table), "sort": key, "columns": columns,
        })


@admin.register(MetaAd)
class MetaAdAdmin(admin.ModelAdmin):
    list_display = ("tenant", "ad_id", "name", "campaign_name", "status", "synced_at")
    list_filter = ("tenant", "status")
    search_fields = ("ad_id", "name", "campaign_name")
    list_select_related = ("tenant",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(MetaAdInsight)
class MetaAdInsightAdmin(MetaAdAdmin):
    list_display = ("tenant", "ad_id", "date", "spend", "currency", "impressions", "clicks")
    list_filter = ("tenant", "date")
    search_fields = ("ad_id",)
    date_hierarchy = "date"
