"""The sync framework (integrations/sync.py) on its own: the claim, its staleness limit, the
checkpoint that writes nothing once the claim is lost, and the beat fan-out's audited scope.
Time is injected (``now=``); nothing waits on the clock."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.models import TenantIntegration
from integrations.providers.meta import provider as meta_provider
from integrations.sync import ClaimLost, SyncResult, checkpoint, claim, run_sync
from integrations.tasks import sync_due_integrations
from reports.models import MetaAd
from tenants.context import tenant_context
from webhooks.testing import connect


@pytest.fixture
def meta(world):
    return connect(world.acme, "meta", access_token="EAAB-framework-token", ad_account_id="act_1")


def reload(tenant) -> TenantIntegration:
    with tenant_context(tenant):
        return TenantIntegration.objects.get(provider="meta")


def test_one_claim_at_a_time_and_a_stale_one_is_taken_over(world, meta, settings):
    now = timezone.now()
    first = claim(meta.pk, str(world.acme.pk), now, only_if_due=False)
    assert first is not None and first.sync_started_at == now
    assert claim(meta.pk, str(world.acme.pk), now + timedelta(seconds=5), only_if_due=False) is None
    later = now + timedelta(seconds=settings.SYNC_STALE_AFTER_SECONDS + 1)
    assert claim(meta.pk, str(world.acme.pk), later, only_if_due=False) is not None


def test_another_tenants_id_claims_nothing(world, meta):
    assert claim(meta.pk, str(world.globex.pk), timezone.now(), only_if_due=False) is None
    assert reload(world.acme).sync_started_at is None


def test_a_run_that_lost_its_claim_writes_nothing(world, meta, settings):
    now = timezone.now()
    stale = claim(meta.pk, str(world.acme.pk), now, only_if_due=False)
    claim(meta.pk, str(world.acme.pk), now + timedelta(seconds=settings.SYNC_STALE_AFTER_SECONDS + 1), False)

    with pytest.raises(ClaimLost):
        checkpoint(stale, {"pending": "x"}, write=lambda: MetaAd.objects.create(ad_id="written-by-the-stale-run"))
    with tenant_context(world.acme):
        assert not MetaAd.objects.filter(ad_id="written-by-the-stale-run").exists()
    assert reload(world.acme).sync_cursor == {}


def test_from_the_beat_a_sync_that_just_finished_is_not_run_again(world, meta, monkeypatch):
    runs = []
    monkeypatch.setattr(meta_provider.MetaAdsProvider, "sync",
                        lambda self, integration, since=None: runs.append(1) or SyncResult("ran"))
    assert run_sync(meta.pk, str(world.acme.pk), only_if_due=True).status == "synced"
    assert run_sync(meta.pk, str(world.acme.pk), only_if_due=True).status == "skipped"
    assert run_sync(meta.pk, str(world.acme.pk)).status == "synced"  # the command's run: not about due-ness
    assert len(runs) == 2


def test_a_bug_in_a_sync_is_recorded_without_its_text(world, meta, monkeypatch, caplog):
    def broken(self, integration, since=None):
        raise RuntimeError(f"https://graph.example/?access_token={integration.value('access_token')}")

    monkeypatch.setattr(meta_provider.MetaAdsProvider, "sync", broken)
    outcome = run_sync(meta.pk, str(world.acme.pk))
    integration = reload(world.acme)
    assert outcome.status == "failed" and not outcome.retryable
    assert integration.last_sync_error.startswith("an error on our side stopped the sync")
    assert "RuntimeError" not in integration.last_sync_error
    assert integration.sync_started_at is None and "EAAB" not in integration.last_sync_error
    assert "RuntimeError" in caplog.text and "EAAB" not in caplog.text


def test_the_beat_fans_out_from_an_audited_operator_context_and_skips_what_may_not_sync(
    world, meta, caplog, monkeypatch, django_capture_on_commit_callbacks
):
    published = []
    monkeypatch.setattr("integrations.tasks.sync_integration.delay", lambda *args: published.append(args))
    connect(world.globex, "meta", access_token="EAAB-g", ad_account_id="act_2")
    with tenant_context(world.globex):
        TenantIntegration.objects.filter(provider="meta").update(sync_disabled_reason="token revoked")
    caplog.set_level(logging.INFO, logger="engarde.audit")
    with django_capture_on_commit_callbacks(execute=True):
        assert sync_due_integrations() == 1
    assert published == [(meta.pk, str(world.acme.pk))]
    assert "operator context entered: beat: fan out due integration syncs" in caplog.text

    world.acme.is_active = False
    world.acme.save()
    with django_capture_on_commit_callbacks(execute=True):
        assert sync_due_integrations() == 0
