"""Issue 12's pages in Debian's Chromium: search, filter, export and the contact page; and every
tenant page (signed in, signed out, a user of two tenants, an invitation's page) plus the admin's
tenant, onboarding and list pages at 1280 and 390 px, saved to ``SHOTS`` (/tmp/engarde-shots) and
checked for sideways scrolling and for content cut off at the right edge.

Shares ``tests/test_browser.py``'s Chromium, live server and sign-in (imported fixtures).
"""

import csv
import io
import os
import re
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from contacts.models import Contact, Payment
from integrations.providers.easyappointments.testing import connect_ea, fake_ea  # noqa: F401 (fixture)
from tenants.context import tenant_context
from tenants.models import Invitation, Membership
from tests.test_browser import (  # noqa: F401 (fixtures)
    POSH_SECRET, browser, new_context, post_signed, pytestmark, sign_in, site,
)
from webhooks.models import WebhookLog
from webhooks.testing import connect, fixture_bytes

WIDTHS = (("desktop", 1280, 800), ("phone", 390, 844))
SHOTS = Path(os.environ.get("ENGARDE_SHOTS", "/tmp/engarde-shots"))
SIDEWAYS = "document.documentElement.scrollWidth - document.documentElement.clientWidth"

# At 1280 px not even a table scrolls sideways inside its box (on a phone a wide table may).
SCROLLED_BOXES = """() => [...document.querySelectorAll('main *, #content *')].filter((el) => {
  const o = getComputedStyle(el).overflowX;
  return (o === 'auto' || o === 'scroll') && el.scrollWidth > el.clientWidth + 1 && el.tagName !== 'PRE';
}).slice(0, 5).map((el) => el.tagName + '.' + el.className)"""

# Anything in <main> whose right edge passes the viewport's, except inside a container that
# scrolls on purpose (a table, a code block).
CUT_OFF = """() => {
  const width = document.documentElement.clientWidth;
  const scrolls = (el) => { for (let p = el; p; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX; if (o === 'auto' || o === 'scroll') return true; } return false; };
  return [...document.querySelectorAll('main *, #content *')].filter((el) => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.right > width + 1 && !scrolls(el.parentElement);
  }).slice(0, 5).map((el) => el.tagName + '.' + el.className + ' ' + (el.textContent || '').slice(0, 40));
}"""

# A button (or a link drawn as one) past the right edge, even inside a table that scrolls: a row's
# actions must be reachable without scrolling the table sideways.
BUTTONS_OFF_EDGE = """() => [...document.querySelectorAll('main button, main .button, #content button')].filter((el) => {
  const r = el.getBoundingClientRect();
  return r.width > 0 && r.right > document.documentElement.clientWidth + 1;
}).slice(0, 5).map((el) => el.tagName + ' ' + (el.textContent || '').trim().slice(0, 30))"""


@pytest.fixture
def data(world):
    with tenant_context(world.acme):
        ada = Contact.objects.create(email="ada@lovelace.test", first_name="Ada", last_name="Lovelace",
                                     phone="+44 20 7946 0000", source="stripe")
        for i in range(60):
            Contact.objects.create(email=f"guest{i:02d}@example.org", first_name="Guest", last_name=f"Number {i:02d}",
                                   source="poshvip")
        Payment.objects.create(contact=ada, amount=Decimal("120.00"), currency="usd", source="stripe",
                               external_id="pi_ada", payment_event_id="evt_ada")
        Payment.objects.create(contact=ada, amount=Decimal("30.00"), currency="usd", source="stripe",
                               external_id="pi_ada_refund", payment_event_id="evt_ada_2", status="refunded")
    return {"ada": ada}


def download_rows(page, button) -> list[list[str]]:
    with page.expect_download() as made:
        button.click()
    return list(csv.reader(io.StringIO(open(made.value.path(), encoding="utf-8").read())))


