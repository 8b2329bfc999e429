"""The Meta Ads sync against a local fake Graph API (``fake_graph.FakeGraph``), two tenants with
look-alike ad ids (the same ids, the same ad account id, different numbers and tokens). What the
sync did is read back from the database in each tenant's context, as the restricted role on
PostgreSQL (where the last test also checks the rows with raw SQL under RLS)."""

from __future__ import annotations

import json
import logging
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from conftest import requires_postgres
from integrations.models import TenantIntegration
from integrations.providers.meta import client as meta_client
from integrations.providers.meta import sync as meta_sync
from integrations.providers.meta.client import usage
from integrations.providers.meta.fake_graph import Account, FakeGraph
from integrations.sync import run_sync
from integrations.tasks import sync_backoff, sync_due_integrations
from reports.models import MetaAd, MetaAdCreative, MetaAdInsight
from tenants.context import tenant_context
from webhooks.testing import connect

TODAY = date(2026, 11, 30)
TOKENS = {"acme": "EAAB-acme-token-0123456789", "globex": "EAAB-globex-token-9876543210"}
ACCOUNT = "act_1001"  # both tenants name the same account id: their rows must stay apart


@pytest.fixture
def graph(settings, monkeypatch):
    server = FakeGraph(version="v25.0").start()
    settings.META_GRAPH_BASE, settings.META_GRAPH_VERSION = server.base, "v25.0"
    settings.META_PAGE_LIMIT, settings.META_INSIGHTS_CHUNK_DAYS = 50, 30
    settings.META_BACKFILL_DAYS, settings.META_LOOKBACK_DAYS = 90, 28
    settings.META_USAGE_PAUSE_SECONDS = 0.0
    monkeypatch.setattr(meta_sync, "current_day", lambda: TODAY)
    yield server
    server.stop()


@pytest.fixture
def meta(world, graph):
    """Meta connected at acme and globex, both on ``act_1001`` with the same ad ids."""
    graph.accounts[ACCOUNT] = Account(token=TOKENS["acme"], ads=3, spend_base=Decimal("10.00"))
    integrations = {}
    for tenant in (world.acme, world.globex):
        with tenant_context(tenant):  # start from empty ad accounts (the world has look-alike rows)
            for model in (MetaAd, MetaAdCreative, MetaAdInsight):
                model.objects.all().delete()
        integrations[tenant.slug] = connect(tenant, "meta", access_token=TOKENS[tenant.slug], ad_account_id=ACCOUNT)
    return integrations


def sync(tenant, integration, **kwargs):
    return run_sync(integration.pk, str(tenant.pk), **kwargs)


def state(tenant) -> TenantIntegration:
    with tenant_context(tenant):
        return TenantIntegration.objects.get(provider="meta")


def stored(tenant) -> dict:
    with tenant_context(tenant):
        return {
            "ads": sorted(MetaAd.objects.values_list("ad_id", flat=True)),
            "creatives": MetaAdCreative.objects.count(),
            "insights": MetaAdInsight.objects.count(),
            "spend": sum(MetaAdInsight.objects.values_list("spend", flat=True), Decimal(0)),
            "days": sorted(set(MetaAdInsight.objects.values_list("date", flat=True))),
        }


def insight_ranges(graph) -> list[dict]:
    """The time ranges asked for (each chunk's first page; later pages carry ``after``)."""
    return [json.loads(r["query"]["time_range"]) for r in graph.requests
            if r["path"].endswith("/insights") and "after" not in r["query"]]


def expected_spend(account: Account, days: list[date]) -> Decimal:
    return sum((Decimal(f"{account.spend(n, d):.2f}") for n in range(account.ads) for d in days), Decimal(0))


def test_first_sync_backfills_90_days_into_the_tenant_only(world, graph, meta):
    outcome = sync(world.acme, meta["acme"])

    assert outcome.status == "synced", outcome.message
    assert outcome.line() == "meta: 3 ads, 3 creatives, 270 insight rows"
    acme = stored(world.acme)
    days = [TODAY - timedelta(days=n) for n in range(89, -1, -1)]
    assert acme["ads"] == ["2385000000000000", "2385000000000001", "2385000000000002"]
    assert acme["creatives"] == 3 and acme["insights"] == 270 and acme["days"] == days
    assert acme["spend"] == expected_spend(graph.accounts[ACCOUNT], days)
    assert stored(world.globex)["insights"] == 0  # same ad ids, same account id: nothing crossed over
    integration = state(world.acme)
    assert integration.last_synced_at and integration.sync_started_at is None and integration.last_sync_error == ""
    assert integration.sync_cursor == {"insights_through": TODAY.isoformat()}
    with tenant_context(world.acme):
        row = MetaAdInsight.objects.get(ad_id="2385000000000001", date=TODAY)
    assert (row.spend, row.currency, row.clicks, row.impressions) == (Decimal("11.30"), "EUR", 11, 1001)
    assert row.cpc == Decimal("1.027273") and row.actions == [{"action_type": "lead", "value": "1"}]
    assert all(r["token_ok"] and r["tokens"] == 1 for r in graph.requests)


