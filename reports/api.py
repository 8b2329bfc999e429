"""The tenant's own ads data (``GET /api/v1/ads/``, ``GET /api/v1/ad-insights/``) and the
operators' cross-tenant analytics (``GET /api/v1/admin/analytics/``)."""

from datetime import date

from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from engarde.api import TenantScopedViewSet
from engarde.days import EARLIEST, LATEST, parse_day
from reports import analytics
from reports.models import MetaAd, MetaAdInsight
from tenants.context import operator_context


class MetaAdSerializer(serializers.ModelSerializer):
    class Meta:
        model = MetaAd
        fields = [
            "id", "ad_id", "name", "status", "adset_id", "adset_name", "campaign_id", "campaign_name", "creative_id",
            "synced_at",
        ]


class MetaAdInsightSerializer(serializers.ModelSerializer):
    class Meta:
        model = MetaAdInsight
        fields = [
            "id", "ad_id", "date", "spend", "impressions", "reach", "clicks", "unique_clicks", "ctr", "cpc", "cpm",
            "actions", "action_values", "currency",
        ]


def query_date(params, name: str) -> date | None:
    """A ``YYYY-MM-DD`` query parameter, or 400 with what was wrong (never a 500)."""
    value = params.get(name)
    if not value:
        return None
    try:
        return parse_day(value, name)
    except ValueError as exc:
        raise ValidationError({name: f"Use a date as YYYY-MM-DD between {EARLIEST} and {LATEST} ({exc})."}) from None


class MetaAdViewSet(TenantScopedViewSet):
    model = MetaAd
    serializer_class = MetaAdSerializer
    ordering = ("name", "ad_id")


class MetaAdInsightViewSet(TenantScopedViewSet):
    """Daily ad insights, newest first; ``?date_from=`` and ``?date_to=`` (inclusive) narrow it."""

    model = MetaAdInsight
    serializer_class = MetaAdInsightSerializer
    ordering = ("-date", "ad_id")

    def filter_queryset_for_request(self, queryset):
        date_from, date_to = query_date(self.request.query_params, "date_from"), query_date(
            self.request.query_params, "date_to"
        )
        if date_from and date_to and date_from > date_to:
            raise ValidationError({"date_to": "date_to is before date_from."})
        if date_from:
            queryset = queryset.filter(date__gte=date_from)
        if date_to:
            queryset = queryset.filter(date__lte=date_to)
        return queryset


class IsAnalyticsStaff(BasePermission):
    message = "Cross-tenant analytics are for staff with the reports.view_tenant_analytics permission."

    def has_permission(self, request, view):
        return analytics.may_view(request.user)


class AnalyticsView(APIView):
    """``GET /api/v1/admin/analytics/?sort=``: every tenant side by side, with totals (staff with
    ``reports.view_tenant_analytics`` only; 403 for everyone else)."""

    permission_classes = [IsAnalyticsStaff]

    def get(self, request):
        with operator_context(f"api analytics for staff user {request.user.pk}"):
            table, key = analytics.sort(analytics.rows(), request.query_params.get("sort", "name"))
        return Response({"sort": key, "results": table, "totals": analytics.totals(table)})
