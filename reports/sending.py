"""Sending one tenant's weekly report, exactly once.

1. **Claim** in a committed transaction of its own: the ``WeeklyReport`` row (unique on tenant +
   week) is created if missing, then moved to ``sending`` by one conditional ``UPDATE`` that only
   matches a row that is ``pending`` or ``failed``, a ``sending`` row older than
   ``REPORT_STALE_AFTER_SECONDS`` (a crashed worker), or, with ``force``, a ``sent`` one. A doubled
   beat, a retried task or a second worker finds nothing to update and sends nothing.
2. **Build** the figures in the tenant's context, ask Claude for a summary (outside any
   transaction), render, **send**.
3. **Record** ``sent`` (with what was sent) or ``failed`` (retried by the task, shown in the admin).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, mailers
from django.db import IntegrityError
from django.db.models import F, Q
from django.utils import timezone

from reports import content
from reports.models import WeeklyReport
from reports.summary import claude_summary
from tenants.context import tenant_context

log = logging.getLogger(__name__)
Status = WeeklyReport.Status


@dataclass
class Prepared:
    subject: str
    text: str
    html: str
    summary: str
    recipient: str


def prepare(tenant, week_start: date) -> Prepared:
    """The e-mail for one week, built from the tenant's own rows only."""
    with tenant_context(tenant):
        built = content.build(tenant, week_start)
    summary = claude_summary(built["week"], built["before"])  # no transaction waits on Claude
    text, html = content.render(built, summary)
    return Prepared(content.subject(built), text, html, summary, tenant.report_email)


def claim(tenant, week_start: date, now: datetime, force: bool = False) -> WeeklyReport | None:
    with tenant_context(tenant):
        try:
            WeeklyReport.objects.get_or_create(week_start=week_start)
        except IntegrityError:  # created by a concurrent claim a moment ago: its row is ours to race for
            pass
    with tenant_context(tenant):
        stale = now - timedelta(seconds=settings.REPORT_STALE_AFTER_SECONDS)
        takeable = Q(status__in=[Status.PENDING, Status.FAILED]) | Q(status=Status.SENDING, claimed_at__lt=stale)
        if force:
            takeable |= Q(status=Status.SENT)
        rows = WeeklyReport.objects.filter(takeable, week_start=week_start)
        if rows.update(status=Status.SENDING, claimed_at=now, attempts=F("attempts") + 1) != 1:
            return None
        return WeeklyReport.objects.get(week_start=week_start)


def send(tenant, week_start: date, force: bool = False, now: datetime | None = None) -> str:
    """``sent``, ``skipped`` (no address, already sent or being sent) or ``failed``."""
    if not tenant.report_email:
        return "skipped"
    report = claim(tenant, week_start, now or timezone.now(), force)
    if report is None:
        return "skipped"
    try:
        prepared = prepare(tenant, week_start)
        message = EmailMultiAlternatives(prepared.subject, prepared.text, None, [prepared.recipient])
        message.attach_alternative(prepared.html, "text/html")
        mailers.default.send_messages([message])
    except Exception as exc:  # the mail server's refusal, a template bug: retried, shown in the admin
        log.warning("weekly report %s of tenant %s failed: %s", week_start, tenant.pk, exc.__class__.__name__)
        record(tenant, report, status=Status.FAILED, last_error=f"the e-mail could not be sent: {str(exc)[:300] or 'no reason given'}")
        return "failed"
    record(tenant, report, status=Status.SENT, sent_at=timezone.now(), last_error="", subject=prepared.subject,
           recipient=prepared.recipient, summary=prepared.summary, text_body=prepared.text)
    return "sent"


def record(tenant, report: WeeklyReport, **fields) -> None:
    with tenant_context(tenant):
        WeeklyReport.objects.filter(pk=report.pk, claimed_at=report.claimed_at).update(**fields)
