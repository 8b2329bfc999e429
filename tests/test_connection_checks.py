"""“Check connection”: each API platform is called with the tenant's own credentials (local fakes)."""

import re

import pytest
import responses
from django.conf import settings

from integrations.http import ApiError, RateLimited
from integrations.registry import get_provider
from webhooks.testing import connect

# provider -> (credentials, method, url on the fake, answer JSON, words the message must hold)
CASES = {
    "stripe": ({"secret_key": "sk_test_acme_0000000000000000"}, "GET", lambda: f"{settings.STRIPE_API_BASE}/v1/balance",
               {"available": [{"amount": 10, "currency": "eur"}]}, "EUR"),
    "brevo": ({"api_key": "xkeysib-acme-000000000000", "list_id": "7"}, "GET", lambda: f"{settings.BREVO_API_BASE}/account",
              {"companyName": "Acme Studio"}, "Acme Studio"),
    "eventbrite": ({"private_token": "EB-ACME-TOKEN-0000000000"}, "GET", lambda: f"{settings.EVENTBRITE_API_BASE}/users/me/",
                   {"name": "Acme Events"}, "Acme Events"),
    "zoom": ({"account_id": "AcctD8cJuqWVQ623CI4Q", "client_id": "ClntIq8rNw2uT3mZ0aKc", "client_secret": "zoom-secret-acme-000000"}, "POST",
             lambda: settings.ZOOM_OAUTH_URL, {"access_token": "t", "scope": "meeting:read"}, "token issued"),
    "ghl": ({"api_key": "pit-acme-000000000000000", "location_id": "loc-acme"}, "GET",
            lambda: f"{settings.GHL_API_BASE}/locations/loc-acme", {"location": {"name": "Acme HQ"}}, "Acme HQ"),
    "manychat": ({"api_key": "123:acme-manychat-key-0000"}, "GET", lambda: f"{settings.MANYCHAT_API_BASE}/fb/page/getInfo",
                 {"status": "success", "data": {"name": "Acme Page"}}, "Acme Page"),
    "meta": ({"access_token": "EAAB-acme-token-000000000", "ad_account_id": "act_42"}, "GET",
             lambda: f"{settings.META_GRAPH_BASE}/{settings.META_GRAPH_VERSION}/act_42", {"name": "Acme Ads"}, "Acme Ads"),
    "easyappointments": ({"url": "https://booking.acme.test", "username": "api", "password": "ea-acme-pass-000000"}, "GET",
                         lambda: "https://booking.acme.test/index.php/api/v1/services", [{"id": 1}], "1 service"),
}
@pytest.fixture(autouse=True)
def fake_dns(monkeypatch):
    """The local fakes' host names resolve to a public address; every other name really resolves."""
    from integrations import http

    real = http.resolve_host
    monkeypatch.setattr(http, "resolve_host",
                        lambda host, port=None: ["93.184.216.34"] if host.endswith(".acme.test") else real(host, port))


SECRET_FIELD = {name: next(k for k in creds if "secret" in k or "key" in k or "token" in k or "password" in k)
                for name, (creds, *_rest) in CASES.items()}


def test_every_api_platform_can_check_its_connection():
    from integrations.registry import PROVIDERS

    checkable = {name for name, p in PROVIDERS.items() if hasattr(p, "check_connection")}
    assert checkable == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
@responses.activate
def test_check_succeeds_with_the_tenants_own_credentials(world, name):
    creds, method, url, answer, words = CASES[name]
    connect(world.acme, name, **creds)
    connect(world.globex, name, **{k: v.replace("acme", "globex") for k, v in creds.items()})
    responses.add(method, url(), json=answer, status=200)
    from integrations.models import TenantIntegration
    from tenants.context import tenant_context

    with tenant_context(world.acme):
        integration = TenantIntegration.objects.get(provider=name)
        assert words in get_provider(name).check_connection(integration)
    sent = responses.calls[0].request
    secret = creds[SECRET_FIELD[name]]
    carried = str(sent.headers) + sent.url
    if name in ("zoom", "easyappointments"):  # Basic auth: the secret is inside base64
        import base64

        carried += base64.b64decode(sent.headers["Authorization"].split()[1]).decode()
    assert secret in carried
    assert "globex" not in carried


@pytest.mark.parametrize("name", sorted(CASES))
@responses.activate
def test_refusals_and_rate_limits_are_clear_and_hold_no_secret(world, name):
    creds, method, url, _answer, _words = CASES[name]
    connect(world.acme, name, **creds)
    from integrations.models import TenantIntegration
    from tenants.context import tenant_context

    responses.add(method, url(), json={"message": "unauthorized"}, status=401)
    responses.add(method, url(), json={}, status=429, headers={"Retry-After": "9"})
    with tenant_context(world.acme):
        integration = TenantIntegration.objects.get(provider=name)
        with pytest.raises(ApiError) as refused:
            get_provider(name).check_connection(integration)
        assert "401" in str(refused.value) and creds[SECRET_FIELD[name]] not in str(refused.value)
        with pytest.raises(RateLimited) as limited:
            get_provider(name).check_connection(integration)
        assert limited.value.retry_after == 9


