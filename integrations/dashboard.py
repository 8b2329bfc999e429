"""The dashboard: connected platforms first, each with its state (``integrations.state``), its events
per day over the last 14 days as a small chart, its failure rate and its last event; the platforms
not connected yet after them (folded away on a phone).

Days are the tenant's days (midnight in its time zone). Three queries whatever the numbers: the
integrations, the deliveries per source and day, the last event and recent failures per source.
"""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.shortcuts import render
from django.utils import timezone

from integrations.charts import daily_bars
from integrations.models import TenantIntegration, webhook_url
from integrations.registry import PROVIDERS
from integrations.state import FAILING_STATUSES, delivery_stats, platform_state
from tenants.decorators import tenant_page
from webhooks.models import WebhookLog

DAYS = 14
FAILED = FAILING_STATUSES


def tenant_days(tenant, now=None) -> tuple[ZoneInfo, list[date]]:
    zone = ZoneInfo(tenant.timezone or "UTC")
    today = (now or timezone.now()).astimezone(zone).date()
    return zone, [today - timedelta(days=DAYS - 1 - i) for i in range(DAYS)]


def daily_counts(zone: ZoneInfo, days: list[date]) -> dict[tuple[str, date], tuple[int, int]]:
    """(source, day) -> (events, failures) over ``days``, rejected deliveries left out (they are
    forgeries or misconfigurations, not the platform's events)."""
    start = datetime.combine(days[0], time.min, tzinfo=zone)
    rows = (
        WebhookLog.objects.exclude(status=WebhookLog.Status.REJECTED).filter(received_at__gte=start)
        .annotate(day=TruncDate("received_at", tzinfo=zone)).order_by()
        .values("source", "day").annotate(events=Count("pk"), failures=Count("pk", filter=Q(status__in=FAILED)))
    )
    return {(row["source"], row["day"]): (row["events"], row["failures"]) for row in rows}


def platform_rows(tenant) -> list[dict]:
    integrations = {i.provider: i for i in TenantIntegration.objects.all()}
    stats = delivery_stats()
    zone, days = tenant_days(tenant)
    counts = daily_counts(zone, days)
    rows = []
    for name, provider in PROVIDERS.items():
        integration = integrations.get(name)
        state = platform_state(provider, integration, stats.get(name))
        per_day = [(day.strftime("%a %d %b"), *counts.get((name, day), (0, 0))) for day in days]
        events, failures = sum(d[1] for d in per_day), sum(d[2] for d in per_day)
        rows.append({
            "provider": provider, "integration": integration, "state": state,
            "today": per_day[-1][1], "events_14d": events, "failures_14d": failures,
            "failure_rate": round(100 * failures / events) if events else None,
            "last_event_at": (stats.get(name) and stats[name].last_event_at) or (integration and integration.last_event_at),
            "chart": daily_bars(per_day, f"{provider.label}: events per day, last {DAYS} days") if events else "",
            "webhook_url": webhook_url(tenant, name) if provider.receives_webhooks else "",
        })
    return rows


@tenant_page(reads=("integrations.view_tenantintegration", "webhooks.view_webhooklog"))
def dashboard(request):
    rows = platform_rows(request.tenant)
    return render(request, "integrations/dashboard.html", {
        "section": "dashboard", "days": DAYS,
        "connected": [r for r in rows if r["state"].key != "not-connected"],
        "not_connected": [r for r in rows if r["state"].key == "not-connected"],
    })
