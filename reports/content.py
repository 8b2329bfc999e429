"""The weekly report as sections of rows (label, value, change against the week before), the same
for the HTML part, the text part and the ``/reports/`` page, plus the bar chart's geometry."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from django.template.loader import render_to_string

from integrations.registry import label_of
from reports.weekly import HEALTH_STATUSES, change, figures

CHART_HEIGHT = 80  # pixels of the tallest bar


def row(label: str, value, previous, suffix: str = "") -> dict:
    return {"label": label, "value": f"{value}{suffix}", "change": change(value, previous)}


def sections(week: dict, before: dict) -> list[dict]:
    out = [{"title": "New contacts", "rows": [row("Total", week["new_contacts"]["total"],
                                                  before["new_contacts"]["total"])] + [
        row(f"from {label_of(source)}", n, before["new_contacts"]["by_source"].get(source))
        for source, n in week["new_contacts"]["by_source"].items()
    ]}]
    payments = []
    for currency, p in week["payments"].items():
        was = before["payments"].get(currency, {})
        payments += [row(f"{currency} payments", p["count"], was.get("count")),
                     row(f"{currency} total", p["total"], was.get("total")),
                     row(f"{currency} refunded", p["refunded"], was.get("refunded"))]
    out.append({"title": "Payments", "rows": payments or [row("Payments", 0, sum_count(before["payments"]))]})
    out.append({"title": "Sign-ups", "rows": [
        row(name.capitalize(), week["signups"][name], before["signups"][name]) for name in ("queued", "approved", "dismissed")
    ]})
    meta = []
    for currency, m in week["meta"].items():
        was = before["meta"].get(currency, {})
        meta += [row(f"Spend ({currency})", m["spend"], was.get("spend")),
                 row("Impressions", m["impressions"], was.get("impressions")),
                 row("Clicks", m["clicks"], was.get("clicks"))]
    ratios, was = week["ratios"], before["ratios"]
    if ratios["cost_per_new_contact"]:
        meta.append(row(f"Cost per new contact ({ratios['currency']})", ratios["cost_per_new_contact"],
                        was["cost_per_new_contact"]))
    if ratios["revenue_per_spend"]:
        meta.append(row("Revenue / spend", ratios["revenue_per_spend"], was["revenue_per_spend"], "×"))
    if meta:
        out.append({"title": "Meta Ads", "rows": meta})
    health = []
    for platform, counts in week["webhooks"].items():
        was = before["webhooks"].get(platform, {})
        health += [row(f"{label_of(platform)} {name}", counts[name], was.get(name)) for name in ("received", *HEALTH_STATUSES)]
    out.append({"title": "Webhook health", "rows": health or [row("Deliveries", 0, 0)]})
    return out


def sum_count(payments: dict) -> int:
    return sum(p["count"] for p in payments.values())


def chart(week: dict) -> list[dict]:
    """Bars as pixel heights (drawn with table cells: no image, nothing to load)."""
    values = [Decimal(d[k]) for d in week["daily"] for k in ("spend", "revenue")]
    top = max(values + [Decimal(0)])
    scale = (lambda v: int(Decimal(v) / top * CHART_HEIGHT) if top else 0)
    return [{**d, "day": date.fromisoformat(d["date"]).strftime("%a"), "spend_px": scale(d["spend"]),
             "revenue_px": scale(d["revenue"])} for d in week["daily"]]


def build(tenant, week_start: date) -> dict:
    """Everything a report shows, for the active tenant (inside its ``tenant_context``)."""
    week, before = figures(tenant, week_start), figures(tenant, week_start - timedelta(days=7))
    return {"tenant_name": tenant.name, "owner_name": tenant.owner_name, "week": week, "before": before,
            "sections": sections(week, before), "chart": chart(week), "currency": week["ratios"]["currency"]}


def subject(content: dict) -> str:
    week = content["week"]
    return f"[{content['tenant_name']}] Your week {week['week_start']} to {week['week_end']}"


def render(content: dict, summary: str = "") -> tuple[str, str]:
    """(text, html) of the e-mail."""
    context = {**content, "summary": summary, "chart_height": CHART_HEIGHT}
    return (render_to_string("reports/weekly_email.txt", context),
            render_to_string("reports/weekly_email.html", context))
