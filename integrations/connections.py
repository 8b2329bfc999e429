"""``TenantIntegration`` as processing reads and marks it (``webhooks.contract.Connections``),
registered in ``webhooks.sources`` by ``integrations.apps`` at start-up. Always called inside the
tenant's context, so the manager's filter and RLS scope every query to that tenant."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Q

from integrations import notifications
from integrations.crypto import DecryptionError
from integrations.models import TenantIntegration
from webhooks.redaction import known_secrets

#: Encrypted columns of an integration: never loaded unless a fetcher needs the credentials.
WEBHOOK_SECRETS = ("webhook_secret", "previous_webhook_secret")
ENCRYPTED = ("credentials", *WEBHOOK_SECRETS)
#: ``last_event_at`` is written at most once a minute per integration, not once per event (a hot
#: row under load).
LAST_EVENT_EVERY = timedelta(seconds=60)


class TenantIntegrations:
    def get(self, source: str, *, credentials: bool) -> TenantIntegration:
        unused = WEBHOOK_SECRETS if credentials else ENCRYPTED
        return TenantIntegration.objects.select_related("tenant").defer(*unused).get(provider=source)

    def event_processed(self, connection: TenantIntegration, at: datetime) -> None:
        TenantIntegration.objects.filter(pk=connection.pk).filter(
            Q(last_event_at__isnull=True) | Q(last_event_at__lt=at - LAST_EVENT_EVERY)
        ).update(last_event_at=at)
        if connection.notified_state != notifications.OK:  # operators were told of a problem: over?
            notifications.review(connection.pk, connection.tenant_id)

    def processing_failed(self, source: str, message: str, at: datetime, dead: bool = False) -> None:
        rows = TenantIntegration.objects.filter(provider=source)
        rows.update(last_error=message, last_error_at=at)
        for pk, tenant_id in rows.values_list("pk", "tenant_id"):
            notifications.review(pk, tenant_id, dead=dead)

    def secrets(self, source: str) -> list[str]:
        # Credentials that no key decrypts (the failure being recorded may be just that) hold
        # nothing we could have sent anywhere: the webhook secrets are still redacted.
        integration = TenantIntegration.objects.filter(provider=source).defer("credentials").first()
        if integration is None:
            return []
        try:
            credentials = integration.credentials or {}
        except DecryptionError:
            credentials = {}
        held = [value for value in credentials.values() if isinstance(value, str)]
        return known_secrets(integration) + held
