"""One answer to "how is this platform doing for this tenant?".

``platform_state`` is the only place that decides it; the dashboard, the setup page, the admin and
the API all show what it returns. Its inputs are the integration's own fields (active, configured,
the last error a delivery, a sync or a "check connection" left, and the sync state a pulled platform
keeps) and two numbers about the tenant's deliveries (the last one, failures in the last 24 h), so
a list of platforms costs one query for the numbers, not one per platform.

States, first match wins:

- ``not-connected``: no integration, or switched off;
- ``incomplete``: active, but a required value or the webhook secret is missing;
- ``sync-failing``: a pulled platform whose last sync failed after its last success, or whose sync
  was stopped by a permanent error (a revoked token) until the credentials change;
- ``failing``: deliveries failed in the last 24 h, or the last error (a failed delivery, a refused
  outbound call, a failed "check connection") is newer than the last event;
- ``receiving``: events arrive;
- ``connected``: set up, nothing received yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, IntegerField, Max, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

LABELS = {
    "not-connected": "Not connected",
    "incomplete": "Setup incomplete",
    "connected": "Connected",
    "receiving": "Receiving",
    "failing": "Failing",
    "sync-failing": "Sync failing",
}
FAILURE_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class PlatformState:
    key: str
    reason: str = ""  # a sentence for the tenant: what is wrong, or what is missing

    @property
    def label(self) -> str:
        return LABELS[self.key]

    @property
    def is_connected(self) -> bool:
        return self.key not in ("not-connected", "incomplete")


@dataclass(frozen=True)
class DeliveryStats:
    last_event_at: datetime | None = None
    recent_failures: int = 0


#: What counts as a failed delivery, here and in the dashboard's failure rate (one answer): a
#: delivery that could not be processed, whether retried (failed), given up (dead) or unreadable
#: (malformed). Rejected ones are forgeries or misconfigurations, counted apart.
FAILING_STATUSES = ("failed", "dead", "malformed")

def _newer(moment, than) -> bool:
    return moment is not None and (than is None or moment >= than)


def _sync_problem(integration) -> str:
    # The sync-state fields the sync framework (integrations/sync.py) keeps on TenantIntegration;
    # every integration has them, so a renamed field is an AttributeError here, not a silent
    # "connected".
    if integration.sync_disabled_reason:
        return f"Syncing stopped: {integration.sync_disabled_reason} Update the credentials to start it again."
    if integration.last_sync_error and _newer(integration.last_sync_error_at, integration.last_synced_at):
        return f"The last sync failed: {integration.last_sync_error}"
    return ""


def platform_state(provider, integration, stats: DeliveryStats | None = None) -> PlatformState:
    """The state of ``provider`` for the tenant whose ``integration`` (or None) this is."""
    stats = stats or DeliveryStats()
    if integration is None or not integration.is_active:
        return PlatformState("not-connected")
    missing = integration.missing_labels()
    if missing:
        return PlatformState("incomplete", f"Still needed: {', '.join(missing)}.")
    if provider.syncs:  # Provider.syncs: it overrides sync()
        if problem := _sync_problem(integration):
            return PlatformState("sync-failing", problem)
    last_event = stats.last_event_at or integration.last_event_at
    if stats.recent_failures:
        count = stats.recent_failures
        return PlatformState("failing", integration.last_error or (
            f"{count} deliver{'y' if count == 1 else 'ies'} failed in the last 24 hours."))
    if integration.last_error and _newer(integration.last_error_at, last_event):
        return PlatformState("failing", integration.last_error)
    if last_event:
        return PlatformState("receiving")
    return PlatformState("connected")


def delivery_stats(sources=None, now=None) -> dict[str, DeliveryStats]:
    """Per source, in the active tenant: the last event received and the failures of the last 24 h.
    One query whatever the number of platforms."""
    from webhooks.models import WebhookLog

    since = (now or timezone.now()) - FAILURE_WINDOW
    rows = WebhookLog.objects.exclude(status=WebhookLog.Status.REJECTED)
    if sources is not None:
        rows = rows.filter(source__in=list(sources))
    failing = FAILING_STATUSES
    return {
        row["source"]: DeliveryStats(row["last"], row["failing"])
        for row in rows.order_by().values("source").annotate(
            last=Max("received_at"), failing=Count("pk", filter=Q(status__in=failing, updated_at__gte=since)),
        )
    }


def with_delivery_stats(integrations, now=None):
    """A ``TenantIntegration`` queryset whose rows carry their own tenant's ``delivery_stats`` for
    their source (``state_of_listed`` reads them): one query for a list of any length, across
    tenants (the operators' list), the same numbers ``state_of`` counts one at a time."""
    from webhooks.models import WebhookLog

    since = (now or timezone.now()) - FAILURE_WINDOW
    logs = (WebhookLog.objects.filter(tenant=OuterRef("tenant"), source=OuterRef("provider"))
            .exclude(status=WebhookLog.Status.REJECTED).order_by().values("tenant"))
    failing = FAILING_STATUSES
    return integrations.annotate(
        delivery_last_event_at=Subquery(logs.annotate(last=Max("received_at")).values("last")),
        delivery_recent_failures=Coalesce(
            Subquery(logs.filter(status__in=failing, updated_at__gte=since).annotate(n=Count("pk")).values("n"),
                     output_field=IntegerField()),
            0,
        ),
    )


def state_of_listed(integration) -> PlatformState:
    """The state of an integration from a ``with_delivery_stats`` queryset: no query of its own."""
    stats = DeliveryStats(integration.delivery_last_event_at, integration.delivery_recent_failures)
    return platform_state(integration.provider_obj, integration, stats)


def state_of(integration) -> PlatformState:
    """The state of one saved integration (its own tenant's numbers): the setup page, the admin,
    the API."""
    from tenants.context import tenant_context

    with tenant_context(integration.tenant_id):
        stats = delivery_stats([integration.provider]).get(integration.provider)
    return platform_state(integration.provider_obj, integration, stats)
