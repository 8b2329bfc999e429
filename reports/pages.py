"""``/reports/``: the tenant's weekly report on a page, this week so far and past weeks."""

from datetime import date, timedelta

from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from reports import content
from reports.models import WeeklyReport
from reports.weekly import tz, week_start_of
from tenants.decorators import tenant_page

PAST_WEEKS = 12


def chosen_week(request, this_week: date) -> date:
    """``?week=YYYY-MM-DD`` (any day of it), within the past weeks shown; anything else: this week."""
    try:
        week = week_start_of(date.fromisoformat(request.GET.get("week", "")))
    except ValueError:
        return this_week
    return week if this_week - timedelta(weeks=PAST_WEEKS) <= week <= this_week else this_week


@tenant_page(reads=("reports.view_weeklyreport", "reports.view_metaadinsight"))
@require_GET
def weekly(request):
    tenant = request.tenant
    this_week = week_start_of(timezone.now().astimezone(tz(tenant)).date())
    week = chosen_week(request, this_week)
    built = content.build(tenant, week)
    sent = {r.week_start: r for r in WeeklyReport.objects.filter(week_start__gte=this_week - timedelta(weeks=PAST_WEEKS))}
    weeks = [{"start": w, "report": sent.get(w), "current": w == week}
             for w in (this_week - timedelta(weeks=n) for n in range(PAST_WEEKS + 1))]
    return render(request, "reports/weekly.html", {
        "section": "reports", **built, "weeks": weeks, "so_far": week == this_week,
        "chart_height": content.CHART_HEIGHT, "summary": (sent.get(week).summary if sent.get(week) else ""),
    })
