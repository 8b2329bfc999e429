"""``/insights/``: the tenant's Easy!Appointments bookings as charts, Claude's insights on request,
and for owners and admins the two actions (CSRF-protected POSTs), against the local fake E!A and
fake Claude, at two tenants with look-alike data."""

import re

import pytest
from django.test import Client

from contacts.models import PendingSignup
from integrations.providers.easyappointments.testing import connect_ea, fake_ea  # noqa: F401
from tenants.context import tenant_context
from tests.test_bookings_api import claude  # noqa: F401 (fixture)

PAGE = "/insights/?date_from=2026-12-01&date_to=2026-12-05"
RANGE = {"date_from": "2026-12-01", "date_to": "2026-12-05"}


@pytest.fixture
def ea(world, fake_ea):
    connect_ea(world.acme, fake_ea)
    connect_ea(world.globex, fake_ea)
    fake_ea.by_slug["globex"].appointments.pop()
    return fake_ea


def signed_in(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def test_the_owner_sees_charts_and_both_buttons(world, ea):
    html = signed_in(world.alice).get(PAGE).content.decode()
    assert re.search(r'data-testid="total-bookings">6<', html) and re.search(r'data-testid="unique-customers">3<', html)
    for key in ("by_weekday", "by_hour", "by_service", "by_provider", "by_status"):
        assert f'data-testid="chart-{key}"' in html
    assert "<title>Tuesday: 2</title>" in html and "<title>Initial consultation: 3</title>" in html
    assert 'data-testid="add-bookers"' in html and 'data-testid="sync-email"' in html
    assert 'href="/insights/"' in html  # in the nav
    assert "jordan.blake" not in html
    other = signed_in(world.dana).get(PAGE).content.decode()
    assert re.search(r'data-testid="total-bookings">5<', other)


def test_a_member_sees_the_stats_but_no_buttons_and_may_not_post(world, ea):
    client = signed_in(world.bob)
    html = client.get(PAGE).content.decode()
    assert re.search(r'data-testid="total-bookings">6<', html)
    assert 'data-testid="add-bookers"' not in html and 'data-testid="sync-email"' not in html
    assert client.post("/insights/add-bookers/", RANGE).status_code == 403
    assert client.post("/insights/sync-email-list/", RANGE).status_code == 403
    with tenant_context(world.acme):
        assert not PendingSignup.objects.filter(source="easyappointments").exists()


def test_insights_on_request(world, ea, claude):
    client = signed_in(world.alice)
    assert 'data-testid="insights"' not in client.get(PAGE).content.decode()
    assert not claude.bodies  # Claude is asked only when the button is pressed
    html = client.get(PAGE + "&analysis_type=patterns&ask=1").content.decode()
    assert 'data-testid="insights">Tuesdays at nine are the busiest.<' in html
    assert len(claude.bodies) == 1 and "@" not in str(claude.bodies)
    claude.mode = "fail"
    html = client.get(PAGE + "&ask=1").content.decode()
    assert "Insights: Claude failed (InternalServerError)" in html and 'data-testid="chart-by_hour"' in html


def test_the_actions_need_the_csrf_token_and_then_work(world, ea):
    client = signed_in(world.alice, enforce_csrf_checks=True)
    assert client.post("/insights/add-bookers/", RANGE).status_code == 403  # no token
    page = client.get(PAGE)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    response = client.post("/insights/add-bookers/", {**RANGE, "auto_invite": "on", "csrfmiddlewaretoken": token},
                           follow=True)
    assert response.redirect_chain[-1][0] == "/insights/?date_from=2026-12-01&date_to=2026-12-05"
    assert "Sign-up queue: 3 added, 0 already queued, 0 skipped (no e-mail), 3 approved." in response.content.decode()
    with tenant_context(world.acme):
        assert PendingSignup.objects.filter(source="easyappointments", status="approved").count() == 3
    with tenant_context(world.globex):
        assert not PendingSignup.objects.filter(source="easyappointments").exists()
    response = client.post("/insights/sync-email-list/", {**RANGE, "csrfmiddlewaretoken": token}, follow=True)
    assert "Brevo is not connected for this tenant" in response.content.decode()


def test_bad_range_and_not_connected(world, ea, fake_ea):
    client = signed_in(world.alice)
    response = client.get("/insights/?date_from=2026-12-05&date_to=2026-12-01")
    assert response.status_code == 400
    assert "date_to (2026-12-01) is before date_from (2026-12-05)." in response.content.decode()
    with tenant_context(world.acme):
        from integrations.models import TenantIntegration

        TenantIntegration.objects.filter(provider="easyappointments").delete()
    html = client.get(PAGE).content.decode()
    assert "Easy!Appointments is not connected for this tenant" in html and 'data-testid="add-bookers"' not in html