def test_search_filter_export_and_the_contact_page(site, world, data, new_context):
    page = sign_in(new_context(viewport={"width": 1280, "height": 800}), "alice")
    page.get_by_role("link", name="Contacts").click()
    expect(page.get_by_test_id("total")).to_contain_text("62 contacts")  # 60 guests, Ada and the world's Pat
    expect(page.locator("nav.pagination")).to_contain_text("2")

    # Search: the page, its total and the export agree, and the query stays in the URL.
    page.fill("#f-q", "lovelace")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"q=lovelace"))
    expect(page.get_by_test_id("total")).to_have_text(re.compile(r"^1 contact match"))
    rows = download_rows(page, page.get_by_test_id("export"))
    assert [r[3] for r in rows[1:]] == ["ada@lovelace.test"]

    # Filter by platform: 60 Posh.VIP guests over two pages; the export has all 60, and only acme's.
    page.goto("/contacts/")
    page.select_option("#f-source", "poshvip")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_test_id("total")).to_contain_text("60 contacts match")
    page.locator("nav.pagination").get_by_role("link", name="2", exact=True).click()
    expect(page).to_have_url(re.compile(r"source=poshvip.*page=2|page=2.*source=poshvip"))
    expect(page.locator("tbody tr")).to_have_count(10)
    rows = download_rows(page, page.get_by_test_id("export"))
    assert len(rows) == 61 and all(r[5] == "Posh.VIP" for r in rows[1:])

    # The contact's page: its payments, with the status pills.
    page.goto("/contacts/?q=ada")
    page.get_by_role("link", name="Ada Lovelace").click()
    expect(page.get_by_test_id("contact-name")).to_have_text("Ada Lovelace")
    expect(page.get_by_test_id("contact-payments")).to_contain_text("120.00 USD")
    expect(page.get_by_test_id("contact-payments")).to_contain_text("Refunded")

    # Payments: filter by status, export the same rows.
    page.goto("/payments/")
    page.select_option("#f-status", "refunded")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_test_id("total")).to_have_text(re.compile(r"^1 payment match"))
    rows = download_rows(page, page.get_by_test_id("export"))
    assert [(r[2], r[4], r[5]) for r in rows[1:]] == [("30.000", "USD", "refunded")]


