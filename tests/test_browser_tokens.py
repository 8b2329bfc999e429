"""The tenant's API tokens page in Debian's Chromium: an owner makes a token (shown once, in its box
with the copy button), the token answers the API, the owner revokes it after the confirmation step
and it is refused at once. Screenshots at 1280 and 390 px in /tmp, checked for sideways scrolling
and content cut off at the right edge.

Shares ``tests/test_browser.py``'s Chromium, live server and sign-in (imported fixtures).
"""

import re
from pathlib import Path

import requests
from playwright.sync_api import expect

from tenants.context import tenant_context
from tenants.models import ApiToken
from tests.test_browser import browser, new_context, pytestmark, sign_in, site  # noqa: F401 (fixtures)
from tests.test_browser_pages import CUT_OFF, WIDTHS

SHOTS = Path("/tmp/engarde-token-screens")


def api_get(url: str, key: str) -> requests.Response:
    with requests.Session() as http:
        http.trust_env = False  # no proxy between the test and its own live server
        return http.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=10)


def check_layout(page, name: str, problems: list) -> None:
    for label, width, height in WIDTHS:
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=SHOTS / f"{name}-{label}.png", full_page=True)
        if (overflow := page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")) > 0:
            problems.append(f"{name} at {width} px scrolls sideways by {overflow} px")
        if cut := page.evaluate(CUT_OFF):
            problems.append(f"{name} at {width} px cuts off {cut}")
    page.set_viewport_size({"width": 1280, "height": 800})


def test_an_owner_creates_a_token_and_revokes_it(site, world, new_context):
    SHOTS.mkdir(exist_ok=True)
    problems: list = []
    page = sign_in(new_context(viewport={"width": 1280, "height": 800}), "alice")
    page.get_by_role("link", name="API tokens").click()
    expect(page).to_have_url(re.compile(r"/tokens/$"))
    expect(page.get_by_test_id("tokens")).to_contain_text("Look-alike token")
    page.fill("#id_name", "Browser export")
    page.select_option("#id_role", "admin")
    page.get_by_role("button", name="Make token").click()

    box = page.get_by_test_id("new-token")
    expect(box).to_contain_text("Shown only this once.")
    key = box.locator("input").input_value()
    assert key.startswith(ApiToken.PREFIX)
    check_layout(page, "tokens-new", problems)
    box.get_by_role("button", name="Copy token").click()
    expect(box.get_by_role("button", name="Copied")).to_be_visible()

    api = f"{site.url}/api/v1/tenant/"
    answer = api_get(api, key)
    assert answer.status_code == 200 and (answer.json()["slug"], answer.json()["role"]) == ("acme", "admin")
    assert api_get(api + "?tenant=globex", key).status_code == 403

    page.goto("/tokens/")  # the list: the token's tail, never the token
    assert key not in page.content()
    with tenant_context(world.acme):
        token = ApiToken.objects.get(name="Browser export")
    row = page.get_by_test_id(f"token-{token.pk}")
    expect(row).to_contain_text(f"…{key[-4:]}")
    expect(row).to_contain_text("alice@example.com")
    check_layout(page, "tokens-list", problems)

    row.get_by_role("link", name="Revoke").click()
    expect(page.get_by_test_id("confirm-revoke")).to_contain_text("Browser export")
    check_layout(page, "tokens-confirm", problems)
    assert api_get(api, key).status_code == 200
    page.get_by_role("button", name="Revoke token").click()
    expect(page.locator("ul.messages")).to_contain_text("was revoked")
    expect(page.get_by_test_id(f"token-{token.pk}")).to_have_count(0)
    assert api_get(api, key).status_code == 401
    page.context.close()  # the live server's thread for this keep-alive connection closes its database connection
    assert not problems, "\n".join(problems)
