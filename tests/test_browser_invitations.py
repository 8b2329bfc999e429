"""Issue 12's invitation accept, end to end in Debian's Chromium: alice (acme's owner) invites an
address on /members/, the link in the invitation e-mail (Django's outbox) is opened in a fresh
browser, the invitee chooses a name and password and lands signed in on Acme's dashboard, listed
as a member; the link then opens a page saying it no longer works, and nothing changes. The pages
of the flow are saved at 1280 and 390 px to /tmp/engarde-shots/ and checked for sideways
scrolling and for content cut off at the right edge.

Shares ``tests/test_browser.py``'s Chromium, live server and sign-in (imported fixtures).
"""

import re
from urllib.parse import urlsplit

from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from tenants.context import tenant_context
from tenants.models import Invitation, Membership
from tests.test_browser import browser, new_context, pytestmark, sign_in, site  # noqa: F401 (fixtures)
from tests.test_browser_pages import SHOTS, layout_problems

INVITEE = "nina.novak@example.com"
PASSWORD = "quiet river lamp 27"


def test_an_invitee_accepts_in_the_browser_and_the_link_then_no_longer_works(site, world, new_context, mailoutbox):
    problems: list = []
    owner = sign_in(new_context(viewport={"width": 1280, "height": 800}), "alice")
    owner.get_by_role("link", name="Members").click()
    owner.fill("#id_email", INVITEE)
    owner.select_option("#id_role", "admin")
    owner.get_by_role("button", name="Send invitation").click()
    expect(owner.locator("ul.messages")).to_contain_text(INVITEE)
    pending = owner.get_by_test_id(f"invitation-{INVITEE}")
    expect(pending).to_contain_text("Admin")
    expect(pending.get_by_role("button", name="Resend")).to_be_visible()

    # The e-mail: one, to the invitee, with a link on the live server's own address.
    (mail,) = [m for m in mailoutbox if m.to == [INVITEE]]
    link = re.search(r"https?://\S+/invitations/acme/\S+/", mail.body).group(0)
    assert urlsplit(link).netloc == urlsplit(site.url).netloc, link
    path = urlsplit(link).path
    assert not get_user_model().objects.filter(email=INVITEE).exists()

    # The invitee, in a browser of their own: the page names the tenant, the inviter and the role.
    invitee = new_context(viewport={"width": 1280, "height": 800}).new_page()
    assert invitee.goto(link).status == 200
    card = invitee.get_by_test_id("invitation")
    expect(card.locator("h1")).to_have_text("Join Acme")
    expect(card).to_contain_text(f"invited {INVITEE} to Acme as admin")
    expect(card).to_contain_text("Choose your name and a password")
    layout_problems(invitee, "invitation-accept", problems)

    # A mismatched password is refused on the page, and nobody is made.
    invitee.fill("#id_first_name", "Nina")
    invitee.fill("#id_last_name", "Novak")
    invitee.fill("#id_password1", PASSWORD)
    invitee.fill("#id_password2", PASSWORD + " not")
    invitee.get_by_role("button", name="Accept and join Acme").click()
    expect(card).to_contain_text("didn’t match")
    layout_problems(invitee, "invitation-refused", problems)
    assert not get_user_model().objects.filter(email=INVITEE).exists()

    invitee.fill("#id_password1", PASSWORD)
    invitee.fill("#id_password2", PASSWORD)
    invitee.get_by_role("button", name="Accept and join Acme").click()
    expect(invitee).to_have_url(f"{site.url}/?tenant=acme")
    expect(invitee.get_by_test_id("current-tenant")).to_have_text(re.compile(r"Tenant:\s*Acme\b"))
    expect(invitee.locator("main h1")).to_have_text("Acme")
    expect(invitee.get_by_role("link", name="API tokens")).to_be_visible()  # an admin's nav

    newcomer = get_user_model().objects.get(email=INVITEE)
    assert newcomer.get_full_name() == "Nina Novak" and newcomer.check_password(PASSWORD)
    with tenant_context(world.acme):
        assert Membership.objects.get(user=newcomer).role == "admin"
        assert not Invitation.objects.filter(email=INVITEE).exists()

    # On the members page, for the newcomer and for the owner: a member, no longer pending.
    invitee.get_by_role("link", name="Members").click()
    expect(invitee.get_by_test_id("members")).to_contain_text("Nina Novak")
    owner.goto("/members/")
    row = owner.get_by_test_id("members").locator("tr", has_text=INVITEE)
    expect(row).to_contain_text("Nina Novak")
    expect(row).to_contain_text("Admin")
    expect(owner.get_by_test_id(f"invitation-{INVITEE}")).to_have_count(0)

    # The link a second time: refused with a page that says so, signed in or not; nothing changes.
    for who, page in (("signed in", invitee), ("anonymous", new_context(viewport={"width": 1280, "height": 800}).new_page())):
        assert page.goto(path).status == 404, who
        refused = page.get_by_test_id("invitation-invalid")
        expect(refused.locator("h1")).to_have_text("This invitation link no longer works")
        expect(refused).to_contain_text("Ask an owner or admin of Acme to send a new one.")
        expect(page.locator("#id_password1")).to_have_count(0)
        expect(page.get_by_role("button", name=re.compile("Join|Accept"))).to_have_count(0)
    layout_problems(page, "invitation-used", problems)
    # Nor does a POST of a new name and password with the used link (a valid CSRF token: from the sign-in page).
    page.goto("/accounts/login/")
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    replay = page.request.post(path, headers={"X-CSRFToken": csrf}, form={
        "first_name": "Mallory", "password1": PASSWORD, "password2": PASSWORD})
    assert replay.status == 404
    newcomer.refresh_from_db()
    assert newcomer.first_name == "Nina" and get_user_model().objects.filter(email__iexact=INVITEE).count() == 1
    for context in (owner.context, invitee.context, page.context):
        context.close()  # the live server's threads close their database connections
    assert not problems, "\n".join(problems)
