"""Operator notifications: one e-mail to ``ADMIN_NOTIFICATION_EMAILS`` when a tenant's integration
starts failing (a sync or the processing of a delivery failed), when its deliveries go ``dead``,
and when it recovers. Never more than one per integration and state change.

What operators were last told is ``TenantIntegration.notified_state``: ``ok``, ``failing`` or
``dead`` (the worst first told: a failing integration whose rows then go dead is news, dead rows
followed by a retried failure are not). ``review`` runs after a sync's outcome is recorded and
after a delivery failed (``integrations.connections``), or was processed while operators had been
told of a problem. It asks ``integrations.state`` (the one answer the dashboard and the admin show)
how the platform is doing and moves ``notified_state`` with one conditional ``UPDATE … WHERE
notified_state <> new``: of several workers racing to the same change, the one whose update changed
the row queues the e-mail, on commit, in a task (``notify_operators``); the others change nothing
and send nothing. No lock is held while the mail goes out, and a rolled-back transaction sends none.

The mail names the tenant, the platform, the state and its reason, with a link to the admin's page
of the integration. The reason is redacted with every secret of the integration (webhook secrets,
credentials) before it is written into the mail.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMessage, mailers
from django.db.models import Q
from django.urls import reverse

from engarde.queue import enqueue_on_commit
from integrations.crypto import DecryptionError
from integrations.models import TenantIntegration
from integrations.state import state_of
from tenants.context import tenant_context
from webhooks.redaction import known_secrets, redact_text

log = logging.getLogger(__name__)

OK, FAILING, DEAD = "ok", "failing", "dead"
#: ``integrations.state`` keys that mean the platform is in trouble, and that it works.
TROUBLE = frozenset({"failing", "sync-failing"})
WORKING = frozenset({"receiving", "connected"})


def _unchanged_unless(new: str) -> Q:
    """Rows whose ``notified_state`` moving to ``new`` is a change operators must hear about."""
    if new == FAILING:  # not again, and not after "dead" (the worse news was told already)
        return Q(notified_state=OK)
    return ~Q(notified_state=new)


def review(integration_id, tenant_id, dead: bool = False) -> str | None:
    """After a sync or a delivery of the integration: tell operators if its state changed.
    ``dead``: a delivery has just gone ``dead``. Returns the new notified state when this call
    made the change (and queued the e-mail), else ``None``. Runs in the tenant's context, in the
    caller's transaction when there is one (the e-mail is queued on its commit)."""
    with tenant_context(tenant_id):
        integration = (TenantIntegration.objects.select_related("tenant").defer("credentials")
                       .filter(pk=integration_id).first())
        if integration is None:
            return None
        try:
            key = state_of(integration).key
        except DecryptionError:  # credentials no key decrypts: nothing that needs them can work
            key = "failing"
        if key in TROUBLE:
            new = DEAD if dead else FAILING
        elif key in WORKING:
            new = OK
        else:  # switched off or incomplete: neither news of failure nor of recovery
            return None
        if integration.notified_state == new:
            return None  # the common case, without a write
        changed = TenantIntegration.objects.filter(pk=integration_id).filter(_unchanged_unless(new)).update(
            notified_state=new
        )
        if changed != 1:
            return None  # another worker made this change (and sends its e-mail), or it is no change
        if settings.ADMIN_NOTIFICATION_EMAILS:
            enqueue_on_commit(notify_operators, integration_id, str(tenant_id), new)
        log.info("integration %s of tenant %s: operators' state %s -> %s (%s)", integration_id, tenant_id,
                 integration.notified_state, new, key)
        return new


def _one_line(text: str, limit: int = 200) -> str:
    return " ".join(str(text).split())[:limit]


def _secrets_of(integration: TenantIntegration) -> list[str]:
    values = [v for v in (integration.credentials or {}).values() if isinstance(v, str)]
    return [*known_secrets(integration), *values]


def compose(integration: TenantIntegration, change: str) -> EmailMessage:
    """The operators' e-mail about ``change`` (ok, failing or dead) of ``integration``, as its
    state is now."""
    state = state_of(integration)
    tenant, label = integration.tenant, integration.provider_obj.label
    reason = redact_text(state.reason, _secrets_of(integration)) or "-"
    headline = {
        OK: f"{label} recovered ({state.label})",
        FAILING: f"{label} is failing ({state.label})",
        DEAD: f"{label} deliveries went dead",
    }[change]
    admin = settings.PUBLIC_BASE_URL + reverse("admin:integrations_tenantintegration_change", args=[integration.pk])
    subject = _one_line(f"[En Garde] {tenant.name}: {headline}")
    body = (
        f"{headline} for {tenant.name}.\n\n"
        f"Tenant: {tenant.name} ({tenant.slug})\n"
        f"Platform: {label}\n"
        f"State: {state.label}\n"
        f"Reason: {reason}\n\n"
        f"Admin page: {admin}\n"
    )
    if change == DEAD:
        body += "\nDead deliveries are not retried any more; replay them from the admin once the cause is fixed.\n"
    return EmailMessage(subject, body, None, list(settings.ADMIN_NOTIFICATION_EMAILS))


@shared_task(name="integrations.notify_operators")
def notify_operators(integration_id: int, tenant_id: str, change: str) -> int:
    """Send the e-mail of one state change, queued by ``review`` on commit. Returns how many sent."""
    if not settings.ADMIN_NOTIFICATION_EMAILS:
        return 0
    with tenant_context(tenant_id):
        integration = TenantIntegration.objects.select_related("tenant").filter(pk=integration_id).first()
        if integration is None:
            return 0
        message = compose(integration, change)
    sent = mailers.default.send_messages([message]) or 0
    log.info("integration %s of tenant %s: operators told %s (%d sent)", integration_id, tenant_id, change, sent)
    return sent
