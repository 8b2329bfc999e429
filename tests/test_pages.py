"""The tenant users' pages (issue 4), through the Django test client.

Signing in and out, the password reset, the dashboard and its platform states, the setup pages and
their write-only secrets, the webhook log and replay, the sign-up queue, the members page, picking
a tenant, and the walls between tenants on every page. Every test runs in the conftest ``world``:
acme (alice owner, bob member), globex (dana owner), charlie in no tenant, oscar staff.
"""

import re
from datetime import datetime, time, timedelta
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conftest import SHARED_WEBHOOK_SECRET, make_user
from contacts.models import Contact, Payment, PendingSignup
from integrations.models import TenantIntegration, webhook_url
from integrations.providers.base import hmac_sha256_hex
from integrations.providers.poshvip.handlers import HANDLERS as POSH_HANDLERS
from integrations.registry import PROVIDERS
from tenants.context import tenant_context
from tenants.accounts import find_or_create_user
from tenants.models import Invitation, Membership, Tenant
from webhooks.models import WebhookLog
from webhooks.testing import connect, fixture_bytes, webhook_path

POSH_SECRET = {"acme": "posh-whsec-acme-0123456789abcdef", "globex": "posh-whsec-globex-fedcba98765432"}
NOT_IN_ANY_TENANT = "You are not in any tenant yet"


# --- helpers ---------------------------------------------------------------------------------
def text(response) -> str:
    return response.content.decode()