def test_two_tenants_with_look_alike_ids_each_hold_their_own_numbers(world, graph, meta):
    acme_account = graph.accounts[ACCOUNT]
    sync(world.acme, meta["acme"])
    # globex's token opens "its" act_1001, whose numbers differ.
    graph.accounts[ACCOUNT] = Account(token=TOKENS["globex"], ads=2, spend_base=Decimal("500.00"), currency="USD")
    assert sync(world.globex, meta["globex"]).status == "synced"

    acme, globex = stored(world.acme), stored(world.globex)
    assert acme["insights"] == 270 and globex["insights"] == 180
    assert globex["ads"] == acme["ads"][:2]  # the very same Meta ids at both tenants
    assert acme["spend"] == expected_spend(acme_account, acme["days"])
    assert globex["spend"] == expected_spend(graph.accounts[ACCOUNT], globex["days"])
    with tenant_context(world.globex):
        assert set(MetaAdInsight.objects.values_list("currency", flat=True)) == {"USD"}


def test_a_later_sync_repulls_the_lookback_and_restated_numbers_change_in_place(world, graph, meta):
    sync(world.acme, meta["acme"])
    graph.requests.clear()
    graph.accounts[ACCOUNT].factor = Decimal(2)  # Meta restates

    assert sync(world.acme, meta["acme"]).line() == "meta: 3 ads, 3 creatives, 84 insight rows"

    assert insight_ranges(graph) == [{"since": (TODAY - timedelta(days=27)).isoformat(), "until": TODAY.isoformat()}]
    after = stored(world.acme)
    assert after["insights"] == 270  # updated, never duplicated
    with tenant_context(world.acme):
        recent = MetaAdInsight.objects.get(ad_id="2385000000000000", date=TODAY)
        old = MetaAdInsight.objects.get(ad_id="2385000000000000", date=TODAY - timedelta(days=28))
    assert recent.spend == Decimal("20.60") and recent.clicks == 20  # (10 + 0.30) × 2
    assert old.spend == Decimal("10.02")  # outside the lookback: as first stated


def test_since_repulls_from_that_day(world, graph, meta):
    sync(world.acme, meta["acme"])
    graph.requests.clear()
    call_command("sync_integration", "acme", "meta", "--since", (TODAY - timedelta(days=1)).isoformat(),
                 stdout=open("/dev/null", "w"))
    assert insight_ranges(graph) == [{"since": (TODAY - timedelta(days=1)).isoformat(), "until": TODAY.isoformat()}]


def test_paging_follows_next_on_our_host_and_never_elsewhere(world, graph, meta, settings):
    settings.META_PAGE_LIMIT = 7
    graph.next_host = "http://graph.attacker.invalid"  # a next link elsewhere: the cursor on our host instead
    assert sync(world.acme, meta["acme"]).status == "synced"
    assert stored(world.acme)["insights"] == 270
    assert all(r["token_ok"] and r["tokens"] == 1 for r in graph.requests)
    assert len(graph.paths("/insights")) == 3 * 13  # three 30-day chunks of 90 rows in pages of 7

    graph.next_host, graph.requests[:] = None, []
    assert sync(world.acme, meta["acme"]).status == "synced"
    followed = [r for r in graph.requests if r["path"].endswith("/ads")]
    assert len(followed) == 1 and all(r["tokens"] == 1 for r in graph.requests)  # next link's own token dropped


def test_usage_headers_are_read_as_percent_used_and_time_to_regain():
    business = {"1234": [{"call_count": 40, "total_cputime": 97, "total_time": 12, "estimated_time_to_regain_access": 0}]}
    assert usage({"X-Business-Use-Case-Usage": json.dumps(business)}) == (97.0, 0.0)
    business["1234"][0]["estimated_time_to_regain_access"] = 5
    assert usage({"X-Business-Use-Case-Usage": json.dumps(business)}) == (97.0, 300.0)
    account = {"acc_id_util_pct": 100, "reset_time_duration": 240}
    assert usage({"X-Ad-Account-Usage": json.dumps(account)}) == (100.0, 240.0)
    assert usage({"X-Ad-Account-Usage": "not json", "X-App-Usage": "[1, 2]"}) == (0.0, 0.0)


