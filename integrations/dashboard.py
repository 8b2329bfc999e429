"""The dashboard: every platform of the tenant with its state, today's events and the last error."""

from datetime import datetime, time
from zoneinfo import ZoneInfo

from django.db.models import Count, Max, Q
from django.shortcuts import render
from django.utils import timezone

from integrations.models import TenantIntegration, webhook_url
from integrations.registry import PROVIDERS
from tenants.decorators import tenant_page
from webhooks.models import WebhookLog

FAILING = (WebhookLog.Status.FAILED, WebhookLog.Status.DEAD)


def _start_of_today(tenant) -> datetime:
    zone = ZoneInfo(tenant.timezone or "UTC")
    return datetime.combine(timezone.now().astimezone(zone).date(), time.min, tzinfo=zone)


def platform_states(tenant) -> list[dict]:
    """Every platform with its state for this tenant, in three queries whatever the numbers."""
    integrations = {i.provider: i for i in TenantIntegration.objects.all()}
    day_ago = timezone.now() - timezone.timedelta(hours=24)
    stats = {
        row["source"]: row
        for row in WebhookLog.objects.exclude(status=WebhookLog.Status.REJECTED)
        .values("source")
        .annotate(
            today=Count("pk", filter=Q(received_at__gte=_start_of_today(tenant))),
            last=Max("received_at"),
            failing=Count("pk", filter=Q(status__in=FAILING, updated_at__gte=day_ago)),
        )
    }
    states = []
    for name, provider in PROVIDERS.items():
        integration = integrations.get(name)
        stat = stats.get(name, {})
        if integration is None or not integration.is_active:
            state, label = "not-connected", "Not connected"
        elif stat.get("failing") or (
            integration.last_error_at and integration.last_error_at >= (stat.get("last") or integration.last_error_at)
        ):
            state, label = "failing", "Failing"
        elif stat.get("last"):
            state, label = "receiving", "Receiving"
        elif not integration.is_configured:
            state, label = "incomplete", "Setup incomplete"
        else:
            state, label = "connected", "Connected"
        states.append({
            "provider": provider, "integration": integration, "state": state, "label": label,
            "today": stat.get("today", 0), "last_event_at": stat.get("last"),
            "last_error": integration.last_error if integration and state == "failing" else "",
            "webhook_url": webhook_url(tenant, name) if provider.receives_webhooks else "",
        })
    return states


@tenant_page(reads=("integrations.view_tenantintegration", "webhooks.view_webhooklog"))
def dashboard(request):
    return render(request, "integrations/dashboard.html", {
        "section": "dashboard", "platforms": platform_states(request.tenant),
    })
