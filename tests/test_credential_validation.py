"""Setup that refuses nonsense: each value is checked by what its platform issues, the same way in
the setup page, the admin and ``connect_integration``; an active integration is never saved
without what it needs; a first connect offers no grace period.
"""

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse

from integrations.models import TenantIntegration
from integrations.registry import PROVIDERS
from tenants.context import tenant_context

PK_REFUSAL = "That is a publishable key (pk_…), which cannot read events"

# (provider, field, value, words of the refusal)
REFUSED = [
    ("stripe", "secret_key", "pk_live_0123456789abcdef", PK_REFUSAL),
    ("stripe", "secret_key", "mysecret0123456789", "This is not a Stripe secret or restricted key"),
    ("meta", "ad_account_id", "act_12ab", "A Meta ad account id is act_ followed by digits"),
    ("meta", "ad_account_id", "https://business.facebook.com/act_1", "A Meta ad account id"),
    ("brevo", "list_id", "My list", "A Brevo list id is a number"),
    ("easyappointments", "url", "javascript:alert(1)", "starting with https://"),
    ("easyappointments", "url", "booking.example.com", "starting with https://"),
    ("poshvip", "amount_unit", "pennies", "Amount unit is one of"),
    ("ghl", "location_id", "loc id with spaces", "A GoHighLevel location id"),
    ("zoom", "client_secret", "x" * 200_000, "at most 1000 characters; this is 200000"),
]
ACCEPTED = [
    ("stripe", "secret_key", "sk_live_0123456789"), ("stripe", "secret_key", "rk_test_0123456789"),
    ("meta", "ad_account_id", "act_1234567890"), ("meta", "ad_account_id", "1234567890"),
    ("brevo", "list_id", "17"), ("easyappointments", "url", "http://10.0.0.5:8080/ea"),
    ("poshvip", "amount_unit", "cents"), ("poshvip", "amount_unit", ""),
]


@pytest.mark.parametrize("provider, name, value, words", REFUSED)
def test_the_field_refuses_with_a_sentence(provider, name, value, words):
    with pytest.raises(ValidationError) as refused:
        PROVIDERS[provider].field(name).clean(value)
    assert words in " ".join(refused.value.messages)


@pytest.mark.parametrize("provider, name, value", ACCEPTED)
def test_the_field_accepts_what_the_platform_issues(provider, name, value):
    assert PROVIDERS[provider].field(name).clean(f"  {value} ") == value


def test_a_stripe_webhook_secret_starts_whsec():
    stripe = PROVIDERS["stripe"]
    with pytest.raises(ValidationError, match="not a Stripe signing secret"):
        stripe.clean_webhook_secret("sk_live_0123456789")
    assert stripe.clean_webhook_secret("whsec_0123") == "whsec_0123"


def full_post(provider_name, **overrides):
    """A complete, valid setup form for the provider (built from the fields' examples)."""
    provider = PROVIDERS[provider_name]
    data = {"is_active": "on"}
    for field in provider.credential_fields:
        data[field.name] = field.example + ("-typed-0123456789" if field.secret else "") if field.example else (
            f"{field.name}-0123456789")
    if provider.receives_webhooks:
        data["new_webhook_secret"] = f"{provider.webhook_secret_example}typed-secret-0123456789"
    data.update(overrides)
    return data


def integration(tenant, provider):
    with tenant_context(tenant):
        return TenantIntegration.objects.filter(provider=provider).first()


@pytest.mark.parametrize("provider, name, value, words", REFUSED)
def test_the_setup_page_refuses_and_saves_nothing(world, provider, name, value, words):
    client = Client()
    client.force_login(world.alice)
    response = client.post(f"/setup/{provider}/", full_post(provider, **{name: value}))
    assert response.status_code == 400
    assert words in response.content.decode().replace("&#x27;", "'").replace("&quot;", '"')
    assert value[:100] not in response.content.decode() or not PROVIDERS[provider].field(name).secret
    assert integration(world.acme, provider) is None


