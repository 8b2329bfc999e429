"""One function decides a platform's state (integrations.state.platform_state); the dashboard, the
setup page, the admin and the API show its answer. And the dashboard's 14-day chart, counted in
the tenant's days."""

import re
from datetime import datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.utils import timezone

from integrations.charts import daily_bars
from integrations.models import TenantIntegration
from integrations.registry import PROVIDERS
from integrations.state import DeliveryStats, platform_state
from tenants.context import tenant_context
from webhooks.models import WebhookLog
from webhooks.testing import connect

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=ZoneInfo("UTC"))


class PullingProvider:
    """A provider that syncs (Provider.syncs), as the sync framework marks one."""

    label, syncs = "Meta Ads", True


#: What every TenantIntegration has for its pull sync, as a new one has it.
SYNC_DEFAULTS = {"last_synced_at": None, "last_sync_error": "", "last_sync_error_at": None, "sync_disabled_reason": ""}


def integration(**fields):
    values = {"is_active": True, "last_error": "", "last_error_at": None, "last_event_at": None,
              "missing_labels": lambda: [], **SYNC_DEFAULTS}
    values.update(fields)
    return SimpleNamespace(**values)


@pytest.mark.parametrize("made, stats, expected", [
    (None, None, "not-connected"),
    (integration(is_active=False), None, "not-connected"),
    (integration(missing_labels=lambda: ["Signing secret (whsec_…)"]), None, "incomplete"),
    (integration(), None, "connected"),
    (integration(), DeliveryStats(NOW), "receiving"),
    (integration(), DeliveryStats(NOW, recent_failures=2), "failing"),
    (integration(last_error="Brevo did not accept", last_error_at=NOW), DeliveryStats(NOW - timedelta(hours=1)), "failing"),
    (integration(last_error="old", last_error_at=NOW - timedelta(days=2)), DeliveryStats(NOW), "receiving"),
])
def test_the_states(made, stats, expected):
    assert platform_state(PROVIDERS["stripe"], made, stats).key == expected


@pytest.mark.parametrize("fields, expected, words", [
    ({"last_synced_at": NOW, "last_sync_error": "", "last_sync_error_at": None}, "connected", ""),
    ({"last_synced_at": NOW - timedelta(hours=7), "last_sync_error": "Meta answered 500.", "last_sync_error_at": NOW},
     "sync-failing", "The last sync failed: Meta answered 500."),
    ({"last_synced_at": NOW, "last_sync_error": "Meta answered 500.", "last_sync_error_at": NOW - timedelta(hours=7)},
     "connected", ""),
    ({"sync_disabled_reason": "The access token was revoked."}, "sync-failing", "Update the credentials"),
    ({}, "connected", ""),  # a new integration: never synced, nothing wrong
])
def test_sync_failing_for_pulled_platforms(fields, expected, words):
    state = platform_state(PullingProvider(), integration(**fields))
    assert state.key == expected and words in state.reason


def test_the_sync_fields_are_read_from_the_model_not_guessed_with_defaults():
    """A sync field renamed or missing is an error, not a silent "connected"; and the names read
    are the model's own."""
    for name in SYNC_DEFAULTS:
        without = integration(last_sync_error="Meta answered 500.")  # so that every field is read
        delattr(without, name)
        with pytest.raises(AttributeError, match=name):
            platform_state(PullingProvider(), without)
    model_fields = {field.name for field in TenantIntegration._meta.get_fields()}
    assert set(SYNC_DEFAULTS) <= model_fields
    assert {name: TenantIntegration._meta.get_field(name).get_default() for name in SYNC_DEFAULTS} == SYNC_DEFAULTS


def test_a_platform_that_does_not_pull_never_shows_sync_failing():
    state = platform_state(PROVIDERS["manychat"], integration(sync_disabled_reason="revoked"))
    assert state.key == "connected"


def test_the_setup_page_and_the_api_show_the_dashboards_answer(world):
    connect(world.acme, "brevo", api_key="xkeysib-0123456789", list_id="7")
    with tenant_context(world.acme):
        TenantIntegration.objects.filter(provider="brevo").update(
            last_error="Brevo did not accept the connection: Brevo answered 401 to GET /account.",
            last_error_at=timezone.now(),
        )
    client = Client()
    client.force_login(world.alice)
    dashboard = client.get("/").content.decode()
    card = re.search(r'data-testid="platform-brevo"(.*?)</section>', dashboard, re.S).group(1)
    assert '<span class="state failing">Failing</span>' in card and "answered 401" in card
    setup = client.get("/setup/brevo/").content.decode()
    assert 'data-testid="connection-state">Failing<' in setup and "answered 401" in setup
    api = client.get("/api/v1/integrations/").json()
    brevo = next(row for row in api["results"] if row["provider"] == "brevo")
    assert brevo["state"] == "failing" and brevo["state_label"] == "Failing" and "answered 401" in brevo["state_reason"]
    manychat = next(row for row in api["results"] if row["provider"] == "manychat")
    assert manychat["state"] == "receiving"


def test_the_chart_counts_the_tenants_days_and_leaves_forgeries_out(world):
    world.acme.timezone = "Asia/Tokyo"
    world.acme.save()
    now = timezone.now()
    with tenant_context(world.acme):
        WebhookLog.objects.all().delete()
        for i, (ago, status) in enumerate([(0, "processed"), (0, "dead"), (0, "rejected"), (3, "processed"),
                                           (20, "processed")]):
            row = WebhookLog.objects.create(source="manychat", event_id=f"c-{i}", status=status, body=b"{}")
            WebhookLog.objects.filter(pk=row.pk).update(received_at=now - timedelta(days=ago))
    client = Client()
    client.force_login(world.alice)
    card = re.search(r'data-testid="platform-manychat"(.*?)</section>', client.get("/").content.decode(), re.S).group(1)
    titles = re.findall(r"<title>(.*?)</title>", card)
    assert len(titles) == 14
    assert titles[-1].endswith("2 events, 1 failed") and titles[-4].endswith("1 event")
    assert "3 events in 14 days" in card and "33 % failed (1 of 3)" in card


def test_daily_bars_is_plain_svg_with_a_label():
    svg = daily_bars([("Mon 01 Mar", 0, 0), ("Tue 02 Mar", 4, 1)], "Stripe: <events>")
    assert svg.startswith('<svg class="chart"') and 'aria-label="Stripe: &lt;events&gt;"' in svg
    assert svg.count("<rect") == 4 and "<script" not in svg
