"""Cross-tenant analytics for operators: every tenant side by side, sortable, with totals.

Read in an operator context (the admin page has one; the API view opens one, with its reason in
the audit log). One grouped query per figure, whatever the number of tenants. Access: staff with
the ``reports.view_tenant_analytics`` permission (a custom permission of ``WeeklyReport``;
superusers hold every permission); everyone else, tenant users included, gets 403.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

from django.db.models import Count, Max, Q, Sum
from django.utils import timezone

from contacts.models import Contact, Payment
from integrations.models import TenantIntegration
from reports.models import MetaAdInsight, WeeklyReport
from reports.weekly import PAID, money
from tenants.models import Tenant
from webhooks.models import WebhookLog

PERMISSION = "reports.view_tenant_analytics"
NUMBER_COLUMNS = ("contacts", "contacts_7d", "contacts_30d", "events_7d", "failed_7d", "dead_7d",
                  "integrations_failing")
SORTABLE = ("name", *NUMBER_COLUMNS, "last_report_sent_at")


def may_view(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.is_staff and user.has_perm(PERMISSION))


def _by_tenant(queryset, **aggregates) -> dict:
    return {row.pop("tenant_id"): row for row in queryset.values("tenant_id").annotate(**aggregates).order_by()}


def _money_by_tenant(queryset, field: str) -> dict:
    out = defaultdict(dict)
    for row in queryset.values("tenant_id", "currency").annotate(total=Sum(field)).order_by("currency"):
        out[row["tenant_id"]][row["currency"] or "?"] = money(row["total"])
    return out


def rows(now=None) -> list[dict]:
    """One dict per tenant (call inside ``operator_context``)."""
    now = now or timezone.now()
    week, month, day = now - timedelta(days=7), now - timedelta(days=30), now - timedelta(hours=24)
    contacts = _by_tenant(Contact.objects, contacts=Count("id"), contacts_7d=Count("id", filter=Q(created_at__gte=week)),
                          contacts_30d=Count("id", filter=Q(created_at__gte=month)))
    payments = _money_by_tenant(Payment.objects.filter(status__in=PAID), "amount")
    spend = _money_by_tenant(MetaAdInsight.objects.filter(date__gte=(now - timedelta(days=30)).date()), "spend")
    events = _by_tenant(WebhookLog.objects.filter(received_at__gte=week), events_7d=Count("id"),
                        failed_7d=Count("id", filter=Q(status="failed")), dead_7d=Count("id", filter=Q(status="dead")))
    failing = _by_tenant(
        TenantIntegration.objects.filter(is_active=True).filter(
            ~Q(sync_disabled_reason="") | ~Q(last_sync_error="") | Q(last_error_at__gte=day)
        ), integrations_failing=Count("id"),
    )
    reports = _by_tenant(WeeklyReport.objects.filter(status="sent"), last_report_sent_at=Max("sent_at"))
    out = []
    for tenant in Tenant.objects.order_by("name"):
        row = {"tenant_id": str(tenant.pk), "slug": tenant.slug, "name": tenant.name, "is_active": tenant.is_active}
        for source in (contacts, events, failing):
            row.update({k: v for k, v in source.get(tenant.pk, {}).items()})
        row.update({column: row.get(column, 0) for column in NUMBER_COLUMNS})
        row["payments"] = payments.get(tenant.pk, {})
        row["meta_spend_30d"] = spend.get(tenant.pk, {})
        row["last_report_sent_at"] = reports.get(tenant.pk, {}).get("last_report_sent_at")
        out.append(row)
    return out


def sort(table: list[dict], key: str) -> tuple[list[dict], str]:
    """Sorted by ``key`` (``-`` first for descending); an unknown key sorts by name."""
    column = key.lstrip("-")
    if column not in SORTABLE:
        key, column = "name", "name"
    descending = key.startswith("-")
    present = [r for r in table if r[column] is not None]
    missing = [r for r in table if r[column] is None]  # never sent a report: always last
    present.sort(key=lambda r: (r[column].lower() if isinstance(r[column], str) else r[column]), reverse=descending)
    return present + missing, key


def totals(table: list[dict]) -> dict:
    total = {column: sum(r[column] for r in table) for column in NUMBER_COLUMNS}
    for field in ("payments", "meta_spend_30d"):
        sums: dict[str, Decimal] = defaultdict(Decimal)
        for r in table:
            for currency, value in r[field].items():
                sums[currency] += Decimal(value)
        total[field] = {c: money(v) for c, v in sorted(sums.items())}
    total["tenants"] = len(table)
    return total
