"""Pull syncs: the shape every provider that fetches data on a schedule uses (Meta first).

A provider that pulls defines ``sync(integration, since=None) -> SyncResult`` and a
``sync_interval``. ``run_sync`` is the one way a sync runs (the Celery task, the beat fan-out and
the ``sync_integration`` command all go through it):

1. **Claim.** One conditional ``UPDATE … SET sync_started_at = now WHERE sync_started_at IS NULL OR
   sync_started_at < now - SYNC_STALE_AFTER_SECONDS`` in its own committed transaction. Only one
   run gets the row; a crashed run's claim goes stale and the next beat picks the integration up.
   A doubled beat or two workers therefore never run one integration's sync twice at once.
2. **Sync**, outside any transaction: the provider fetches a page, then writes it in a short
   ``tenant_context`` transaction of its own (no lock or transaction waits on the platform), and
   calls ``checkpoint`` so a stopped sync resumes where it was and the claim stays fresh.
3. **Record** the outcome on the integration (the field names are a contract the dashboard reads):
   success sets ``last_synced_at`` and clears ``last_sync_error``; a ``PermanentSyncError`` (revoked
   token) sets ``sync_disabled_reason``, so nothing syncs until the credentials change; a
   ``TransientSyncError`` (5xx, rate limit) sets ``last_sync_error`` and the task retries with backoff.

Error messages are stored and shown: they must never contain a credential.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

import engarde.metrics as metrics
from contacts.signals import announce_collected, announced_together
from integrations import notifications
from integrations.models import TenantIntegration
from tenants.context import tenant_context
from engarde.errors import Explained

log = logging.getLogger(__name__)


class SyncError(Explained):
    """A sync failed. The message is stored on the integration and shown: no secrets in it, and
    a sentence (``engarde.errors.Explained``), so a handler's look-up may raise it too."""


class PermanentSyncError(SyncError):
    """Retrying cannot help (token expired or revoked, account gone): stop until the credentials change."""


class TransientSyncError(SyncError):
    """Worth another try later (5xx, network, rate limit). ``retry_after``: the platform's own wait."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class ClaimLost(SyncError):
    """Another run took the integration over (our claim had gone stale): stop writing."""


@dataclass
class SyncResult:
    """What one sync did: ``summary`` is the human line (``12 ads, 12 creatives, 336 insight rows``),
    ``cursor`` the high-water mark stored in ``sync_cursor`` for the next run."""

    summary: str
    cursor: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)


@dataclass
class SyncOutcome:
    """What ``run_sync`` reports: ``status`` is synced, skipped, failed or disabled."""

    status: str
    provider: str = ""
    message: str = ""
    retry_after: float | None = None
    retryable: bool = False  # a transient error: the task comes back later
    result: SyncResult | None = None

    def line(self) -> str:
        return f"{self.provider}: {self.message}" if self.provider else self.message


def stale_before(now: datetime) -> datetime:
    return now - timedelta(seconds=settings.SYNC_STALE_AFTER_SECONDS)


def claimable(now: datetime) -> Q:
    """No run holds the integration, or the one that did stopped checking in long ago."""
    return Q(sync_started_at__isnull=True) | Q(sync_started_at__lt=stale_before(now))


def due(provider, now: datetime) -> Q:
    """Never synced, or last synced longer than the provider's interval ago."""
    return Q(last_synced_at__isnull=True) | Q(last_synced_at__lt=now - provider.sync_interval)


def claim(integration_id: int, tenant_id: str, now: datetime, only_if_due: bool) -> TenantIntegration | None:
    """Take the integration for one run, or ``None`` when another run holds it (or, from the
    beat, when it is not due any more: a doubled beat whose first run already finished)."""
    with tenant_context(tenant_id):
        rows = TenantIntegration.objects.filter(pk=integration_id, is_active=True, sync_disabled_reason="")
        rows = rows.filter(claimable(now))
        if only_if_due:
            integration = TenantIntegration.objects.filter(pk=integration_id).first()
            if integration is None:
                return None
            rows = rows.filter(due(integration.provider_obj, now))
        if rows.update(sync_started_at=now) != 1:
            return None
        return TenantIntegration.objects.select_related("tenant").get(pk=integration_id)