@pytest.mark.parametrize("provider, name, value, words", REFUSED)
def test_the_admin_refuses_the_same(world, client, provider, name, value, words):
    client.force_login(world.oscar)
    url = f"{reverse('admin:integrations_tenantintegration_add')}?tenant={world.acme.pk}&provider={provider}"
    response = client.post(url, {"tenant": world.acme.pk, "_save": "Save", **full_post(provider, **{name: value})})
    assert response.status_code == 200  # the form again, with the error
    assert words in response.content.decode().replace("&#x27;", "'").replace("&quot;", '"')
    assert integration(world.acme, provider) is None


@pytest.mark.parametrize("provider, name, value, words", [r for r in REFUSED if len(r[2]) < 1000])
def test_connect_integration_refuses_the_same_in_one_line(world, provider, name, value, words):
    with pytest.raises(CommandError) as refused:
        call_command("connect_integration", "acme", provider, "--set", f"{name}={value}", stdout=io.StringIO())
    message = str(refused.value)
    assert "\n" not in message and message.startswith(f"{name}: ") and words in message
    assert integration(world.acme, provider) is None


def test_connect_integration_refuses_a_publishable_key_as_the_webhook_secret(world):
    with pytest.raises(CommandError, match="--webhook-secret: This is not a Stripe signing secret"):
        call_command("connect_integration", "acme", "stripe", "--webhook-secret", "pk_live_123", stdout=io.StringIO())


@pytest.mark.parametrize("provider", ["stripe", "poshvip", "zoom"])
def test_saving_without_the_required_secret_says_so_and_does_not_connect(world, provider):
    client = Client()
    client.force_login(world.alice)
    label = PROVIDERS[provider].label
    response = client.post(f"/setup/{provider}/", full_post(provider, new_webhook_secret=""))
    assert response.status_code == 400
    assert f"{label} cannot be connected without its" in response.content.decode()
    assert integration(world.acme, provider) is None


def test_a_required_credential_is_asked_for_by_its_label(world):
    client = Client()
    client.force_login(world.alice)
    response = client.post("/setup/brevo/", full_post("brevo", api_key=""))
    assert "Enter the api key: Brevo does not work without it." in response.content.decode()
    assert integration(world.acme, "brevo") is None


def test_an_inactive_integration_may_be_saved_incomplete(world):
    client = Client()
    client.force_login(world.alice)
    data = full_post("brevo", api_key="")
    del data["is_active"]
    assert client.post("/setup/brevo/", data).status_code == 302
    assert not integration(world.acme, "brevo").is_active


def test_a_saved_secret_counts_and_a_blank_keeps_it(world):
    client = Client()
    client.force_login(world.alice)
    assert client.post("/setup/stripe/", full_post("stripe")).status_code == 302
    assert client.post("/setup/stripe/", full_post("stripe", secret_key="", new_webhook_secret="")).status_code == 302
    assert integration(world.acme, "stripe").webhook_secret == "whsec_typed-secret-0123456789"


def test_a_first_connect_offers_no_grace_period(world):
    client = Client()
    client.force_login(world.alice)
    assert 'name="webhook_secret_grace_hours"' not in client.get("/setup/stripe/").content.decode()
    assert client.post("/setup/stripe/", full_post("stripe")).status_code == 302
    assert 'name="webhook_secret_grace_hours"' in client.get("/setup/stripe/").content.decode()


def test_inputs_say_what_a_value_looks_like(world):
    client = Client()
    client.force_login(world.alice)
    page = client.get("/setup/stripe/").content.decode()
    assert 'placeholder="whsec_…"' in page and 'placeholder="sk_live_…"' in page
    page = client.get("/setup/poshvip/").content.decode()
    assert '<select name="amount_unit"' in page and "Whole cents (4500 for $45)" in page
