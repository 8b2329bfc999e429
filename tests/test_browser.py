"""Issue 4's "Done means", in a real browser: Debian's Chromium driven by Playwright against
pytest-django's live server.

alice (owner of acme) signs in, connects Posh.VIP with a signing secret, copies the webhook URL,
a signed delivery is posted to that very URL, she replays it from the log and approves the
sign-up it made; dana (globex) then tries acme's pages by URL and gets 404s. No page HTML of the
scenario holds a saved secret. ``test_screenshots`` writes the dashboard and the Posh.VIP setup
page at desktop and phone widths to ``screenshots/`` and checks nothing overflows sideways.

One Chromium for the module, a fresh context (cookies, permissions) per user. The live server
runs in a thread of this process: tasks are eager and on-commit callbacks follow real commits,
so a delivery is processed by the time its 200 comes back. Without /usr/bin/chromium the module
is skipped (``.ci/run`` installs Debian's ``chromium``).
"""

import hashlib
import hmac
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from django.conf import settings as django_settings
from playwright.sync_api import expect, sync_playwright

from conftest import SHARED_WEBHOOK_SECRET
from contacts.models import Payment, PendingSignup
from integrations.models import TenantIntegration
from tenants.context import tenant_context
from webhooks.models import WebhookLog
from webhooks.testing import connect, fixture_bytes

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
SCREENSHOTS = Path(django_settings.BASE_DIR) / "screenshots"
POSH_SECRET = "posh-browser-secret-7f3a9c1e5b2d8f04"
PURCHASE = "pur_8f3k2LmQ9xT4"  # purchase_created.json
BUYER = "jordan.blake@example.com"
# Never in any page: the secret saved here, the world's webhook secret, acme's ManyChat API key.
NEVER_SHOWN = (POSH_SECRET, SHARED_WEBHOOK_SECRET, "mc-api-key-of-acme-0000", "mc-api-key-of-globex-0000")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"needs Debian's Chromium at {CHROMIUM} (apt-get install chromium)"),
    # Committed data, seen by the live server's thread. The runtime role cannot TRUNCATE: on
    # PostgreSQL the flush runs on the owner alias (the runtime alias mirrors it).
    pytest.mark.django_db(
        transaction=True, databases=["default", "owner"] if "owner" in django_settings.DATABASES else ["default"]
    ),
]


@pytest.fixture(scope="module")
def browser():
    # Playwright's sync API keeps an asyncio loop on this thread, which Django's async-safety
    # check takes for async code; the test's own ORM calls are plain synchronous ones.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def site(live_server, settings, world):
    """The live server, with webhook URLs built on its own address (so they can be posted to)."""
    settings.PUBLIC_BASE_URL = live_server.url
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False  # plain http here
    return live_server


