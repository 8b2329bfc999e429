"""``/insights/`` in Debian's Chromium: the owner reaches it from the nav, sees the charts, asks
Claude (the local fake) for insights, and adds the bookers to the sign-up queue with the button (a
CSRF-protected POST); a member sees the stats and no buttons. Screenshots at 1280 and 390 px go to
``INSIGHTS_SCREENSHOTS`` (default /tmp/engarde-insights), checked for sideways scrolling and for
content cut off at the right edge.

Shares ``tests/test_browser.py``'s Chromium, live server and sign-in (imported fixtures).
"""

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from contacts.models import PendingSignup
from integrations.providers.easyappointments.testing import connect_ea, fake_ea  # noqa: F401
from tenants.context import tenant_context
from tests.test_bookings_api import claude  # noqa: F401 (fixture)
from tests.test_browser import browser, new_context, pytestmark, sign_in, site  # noqa: F401 (fixtures)
from tests.test_browser_pages import CUT_OFF, SCROLLED_BOXES, WIDTHS

SHOTS = Path(os.environ.get("INSIGHTS_SCREENSHOTS", "/tmp/engarde-insights"))
PAGE = "/insights/?date_from=2026-12-01&date_to=2026-12-05"


@pytest.fixture
def ea(world, fake_ea):
    connect_ea(world.acme, fake_ea)
    return fake_ea


def test_owner_reads_the_charts_asks_claude_and_queues_the_bookers(site, world, ea, claude, new_context):
    page = sign_in(new_context(viewport={"width": 1280, "height": 800}), "alice")
    page.get_by_role("link", name="Insights").click()
    expect(page).to_have_url(f"{site.url}/insights/")
    page.fill("#i-from", "2026-12-01")
    page.fill("#i-to", "2026-12-05")
    page.select_option("#i-type", "patterns")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_test_id("total-bookings")).to_have_text("6")
    expect(page.get_by_test_id("chart-by_weekday").locator("svg title").first).to_have_text("Monday: 0")
    expect(page.get_by_test_id("chart-by_service")).to_contain_text("Initial consultation")
    page.get_by_role("button", name="Ask Claude").click()
    expect(page.get_by_test_id("insights")).to_have_text("Tuesdays at nine are the busiest.")
    assert "@" not in str(claude.bodies)

    page.get_by_label("approve them at once").check()
    page.get_by_role("button", name="Add bookers to the sign-up queue").click()
    expect(page.locator(".messages")).to_contain_text("Sign-up queue: 3 added, 0 already queued, 0 skipped")
    with tenant_context(world.acme):
        assert PendingSignup.objects.filter(source="easyappointments", status="approved").count() == 3
    page.get_by_role("button", name="Add bookers to the sign-up queue").click()
    expect(page.locator(".messages")).to_contain_text("0 added, 3 already queued")


def test_a_member_sees_no_buttons(site, world, ea, new_context):
    page = sign_in(new_context(viewport={"width": 1280, "height": 800}), "bob")
    page.goto(PAGE)
    expect(page.get_by_test_id("total-bookings")).to_have_text("6")
    expect(page.get_by_test_id("add-bookers")).to_have_count(0)
    expect(page.get_by_test_id("sync-email")).to_have_count(0)


def test_screenshots_at_1280_and_390(site, world, ea, claude, new_context):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = sign_in(new_context(viewport={"width": 1280, "height": 800}), "alice")
    problems = []
    for label, width, height in WIDTHS:
        page.set_viewport_size({"width": width, "height": height})
        assert page.goto(PAGE + "&ask=1").status == 200
        expect(page.get_by_test_id("insights")).to_be_visible()
        page.screenshot(path=SHOTS / f"insights-{label}.png", full_page=True)
        sideways = page.evaluate("() => document.documentElement.scrollWidth > document.documentElement.clientWidth")
        cut = page.evaluate(CUT_OFF)
        boxes = page.evaluate(SCROLLED_BOXES) if label == "desktop" else []
        if sideways or cut or boxes:
            problems.append((label, sideways, cut, boxes))
    assert problems == []
