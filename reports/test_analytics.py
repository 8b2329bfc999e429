"""Operators' cross-tenant analytics (admin page and API), the admin's weekly reports with "send
again", and the tenant users' ``/reports/`` page."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from conftest import api_auth, make_user
from contacts.models import Contact
from integrations.models import TenantIntegration
from reports.models import MetaAdInsight, WeeklyReport
from reports.weekly import tz, week_start_of
from tenants.context import tenant_context
from tenants.models import Membership
from webhooks.models import WebhookLog

URL = "/api/v1/admin/analytics/"
PAGE = "/admin/reports/weeklyreport/analytics/"


def bearer(user) -> dict:
    return api_auth(user)


@pytest.fixture
def figures(world):
    """acme: 3 contacts, a dead and a failed event, spend in EUR, a failing sync; globex: 1 contact."""
    today = timezone.now().date()
    with tenant_context(world.acme):
        for n in range(2):
            Contact.objects.create(email=f"new{n}@acme.test", source="zoom")
        WebhookLog.objects.create(source="stripe", event_id="e-dead", body=b"{}", status="dead")
        WebhookLog.objects.create(source="stripe", event_id="e-failed", body=b"{}", status="failed")
        # Yesterday, but never before the tenant's current week: on a Monday yesterday was last week,
        # and the page's "so far" week would have no spend (the test failed every Monday).
        this_week = week_start_of(timezone.now().astimezone(tz(world.acme)).date())
        spent_on = max(this_week, today - timedelta(days=1))
        MetaAdInsight.objects.create(ad_id="a1", date=spent_on, spend=Decimal("12.34"), currency="EUR")
        TenantIntegration.objects.filter(provider="manychat").update(last_sync_error="Meta usage at 100%")
        WeeklyReport.objects.filter(week_start=date(2020, 1, 6)).update(sent_at=timezone.now())
    return world


@pytest.fixture
def analyst(db):
    """Staff with exactly the analytics permission, nothing else."""
    user = make_user("ana", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_tenant_analytics"))
    return user


def test_the_api_shows_every_tenant_with_totals_to_staff_with_the_permission(figures, client, analyst):
    body = client.get(URL + "?sort=-contacts", **bearer(analyst)).json()
    assert body["sort"] == "-contacts"
    acme, globex = body["results"]
    assert (acme["slug"], acme["contacts"], acme["contacts_7d"], acme["events_7d"]) == ("acme", 3, 3, 3)
    assert (acme["failed_7d"], acme["dead_7d"], acme["integrations_failing"]) == (1, 1, 1)
    assert acme["payments"] == {"EUR": "49.00"} and acme["meta_spend_30d"] == {"EUR": "12.34"}
    assert acme["last_report_sent_at"] and globex["last_report_sent_at"] is None
    assert (globex["slug"], globex["contacts"], globex["integrations_failing"]) == ("globex", 1, 0)
    assert body["totals"] == {
        "contacts": 4, "contacts_7d": 4, "contacts_30d": 4, "events_7d": 4, "failed_7d": 1, "dead_7d": 1,
        "integrations_failing": 1, "payments": {"EUR": "98.00"}, "meta_spend_30d": {"EUR": "12.34"}, "tenants": 2,
    }
    assert [r["slug"] for r in client.get(URL + "?sort=contacts", **bearer(analyst)).json()["results"]] == ["globex", "acme"]
    assert client.get(URL + "?sort=secret_column", **bearer(analyst)).json()["sort"] == "name"


def test_everyone_else_gets_403(figures, client):
    plain_staff = make_user("sam", is_staff=True)  # staff, but without the permission
    for user in (figures.alice, figures.dana, figures.charlie, plain_staff):
        response = client.get(URL, **bearer(user))
        assert response.status_code == 403, user
        assert "acme" not in response.content.decode()
    assert client.get(URL).status_code == 401
    with tenant_context(figures.acme):  # even an owner whose role is raised stays out
        Membership.objects.filter(user=figures.alice).update(role="owner")
    assert client.get(URL + "?tenant=acme", **bearer(figures.alice)).status_code == 403


def test_the_admin_page_sorts_and_totals_in_an_operator_context(figures, client, analyst, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="engarde.audit")
    client.force_login(analyst)
    page = client.get(PAGE + "?sort=-events_7d")
    assert page.status_code == 200
    html = page.content.decode()
    assert html.index('data-slug="acme"') < html.index('data-slug="globex"')
    assert "Total (2 tenants)" in html and "98.00 EUR" in html
    assert f"operator context entered: admin {analyst.pk} {PAGE}" in caplog.text
    client.force_login(make_user("sam", is_staff=True))
    assert client.get(PAGE).status_code == 403
    client.force_login(figures.alice)  # a tenant user: sent to the admin's login
    assert client.get(PAGE).status_code == 302


def test_send_again_from_the_admin_sends_the_report_once_more(figures, client, mailoutbox,
                                                              django_capture_on_commit_callbacks):
    client.force_login(figures.oscar)
    with tenant_context(figures.acme):
        report = WeeklyReport.objects.get(week_start=date(2020, 1, 6))
    listing = client.get("/admin/reports/weeklyreport/")
    assert listing.status_code == 200 and "2020" in listing.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/reports/weeklyreport/", {"action": "send_again", "_selected_action": [report.pk]})
    assert response.status_code == 302
    (message,) = mailoutbox
    assert message.to == ["boss@acme.test"] and "2020-01-06" in message.subject
    with tenant_context(figures.acme):
        report.refresh_from_db()
    assert (report.status, report.attempts) == ("sent", 1)


def test_the_reports_page_shows_the_tenants_own_week_and_past_weeks(figures, client):
    client.force_login(figures.bob)
    page = client.get("/reports/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "(so far)" in html and "Spend (EUR)" in html and "12.34" in html
    assert 'aria-label="Daily spend and revenue chart"' in html
    client.force_login(figures.dana)
    other = client.get("/reports/").content.decode()
    assert "12.34" not in other and "Spend (EUR)" not in other
    for bad in ("?week=garbage", "?week=1999-01-01", "?week=%00"):
        assert client.get("/reports/" + bad).status_code == 200
    client.force_login(figures.charlie)
    assert client.get("/reports/").status_code == 403
