import logging
from datetime import date

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from reports.models import WeeklyReport
from reports.sending import send
from reports.weekly import due_week
from tenants.context import operator_context
from tenants.models import Tenant

log = logging.getLogger(__name__)


@shared_task(name="reports.send_weekly_report", bind=True, acks_late=True, max_retries=None)
def send_weekly_report(self, tenant_id: str, week_start: str, force: bool = False) -> str:
    """Send one tenant's report for one week, once (the ``WeeklyReport`` row is the claim). A
    failed send comes back with backoff, at most ``REPORT_MAX_RETRIES`` times."""
    tenant = Tenant.objects.filter(pk=tenant_id, is_active=True).first()
    if tenant is None:
        return "skipped (no such active tenant)"
    outcome = send(tenant, date.fromisoformat(week_start), force=force)
    if outcome == "failed" and self.request.retries < settings.REPORT_MAX_RETRIES:
        raise self.retry(countdown=settings.REPORT_RETRY_BASE_SECONDS * 2**self.request.retries)
    return outcome


def due_reports(now) -> list[tuple[str, str]]:
    """(tenant id, week start) of every report due at ``now`` and not sent yet, across tenants."""
    tenants = list(Tenant.objects.filter(is_active=True).exclude(report_email=""))
    due = {t.pk: due_week(t, now) for t in tenants}
    with operator_context("beat: find due weekly reports"):
        sent = set(
            WeeklyReport.objects.filter(status=WeeklyReport.Status.SENT, week_start__in=set(due.values()))
            .values_list("tenant_id", "week_start")
        )
    return [(str(pk), week.isoformat()) for pk, week in due.items() if (pk, week) not in sent]


@shared_task(name="reports.send_due_weekly_reports")
def send_due_weekly_reports() -> int:
    """Beat, hourly: one ``send_weekly_report`` task per tenant whose report is due (after Monday
    07:00 in its own time zone) and not sent yet. Returns how many it published."""
    due = due_reports(timezone.now())
    for tenant_id, week_start in due:
        send_weekly_report.delay(tenant_id, week_start)
    return len(due)