@pytest.mark.parametrize("name", sorted(CASES))
def test_missing_credentials_are_said_before_any_call(world, name):
    connect(world.acme, name)
    from integrations.models import TenantIntegration
    from tenants.context import tenant_context

    with responses.RequestsMock() as fake, tenant_context(world.acme):
        integration = TenantIntegration.objects.get(provider=name)
        integration.credentials, integration.settings = {}, {}  # the world's ManyChat has a key
        with pytest.raises(ValueError, match="first"):
            get_provider(name).check_connection(integration)
        assert len(fake.calls) == 0


@responses.activate
def test_the_setup_page_button_reports_the_answer(world, client):
    creds, method, url, answer, words = CASES["stripe"]
    connect(world.acme, "stripe", "whsec_acme_check_0123456789", **creds)
    responses.add(method, url(), json=answer)
    client.force_login(world.bob)  # members look; checking calls out with the tenant's credentials
    assert client.post("/setup/stripe/check/").status_code == 403
    client.force_login(world.alice)
    response = client.post("/setup/stripe/check/", follow=True)
    assert response.status_code == 200
    text = response.content.decode()
    assert "Stripe answered" in text and "EUR" in text
    assert creds["secret_key"] not in text
    responses.replace(method, url(), json={}, status=401)
    text = client.post("/setup/stripe/check/", follow=True).content.decode()
    assert "did not accept" in text and "401" in text
    # The failed check makes Stripe "failing" with that sentence, on the setup page and the dashboard.
    assert 'data-testid="connection-state">Failing' in text
    assert '<span class="state failing">Failing</span>' in client.get("/").content.decode()
    responses.replace(method, url(), json=answer)
    text = client.post("/setup/stripe/check/", follow=True).content.decode()
    assert 'data-testid="connection-state">Connected' in text  # working again: the error is gone


@pytest.mark.parametrize("name", ["brevo", "meta", "zoom"])
def test_a_failed_check_sets_the_same_state_for_every_platform(world, client, name):
    creds, method, url, answer, words = CASES[name]
    connect(world.acme, name, "whsec_or_token_0123456789" if get_provider(name).receives_webhooks else "", **creds)
    client.force_login(world.alice)
    with responses.RequestsMock() as fake:
        fake.add(method, url(), json={}, status=401)
        text = client.post(f"/setup/{name}/check/", follow=True).content.decode()
    assert 'data-testid="connection-state">Failing' in text
    shown = re.search(r'<ul class="messages">(.*?)</ul>', text, re.S).group(1)
    assert "did not accept the connection" in shown and not re.search(r"[A-Z]\w*(Error|Exception)\b", shown)


@pytest.mark.parametrize("url", [
    "http://booking.acme.test",  # not https
    "https://127.0.0.1:8443", "https://10.0.0.5", "https://169.254.169.254", "https://[::1]",
    "https://user:pw@booking.acme.test", "https://localhost",
])
def test_a_tenant_typed_url_inside_our_network_is_never_called(world, url):
    from integrations.http import UnsafeUrl
    from integrations.models import TenantIntegration
    from tenants.context import tenant_context

    connect(world.acme, "easyappointments", url=url, username="api", password="ea-acme-pass-000000")
    with responses.RequestsMock() as fake, tenant_context(world.acme):
        integration = TenantIntegration.objects.get(provider="easyappointments")
        with pytest.raises(UnsafeUrl):
            get_provider("easyappointments").check_connection(integration)
        assert len(fake.calls) == 0


def test_an_exception_quoting_a_header_is_not_shown(world, client):
    """A key saved with a line break makes requests refuse the header and quote it: the page
    names the error's class only."""
    connect(world.acme, "stripe", secret_key="sk_test_line\nbreak-SECRET")
    from integrations.models import TenantIntegration
    from tenants.context import tenant_context

    with tenant_context(world.acme):
        integration = TenantIntegration.objects.get(provider="stripe")
        integration.credentials = {"secret_key": "sk_test_line\nbreak-SECRET"}
        integration.save()
    client.force_login(world.alice)
    text = client.post("/setup/stripe/check/", follow=True).content.decode()
    assert "Stripe could not be reached. Check the address, or try again in a minute." in text
    assert "InvalidHeader" not in text and "break-SECRET" not in text  # a sentence, no exception name