def layout_problems(page, name: str, problems: list, widths=WIDTHS, reload: bool = False) -> None:
    """The page at each width, saved to ``SHOTS/<name>-<label>.png``; what scrolls sideways or is
    cut off at the right edge (and, at 1280 px, any box that scrolls sideways) goes on ``problems``.
    ``reload`` loads the page again at each width (for script that reads the width on load)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for i, (label, width, height) in enumerate(widths):
        page.set_viewport_size({"width": width, "height": height})
        if reload and i:
            page.reload()
        page.screenshot(path=SHOTS / f"{name}-{label}.png", full_page=True)
        where = f"{name} ({urlsplit(page.url).path}) at {width} px"
        if (overflow := page.evaluate(SIDEWAYS)) > 0:
            problems.append(f"{where} scrolls sideways by {overflow} px")
        if cut := page.evaluate(CUT_OFF):
            problems.append(f"{where} cuts off {cut}")
        if off := page.evaluate(BUTTONS_OFF_EDGE):
            problems.append(f"{where} has buttons past the right edge: {off}")
        if width >= 1280 and (boxes := page.evaluate(SCROLLED_BOXES)):
            problems.append(f"{where} has boxes that scroll sideways: {boxes}")
    page.set_viewport_size({"width": 1280, "height": 800})


def visit(page, pages: dict, problems: list, widths=WIDTHS) -> None:
    for name, path in pages.items():
        response = page.goto(path)
        assert response.status == 200, (path, response.status)
        layout_problems(page, name, problems, widths, reload=True)


def admin_sign_in(context):
    page = context.new_page()
    page.goto("/admin/login/")
    page.fill("#id_username", "oscar")
    page.fill("#id_password", "pw-oscaroscar")
    page.get_by_role("button", name=re.compile("Log in", re.I)).click()
    expect(page.locator("#user-tools")).to_be_visible()
    return page


def test_screenshots_of_every_tenant_page_and_the_admin_tenant_page(site, world, data, fake_ea, new_context):
    """Every tenant page (signed in, signed out, a user of two tenants, an invitation's page), and
    the admin's tenant, onboarding, webhook-log, contact and payment pages: at 1280 and 390 px
    (the admin's lists at 1280 px) no page scrolls sideways and nothing is cut off at the right
    edge. The images are in SHOTS (/tmp/engarde-shots unless ENGARDE_SHOTS says otherwise)."""
    connect(world.acme, "poshvip", POSH_SECRET)
    connect_ea(world.acme, fake_ea)
    url = f"{site.url}/api/webhooks/{world.acme.pk}/poshvip/"
    assert post_signed(url, fixture_bytes("poshvip", "purchase_created"), POSH_SECRET).status_code == 200
    with tenant_context(world.acme):
        delivery = WebhookLog.objects.filter(source="poshvip").first()
        buyer = Contact.objects.get(email="jordan.blake@example.com")
        WebhookLog.objects.create(source="stripe", event_id="evt_forged_0001", status="rejected", body=b"{}",
                                  error="The Stripe-Signature header does not match this tenant's signing secret.")
        Membership.objects.create(user=world.dana, role=Membership.Role.MEMBER)  # dana: in two tenants
        newcomer = Invitation(email="someone.with.a.long.address@subdomain.example.org", invited_by=world.alice)
        new_token = newcomer.new_token()
        newcomer.save()
        existing = Invitation(email="charlie@example.com", invited_by=world.alice)
        existing_token = existing.new_token()
        existing.save()
    tenant_pages = {
        "dashboard": "/", "contacts": "/contacts/", "contact": f"/contacts/{buyer.pk}/", "payments": "/payments/",
        "webhooks": "/webhooks/", "delivery": f"/webhooks/{delivery.pk}/", "signups": "/signups/",
        "reports": "/reports/", "insights": "/insights/?date_from=2026-12-01&date_to=2026-12-05",
        "members": "/members/", "tokens": "/tokens/", "setup-poshvip": "/setup/poshvip/", "setup-stripe": "/setup/stripe/",
    }
    problems: list = []
    alice = sign_in(new_context(viewport={"width": 1280, "height": 800}), "alice")
    visit(alice, tenant_pages, problems)
    alice.goto("/reports/")  # platforms by their labels, as everywhere else
    expect(alice.locator("main")).to_contain_text("from Posh.VIP")
    expect(alice.locator("main")).to_contain_text("Stripe rejected")
    expect(alice.locator("main")).not_to_contain_text("poshvip")
    dana = sign_in(new_context(viewport={"width": 1280, "height": 800}), "dana")
    visit(dana, {"pick-tenant": "/tenants/pick/"}, problems)
    expect(dana.locator("main table")).to_contain_text("Acme")
    expect(dana.locator("main table")).to_contain_text("Globex")
    anonymous = new_context(viewport={"width": 1280, "height": 800}).new_page()
    visit(anonymous, {
        "login": "/accounts/login/", "password-reset": "/accounts/password_reset/",
        "invitation-new-account": f"/invitations/acme/{new_token}/",
        "invitation-sign-in": f"/invitations/acme/{existing_token}/",
    }, problems)

    admin = admin_sign_in(new_context(viewport={"width": 1280, "height": 800}))
    visit(admin, {"admin-tenant": f"/admin/tenants/tenant/{world.acme.pk}/change/",
                  "admin-onboard": "/admin/tenants/tenant/add/"}, problems)
    visit(admin, {"admin-webhook-log": "/admin/webhooks/webhooklog/", "admin-contacts": "/admin/contacts/contact/",
                  "admin-payments": "/admin/contacts/payment/"}, problems, widths=WIDTHS[:1])
    filters = admin.locator("#changelist-filter")  # the payments' platforms by their labels
    expect(filters.get_by_role("link", name="Posh.VIP", exact=True)).to_be_visible()
    expect(filters.get_by_role("link", name="poshvip", exact=True)).to_have_count(0)
    assert not problems, "\n".join(problems)


def test_a_token_rotated_in_the_admin_is_shown_once_in_its_box_and_the_list_shows_states(site, world, new_context):
    """The operator presses "Rotate token" on the tenant's admin page: the answer is the box with
    the token, its copy button and the next step, at 1280 and 390 px without sideways scrolling;
    "Done" goes back to the tenant's page, which does not show it again. The integration list
    shows each one's state as a pill and fits 1280 px."""
    from integrations.models import TenantIntegration

    context = new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto("/admin/login/")
    page.fill("#id_username", "oscar")
    page.fill("#id_password", "pw-oscaroscar")
    page.get_by_role("button", name=re.compile("Log in", re.I)).click()
    page.goto(f"/admin/tenants/tenant/{world.acme.pk}/change/")
    page.get_by_role("button", name="Rotate token (24 h grace)").first.click()
    box = page.get_by_test_id("new-token")
    expect(box).to_contain_text("Shown only this once.")
    with tenant_context(world.acme):
        token = TenantIntegration.objects.get(provider="manychat").webhook_secret
    expect(box.locator("input")).to_have_value(token)
    expect(box).to_contain_text("The old token keeps working for 24 h more.")
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems = []
    for label, width, height in WIDTHS:
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=SHOTS / f"admin-new-token-{label}.png", full_page=True)
        if (overflow := page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")) > 0:
            problems.append(f"the token page at {width} px scrolls sideways by {overflow} px")
        if cut := page.evaluate(CUT_OFF):
            problems.append(f"the token page at {width} px cuts off {cut}")
    box.get_by_role("button", name="Copy token").click()
    expect(box.get_by_role("button", name="Copied")).to_be_visible()
    page.set_viewport_size({"width": 1280, "height": 800})
    page.get_by_test_id("token-done").click()
    expect(page).to_have_url(re.compile(f"/admin/tenants/tenant/{world.acme.pk}/change/$"))
    assert token not in page.content()

    page.goto("/admin/integrations/tenantintegration/")
    expect(page.locator("td.field-state_pill span.state").first).to_be_visible()
    page.screenshot(path=SHOTS / "admin-integrations-desktop.png", full_page=True)
    if (overflow := page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")) > 0:
        problems.append(f"the integration list at 1280 px scrolls sideways by {overflow} px")
    if boxes := page.evaluate(SCROLLED_BOXES):
        problems.append(f"the integration list at 1280 px has boxes that scroll sideways: {boxes}")
    assert not problems, "\n".join(problems)
