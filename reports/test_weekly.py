"""Weekly reports: each tenant's own figures with week-over-week changes, the week in the tenant's
time zone (UTC−10, UTC+13, a DST week) with injected time, sent once per week (claim), Claude's
summary from a local fake (failing, slow, and exactly what it was sent), the command."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone as dt_timezone
from decimal import Decimal

import pytest
from django.core.mail.backends.base import BaseEmailBackend
from django.core.management import CommandError, call_command

from conftest import SHARED_EMAIL
from contacts.models import Contact, Payment, PendingSignup
from reports import content
from reports.fake_claude import FakeClaude
from reports.models import MetaAdInsight, WeeklyReport
from reports.sending import send
from reports.summary import prompt
from reports.tasks import due_reports
from reports.weekly import due_week, figures, week_bounds
from tenants.context import tenant_context
from webhooks.models import WebhookLog

WEEK = date(2026, 11, 23)  # a Monday
UTC = dt_timezone.utc


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def stamp(model, pk, **times) -> None:
    model.objects.filter(pk=pk).update(**times)


def fill(tenant, scale: int, spend: str) -> None:
    """A week of look-alike activity: the same sources, ids and e-mails at every tenant, numbers
    times ``scale``; the week before has half of it."""
    with tenant_context(tenant):
        for week, share in ((WEEK, 2), (WEEK - timedelta(days=7), 1)):
            start = datetime.combine(week, datetime.min.time(), tzinfo=UTC) + timedelta(hours=12)
            for n in range(2 * share):
                c = Contact.objects.create(email=f"lead{n}-{week}@example.com", first_name="Zed", last_name="Quux",
                                           phone="+33 6 12 34 56 78", source="manychat")
                stamp(Contact, c.pk, created_at=start + timedelta(days=n))
            for n in range(share):
                p = Payment.objects.create(amount=Decimal(50 * scale), currency="EUR", source="stripe",
                                           payment_event_id=f"pay-{week}-{n}", occurred_at=start + timedelta(days=n))
                stamp(Payment, p.pk, amount_refunded=Decimal(5) if n == 1 else Decimal(0))
            for day in range(7):
                MetaAdInsight.objects.create(ad_id="120200000000042", date=week + timedelta(days=day),
                                             spend=Decimal(spend) * share / 2, impressions=100 * scale, clicks=scale,
                                             currency="EUR")
            for n in range(share):
                log = WebhookLog.objects.create(source="stripe", event_id=f"evt-{week}-{n}", body=b"{}",
                                                status="processed")
                stamp(WebhookLog, log.pk, received_at=start)
            signup = PendingSignup.objects.create(contact=Contact.objects.get(email=SHARED_EMAIL), source="zoom",
                                                  external_id=f"reg-{week}", status="approved")
            stamp(PendingSignup, signup.pk, created_at=start, decided_at=start)


@pytest.fixture
def busy(world):
    fill(world.acme, scale=1, spend="10.00")
    fill(world.globex, scale=7, spend="333.33")
    return world


def text_for(tenant, week=WEEK) -> str:
    with tenant_context(tenant):
        return content.render(content.build(tenant, week))[0]


def test_each_tenant_report_holds_only_its_own_numbers_with_changes(busy):
    acme, globex = text_for(busy.acme), text_for(busy.globex)
    assert "  Total: 4 (+100%)" in acme and "  from ManyChat: 4 (+100%)" in acme
    assert "  EUR payments: 2 (+100%)" in acme and "  EUR total: 100.00 (+100%)" in acme
    assert "  EUR refunded: 5.00 (new)" in acme
    assert "  Approved: 1 (±0)" in acme and "  Queued: 1 (±0)" in acme
    assert "  Spend (EUR): 70.00 (+100%)" in acme and "  Clicks: 7 (±0)" in acme, acme
    assert "  Cost per new contact (EUR): 17.50 (±0)" in acme and "  Revenue / spend: 1.43× (±0)" in acme
    assert "  Stripe received: 2 (+100%)" in acme and "  Stripe processed: 2 (+100%)" in acme
    assert "  Spend (EUR): 2333.31 (+100%)" in globex and "  EUR total: 700.00 (+100%)" in globex
    assert "2333" not in acme and "700.00" not in acme and "70.00" not in globex.replace("700.00", "")


def test_the_html_part_draws_its_chart_without_images_and_uses_inline_css(busy):
    with tenant_context(busy.acme):
        built = content.build(busy.acme, WEEK)
    text, html = content.render(built, summary="")
    assert "<img" not in html and "<link" not in html and "<style" not in html and "url(" not in html
    assert html.count('title="spend 10.00"') == 7 and 'title="revenue 50.00"' in html
    assert [d["spend_px"] for d in built["chart"]] == [16] * 7  # 10 of a 50 maximum, 80 px tall
    assert "Hello" in text and "Daily spend / revenue (EUR)" in text


# --- time zones, with injected time ----------------------------------------------------------------


@pytest.mark.parametrize("zone, before, at", [
    ("Pacific/Honolulu", utc(2026, 11, 30, 16, 59), utc(2026, 11, 30, 17, 0)),  # UTC−10: Monday 07:00 = 17:00 UTC
    ("Pacific/Tongatapu", utc(2026, 11, 29, 17, 59), utc(2026, 11, 29, 18, 0)),  # UTC+13: Sunday 18:00 UTC
    ("UTC", utc(2026, 11, 30, 6, 59), utc(2026, 11, 30, 7, 0)),
])
def test_the_report_is_due_from_monday_0700_local(world, zone, before, at):
    world.acme.timezone = zone
    assert due_week(world.acme, before) == date(2026, 11, 16)  # last week's was due a week ago
    assert due_week(world.acme, at) == date(2026, 11, 23)


def test_due_reports_across_tenants_in_their_own_time_zones(world):
    world.acme.timezone, world.globex.timezone = "Pacific/Honolulu", "Pacific/Tongatapu"
    world.acme.save(), world.globex.save()
    now = utc(2026, 11, 30, 12, 0)  # Monday 02:00 in Honolulu, Tuesday 01:00 in Tonga
    assert sorted(due_reports(now)) == sorted([(str(world.acme.pk), "2026-11-16"), (str(world.globex.pk), "2026-11-23")])
    with tenant_context(world.globex):
        WeeklyReport.objects.create(week_start=date(2026, 11, 23), status=WeeklyReport.Status.SENT)
    assert due_reports(now) == [(str(world.acme.pk), "2026-11-16")]


@pytest.mark.parametrize("zone, first_in, last_out", [
    ("Pacific/Honolulu", utc(2026, 11, 23, 10, 0), utc(2026, 11, 30, 10, 0)),
    ("Pacific/Tongatapu", utc(2026, 11, 22, 11, 0), utc(2026, 11, 29, 11, 0)),
])
def test_figures_count_the_local_week_at_utc_minus_10_and_plus_13(world, zone, first_in, last_out):
    world.acme.timezone = zone
    with tenant_context(world.acme):
        for n, when in enumerate((first_in - timedelta(seconds=1), first_in, last_out - timedelta(seconds=1), last_out)):
            contact = Contact.objects.create(email=f"edge{n}@example.com", source=f"s{n}")
            stamp(Contact, contact.pk, created_at=when)
        got = figures(world.acme, WEEK)["new_contacts"]["by_source"]
    assert got == {"s1": 1, "s2": 1}


def test_a_dst_week_is_169_hours_and_its_last_hour_counts(world):
    world.acme.timezone = "Europe/Paris"  # summer time ends on Sunday 25 October 2026
    start, end = week_bounds(world.acme, date(2026, 10, 19))
    assert (start, end) == (utc(2026, 10, 18, 22), utc(2026, 10, 25, 23)) and end - start == timedelta(hours=169)
    with tenant_context(world.acme):
        for n, when in enumerate((utc(2026, 10, 25, 22, 30), utc(2026, 10, 25, 23, 30))):
            Payment.objects.create(amount=Decimal(10 + n), currency="EUR", source="stripe",
                                   payment_event_id=f"dst-{n}", occurred_at=when)
        week = figures(world.acme, date(2026, 10, 19))
    assert week["payments"] == {"EUR": {"count": 1, "total": "10.00", "refunded": "0.00", "refunds": 0}}
    assert week["daily"][-1] == {"date": "2026-10-25", "spend": "0.00", "revenue": "10.00"}


# --- sending once, Claude ----------------------------------------------------------------------------


def test_a_report_is_sent_once_and_again_only_when_forced(busy, mailoutbox):
    assert send(busy.acme, WEEK) == "sent"
    assert send(busy.acme, WEEK) == "skipped"
    (message,) = mailoutbox
    assert message.to == ["boss@acme.test"] and message.subject == "[Acme] Your week 2026-11-23 to 2026-11-29"
    html, kind = message.alternatives[0]
    assert kind == "text/html" and "Spend (EUR)" in html
    with tenant_context(busy.acme):
        report = WeeklyReport.objects.get(week_start=WEEK)
    assert (report.status, report.attempts, report.recipient) == ("sent", 1, "boss@acme.test")
    assert send(busy.acme, WEEK, force=True) == "sent" and len(mailoutbox) == 2


class RefusingBackend(BaseEmailBackend):
    """A mail server that is down."""

    def send_messages(self, messages):
        raise ConnectionRefusedError("mail server down")


def test_a_failed_send_is_recorded_and_the_next_try_sends(busy, mailoutbox, settings):
    working = settings.MAILERS
    settings.MAILERS = {"default": {"BACKEND": "reports.test_weekly.RefusingBackend"}}
    assert send(busy.acme, WEEK) == "failed"
    with tenant_context(busy.acme):
        report = WeeklyReport.objects.get(week_start=WEEK)
    assert report.status == "failed" and report.last_error == "the e-mail could not be sent: mail server down"
    settings.MAILERS = working
    assert send(busy.acme, WEEK) == "sent" and len(mailoutbox) == 1


def test_a_crashed_senders_claim_is_taken_again_once_stale(busy, mailoutbox, settings):
    now = utc(2026, 11, 30, 8)
    with tenant_context(busy.acme):
        WeeklyReport.objects.create(week_start=WEEK, status="sending", claimed_at=now - timedelta(seconds=60))
    assert send(busy.acme, WEEK, now=now) == "skipped"  # maybe still sending
    later = now + timedelta(seconds=settings.REPORT_STALE_AFTER_SECONDS)
    assert send(busy.acme, WEEK, now=later) == "sent" and len(mailoutbox) == 1


@pytest.fixture
def claude(settings):
    with FakeClaude() as server:
        settings.ANTHROPIC_API_KEY, settings.ANTHROPIC_BASE_URL = "sk-ant-test-key", server.base
        settings.ANTHROPIC_MODEL, settings.ANTHROPIC_TIMEOUT_SECONDS = "claude-test-model", 0.5
        yield server


def test_claude_gets_exactly_the_aggregates_and_no_contact_pii(busy, claude, mailoutbox):
    busy.acme.owner_name = "Ada Lovelace"
    assert send(busy.acme, WEEK) == "sent"
    (body,) = claude.bodies
    with tenant_context(busy.acme):
        built = content.build(busy.acme, WEEK)
    assert body["model"] == "claude-test-model"
    assert body["messages"] == [{"role": "user", "content": prompt(built["week"], built["before"])}]
    sent = str(body)
    for secret in (SHARED_EMAIL, "Pat", "Zed", "Quux", "+33 6", "example.com", "Ada", "boss@acme.test"):
        assert secret not in sent
    (message,) = mailoutbox
    assert "Spend rose while new contacts held steady." in message.body
    assert "Spend rose while new contacts held steady." in message.alternatives[0][0]
    assert "Hello Ada Lovelace" in message.body  # the greeting is ours, not Claude's


@pytest.mark.parametrize("mode", ["fail", "slow"])
def test_when_claude_fails_or_times_out_the_report_goes_without_a_word_about_it(busy, claude, mailoutbox, mode):
    claude.mode = mode
    assert send(busy.acme, WEEK) == "sent"
    (message,) = mailoutbox
    assert claude.bodies  # it was asked
    assert "Spend rose" not in message.body and "summary" not in message.body.lower()
    assert "Claude" not in message.body and "Claude" not in message.alternatives[0][0]


def test_no_key_no_call(busy, settings, mailoutbox):
    with FakeClaude() as server:
        settings.ANTHROPIC_API_KEY, settings.ANTHROPIC_BASE_URL = "", server.base
        assert send(busy.acme, WEEK) == "sent"
        assert server.bodies == []


# --- the command -----------------------------------------------------------------------------------


def test_command_sends_one_tenants_week_once_unless_forced(busy, mailoutbox, capsys):
    call_command("send_weekly_reports", "--tenant", "acme", "--week-of", "2026-11-26")
    assert capsys.readouterr().out.splitlines()[-1] == "1 sent"
    call_command("send_weekly_reports", "--tenant", "acme", "--week-of", "2026-11-26")
    out = capsys.readouterr().out.splitlines()
    assert out == ["acme week of 2026-11-23: skipped", "0 sent"]
    call_command("send_weekly_reports", "--tenant", "acme", "--week-of", "2026-11-26", "--force")
    assert capsys.readouterr().out.splitlines()[-1] == "1 sent" and len(mailoutbox) == 2


def test_command_dry_run_prints_the_text_and_sends_nothing(busy, mailoutbox, capsys):
    call_command("send_weekly_reports", "--tenant", "globex", "--week-of", "2026-11-23", "--dry-run")
    out = capsys.readouterr().out
    assert "  Spend (EUR): 2333.31 (+100%)" in out and out.splitlines()[-1] == "0 sent (dry run: 1 shown)"
    assert mailoutbox == []
    with tenant_context(busy.globex):
        assert not WeeklyReport.objects.filter(week_start=WEEK).exists()


@pytest.mark.parametrize("args, message", [
    (["--tenant", "nope"], "no tenant with slug 'nope'"),
    (["--week-of", "26/11/2026"], "--week-of must be a date as YYYY-MM-DD"),
    (["--week-of", "0001-01-01", "--dry-run"], "--week-of must be between 1970-01-01 and 2999-12-31"),
])
def test_command_refuses_bad_input_in_one_line(world, args, message):
    with pytest.raises(CommandError, match=message) as error:
        call_command("send_weekly_reports", *args)
    assert "\n" not in str(error.value)


def test_command_refuses_a_tenant_without_report_email(world):
    world.globex.report_email = ""
    world.globex.save()
    with pytest.raises(CommandError, match="globex has no report_email"):
        call_command("send_weekly_reports", "--tenant", "globex")
