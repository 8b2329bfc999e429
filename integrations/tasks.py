import logging
import random

import requests
from celery import shared_task
from django.conf import settings
from django.utils import timezone

from contacts.models import Contact
from integrations.http import ApiError, RateLimited
from integrations.models import TenantIntegration
from integrations.providers.brevo.client import BrevoClient
from integrations.registry import get_provider
from integrations.sync import claimable, due, run_sync, syncing_providers
from tenants.context import operator_context, tenant_context
from engarde.errors import unreachable

log = logging.getLogger(__name__)

NETWORK_RETRY_BASE_SECONDS = 60


def record_sync_error(tenant_id: str, integration_id: int, message: str) -> None:
    """Keep why an outbound sync failed on the tenant's integration (the admin and the setup page
    show it). ``message`` must already be free of credentials."""
    with tenant_context(tenant_id):
        TenantIntegration.objects.filter(pk=integration_id).update(
            last_error=message[:2000], last_error_at=timezone.now()
        )


@shared_task(name="integrations.sync_contact_to_brevo", bind=True, acks_late=True, max_retries=8)
def sync_contact_to_brevo(self, tenant_id: str, contact_id: int) -> str:
    """Upsert one new contact into the tenant's Brevo list, when the tenant has Brevo connected.

    Queued by ``BrevoProvider.contacts_created`` (the "contacts created" hook) once the contact is
    committed. A 429 comes back after Brevo's ``x-sib-ratelimit-reset``; a refused request (4xx, or a 5xx the HTTP session already retried)
    is recorded on the integration (``last_error``) and not retried: the contact is upserted again
    by the next sync that touches it. The API key never reaches an error message or a log line.
    """
    with tenant_context(tenant_id):
        integration = TenantIntegration.objects.filter(provider="brevo", is_active=True).first()
        if integration is None:
            return "skipped (Brevo not connected)"
        contact = Contact.objects.filter(pk=contact_id).first()
        if contact is None or not contact.email:
            return "skipped (no contact with an e-mail)"
        api_key = integration.value("api_key")
        list_id = str(integration.value("list_id") or "").strip()
    if not api_key:
        record_sync_error(tenant_id, integration.pk, "Brevo sync: no API key is set")
        return "failed (no API key)"
    if not list_id.isdigit():
        record_sync_error(tenant_id, integration.pk, "Brevo sync: the list id is missing or not a number")
        return "failed (no list id)"
    attributes = {k: v for k, v in (("FIRSTNAME", contact.first_name), ("LASTNAME", contact.last_name)) if v}
    try:
        BrevoClient(api_key).upsert_contact(contact.email, attributes, [int(list_id)])
    except RateLimited as exc:
        if self.request.retries >= self.max_retries:
            record_sync_error(
                tenant_id, integration.pk, f"Brevo sync: still rate limited after {self.request.retries + 1} tries"
            )
            return "failed (rate limited)"
        raise self.retry(countdown=exc.retry_after, exc=exc)
    except ApiError as exc:  # the message names the status and Brevo's error code, never the key
        record_sync_error(tenant_id, integration.pk, f"Brevo sync: {exc}")
        log.warning("brevo sync of contact %s (tenant %s) failed: %s", contact_id, tenant_id, exc)
        return "failed"
    except requests.RequestException as exc:
        # Network trouble (worth another try later). Its text names the URL, never a header; the
        # stored reason keeps only the exception's class all the same.
        reason = f"Brevo sync: {unreachable('Brevo', exc)}"
        record_sync_error(tenant_id, integration.pk, reason)
        log.warning("brevo sync of contact %s (tenant %s): %s", contact_id, tenant_id, reason)
        if self.request.retries >= self.max_retries:
            return "failed (unreachable)"
        raise self.retry(countdown=NETWORK_RETRY_BASE_SECONDS * 2**self.request.retries, exc=exc)
    # Working again: an old error must not keep the platform looking broken on the dashboard.
    with tenant_context(tenant_id):
        TenantIntegration.objects.filter(pk=integration.pk).exclude(last_error="").update(last_error="")
    return "synced"


# --- pull syncs (integrations/sync.py) -------------------------------------------------------


def sync_backoff(retries: int, retry_after: float | None) -> float:
    """Exponential backoff with jitter, never sooner than the platform asked, capped."""
    base = settings.SYNC_RETRY_BASE_SECONDS * 2**retries
    wait = min(max(base * random.uniform(0.8, 1.2), retry_after or 0), settings.SYNC_RETRY_MAX_SECONDS)
    return max(wait, 1.0)


@shared_task(name="integrations.sync_integration", bind=True, acks_late=True, max_retries=None)
def sync_integration(self, integration_id: int, tenant_id: str) -> str:
    """Run one integration's pull sync in its tenant's context (see ``integrations.sync``).

    Started by the beat fan-out, so it only runs when the integration is still due and nobody
    holds its claim: a doubled beat, a redelivered message or a second worker does nothing. A
    transient failure (5xx, network, rate limit) comes back with backoff, at most
    ``SYNC_MAX_RETRIES`` times; a permanent one disabled the integration's sync and is not retried.
    """
    outcome = run_sync(integration_id, tenant_id, only_if_due=True)
    if outcome.retryable and self.request.retries < settings.SYNC_MAX_RETRIES:
        raise self.retry(countdown=sync_backoff(self.request.retries, outcome.retry_after))
    return outcome.line()


@shared_task(name="integrations.sync_due_integrations")
def sync_due_integrations() -> int:
    """Beat: one ``sync_integration`` task per active integration whose provider syncs and whose
    interval has passed. Reads across tenants, so it runs in an audited operator context; the
    tasks it publishes each act for one tenant. Returns how many it published."""
    now = timezone.now()
    due_now = []
    with operator_context("beat: fan out due integration syncs"):
        for provider_name in syncing_providers():
            rows = TenantIntegration.objects.filter(provider=provider_name, is_active=True, sync_disabled_reason="")
            provider = get_provider(provider_name)
            rows = rows.filter(due(provider, now)).filter(claimable(now))
            for name in (f.name for f in provider.setting_fields if f.name in provider.sync_fields):
                # A plain value the sync needs, read from the settings JSON (Zoom without its app).
                rows = rows.filter(settings__has_key=name).exclude(**{f"settings__{name}": ""})
            due_now += rows.filter(tenant__is_active=True).values_list("pk", "tenant_id")
    # Published once the operator context is closed: each task acts for one tenant only.
    for pk, tenant_id in due_now:
        sync_integration.delay(pk, str(tenant_id))
    return len(due_now)