def test_usage_near_the_limit_pauses_between_pages(world, graph, meta, monkeypatch):
    pauses = []
    monkeypatch.setattr(meta_client, "pause", pauses.append)
    graph.usage = (80.0, 0)  # above META_USAGE_SLOW_PERCENT (75), below the stop (95)
    assert sync(world.acme, meta["acme"]).status == "synced"
    assert stored(world.acme)["insights"] == 270
    assert len(pauses) == len(graph.requests) - 1  # before every request but the first


def test_usage_over_the_limit_stops_and_the_next_run_resumes_where_it_was(world, graph, meta, settings):
    settings.META_PAGE_LIMIT, settings.META_INSIGHTS_CHUNK_DAYS = 15, 10  # two pages per 10-day chunk
    sync(world.acme, meta["acme"])
    graph.requests.clear()
    graph.accounts[ACCOUNT].factor = Decimal(3)
    insight_pages = {"n": 0}
    original = graph.RequestHandlerClass.usage_headers

    def usage_headers(handler):  # the third insights page says: 12 minutes to regain access
        if handler.path.split("?")[0].endswith("/insights"):
            insight_pages["n"] += 1
            if insight_pages["n"] == 3:
                handler.server.usage = (100.0, 12)
        return original(handler)

    graph.RequestHandlerClass.usage_headers = usage_headers
    try:
        outcome = sync(world.acme, meta["acme"], since=TODAY - timedelta(days=19))
    finally:
        graph.RequestHandlerClass.usage_headers = original
    assert outcome.status == "failed" and outcome.retryable and outcome.retry_after == 720
    integration = state(world.acme)
    assert integration.last_sync_error == "Meta usage at 100% of its limit; stopped, resuming later"
    assert integration.sync_disabled_reason == "" and integration.sync_started_at is None
    pending = integration.sync_cursor["pending"]
    assert pending["phase"] == "insights" and pending["next"] == (TODAY - timedelta(days=9)).isoformat()
    assert pending["after"]  # the second chunk's first page is written, its second is not
    with tenant_context(world.acme):  # the three pages that arrived are written, restated
        assert MetaAdInsight.objects.filter(date__gte=TODAY - timedelta(days=19), clicks__gte=30).count() == 45

    graph.usage, graph.requests[:] = (0.0, 0), []
    assert sync(world.acme, meta["acme"]).line() == "meta: 0 ads, 0 creatives, 15 insight rows"
    first = [r for r in graph.requests if r["path"].endswith("/insights")][0]
    assert first["query"]["after"] == pending["after"]  # inside the chunk, not from its start
    assert not graph.paths("/ads")  # ads and creatives were done before the stop
    with tenant_context(world.acme):
        restated = MetaAdInsight.objects.filter(date__gte=TODAY - timedelta(days=19))
        assert restated.count() == 60 and all(r.clicks == 30 + int(r.ad_id[-1]) for r in restated)
    assert state(world.acme).sync_cursor == {"insights_through": TODAY.isoformat()}


@pytest.mark.parametrize("code", [17, 613, 80004])
def test_rate_limit_codes_are_transient_and_keep_syncing_allowed(world, graph, meta, code):
    graph.fail("/adcreatives", status=400, code=code)
    outcome = sync(world.acme, meta["acme"])
    assert outcome.status == "failed" and outcome.retryable and outcome.retry_after == 300
    integration = state(world.acme)
    assert f"(code {code}): rate limited" in integration.last_sync_error
    assert integration.sync_disabled_reason == "" and integration.sync_started_at is None
    assert stored(world.acme)["ads"]  # the ads page before the error is kept
    assert sync(world.acme, meta["acme"]).status == "synced"
    assert state(world.acme).last_sync_error == ""


def test_code_190_is_permanent_until_the_credentials_change(world, graph, meta):
    graph.accounts[ACCOUNT].token = "EAAB-a-newer-token"  # acme's token no longer works
    outcome = sync(world.acme, meta["acme"])
    assert outcome.status == "disabled" and not outcome.retryable
    integration = state(world.acme)
    assert "code 190" in integration.sync_disabled_reason and "invalid, expired or revoked" in integration.last_sync_error
    assert sync(world.acme, meta["acme"]).status == "skipped"  # no run while disabled
    with pytest.raises(CommandError, match="stopped until the credentials change"):
        call_command("sync_integration", "acme", "meta")

    with tenant_context(world.acme):
        integration = TenantIntegration.objects.get(provider="meta")
        integration.set_values({"access_token": "EAAB-a-newer-token"})
        integration.save()
    assert state(world.acme).sync_disabled_reason == ""
    assert sync(world.acme, meta["acme"]).status == "synced"