@pytest.fixture
def new_context(browser, site):
    contexts = []

    def make(**options):
        context = browser.new_context(base_url=site.url, **options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


class Pages:
    """Every page visited (path with query, HTML as the browser holds it), in order."""

    def __init__(self):
        self.visited: list[tuple[str, str]] = []

    def snap(self, page) -> str:
        html, url = page.content(), urlsplit(page.url)
        self.visited.append((url.path + (f"?{url.query}" if url.query else ""), html))
        return html


def sign_in(context, username: str):
    page = context.new_page()
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw-" + username * 2)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"^http://[^/]+/$"))
    return page


def post_signed(url: str, body: bytes, secret: str) -> requests.Response:
    """A Posh.VIP delivery: X-Posh-Signature is the hex HMAC-SHA256 of the body."""
    assert urlsplit(url).hostname in ("localhost", "127.0.0.1"), url  # the live server only
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    with requests.Session() as http:
        http.trust_env = False  # no proxy between the test and its own live server
        return http.post(url, data=body, timeout=15,
                         headers={"Content-Type": "application/json", "X-Posh-Signature": signature})


def test_owner_connects_poshvip_replays_and_approves_and_another_tenant_sees_none_of_it(site, world, new_context):
    pages = Pages()
    alice_context = new_context()
    alice_context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)

    # 1. Sign in through the form: the dashboard, acting for Acme.
    page = sign_in(alice_context, "alice")
    expect(page.get_by_test_id("current-tenant")).to_have_text(re.compile(r"Tenant:\s*Acme\b"))
    expect(page.locator("main h1")).to_have_text("Acme")
    expect(page.get_by_test_id("platform-poshvip")).to_contain_text("Not connected")
    pages.snap(page)

    # 2. Posh.VIP setup: enter the signing secret, save; configured, and the value nowhere in the page.
    page.goto("/setup/poshvip/")
    expect(page.get_by_test_id("connection-state")).to_have_text("Not connected")
    pages.snap(page)
    page.fill("#id_new_webhook_secret", POSH_SECRET)
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(f"{site.url}/setup/poshvip/")
    expect(page.locator(".messages")).to_contain_text("Posh.VIP saved.")
    expect(page.get_by_test_id("connection-state")).to_have_text("Connected")
    expect(page.locator("main")).to_contain_text(f"Configured, ends in …{POSH_SECRET[-4:]}")
    expect(page.locator("#id_new_webhook_secret")).to_have_value("")
    assert POSH_SECRET not in pages.snap(page)
    with tenant_context(world.acme):
        integration = TenantIntegration.objects.get(provider="poshvip")
        assert integration.is_active and integration.webhook_secret == POSH_SECRET

    # 3. Copy: the clipboard holds exactly the URL shown, built on PUBLIC_BASE_URL.
    shown = page.locator("#webhook-url").input_value()
    assert shown == f"{site.url}/api/webhooks/{world.acme.pk}/poshvip/"
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == shown

    # 4. A correctly signed purchase.created, posted to the copied URL.
    response = post_signed(shown, fixture_bytes("poshvip", "purchase_created"), POSH_SECRET)
    assert response.status_code == 200, response.text
    with tenant_context(world.acme):
        row = WebhookLog.objects.get(source="poshvip")
        assert (row.status, row.attempts) == (WebhookLog.Status.PROCESSED, 1), row.error

    # 5. The log shows it processed; its page replays it: processed again, still one payment.
    page.goto("/webhooks/")
    listed = page.get_by_test_id(f"delivery-{row.pk}")
    expect(listed).to_contain_text("purchase.created")
    expect(listed.locator(".state")).to_have_text("Processed")
    pages.snap(page)
    listed.get_by_role("link").click()
    expect(page).to_have_url(f"{site.url}/webhooks/{row.pk}/")
    expect(page.get_by_test_id("delivery-status")).to_have_text("Processed")
    expect(page.locator(".card")).to_contain_text("1 attempt ")
    pages.snap(page)
    page.get_by_role("button", name="Replay").click()
    expect(page).to_have_url(f"{site.url}/webhooks/{row.pk}/")
    expect(page.locator(".messages")).to_contain_text("queued again")
    expect(page.get_by_test_id("delivery-status")).to_have_text("Processed")
    expect(page.locator(".card")).to_contain_text("2 attempts")
    pages.snap(page)
    with tenant_context(world.acme):
        row.refresh_from_db()
        assert (row.status, row.attempts) == (WebhookLog.Status.PROCESSED, 2), row.error
        assert Payment.objects.filter(source="poshvip").count() == 1
        assert Payment.objects.count() == 2  # the world's own, and this purchase's
        signup = PendingSignup.objects.get(source="poshvip", external_id=PURCHASE)
        assert signup.status == PendingSignup.Status.PENDING

    # 6. Sign-ups: approve the purchase's sign-up; approved in the database and on the page.
    page.goto("/signups/")
    pending = page.get_by_test_id(f"signup-{signup.pk}")
    expect(pending).to_contain_text(BUYER)
    expect(pending.get_by_test_id("signup-status")).to_have_text("Pending")
    pages.snap(page)
    pending.get_by_role("button", name="Approve").click()
    expect(page.locator(".messages")).to_contain_text("1 sign-up approved.")
    expect(page.get_by_test_id(f"signup-{signup.pk}")).to_have_count(0)  # no longer pending
    pages.snap(page)
    with tenant_context(world.acme):
        signup.refresh_from_db()
        assert (signup.status, signup.decided_by_id) == (PendingSignup.Status.APPROVED, world.alice.pk)
        assert PendingSignup.objects.get(source="zoom").status == PendingSignup.Status.PENDING  # only that one
    page.goto("/signups/?status=approved")
    expect(page.get_by_test_id(f"signup-{signup.pk}").get_by_test_id("signup-status")).to_have_text("Approved")
    pages.snap(page)

    # The other pages of the scenario, for the secret check below.
    for path in ("/setup/manychat/", "/members/", "/"):
        page.goto(path)
        expect(page.get_by_test_id("current-tenant")).to_contain_text("Acme")
        pages.snap(page)
    expect(page.get_by_test_id("platform-poshvip")).to_contain_text("Receiving")

    # 7. dana (globex), in a fresh context: acme's pages by URL are 404s, nothing of acme on hers.
    dana_context = new_context()
    dana = sign_in(dana_context, "dana")
    expect(dana.get_by_test_id("current-tenant")).to_have_text(re.compile(r"Tenant:\s*Globex\b"))
    dana_html = [pages.snap(dana)]
    assert dana.goto(f"/webhooks/{row.pk}/").status == 404
    # An empty 405 is a navigation error to Chromium: this one goes through the context's requests
    # (same cookies, same session) rather than page.goto.
    assert dana.request.get(f"/webhooks/{row.pk}/replay/", max_redirects=0).status in (404, 405)
    assert dana.goto("/?tenant=acme").status == 404
    assert dana.goto(f"/?tenant={world.acme.pk}").status == 404
    csrf = next(c["value"] for c in dana_context.cookies() if c["name"] == "csrftoken")
    refused = dana.request.post(f"/webhooks/{row.pk}/replay/", headers={"X-CSRFToken": csrf})
    assert refused.status == 404  # a real POST (valid CSRF) too
    for path in ("/webhooks/", "/signups/", "/setup/poshvip/", "/"):
        response = dana.goto(path)
        assert response.status == 200, path
        dana_html.append(pages.snap(dana))
    for html in dana_html:
        for acme_thing in ("Acme", str(world.acme.pk), f"/webhooks/{row.pk}/", BUYER, "Jordan", PURCHASE):
            assert acme_thing not in html, acme_thing
    expect(dana.get_by_test_id("platform-poshvip")).to_contain_text("Not connected")
    with tenant_context(world.acme):
        row.refresh_from_db()
        assert row.attempts == 2  # dana's replay did nothing

    # 8. No saved secret in the HTML of any page visited.
    visited = {path for path, _ in pages.visited}
    assert {"/", "/setup/poshvip/", "/setup/manychat/", "/webhooks/", f"/webhooks/{row.pk}/", "/signups/",
            "/members/"} <= visited, visited
    for path, html in pages.visited:
        for secret in NEVER_SHOWN:
            assert secret not in html, (path, secret)


def test_screenshots(site, world, new_context):
    """The dashboard and the Posh.VIP setup page (connected, one delivery) at desktop and phone
    widths, saved to screenshots/; at neither width does a page scroll sideways."""
    connect(world.acme, "poshvip", POSH_SECRET)
    url = f"{site.url}/api/webhooks/{world.acme.pk}/poshvip/"
    assert post_signed(url, fixture_bytes("poshvip", "purchase_created"), POSH_SECRET).status_code == 200
    SCREENSHOTS.mkdir(exist_ok=True)
    context = new_context(viewport={"width": 1280, "height": 800})
    page = sign_in(context, "alice")
    for label, width, height in (("desktop", 1280, 800), ("phone", 390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        for name, path in (("dashboard", "/"), ("setup-poshvip", "/setup/poshvip/")):
            page.goto(path)
            expect(page.get_by_test_id("current-tenant")).to_contain_text("Acme")
            page.screenshot(path=SCREENSHOTS / f"{name}-{label}.png", full_page=True)
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, f"{path} at {width} px scrolls sideways by {overflow} px"
            assert POSH_SECRET not in page.content()