def client_for(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def signs_in(client, username, password) -> bool:
    """Through the sign-in page (django-axes needs the request that ``Client.login`` lacks)."""
    return client.post("/accounts/login/", {"username": username, "password": password}).status_code == 302


def current_tenant(page: str) -> str:
    """What the header's current-tenant badge says (empty when there is none)."""
    found = re.search(r'data-testid="current-tenant"[^>]*>(.*?)</span>', page, re.S)
    return re.sub(r"<[^>]+>", "", found.group(1)) if found else ""


def platform_card(page: str, name: str) -> str:
    found = re.search(rf'data-testid="platform-{name}"[^>]*>(.*?)</section>', page, re.S)
    assert found, f"no card for {name}"
    return found.group(1)


def state_of(page: str, name: str) -> tuple[str, str]:
    """The (css class, label) of one platform's state on the dashboard."""
    found = re.search(r'<span class="state ([\w-]+)"[^>]*>(.*?)</span>', platform_card(page, name), re.S)
    return found.group(1), found.group(2).strip()


def delivery_status(page: str) -> str:
    return re.search(r'data-testid="delivery-status"[^>]*>\s*(\w+)', page).group(1).lower()


def make_row(tenant, event_id, source="manychat", status=WebhookLog.Status.PROCESSED, **fields) -> WebhookLog:
    with tenant_context(tenant):
        return WebhookLog.objects.create(source=source, event_id=event_id, status=status, body=b"{}", **fields)


def make_signup(tenant, email, external_id) -> PendingSignup:
    with tenant_context(tenant):
        contact = Contact.objects.create(email=email, first_name=email.split("@")[0], source="zoom")
        return PendingSignup.objects.create(contact=contact, source="zoom", external_id=external_id)


def membership_of(tenant, user) -> Membership | None:
    with tenant_context(tenant):
        return Membership.objects.filter(user=user).first()


def add_member(tenant, user, role) -> Membership:
    with tenant_context(tenant):
        return Membership.objects.create(user=user, role=role)


def integration_of(tenant, provider) -> TenantIntegration | None:
    with tenant_context(tenant):
        return TenantIntegration.objects.filter(provider=provider).first()


@pytest.fixture
def posh(world, django_capture_on_commit_callbacks):
    """Both tenants connected to Posh.VIP with their own secret; ``posh(tenant, fixture)`` delivers
    a signed fixture and runs its processing (tasks are in-process, on commit)."""
    for tenant in (world.acme, world.globex):
        connect(tenant, "poshvip", POSH_SECRET[tenant.slug])
    sender = Client()

    def deliver(tenant, name="purchase_created"):
        body = fixture_bytes("poshvip", name)
        with django_capture_on_commit_callbacks(execute=True):
            response = sender.post(
                webhook_path(tenant, "poshvip"), data=body, content_type="application/json",
                HTTP_X_POSH_SIGNATURE=hmac_sha256_hex(POSH_SECRET[tenant.slug], body),
            )
        assert response.status_code == 200, response.content
        with tenant_context(tenant):
            return WebhookLog.objects.filter(source="poshvip").order_by("-pk").first()

    return deliver


# --- signing in and out, password reset --------------------------------------------------------
def test_sign_in_by_username_and_sign_out_by_post(world):
    client = Client()
    assert client.get("/").status_code == 302
    assert client.get("/accounts/login/").status_code == 200
    refused = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert refused.status_code == 200 and "didn't match" in text(refused)

    response = client.post("/accounts/login/", {"username": "alice", "password": "pw-alicealice"})
    assert response.status_code == 302 and response["Location"] == "/"
    page = client.get("/")
    assert page.status_code == 200 and current_tenant(text(page)).startswith("Tenant: Acme")
    assert 'action="/accounts/logout/"' in text(page)

    assert client.get("/accounts/logout/").status_code == 405  # a GET never signs anyone out
    assert client.get("/").status_code == 200
    response = client.post("/accounts/logout/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert client.get("/")["Location"] == "/accounts/login/?next=/"


def test_sign_in_goes_to_next(world):
    client = Client()
    login = client.get("/webhooks/")
    assert login["Location"] == "/accounts/login/?next=/webhooks/"
    response = client.post("/accounts/login/", {"username": "bob", "password": "pw-bobbob", "next": "/webhooks/"})
    assert response["Location"] == "/webhooks/"


def test_password_reset_by_email_sets_a_password_that_signs_in(world, mailoutbox):
    client = Client()
    assert client.get("/accounts/password_reset/").status_code == 200
    response = client.post("/accounts/password_reset/", {"email": "alice@example.com"})
    assert response.status_code == 302
    assert [m.to for m in mailoutbox] == [["alice@example.com"]]
    link = re.search(r"http://testserver(/accounts/reset/[^/\s]+/[^/\s]+/)", mailoutbox[0].body).group(1)

    response = client.get(link)  # Django swaps the token for a session value and redirects
    assert response.status_code == 302
    form_url = response["Location"]
    assert "Choose a new password" in text(client.get(form_url))
    new_password = "fresh horse battery 91"
    response = client.post(form_url, {"new_password1": new_password, "new_password2": new_password})
    assert response.status_code == 302 and response["Location"] == "/accounts/reset/done/"

    assert not signs_in(Client(), "alice", "pw-alicealice")
    again = Client()
    response = again.post("/accounts/login/", {"username": "alice", "password": "fresh horse battery 91"})
    assert response["Location"] == "/"
    assert current_tenant(text(again.get("/"))).startswith("Tenant: Acme")
    # The link worked once; it does not work twice.
    assert "This link has expired" in text(Client().get(link, follow=True))


def test_password_reset_for_an_unknown_address_sends_nothing(world, mailoutbox):
    response = Client().post("/accounts/password_reset/", {"email": "nobody@example.com"})
    assert response.status_code == 302 and mailoutbox == []
    world.bob.is_active = False
    world.bob.save()
    Client().post("/accounts/password_reset/", {"email": "bob@example.com"})
    assert mailoutbox == []


def test_someone_added_who_never_chose_a_password_can_ask_for_a_link(world, mailoutbox):
    """Added by an operator without a password: "Forgot your password?" must still work
    (Django's own form skips accounts without a usable password)."""
    late = find_or_create_user("late@example.com")[0]  # as add_tenant_user makes them, without a password
    add_member(world.acme, late, Membership.Role.MEMBER)
    response = Client().post("/accounts/password_reset/", {"email": "LATE@example.com"})
    assert response.status_code == 302 and [m.to for m in mailoutbox] == [["late@example.com"]]
    link = re.search(r"http://testserver(/accounts/reset/[^/\s]+/[^/\s]+/)", mailoutbox[0].body).group(1)
    person = Client()
    form_url = person.get(link)["Location"]
    person.post(form_url, {"new_password1": "slow green kettle 44", "new_password2": "slow green kettle 44"})
    assert signs_in(person, "late@example.com", "slow green kettle 44")
    assert current_tenant(text(person.get("/"))).startswith("Tenant: Acme")


# --- dashboard ------------------------------------------------------------------------------
def test_dashboard_lists_every_platform_with_its_state(world, posh, monkeypatch):
    # stripe: nothing. zoom: everything entered, no event yet. ghl: a required value missing.
    # denefits: switched off. eventbrite: the last API call failed after its last event.
    connect(world.acme, "zoom", "zoom-whsec-0123456789abcdef", account_id="AcctD8cJuqWVQ623CI4Q", client_id="ClntIq8rNw2uT3mZ0aKc",
            client_secret="zoom-client-secret-000000")
    connect(world.acme, "ghl", "ghl-token-0123456789abcdef", api_key="ghl-key-0123456789abcdef")
    connect(world.acme, "denefits", "denefits-token-0123456789")
    with tenant_context(world.acme):
        TenantIntegration.objects.filter(provider="denefits").update(is_active=False)
    connect(world.acme, "eventbrite", "eb-token-0123456789abcdef", private_token="eb-private-token-0000")
    with tenant_context(world.acme):
        TenantIntegration.objects.filter(provider="eventbrite").update(
            last_error="HttpError: 401 from Eventbrite", last_error_at=timezone.now()
        )
        # manychat (the world's row, received now): an error older than its last event is history.
        TenantIntegration.objects.filter(provider="manychat").update(
            last_error="an old error", last_error_at=timezone.now() - timedelta(days=2)
        )
    posh(world.acme)

    page = text(client_for(world.alice).get("/"))
    for name, provider in PROVIDERS.items():
        assert f'data-testid="platform-{name}"' in page, name
        assert provider.label in platform_card(page, name)
    states = {name: state_of(page, name) for name in PROVIDERS}
    assert states == {
        "stripe": ("not-connected", "Not connected"),
        "zoom": ("connected", "Connected"),
        "ghl": ("incomplete", "Setup incomplete"),
        "manychat": ("receiving", "Receiving"),
        "denefits": ("not-connected", "Not connected"),
        "perspective": ("not-connected", "Not connected"),
        "poshvip": ("receiving", "Receiving"),
        "eventbrite": ("failing", "Failing"),
        "easyappointments": ("not-connected", "Not connected"),
        "meta": ("not-connected", "Not connected"),
        "brevo": ("not-connected", "Not connected"),
    }
    posh_card = re.sub(r"<[^>]+>", "", platform_card(page, "poshvip"))
    assert "1 event today" in posh_card and "Last event: 0\xa0minutes ago" in posh_card
    assert "0 % failed (0 of 1)" in posh_card and 'role="img"' in platform_card(page, "poshvip")
    # Connected platforms come first; the others are in the fold below them.
    connected, folded = page.split('data-testid="not-connected-platforms"')
    assert 'platform-poshvip"' in connected and 'platform-stripe"' in folded and 'platform-stripe"' not in connected
    assert "Last event: none yet" in platform_card(page, "zoom")
    assert "Last error: HttpError: 401 from Eventbrite" in platform_card(page, "eventbrite")
    assert "an old error" not in page
    assert 'href="/setup/stripe/"' in page and 'href="/setup/meta/"' in page

    # A delivery whose processing fails: the platform is failing, with the handler's error.
    def broken_handler(event):
        raise RuntimeError("refund ledger unavailable")

    monkeypatch.setitem(POSH_HANDLERS, "purchase.refunded", broken_handler)
    row = posh(world.acme, "purchase_refunded")
    assert row.status == WebhookLog.Status.FAILED
    page = text(client_for(world.alice).get("/"))
    assert state_of(page, "poshvip") == ("failing", "Failing")
    assert "Last error: an error on our side stopped processing" in platform_card(page, "poshvip")
    assert "RuntimeError" not in page and "refund ledger unavailable" not in page
    assert "2 events today" in platform_card(page, "poshvip")
    # globex's dashboard knows nothing of it.
    other = text(client_for(world.dana).get("/"))
    assert state_of(other, "poshvip") == ("connected", "Connected")
    assert "refund ledger" not in other and state_of(other, "eventbrite")[0] == "not-connected"


def test_a_dead_row_of_the_last_day_makes_a_platform_failing_an_older_one_does_not(world):
    make_row(world.acme, "dead-one", status=WebhookLog.Status.DEAD, error="gave up")
    client = client_for(world.alice)
    assert state_of(text(client.get("/")), "manychat") == ("failing", "Failing")
    with tenant_context(world.acme):
        WebhookLog.objects.filter(event_id="dead-one").update(updated_at=timezone.now() - timedelta(hours=25))
    assert state_of(text(client.get("/")), "manychat") == ("receiving", "Receiving")


def test_events_today_are_counted_from_midnight_in_the_tenants_timezone(world):
    now = timezone.now()
    # A zone whose date differs from UTC's right now, so counting from UTC midnight would differ.
    zone_name = "Pacific/Kiritimati" if now.astimezone(ZoneInfo("UTC")).hour >= 10 else "Pacific/Pago_Pago"
    zone = ZoneInfo(zone_name)
    world.acme.timezone = zone_name
    world.acme.save()
    midnight = datetime.combine(now.astimezone(zone).date(), time.min, tzinfo=zone)
    with tenant_context(world.acme):
        WebhookLog.objects.all().delete()
    times = [midnight - timedelta(minutes=1), min(midnight + timedelta(minutes=1), now), now]
    for i, at in enumerate(times):
        row = make_row(world.acme, f"tz-{i}")
        with tenant_context(world.acme):
            WebhookLog.objects.filter(pk=row.pk).update(received_at=at)
    make_row(world.acme, "forged", status=WebhookLog.Status.REJECTED)  # not an event

    page = text(client_for(world.alice).get("/"))
    assert f"from midnight, {zone_name}" in page
    assert "2 events today" in platform_card(page, "manychat")


def test_the_tenant_name_is_shown_on_every_page(world):
    row = make_row(world.acme, "shown")
    client = client_for(world.bob)
    for url in ["/", "/members/", "/webhooks/", f"/webhooks/{row.pk}/", "/signups/", "/setup/stripe/"]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert current_tenant(text(response)).startswith("Tenant: Acme"), url


def test_every_post_form_carries_a_csrf_token(world, posh):
    row = posh(world.acme)
    client = client_for(world.alice)
    urls = ["/", "/members/", "/webhooks/", f"/webhooks/{row.pk}/", "/signups/", "/setup/manychat/", "/tenants/pick/"]
    for url in urls:
        forms = re.findall(r'<form method="post".*?</form>', text(client.get(url)), re.S)
        assert forms, url
        for form in forms:
            assert 'name="csrfmiddlewaretoken"' in form, (url, form[:120])


# --- picking a tenant -------------------------------------------------------------------------
def test_staff_pick_any_tenant_and_the_session_remembers_it(world):
    client = client_for(world.oscar)
    response = client.get("/webhooks/")
    assert response.status_code == 302 and response["Location"] == "/tenants/pick/?next=%2Fwebhooks%2F"
    picker = text(client.get(response["Location"]))
    assert 'value="acme"' in picker and 'value="globex"' in picker and 'value="/webhooks/"' in picker

    response = client.post("/tenants/pick/", {"tenant": "globex", "next": "/webhooks/"})
    assert response.status_code == 302 and response["Location"] == "/webhooks/"
    page = text(client.get("/"))
    assert current_tenant(page).startswith("Tenant: Globex") and 'href="/tenants/pick/"' in page
    assert current_tenant(text(client.get("/members/"))).startswith("Tenant: Globex")
    assert "dana@example.com" in text(client.get("/members/"))

    client.post("/tenants/pick/", {"tenant": "acme"})
    page = text(client.get("/members/"))
    assert current_tenant(page).startswith("Tenant: Acme") and "alice@example.com" in page
    assert "dana@example.com" not in page
    assert client.post("/tenants/pick/", {"tenant": "no-such-tenant"}).status_code == 404


@pytest.mark.parametrize("next_url", ["https://evil.example/", "//evil.example/x", "http://testserver.evil.example/"])
def test_a_next_pointing_off_site_is_ignored(world, next_url):
    client = client_for(world.oscar)
    response = client.post("/tenants/pick/", {"tenant": "acme", "next": next_url})
    assert response.status_code == 302 and response["Location"] == "/"


def test_a_user_of_two_tenants_switches_between_theirs_only(world):
    initech = Tenant.objects.create(slug="initech", name="Initech")
    add_member(world.globex, world.alice, Membership.Role.MEMBER)
    client = client_for(world.alice)
    page = text(client.get("/"))
    assert current_tenant(page).startswith("Tenant: Acme")
    assert 'href="/tenants/pick/"' in page  # the switch link

    picker = text(client.get("/tenants/pick/"))
    assert 'value="acme"' in picker and 'value="globex"' in picker and "initech" not in picker
    assert client.post("/tenants/pick/", {"tenant": "initech"}).status_code == 404
    assert client.post("/tenants/pick/", {"tenant": "globex"})["Location"] == "/"
    page = text(client.get("/"))
    assert current_tenant(page).startswith("Tenant: Globex")
    # As a member of globex she looks, and cannot change.
    assert client.post("/signups/decide/", {"decision": "approve", "ids": ["1"]}).status_code == 403
    client.post("/tenants/pick/", {"tenant": "acme"})
    assert current_tenant(text(client.get("/"))).startswith("Tenant: Acme")
    assert initech.pk  # untouched, never shown

    # One tenant only: no switch link, and no other tenant to pick.
    page = text(client_for(world.bob).get("/"))
    assert 'href="/tenants/pick/"' not in page
    assert client_for(world.bob).post("/tenants/pick/", {"tenant": "globex"}).status_code == 404


def test_a_removed_membership_no_longer_opens_the_remembered_tenant(world):
    add_member(world.globex, world.bob, Membership.Role.MEMBER)
    client = client_for(world.bob)
    client.post("/tenants/pick/", {"tenant": "globex"})
    assert current_tenant(text(client.get("/"))).startswith("Tenant: Globex")
    with tenant_context(world.globex):
        Membership.objects.filter(user=world.bob).delete()
    page = text(client.get("/"))
    assert current_tenant(page).startswith("Tenant: Acme") and "Globex" not in page


# --- setup pages ----------------------------------------------------------------------------
def credential_post(provider, tag: str) -> tuple[dict, list[str]]:
    """A full form for ``provider``: a long, distinct value for every secret (and the webhook
    secret), plain values for the settings. Returns the data and the secret values."""
    data, secrets = {"is_active": "on"}, []
    for i, field in enumerate(provider.credential_fields):
        if field.secret:  # shaped as the platform issues it (the field's example start)
            data[field.name] = f"{field.example}{provider.name}-{field.name}-{tag}-s3cr3t-{i}{tag[-2:]}x"
            secrets.append(data[field.name])
        else:
            data[field.name] = field.example or f"{field.name}-value"
    if provider.receives_webhooks:
        data["new_webhook_secret"] = f"{provider.webhook_secret_example}{provider.name}-whsec-{tag}-typed-9876w"
        secrets.append(data["new_webhook_secret"])
    return data, secrets


@pytest.mark.parametrize("name", list(PROVIDERS))
def test_the_setup_page_of_every_platform(world, name, settings):
    settings.PUBLIC_BASE_URL = "https://hub.example.org"
    provider = PROVIDERS[name]
    client = client_for(world.alice)
    page = text(client.get(f"/setup/{name}/"))
    assert f"<h1>{provider.label}</h1>" in page
    steps = re.search(r'<ol class="steps">(.*?)</ol>', page, re.S).group(1)
    assert steps.count("<li>") >= 1
    url = f"https://hub.example.org/api/webhooks/{world.acme.pk}/{name}/"
    if provider.receives_webhooks:
        field = re.search(r'<input[^>]*id="webhook-url"[^>]*>', page).group(0)
        assert " readonly" in field and f'value="{url}"' in field
        assert re.search(r'<button[^>]*data-copy-target="webhook-url"', page)
        assert url == webhook_url(world.acme, name) and url in steps
    else:
        assert 'id="webhook-url"' not in page
    assert str(world.globex.pk) not in page

    # Save: every secret is stored and never shown again, beyond "configured, ends in …".
    data, secrets = credential_post(provider, "a1")
    response = client.post(f"/setup/{name}/", data)
    assert response.status_code == 302 and response["Location"] == f"/setup/{name}/", text(response)
    page = text(client.get(f"/setup/{name}/"))
    assert f"{provider.label} saved." in page
    for secret in secrets:
        assert secret not in page
        assert f"Configured, ends in …{secret[-4:]}; leave blank to keep it." in page
    integration = integration_of(world.acme, name)
    assert integration.is_active and integration.is_configured
    for field in provider.credential_fields:
        assert integration.value(field.name) == data[field.name]
    if provider.receives_webhooks:
        assert integration.webhook_secret == data["new_webhook_secret"]

    # A blank secret keeps the stored one; settings change as typed.
    blank = {k: ("" if v in secrets else v) for k, v in data.items()}
    assert client.post(f"/setup/{name}/", blank).status_code == 302
    again = integration_of(world.acme, name)
    assert again.credentials == integration.credentials and again.webhook_secret == integration.webhook_secret
    page = text(client.get(f"/setup/{name}/"))
    assert not any(secret in page for secret in secrets)

    # globex's connection is not this one.
    theirs = integration_of(world.globex, name)
    assert theirs is None if name != "manychat" else theirs.webhook_secret == SHARED_WEBHOOK_SECRET


def test_a_form_error_does_not_echo_the_typed_secret(world):
    client = client_for(world.alice)
    typed = "typed-but-refused-secret-0000"
    response = client.post(
        "/setup/manychat/", {"is_active": "on", "new_webhook_secret": typed, "generate_webhook_secret": "on"}
    )
    assert response.status_code == 400
    assert "not both" in text(response) and typed not in text(response)
    assert integration_of(world.acme, "manychat").webhook_secret == SHARED_WEBHOOK_SECRET


def test_a_generated_token_is_shown_once(world):
    client = client_for(world.alice)
    response = client.post("/setup/manychat/", {"is_active": "on", "generate_webhook_secret": "on"})
    token = integration_of(world.acme, "manychat").webhook_secret
    assert token != SHARED_WEBHOOK_SECRET and len(token) >= 32
    # On this answer only, in a box with a copy button and the next step; not in a message cookie.
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    box = re.search(r'data-testid="new-token">(.*?)</section>', text(response), re.S).group(1)
    assert f'id="new-token" type="text" readonly value="{token}"' in box
    assert 'data-copy-target="new-token"' in box and "Shown only this once." in box and "Next:" in box
    assert all(token not in morsel.value for morsel in response.cookies.values())
    page = text(client.get("/setup/manychat/"))
    assert token not in page and f"Configured, ends in …{token[-4:]}" in page
    assert token not in text(client.get("/"))
    assert token not in text(client_for(world.bob).get("/setup/manychat/"))


def test_members_see_the_setup_page_but_cannot_change_it(world):
    client = client_for(world.bob)
    page = text(client.get("/setup/manychat/"))
    assert "Owners and admins can change the connection." in page
    assert 'name="new_webhook_secret"' not in page and 'name="api_key"' not in page and ">Save<" not in page
    assert "API key: configured" in page
    assert SHARED_WEBHOOK_SECRET not in page and "mc-api-key-of-acme-0000" not in page
    before = integration_of(world.acme, "manychat")
    response = client.post("/setup/manychat/", {"is_active": "", "new_webhook_secret": "bob-was-here-0000000000"})
    assert response.status_code == 403
    after = integration_of(world.acme, "manychat")
    assert after.is_active and after.webhook_secret == before.webhook_secret == SHARED_WEBHOOK_SECRET
    assert client.post("/setup/stripe/", {"is_active": "on"}).status_code == 403
    assert integration_of(world.acme, "stripe") is None


def test_admins_can_save_and_unknown_platforms_are_404(world):
    ada = make_user("ada")
    add_member(world.acme, ada, Membership.Role.ADMIN)
    client = client_for(ada)
    assert client.post("/setup/stripe/", {
        "is_active": "on", "secret_key": "sk_test_ada_0123456789", "new_webhook_secret": "whsec_ada_0123456789",
    }).status_code == 302
    assert integration_of(world.acme, "stripe").value("secret_key") == "sk_test_ada_0123456789"
    assert client.get("/setup/nope/").status_code == 404
    assert client.post("/setup/nope/", {}).status_code == 404


def test_the_setup_page_lists_this_tenants_last_deliveries(world, posh):
    mine = posh(world.acme)
    theirs = posh(world.globex)
    page = text(client_for(world.alice).get("/setup/poshvip/"))
    assert f'href="/webhooks/{mine.pk}/"' in page and f'href="/webhooks/{theirs.pk}/"' not in page
    assert "purchase.created" in page and "processed" in page
    page = text(client_for(world.dana).get("/setup/poshvip/"))
    assert f'href="/webhooks/{theirs.pk}/"' in page and f'href="/webhooks/{mine.pk}/"' not in page
    assert "Nothing received yet." in text(client_for(world.alice).get("/setup/stripe/"))


# --- webhook log ----------------------------------------------------------------------------
def test_the_log_filters_by_platform_and_status(world):
    stripe_failed = make_row(world.acme, "evt-stripe-failed", source="stripe", status=WebhookLog.Status.FAILED)
    stripe_ok = make_row(world.acme, "evt-stripe-ok", source="stripe")
    posh_failed = make_row(world.acme, "evt-posh-failed", source="poshvip", status=WebhookLog.Status.FAILED)
    theirs = make_row(world.globex, "evt-stripe-globex", source="stripe", status=WebhookLog.Status.FAILED)
    client = client_for(world.alice)

    def listed(query=""):
        return set(int(pk) for pk in re.findall(r'href="/webhooks/(\d+)/"', text(client.get(f"/webhooks/{query}"))))

    with tenant_context(world.acme):
        world_row = WebhookLog.objects.get(source="manychat").pk
    assert listed() == {stripe_failed.pk, stripe_ok.pk, posh_failed.pk, world_row}
    assert listed("?source=stripe") == {stripe_failed.pk, stripe_ok.pk}
    assert listed("?status=failed") == {stripe_failed.pk, posh_failed.pk}
    assert listed("?source=stripe&status=failed") == {stripe_failed.pk}
    assert listed("?source=zoom") == set()
    assert "No deliveries match these filters." in text(client.get("/webhooks/?source=zoom"))
    assert theirs.pk not in listed() | listed("?source=stripe&status=failed")
    page = text(client.get("/webhooks/?source=stripe&status=failed"))
    assert '<option value="stripe" selected>' in page and '<option value="failed" selected>' in page


def test_the_detail_page_shows_redacted_headers_and_the_body(world, posh):
    row = posh(world.acme)
    body = fixture_bytes("poshvip", "purchase_created")
    page = text(client_for(world.alice).get(f"/webhooks/{row.pk}/"))
    assert "X-Posh-Signature: [redacted]" in page
    assert hmac_sha256_hex(POSH_SECRET["acme"], body) not in page and POSH_SECRET["acme"] not in page
    assert "Content-Type: application/json" in page
    assert "pur_8f3k2LmQ9xT4" in page and "Jordan.Blake@example.com" in page  # the body, as sent
    assert delivery_status(page) == "processed"
    assert f'action="/webhooks/{row.pk}/replay/"' in page
    # Members see the same delivery without the replay button.
    page = text(client_for(world.bob).get(f"/webhooks/{row.pk}/"))
    assert "pur_8f3k2LmQ9xT4" in page and "/replay/" not in page


def test_the_detail_page_redacts_secret_headers_whoever_stored_them(world):
    row = make_row(world.acme, "raw-headers", headers={
        "Authorization": "Bearer raw-bearer-secret-0000", "Stripe-Signature": "t=1,v1=deadbeefsignature",
        "User-Agent": "Stripe/1.0",
    })
    page = text(client_for(world.alice).get(f"/webhooks/{row.pk}/"))
    assert "raw-bearer-secret-0000" not in page and "deadbeefsignature" not in page
    assert "Authorization: [redacted]" in page and "Stripe-Signature: [redacted]" in page
    assert "User-Agent: Stripe/1.0" in page


def test_admins_replay_a_delivery_which_is_processed_again_without_duplicates(
    world, posh, django_capture_on_commit_callbacks
):
    row = posh(world.acme)
    with tenant_context(world.acme):
        assert Payment.objects.filter(source="poshvip").count() == 1
        WebhookLog.objects.filter(pk=row.pk).update(status=WebhookLog.Status.DEAD, error="it died")
    client = client_for(world.alice)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(f"/webhooks/{row.pk}/replay/")
    assert response.status_code == 302 and response["Location"] == f"/webhooks/{row.pk}/"
    assert len(callbacks) == 1
    with tenant_context(world.acme):
        replayed = WebhookLog.objects.get(pk=row.pk)
        assert (replayed.status, replayed.error, replayed.attempts) == (WebhookLog.Status.PROCESSED, "", 2)
        assert Payment.objects.filter(source="poshvip").count() == 1
    page = text(client.get(f"/webhooks/{row.pk}/"))
    assert "queued again" in page and delivery_status(page) == "processed"
    with tenant_context(world.globex):
        assert not Payment.objects.filter(source="poshvip").exists()


def test_a_rejected_delivery_cannot_be_replayed(world):
    row = make_row(world.acme, "forged", source="stripe", status=WebhookLog.Status.REJECTED,
                   error="signature does not match")
    client = client_for(world.alice)
    page = text(client.get(f"/webhooks/{row.pk}/"))
    assert "Rejected:" in page and "/replay/" not in page
    page = text(client.post(f"/webhooks/{row.pk}/replay/", follow=True))
    assert "cannot be replayed" in page
    with tenant_context(world.acme):
        assert WebhookLog.objects.get(pk=row.pk).status == WebhookLog.Status.REJECTED


def test_members_cannot_replay(world, posh, django_capture_on_commit_callbacks):
    row = posh(world.acme)
    with tenant_context(world.acme):
        WebhookLog.objects.filter(pk=row.pk).update(status=WebhookLog.Status.DEAD)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client_for(world.bob).post(f"/webhooks/{row.pk}/replay/")
    assert response.status_code == 403 and callbacks == []
    with tenant_context(world.acme):
        assert WebhookLog.objects.get(pk=row.pk).status == WebhookLog.Status.DEAD


def test_another_tenants_delivery_is_404_on_detail_and_replay(world, posh, django_capture_on_commit_callbacks):
    row = posh(world.acme)
    with tenant_context(world.acme):
        WebhookLog.objects.filter(pk=row.pk).update(status=WebhookLog.Status.DEAD)
    dana = client_for(world.dana)
    assert dana.get(f"/webhooks/{row.pk}/").status_code == 404
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert dana.post(f"/webhooks/{row.pk}/replay/").status_code == 404
    assert callbacks == []
    with tenant_context(world.acme):
        assert WebhookLog.objects.get(pk=row.pk).status == WebhookLog.Status.DEAD
    assert client_for(world.alice).get("/webhooks/999999/").status_code == 404


# --- sign-ups -------------------------------------------------------------------------------
@pytest.fixture
def queue(world):
    with tenant_context(world.acme):
        first = PendingSignup.objects.get()
    rows = [first] + [make_signup(world.acme, f"person{i}@example.com", f"reg-a{i}") for i in range(2, 6)]
    with tenant_context(world.globex):
        theirs = PendingSignup.objects.get()
    return rows, theirs


def statuses(tenant) -> dict[int, str]:
    with tenant_context(tenant):
        return dict(PendingSignup.objects.values_list("pk", "status"))


def test_approve_or_dismiss_one(world, queue):
    rows, theirs = queue
    client = client_for(world.alice)
    page = text(client.get("/signups/"))
    for row in rows:
        assert f'name="approve_one" value="{row.pk}"' in page and f'name="dismiss_one" value="{row.pk}"' in page
    assert f'name="approve_one" value="{theirs.pk}"' not in page

    response = client.post("/signups/decide/", {"approve_one": rows[0].pk})
    assert response.status_code == 302 and response["Location"] == "/signups/"
    assert client.post("/signups/decide/", {"dismiss_one": rows[1].pk}).status_code == 302
    now = statuses(world.acme)
    assert now[rows[0].pk] == "approved" and now[rows[1].pk] == "dismissed"
    assert all(now[r.pk] == "pending" for r in rows[2:])
    with tenant_context(world.acme):
        decided = PendingSignup.objects.get(pk=rows[0].pk)
        assert decided.decided_by == world.alice and decided.decided_at is not None
    page = text(client.get("/signups/"))
    assert f'name="approve_one" value="{rows[0].pk}"' not in page and f'name="approve_one" value="{rows[2].pk}"' in page
    assert "person2@example.com" not in page  # rows[1] was dismissed
    assert "person2@example.com" in text(client.get("/signups/?status=dismissed"))
    assert statuses(world.globex) == {theirs.pk: "pending"}


def test_approve_or_dismiss_in_bulk_touches_only_this_tenants_rows(world, queue):
    rows, theirs = queue
    client = client_for(world.alice)
    ids = [rows[2].pk, rows[3].pk, theirs.pk]
    page = text(client.post("/signups/decide/", {"ids": ids, "decision": "approve"}, follow=True))
    assert "2 sign-ups approved." in page
    now = statuses(world.acme)
    assert [now[r.pk] for r in rows] == ["pending", "pending", "approved", "approved", "pending"]
    assert statuses(world.globex) == {theirs.pk: "pending"}

    client.post("/signups/decide/", {"ids": [rows[0].pk, rows[4].pk], "decision": "dismiss"})
    now = statuses(world.acme)
    assert [now[r.pk] for r in rows] == ["dismissed", "pending", "approved", "approved", "dismissed"]
    # A decided row is not decided again; nothing chosen is an error message, not a change.
    page = text(client.post("/signups/decide/", {"ids": [rows[2].pk], "decision": "dismiss"}, follow=True))
    assert "0 sign-ups dismissed." in page and statuses(world.acme)[rows[2].pk] == "approved"
    page = text(client.post("/signups/decide/", {"decision": "approve"}, follow=True))
    assert "Choose at least one sign-up" in page

    # dana's button with acme's id changes nothing at acme.
    dana = client_for(world.dana)
    page = text(dana.post("/signups/decide/", {"approve_one": rows[1].pk}, follow=True))
    assert "0 sign-ups approved." in page
    assert statuses(world.acme)[rows[1].pk] == "pending"


def test_members_see_sign_ups_but_cannot_decide(world, queue):
    rows, _ = queue
    client = client_for(world.bob)
    page = text(client.get("/signups/"))
    assert "person3@example.com" in page
    assert 'name="approve_one"' not in page and 'name="decision"' not in page
    assert client.post("/signups/decide/", {"approve_one": rows[0].pk}).status_code == 403
    assert client.post("/signups/decide/", {"ids": [r.pk for r in rows], "decision": "dismiss"}).status_code == 403
    assert set(statuses(world.acme).values()) == {"pending"}


# --- members --------------------------------------------------------------------------------
def test_only_an_owner_can_make_an_owner(world):
    ada = make_user("ada")
    add_member(world.acme, ada, Membership.Role.ADMIN)
    admin = client_for(ada)
    page = text(admin.get("/members/"))
    assert '<option value="owner"' not in page and '<option value="admin"' in page
    response = admin.post("/members/invite/", {"email": "charlie@example.com", "role": "owner"})
    assert response.status_code == 400
    assert membership_of(world.acme, world.charlie) is None
    # Nor raise someone to owner, nor bring an owner down, through the invite form.
    assert admin.post("/members/invite/", {"email": "bob@example.com", "role": "owner"}).status_code == 400
    assert membership_of(world.acme, world.bob).role == "member"
    add_member(world.acme, world.dana, Membership.Role.OWNER)  # a second owner: no "last owner" excuse
    response = admin.post("/members/invite/", {"email": "alice@example.com", "role": "member"})
    assert response.status_code == 400 and "Only an owner" in text(response)
    assert membership_of(world.acme, world.alice).role == "owner"

    owner = client_for(world.alice)
    assert '<option value="owner"' in text(owner.get("/members/"))
    assert owner.post("/members/invite/", {"email": "charlie@example.com", "role": "owner"}).status_code == 302
    with tenant_context(world.acme):
        assert Invitation.objects.get(email="charlie@example.com").role == "owner"
    assert membership_of(world.acme, world.charlie) is None  # until charlie accepts


def test_the_last_owner_cannot_step_down_through_the_invite_form(world):
    client = client_for(world.alice)
    response = client.post("/members/invite/", {"email": "alice@example.com", "role": "member"})
    assert response.status_code == 400 and "last owner" in text(response)
    assert membership_of(world.acme, world.alice).role == "owner"


def test_removing_members(world):
    ada = make_user("ada")
    ada_membership = add_member(world.acme, ada, Membership.Role.ADMIN)
    alice_membership = membership_of(world.acme, world.alice)
    bob_membership = membership_of(world.acme, world.bob)
    admin = client_for(ada)

    page = text(admin.post(f"/members/{alice_membership.pk}/remove/", follow=True))
    assert "Only an owner can remove an owner." in page
    assert membership_of(world.acme, world.alice) is not None
    page = text(admin.post(f"/members/{bob_membership.pk}/remove/", follow=True))
    assert "bob@example.com was removed." in page
    assert membership_of(world.acme, world.bob) is None
    assert "bob@example.com" not in text(admin.get("/members/"))
    assert client_for(world.bob).get("/").status_code == 403  # bob is in no tenant now

    owner = client_for(world.alice)
    page = text(owner.post(f"/members/{alice_membership.pk}/remove/", follow=True))
    assert "The last owner cannot be removed." in page
    assert membership_of(world.acme, world.alice).role == "owner"
    second = add_member(world.acme, world.charlie, Membership.Role.OWNER)
    assert "was removed" in text(owner.post(f"/members/{second.pk}/remove/", follow=True))
    assert "was removed" in text(owner.post(f"/members/{ada_membership.pk}/remove/", follow=True))
    assert membership_of(world.acme, world.charlie) is None and membership_of(world.acme, ada) is None
    assert owner.post("/members/999999/remove/").status_code == 404


def test_members_only_look_at_the_members_page(world, mailoutbox):
    client = client_for(world.bob)
    page = text(client.get("/members/"))
    assert "alice@example.com" in page and "bob@example.com" in page
    assert "Invite someone" not in page and "/remove/" not in page
    assert "Owners and admins can invite and remove members." in page
    assert client.post("/members/invite/", {"email": "friend@example.com", "role": "member"}).status_code == 403
    alice_membership = membership_of(world.acme, world.alice)
    assert client.post(f"/members/{alice_membership.pk}/remove/").status_code == 403
    assert membership_of(world.acme, world.alice) is not None
    assert not get_user_model().objects.filter(email="friend@example.com").exists() and mailoutbox == []


# --- isolation ------------------------------------------------------------------------------
@pytest.fixture
def acme_ids(world):
    """Rows of acme's that only acme has, and the URLs of every page with them in."""
    row = make_row(world.acme, "acme-only-event", source="stripe", headers={"User-Agent": "acme-only-agent"})
    signup = make_signup(world.acme, "acme-only@example.com", "reg-acme-only")
    membership = membership_of(world.acme, world.bob)
    get_urls = [
        "/", "/members/", "/webhooks/", f"/webhooks/{row.pk}/", "/webhooks/?source=stripe&status=processed",
        "/signups/", "/signups/?status=approved", *[f"/setup/{name}/" for name in PROVIDERS],
    ]
    post_urls = [
        ("/members/invite/", {"email": "x@example.com", "role": "member"}),
        (f"/members/{membership.pk}/remove/", {}),
        (f"/webhooks/{row.pk}/replay/", {}),
        ("/signups/decide/", {"approve_one": signup.pk}),
        ("/setup/stripe/", {"is_active": "on", "secret_key": "sk_intruder_000000000000"}),
        ("/setup/manychat/check/", {}),
    ]
    return {"row": row, "signup": signup, "membership": membership, "get": get_urls, "post": post_urls}


def test_anonymous_visitors_are_sent_to_sign_in(world, acme_ids):
    client = Client()
    for url in acme_ids["get"] + ["/tenants/pick/"]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"] == f"/accounts/login/?next={quote(url, safe='/')}", url
    for url, data in acme_ids["post"]:
        response = client.post(url, data)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url
    assert statuses(world.acme)[acme_ids["signup"].pk] == "pending"


def test_a_user_in_no_tenant_gets_the_no_tenant_page(world, acme_ids):
    client = client_for(world.charlie)
    for url in acme_ids["get"]:
        response = client.get(url)
        assert response.status_code == 403, url
        assert NOT_IN_ANY_TENANT in text(response), url
        assert "acme-only" not in text(response) and "Acme" not in text(response)
    for url, data in acme_ids["post"]:
        assert client.post(url, data).status_code == 403, url
    assert client.get("/?tenant=acme").status_code == 404
    assert statuses(world.acme)[acme_ids["signup"].pk] == "pending"
    assert integration_of(world.acme, "stripe") is None


def test_naming_a_tenant_that_is_not_yours_is_404(world, acme_ids):
    client = client_for(world.dana)
    for url in acme_ids["get"]:
        named = url + ("&" if "?" in url else "?") + "tenant=acme"
        assert client.get(named).status_code == 404, named
        assert client.get(named, HTTP_X_TENANT=str(world.acme.pk)).status_code == 404, named
    for url, data in acme_ids["post"]:
        assert client.post(url + "?tenant=acme", data).status_code == 404, url
    assert statuses(world.acme)[acme_ids["signup"].pk] == "pending"
    assert integration_of(world.acme, "stripe") is None
    assert membership_of(world.acme, world.bob) is not None


def test_another_tenants_user_gets_404_for_acmes_ids_and_sees_only_their_own_data(
    world, acme_ids, django_capture_on_commit_callbacks
):
    client = client_for(world.dana)
    row, membership = acme_ids["row"], acme_ids["membership"]
    assert client.get(f"/webhooks/{row.pk}/").status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/webhooks/{row.pk}/replay/").status_code == 404
    assert client.post(f"/members/{membership.pk}/remove/").status_code == 404
    assert membership_of(world.acme, world.bob) is not None

    with tenant_context(world.globex):
        globex_row = WebhookLog.objects.get().pk
    for url in acme_ids["get"]:
        response = client.get(url)
        if str(row.pk) in url.split("?")[0]:
            assert response.status_code == 404, url
            continue
        page = text(response)
        assert response.status_code == 200, url
        assert current_tenant(page).startswith("Tenant: Globex"), url
        for marker in ("acme-only", "Acme", "alice@example.com", "bob@example.com", str(world.acme.pk),
                       f'href="/webhooks/{row.pk}/"', f'value="{acme_ids["signup"].pk}"'):
            assert marker not in page, (url, marker)
    assert f'href="/webhooks/{globex_row}/"' in text(client.get("/webhooks/"))
    assert "dana@example.com" in text(client.get("/members/"))


def test_no_saved_secret_appears_on_any_page_for_anyone(world, acme_ids, posh):
    saved = [SHARED_WEBHOOK_SECRET, "mc-api-key-of-acme-0000", "mc-api-key-of-globex-0000", *POSH_SECRET.values()]
    row = posh(world.acme)  # before Brevo is connected: a new contact would be synced to it
    for tenant in (world.acme, world.globex):
        extra = {
            "stripe": dict(secret="whsec_stripe_" + tenant.slug + "_0123456789",
                           secret_key="sk_live_" + tenant.slug + "_0123456789"),
            "zoom": dict(secret="zoom_whsec_" + tenant.slug + "_0123456789", account_id="AcctD8cJuqWVQ623CI4Q", client_id="ClntIq8rNw2uT3mZ0aKc",
                         client_secret="zoom_client_secret_" + tenant.slug + "_01"),
            "easyappointments": dict(secret="ea_token_" + tenant.slug + "_0123456789", url="https://ea.example",
                                     password="ea_password_" + tenant.slug + "_0123456"),
            "brevo": dict(api_key="xkeysib-" + tenant.slug + "-0123456789abcdef", list_id="7"),
        }
        for name, values in extra.items():
            connect(tenant, name, **values)
            secret_names = ("secret", "secret_key", "client_secret", "password", "api_key")
            saved += [value for key, value in values.items() if key in secret_names]
    oscar = client_for(world.oscar)
    oscar.post("/tenants/pick/", {"tenant": "acme"})
    clients = {
        "alice": client_for(world.alice), "bob": client_for(world.bob), "dana": client_for(world.dana),
        "charlie": client_for(world.charlie), "oscar": oscar, "anonymous": Client(),
    }
    urls = acme_ids["get"] + [f"/webhooks/{row.pk}/", "/tenants/pick/", "/accounts/login/", "/accounts/password_reset/"]
    for who, client in clients.items():
        for url in urls:
            page = text(client.get(url, follow=True))
            leaked = [secret for secret in saved if secret in page]
            assert leaked == [], (who, url, leaked)


# --- query counts ---------------------------------------------------------------------------
def queries_for(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured.captured_queries)


SOURCES = ["stripe", "zoom", "ghl", "manychat", "denefits", "perspective", "poshvip", "eventbrite", "easyappointments"]


def test_the_dashboard_runs_as_many_queries_for_2_rows_as_for_30(world):
    client = client_for(world.alice)
    client.get("/")
    make_row(world.acme, "q-0", source="stripe", status=WebhookLog.Status.FAILED)
    few = queries_for(client, "/")
    for i in range(1, 29):
        make_row(world.acme, f"q-{i}", source=SOURCES[i % len(SOURCES)],
                 status=[WebhookLog.Status.PROCESSED, WebhookLog.Status.DEAD, WebhookLog.Status.REJECTED][i % 3])
    for name in SOURCES:
        connect(world.acme, name, f"{name}-secret-0123456789")
    with tenant_context(world.acme):
        assert WebhookLog.objects.count() == 30
    assert queries_for(client, "/") == few


def test_the_webhook_log_runs_as_many_queries_for_2_rows_as_for_30(world):
    client = client_for(world.alice)
    client.get("/webhooks/")
    make_row(world.acme, "q-0", source="stripe")
    few = queries_for(client, "/webhooks/")
    for i in range(1, 29):
        make_row(world.acme, f"q-{i}", source=SOURCES[i % len(SOURCES)])
    with tenant_context(world.acme):
        assert WebhookLog.objects.count() == 30
    many = queries_for(client, "/webhooks/")
    assert many == few
    assert len(re.findall(r'href="/webhooks/\d+/"', text(client.get("/webhooks/")))) == 30


def test_the_sign_ups_list_runs_as_many_queries_for_2_rows_as_for_30(world):
    client = client_for(world.alice)
    client.get("/signups/")
    make_signup(world.acme, "q0@example.com", "q-0")
    few = queries_for(client, "/signups/")
    for i in range(1, 29):
        make_signup(world.acme, f"q{i}@example.com", f"q-{i}")
    with tenant_context(world.acme):
        assert PendingSignup.objects.filter(status="pending").count() == 30
    assert queries_for(client, "/signups/") == few
    assert text(client.get("/signups/")).count('name="approve_one"') == 30


def test_sign_in_with_the_e_mail_address_too(world, client):
    response = client.post("/accounts/login/", {"username": "ALICE@example.com", "password": "pw-alicealice"})
    assert response.status_code == 302 and response.url == "/"
    from conftest import make_user

    twin = make_user("alice2")
    twin.email = "alice@example.com"
    twin.save()
    client.logout()
    response = client.post("/accounts/login/", {"username": "alice@example.com", "password": "pw-alicealice"})
    assert response.status_code == 200  # two accounts share it: neither is guessed


def test_members_see_whether_the_webhook_secret_is_set(world, client):
    client.force_login(world.bob)
    text = client.get("/setup/manychat/").content.decode()
    assert "Webhook token" in text and "configured, ends in" in text.lower()


def test_a_page_that_fails_half_way_saves_nothing(world, client, monkeypatch):
    """A 500 rolls back what the view wrote: the invitation whose e-mail failed is not kept."""
    from tenants import invitations

    def broken_mail(*args, **kwargs):
        raise RuntimeError("mail server on fire")

    monkeypatch.setattr(invitations, "send_mail", broken_mail)  # the invitation e-mail fails
    client.raise_request_exception = False
    client.force_login(world.alice)
    response = client.post("/members/invite/", {"email": "newbie@example.com", "role": "member"})
    assert response.status_code == 500
    with tenant_context(world.acme):
        assert not Invitation.objects.filter(email="newbie@example.com").exists()