def test_a_5xx_is_retried_by_the_session_then_transient(world, graph, meta):
    graph.fail("/ads", status=503, code=None)
    assert sync(world.acme, meta["acme"]).status == "synced"  # one 503, retried at once

    graph.fail("/adcreatives", status=500, code=None, times=10)
    outcome = sync(world.acme, meta["acme"])
    assert outcome.status == "failed" and outcome.retryable
    assert state(world.acme).last_sync_error == "Meta answered 500 to /v25.0/act_1001/adcreatives"


def test_the_token_is_never_logged_stored_or_in_an_error(world, graph, meta, caplog, settings):
    caplog.set_level(logging.DEBUG)
    sync(world.acme, meta["acme"])
    graph.fail("/ads", status=400, code=190)
    sync(world.acme, meta["acme"])
    settings.META_GRAPH_BASE = "http://127.0.0.1:1"  # unreachable: requests' error quotes the URL
    with tenant_context(world.acme):
        TenantIntegration.objects.filter(provider="meta").update(sync_disabled_reason="")
    outcome = sync(world.acme, meta["acme"])
    assert outcome.message == "Meta could not be reached (the connection failed)"
    integration = state(world.acme)
    for text in (caplog.text, integration.last_sync_error, integration.sync_disabled_reason,
                 json.dumps(integration.sync_cursor), outcome.message):
        assert TOKENS["acme"] not in text


def test_the_beat_fans_out_due_integrations_only(world, graph, meta, settings, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert sync_due_integrations() == 2  # both tenants, never synced
    assert stored(world.acme)["insights"] == 270 and stored(world.globex)["insights"] == 0  # globex: wrong token
    assert state(world.globex).sync_disabled_reason
    with django_capture_on_commit_callbacks(execute=True):
        assert sync_due_integrations() == 0  # acme synced a moment ago, globex disabled


def test_backoff_grows_respects_the_platform_and_is_capped(settings):
    settings.SYNC_RETRY_BASE_SECONDS, settings.SYNC_RETRY_MAX_SECONDS = 60, 3600
    assert 48 <= sync_backoff(0, None) <= 72
    assert 192 <= sync_backoff(2, None) <= 288
    assert sync_backoff(0, 720) == 720
    assert sync_backoff(10, None) == 3600


# --- the command -------------------------------------------------------------------------------


def test_command_prints_the_summary_as_its_last_line(world, graph, meta, capsys):
    call_command("sync_integration", "acme", "meta")
    assert capsys.readouterr().out.strip().splitlines()[-1] == "meta: 3 ads, 3 creatives, 270 insight rows"


@pytest.mark.parametrize("args, message", [
    (["nope", "meta"], "no tenant with slug 'nope'"),
    (["acme", "nope"], "unknown provider 'nope'"),
    (["acme", "manychat"], "ManyChat does not sync"),
    (["acme", "meta", "--since", "30/11/2026"], "--since must be a date as YYYY-MM-DD"),
])
def test_command_refuses_bad_input_in_one_line(world, graph, meta, args, message):
    with pytest.raises(CommandError, match=message) as error:
        call_command("sync_integration", *args)
    assert "\n" not in str(error.value)


def test_command_refuses_when_not_connected_or_the_platform_fails(world, graph):
    with pytest.raises(CommandError, match="Meta Ads is not connected for acme"):
        call_command("sync_integration", "acme", "meta")
    connect(world.acme, "meta", access_token="EAAB-unknown", ad_account_id="act_404")
    with pytest.raises(CommandError, match=r"^meta: Meta answered 400 to /v25.0/act_404/ads") as error:
        call_command("sync_integration", "acme", "meta")
    assert "\n" not in str(error.value) and "EAAB-unknown" not in str(error.value)


@requires_postgres
def test_rls_shows_each_tenant_only_its_own_ads_data(world, graph, meta):
    sync(world.acme, meta["acme"])
    graph.accounts[ACCOUNT] = Account(token=TOKENS["globex"], ads=2, spend_base=Decimal("500.00"))
    sync(world.globex, meta["globex"])
    for tenant, count in ((world.acme, 270), (world.globex, 180)):
        with tenant_context(tenant), connection.cursor() as cursor:
            cursor.execute("SELECT count(*), count(DISTINCT tenant_id) FROM reports_metaadinsight")
            assert cursor.fetchone() == (count, 1)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM reports_metaad")
        assert cursor.fetchone() == (0,)  # no tenant: nothing
