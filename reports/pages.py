"""``/reports/``: the tenant's weekly report on a page, this week so far and past weeks; ``/insights/``:
the tenant's Easy!Appointments bookings (``reports.bookings``) with charts, Claude's insights and two actions."""

from datetime import date, timedelta

from engarde.days import parse_day
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from reports import content
from reports.models import WeeklyReport
from reports.weekly import tz, week_start_of
from tenants.decorators import can_administer, outside_tenant_transaction, tenant_page

PAST_WEEKS = 12


def chosen_week(request, this_week: date) -> date:
    """``?week=YYYY-MM-DD`` (any day of it), within the past weeks shown; anything else: this week."""
    try:
        week = week_start_of(parse_day(request.GET.get("week", ""), "week"))
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


# --- /insights/: Easy!Appointments bookings ------------------------------------------------------------

INSIGHTS_READS = ("integrations.view_tenantintegration",)
QUEUE_CHANGES = "contacts.change_pendingsignup"
LIST_CHANGES = "contacts.change_contact"


def _range_query(date_from, date_to) -> str:
    from django.utils.http import urlencode

    return urlencode({"date_from": date_from.isoformat(), "date_to": date_to.isoformat()})


def _charts(stats: dict) -> list[dict]:
    from integrations.charts import labelled_bars

    hours = [h for h, n in stats["by_hour"].items() if n]
    shown_hours = [f"{h:02d}" for h in range(int(min(hours)), int(max(hours)) + 1)] if hours else []
    parts = [
        ("by_weekday", "Bookings by weekday", list(stats["by_weekday"].items())),
        ("by_hour", "Bookings by start hour", [(f"{h}:00", stats["by_hour"][h]) for h in shown_hours]),
        ("by_service", "Bookings by service", list(stats["by_service"].items())),
        ("by_provider", "Bookings by provider", list(stats["by_provider"].items())),
        ("by_status", "Bookings by status", list(stats["by_status"].items())),
    ]
    return [{"key": key, "title": title, "svg": labelled_bars(items, title)} for key, title, items in parts if items]


@outside_tenant_transaction
@tenant_page(reads=INSIGHTS_READS)
@require_GET
def insights(request):
    """Stats of the range's bookings as charts, Claude's insights on request (``?ask=1``), and for
    owners and admins the two actions. E!A and Claude are called with no transaction open."""
    from django.conf import settings

    from reports import bookings
    from tenants.context import tenant_context

    tenant = request.tenant
    context = {"section": "insights", "analysis_types": bookings.ANALYSIS_TYPES, "error": "", "not_connected": "",
               "stats": None, "insights": "", "insights_error": "", "claude": bool(settings.ANTHROPIC_API_KEY)}
    status = 200
    kind = request.GET.get("analysis_type") or "overview"
    context["analysis_type"] = kind
    try:
        date_from, date_to = bookings.parse_range(request.GET, tenant)
        context.update(date_from=date_from, date_to=date_to)
        with tenant_context(tenant):
            integration = bookings.connection_of()
        bookings.check_range(date_from, date_to)
        kind = bookings.analysis_type(kind)
        found = bookings.fetch_bookings(integration, date_from, date_to)
        stats = bookings.booking_stats(found, date_from, date_to)
        context.update(stats=stats, charts=_charts(stats), range_query=_range_query(date_from, date_to))
        if request.GET.get("ask"):
            try:
                context["insights"] = bookings.insights(stats, kind)
            except (bookings.ClaudeUnavailable, bookings.PlatformFailed) as exc:
                context["insights_error"] = str(exc)
    except bookings.BadRequest as exc:
        context["error"], status = exc.reason, 400
    except bookings.NotConnected as exc:
        context["not_connected"] = str(exc)
    except bookings.PlatformFailed as exc:
        context["error"], status = str(exc), 502
    context.setdefault("date_from", bookings.today_in(tenant) - timedelta(days=bookings.DEFAULT_RANGE_DAYS - 1))
    context.setdefault("date_to", bookings.today_in(tenant))
    context["can_queue"] = can_administer(request, QUEUE_CHANGES)
    context["can_sync"] = can_administer(request, LIST_CHANGES)
    return render(request, "reports/insights.html", context, status=status)


def _insights_action(request, act):
    """A POST of the page's two buttons: the range from the form, the work in ``act``, the answer as
    a message, back to the page for the same range."""
    from django.contrib import messages
    from django.shortcuts import redirect

    from reports import bookings

    target = "/insights/"
    try:
        date_from, date_to = bookings.date_range(request.POST, request.tenant)
        target = f"/insights/?{_range_query(date_from, date_to)}"
        messages.success(request, act(date_from, date_to))
    except (bookings.BadRequest, bookings.NotConnected, bookings.PlatformFailed) as exc:
        messages.error(request, getattr(exc, "reason", None) or str(exc))
    return redirect(target)


@outside_tenant_transaction
@tenant_page(admin_only=True, reads=("contacts.view_pendingsignup",), changes=QUEUE_CHANGES)
@require_POST
def insights_add_bookers(request):
    from reports import bookings
    from tenants.context import tenant_context

    def act(date_from, date_to):
        with tenant_context(request.tenant):
            integration = bookings.connection_of()
        found = bookings.fetch_bookings(integration, date_from, date_to, customers=True)
        people, skipped = bookings.bookers(found)
        with tenant_context(request.tenant):
            answer = bookings.queue_bookers(people, skipped, auto_invite=request.POST.get("auto_invite") == "on",
                                            user=request.user)
        return (f"Sign-up queue: {answer['added']} added, {answer['already_queued']} already queued, "
                f"{answer['skipped']} skipped (no e-mail), {answer['approved']} approved.")

    return _insights_action(request, act)


@outside_tenant_transaction
@tenant_page(admin_only=True, reads=("contacts.view_contact",), changes=LIST_CHANGES)
@require_POST
def insights_sync_email(request):
    from reports import bookings
    from tenants.context import tenant_context

    def act(date_from, date_to):
        with tenant_context(request.tenant):
            api_key, list_id = bookings.brevo_target(request.POST.get("list_id") or None)
            integration = bookings.connection_of()
        found = bookings.fetch_bookings(integration, date_from, date_to, customers=True)
        people, _skipped = bookings.bookers(found)
        answer = bookings.sync_to_brevo(people, api_key, list_id)
        return f"Brevo list {answer['list_id']}: {answer['synced']} synced, {answer['failed']} failed."

    return _insights_action(request, act)