def checkpoint(integration: TenantIntegration, cursor: dict, write=None):
    """Write a page (``write()``, optional) and store progress (where a stopped sync resumes) in
    one transaction, refreshing the claim. Raises ``ClaimLost``, and writes nothing, when another
    run took the integration over because ours looked crashed. Returns what ``write`` returned."""
    now = timezone.now()
    with tenant_context(integration.tenant_id):
        written = write() if write else None
        taken = TenantIntegration.objects.filter(pk=integration.pk, sync_started_at=integration.sync_started_at)
        if taken.update(sync_cursor=cursor, sync_started_at=now) != 1:
            raise ClaimLost("another run took this sync over")
    integration.sync_cursor, integration.sync_started_at = cursor, now
    announce_collected()  # the page's new contacts, now that they have committed
    return written


def _release(integration: TenantIntegration, **fields) -> None:
    with tenant_context(integration.tenant_id):
        TenantIntegration.objects.filter(pk=integration.pk, sync_started_at=integration.sync_started_at).update(
            sync_started_at=None, **fields
        )


def run_sync(integration_id: int, tenant_id: str, since: date | None = None, only_if_due: bool = False,
             now: datetime | None = None) -> SyncOutcome:
    """Claim, sync, record. Never raises for a platform's error: the outcome says what happened."""
    now = now or timezone.now()
    integration = claim(integration_id, str(tenant_id), now, only_if_due)
    if integration is None:
        return SyncOutcome("skipped", message="skipped (another run holds it, not due, disabled or gone)")
    provider = integration.provider_obj
    outcome = SyncOutcome("failed", provider=provider.name)
    try:
        # The run's new contacts are announced together, page by page as each commits
        # (``checkpoint``): one notice and one e-mail per admin for a page of registrants, not
        # one per registrant (contacts.signals).
        with announced_together():
            result = provider.sync(integration, since=since)
    except PermanentSyncError as exc:
        outcome.status, outcome.message = "disabled", str(exc)
        _release(integration, sync_disabled_reason=str(exc)[:2000], last_sync_error=str(exc)[:2000],
                 last_sync_error_at=timezone.now())
    except TransientSyncError as exc:
        outcome.message, outcome.retry_after, outcome.retryable = str(exc), exc.retry_after, True
        _release(integration, last_sync_error=str(exc)[:2000], last_sync_error_at=timezone.now())
    except ClaimLost as exc:
        outcome.status, outcome.message = "skipped", str(exc)
    except Exception as exc:  # a bug of ours: logged and stored without its text (it may quote a request)
        log.error("sync of integration %s (tenant %s) failed with %s at:\n%s", integration_id, tenant_id,
                  exc.__class__.__name__, "".join(traceback.format_tb(exc.__traceback__)))
        outcome.message = "an error on our side stopped the sync; the operators' log has what happened"
        _release(integration, last_sync_error=outcome.message, last_sync_error_at=timezone.now())
    else:
        outcome.status, outcome.message, outcome.result = "synced", result.summary, result
        _release(integration, sync_cursor=result.cursor, last_synced_at=timezone.now(), last_sync_error="")
    if outcome.status in ("failed", "disabled"):
        metrics.sync_failed(provider.name, tenant_id)
    log.info("sync of %s for tenant %s: %s (%s)", provider.name, tenant_id, outcome.status, outcome.message)
    if outcome.status != "skipped":  # recorded: operators hear of a change of state
        notifications.review(integration_id, tenant_id)
    return outcome


def syncing_providers() -> list[str]:
    from integrations.registry import PROVIDERS

    return [name for name, provider in PROVIDERS.items() if provider.syncs]
