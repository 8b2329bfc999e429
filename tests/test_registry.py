"""Every provider has the fixed shape, so adding one that lacks a part fails here."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from integrations.checks import fallback_secrets_name_providers
from integrations.providers.base import WebhookAuth
from integrations.registry import PROVIDERS

PROVIDERS_DIR = Path(__file__).resolve().parent.parent / "integrations" / "providers"
WEBHOOK_PROVIDERS = [p for p in PROVIDERS.values() if p.receives_webhooks]


def test_the_registry_holds_every_platform_of_the_providers_page():
    assert set(PROVIDERS) == {
        "stripe", "zoom", "ghl", "manychat", "denefits", "perspective", "poshvip", "eventbrite",
        "easyappointments", "meta", "brevo",
    }


def test_each_webhook_provider_names_its_own_fallback_secret_and_no_other_does():
    assert {p.fallback_secret_env for p in WEBHOOK_PROVIDERS} == {
        f"{name.upper()}_WEBHOOK_SECRET" for name in (
            "stripe", "zoom", "ghl", "manychat", "denefits", "perspective", "poshvip", "eventbrite", "easyappointments",
        )
    }
    assert {p.fallback_secret_env for p in PROVIDERS.values() if not p.receives_webhooks} == {""}


def test_fallback_secrets_are_read_from_the_environment_without_a_list_of_sources():
    """The settings module itself, in a fresh process, with the variables set."""
    env = {**os.environ, "DEBUG": "true", "ZOOM_WEBHOOK_SECRET": "zoom-fallback", "STRIPE_WEBHOOK_SECRET": ""}
    code = "from django.conf import settings; print(sorted(settings.WEBHOOK_FALLBACK_SECRETS.items()))"
    out = subprocess.run([sys.executable, "-c", code], env={**env, "DJANGO_SETTINGS_MODULE": "engarde.settings"},
                         capture_output=True, text=True, check=True, cwd=settings.BASE_DIR).stdout
    assert out.strip() == "[('zoom', 'zoom-fallback')]"


def test_a_fallback_secret_for_no_provider_is_reported_by_the_system_check(settings):
    settings.WEBHOOK_FALLBACK_SECRETS = {"stripe": "ok", "strpe": "typo", "brevo": "takes none"}
    warnings = fallback_secrets_name_providers()
    assert [w.id for w in warnings] == ["integrations.W001"] * 2
    assert [w.msg.split(" ")[0] for w in warnings] == ["BREVO_WEBHOOK_SECRET", "STRPE_WEBHOOK_SECRET"]
    assert all("whsec" not in w.msg and "typo" not in w.msg for w in warnings)  # names, never values


@pytest.mark.parametrize("provider", PROVIDERS.values(), ids=lambda p: p.name)
def test_provider_declares_its_fields(provider):
    assert provider.label
    names = [f.name for f in provider.credential_fields]
    assert len(names) == len(set(names))
    for field in provider.credential_fields:
        assert field.label and field.name.isidentifier()
    assert provider.webhook_auth in (WebhookAuth.NONE, WebhookAuth.SIGNATURE, WebhookAuth.TOKEN, WebhookAuth.PLATFORM_KEY)


@pytest.mark.parametrize("provider", WEBHOOK_PROVIDERS, ids=lambda p: p.name)
def test_webhook_provider_has_handlers_fixtures_tests_and_steps(provider):
    folder = PROVIDERS_DIR / provider.name
    assert provider.handlers, "a webhook source must handle at least one event type"
    assert not set(provider.handlers) & set(provider.ignored_events)
    fixtures = sorted((folder / "fixtures").glob("*.json"))
    assert len(fixtures) >= len(provider.handlers) or len(fixtures) >= 2
    assert (folder / "tests.py").exists()
    assert "WebhookSecuritySuite" in (folder / "tests.py").read_text()
    steps = provider.setup_steps("https://hub.example/api/webhooks/t/x/")
    assert len(steps) >= 2 and any("https://hub.example/api/webhooks/t/x/" in step for step in steps)


def test_processing_finds_every_provider_and_the_connections_through_the_registry_filled_at_start_up():
    """``webhooks`` cannot import the providers (it sits below them): ``integrations.apps`` fills
    ``webhooks.sources`` with the very provider dict, so a provider added to it is seen too."""
    from integrations.connections import TenantIntegrations
    from webhooks import sources

    assert all(sources.get_source(name) is provider for name, provider in PROVIDERS.items())
    assert isinstance(sources.connections(), TenantIntegrations)
    with pytest.raises(KeyError):
        sources.get_source("removed-since")
    assert sources.find_source("removed-since") is None


def test_every_provider_has_what_the_inbox_calls_and_the_connections_what_processing_calls():
    from integrations.connections import TenantIntegrations
    from webhooks.contract import Connections, Source

    for provider in PROVIDERS.values():
        assert all(hasattr(provider, name) for name in Source.__protocol_attrs__), provider
    assert all(callable(getattr(TenantIntegrations, name)) for name in Connections.__protocol_attrs__)


def test_the_handlers_event_type_is_the_inbox_s_own():
    from integrations.providers import base
    from webhooks import contract

    assert base.Event is contract.Event and base.Handler is contract.Handler and base.Fetcher is contract.Fetcher
