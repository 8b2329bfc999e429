"""Every provider has the fixed shape, so adding one that lacks a part fails here."""

from pathlib import Path

import pytest
from django.conf import settings

from integrations.providers.base import WebhookAuth
from integrations.registry import PROVIDERS

PROVIDERS_DIR = Path(__file__).resolve().parent.parent / "integrations" / "providers"
WEBHOOK_PROVIDERS = [p for p in PROVIDERS.values() if p.receives_webhooks]


def test_the_registry_holds_every_platform_of_the_providers_page():
    assert set(PROVIDERS) == {
        "stripe", "zoom", "ghl", "manychat", "denefits", "perspective", "poshvip", "eventbrite",
        "easyappointments", "meta", "brevo",
    }
    assert {p.name for p in WEBHOOK_PROVIDERS} == set(settings.WEBHOOK_SOURCES)


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
