"""What a weekly report says: the week in the tenant's time zone and the week's figures.

A week is Monday 00:00 to the next Monday 00:00 on the tenant's wall clock, so a DST week is 167 or
169 hours long. The report for a week is due from the following Monday 07:00 local time.
``figures`` reads one tenant's rows only (it runs inside that tenant's context) and returns plain
aggregates: counts and sums by source, currency, platform and status, never a contact's name,
e-mail or phone. That dict is what the e-mail, the page and Claude see.
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Coalesce, TruncDate

from contacts.models import Contact, Payment, PendingSignup
from reports.models import MetaAdInsight
from webhooks.models import WebhookLog

SEND_AFTER = time(7, 0)
PAID = (Payment.Status.SUCCEEDED, Payment.Status.PARTIALLY_REFUNDED, Payment.Status.REFUNDED)
HEALTH_STATUSES = ("processed", "failed", "dead", "rejected")


def tz(tenant) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(tenant.timezone or "UTC")


def week_start_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def week_bounds(tenant, week_start: date) -> tuple[datetime, datetime]:
    """[start, end) of the week in UTC: the local midnights, whatever DST does between. (In UTC
    because Python subtracts two datetimes of one zone by their wall clocks.)"""
    zone = tz(tenant)
    return (datetime.combine(week_start, time.min, tzinfo=zone).astimezone(UTC),
            datetime.combine(week_start + timedelta(days=7), time.min, tzinfo=zone).astimezone(UTC))


def due_week(tenant, now: datetime) -> date:
    """The latest week whose report is due at ``now``: last week once this Monday 07:00 local has
    passed, else the week before (already due last Monday; sent then unless something failed)."""
    local = now.astimezone(tz(tenant))
    this_monday = week_start_of(local.date())
    due_from = datetime.combine(this_monday, SEND_AFTER, tzinfo=tz(tenant))
    return this_monday - timedelta(days=7 if local >= due_from else 14)


def money(value) -> str:
    return f"{(value or Decimal(0)).quantize(Decimal('0.01'))}"


def figures(tenant, week_start: date) -> dict:
    """One week's aggregates for the active tenant (call inside its ``tenant_context``)."""
    start, end = week_bounds(tenant, week_start)
    days = [week_start + timedelta(days=n) for n in range(7)]
    contacts = dict(
        Contact.objects.filter(created_at__gte=start, created_at__lt=end)
        .values_list("source").annotate(n=Count("id")).order_by("source")
    )
    paid_at = Coalesce("occurred_at", "created_at")
    payments_qs = Payment.objects.annotate(at=paid_at).filter(at__gte=start, at__lt=end, status__in=PAID)
    payments = {
        row["currency"]: {"count": row["n"], "total": money(row["total"]), "refunded": money(row["refunded"]),
                          "refunds": row["refunds"]}
        for row in payments_qs.values("currency").annotate(
            n=Count("id"), total=Sum("amount"), refunded=Sum("amount_refunded"),
            refunds=Count("id", filter=Q(amount_refunded__gt=0)),
        ).order_by("currency")
    }
    signups = PendingSignup.objects.aggregate(
        queued=Count("id", filter=Q(created_at__gte=start, created_at__lt=end)),
        approved=Count("id", filter=Q(status="approved", decided_at__gte=start, decided_at__lt=end)),
        dismissed=Count("id", filter=Q(status="dismissed", decided_at__gte=start, decided_at__lt=end)),
    )
    insights = MetaAdInsight.objects.filter(date__gte=days[0], date__lte=days[-1])
    meta = {
        row["currency"] or "?": {"spend": money(row["spend"]), "impressions": row["impressions"], "clicks": row["clicks"]}
        for row in insights.values("currency").annotate(
            spend=Sum("spend"), impressions=Sum("impressions"), clicks=Sum("clicks")
        ).order_by("currency")
    }
    health: dict[str, dict[str, int]] = {}
    for row in WebhookLog.objects.filter(received_at__gte=start, received_at__lt=end).values("source", "status") \
            .annotate(n=Count("id")).order_by("source"):
        platform = health.setdefault(row["source"], {"received": 0, **{s: 0 for s in HEALTH_STATUSES}})
        platform["received"] += row["n"]
        if row["status"] in HEALTH_STATUSES:
            platform[row["status"]] += row["n"]
    result = {
        "week_start": week_start.isoformat(), "week_end": days[-1].isoformat(), "time_zone": tenant.timezone,
        "new_contacts": {"total": sum(contacts.values()), "by_source": contacts},
        "payments": payments, "signups": signups, "meta": meta, "webhooks": health,
    }
    result["ratios"] = ratios(result)
    result["daily"] = daily(tenant, days, payments_qs, insights, currency=main_currency(result))
    return result


def main_currency(week: dict) -> str:
    """The currency the chart and the ratios use: Meta's account currency, else the biggest payments."""
    if week["meta"]:
        return max(week["meta"], key=lambda c: Decimal(week["meta"][c]["spend"]))
    if week["payments"]:
        return max(week["payments"], key=lambda c: Decimal(week["payments"][c]["total"]))
    return ""


def ratios(week: dict) -> dict:
    """Cost per new contact and revenue/spend, where both sides exist (same currency only)."""
    currency = main_currency(week)
    spend = Decimal(week["meta"].get(currency, {}).get("spend", "0"))
    revenue = Decimal(week["payments"].get(currency, {}).get("total", "0"))
    new = week["new_contacts"]["total"]
    return {
        "currency": currency,
        "cost_per_new_contact": money(spend / new) if spend and new else None,
        "revenue_per_spend": f"{(revenue / spend).quantize(Decimal('0.01'))}" if spend and revenue else None,
    }


def daily(tenant, days: list[date], payments_qs, insights, currency: str) -> list[dict]:
    """Spend and revenue per local day in the main currency (the bar chart)."""
    spend = dict(insights.filter(currency=currency).values_list("date").annotate(s=Sum("spend")))
    revenue = dict(
        payments_qs.filter(currency=currency).annotate(day=TruncDate(F("at"), tzinfo=tz(tenant)))
        .values_list("day").annotate(s=Sum("amount"))
    )
    return [{"date": d.isoformat(), "spend": money(spend.get(d)), "revenue": money(revenue.get(d))} for d in days]


def change(current, previous) -> str:
    """Week over week, as a person reads it: +12%, −5%, new, or ±0."""
    current, previous = Decimal(str(current or 0)), Decimal(str(previous or 0))
    if previous == 0:
        return "new" if current else "±0"
    percent = ((current - previous) / previous * 100).quantize(Decimal("1"))
    return "±0" if percent == 0 else f"{'+' if percent > 0 else '−'}{abs(percent)}%"
