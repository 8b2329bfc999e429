import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from integrations.crypto import EncryptedJSONField, EncryptedTextField
from integrations.registry import PROVIDER_CHOICES, get_provider
from tenants.models import Tenant, TenantOwned


def webhook_url(tenant, provider_name: str) -> str:
    """The URL a platform posts to for this tenant. Built on the stable tenant id, so renaming a
    slug never breaks a platform's configuration."""
    return f"{settings.PUBLIC_BASE_URL}/api/webhooks/{tenant.pk}/{provider_name}/"


def mask(value: str) -> str:
    """What may be shown of a saved secret: that it exists and, for long ones, its last 4 characters."""
    if not value:
        return ""
    return f"configured, ends in …{value[-4:]}" if len(value) >= 16 else "configured"


class TenantIntegration(TenantOwned):
    """One tenant's connection to one platform: its credentials (encrypted), its webhook secret
    (encrypted; the previous one stays valid until ``previous_webhook_secret_expires_at``), and
    plain settings such as a GoHighLevel location id or a Brevo list id."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="integrations")
    provider = models.CharField(max_length=32, choices=PROVIDER_CHOICES)
    credentials = EncryptedJSONField(help_text="Secret credential values, encrypted at rest.")
    webhook_secret = EncryptedTextField(blank=True, default="")
    previous_webhook_secret = EncryptedTextField(blank=True, default="")
    previous_webhook_secret_expires_at = models.DateTimeField(null=True, blank=True)
    settings = models.JSONField(default=dict, blank=True, help_text="Non-secret values (location id, list id…).")
    is_active = models.BooleanField(default=True)
    last_event_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_error_at = models.DateTimeField(null=True, blank=True)
    # Pull syncs (integrations/sync.py). The names are a contract: the dashboard reads them.
    last_synced_at = models.DateTimeField(null=True, blank=True, help_text="When the last sync finished.")
    last_sync_error = models.TextField(blank=True, default="", help_text="Why the last sync failed (no secrets).")
    last_sync_error_at = models.DateTimeField(null=True, blank=True)
    sync_cursor = models.JSONField(default=dict, blank=True, help_text="Where the next sync starts (provider's own).")
    sync_started_at = models.DateTimeField(
        null=True, blank=True, help_text="Set while a sync runs: the claim that keeps a second run out."
    )
    sync_disabled_reason = models.TextField(
        blank=True, default="", help_text="A permanent error (revoked token): no sync until the credentials change."
    )
    # Which non-secret values (URLs) an operator entered, in the admin or with connect_integration,
    # rather than a tenant user on the setup page: only those may point into
    # OUTBOUND_PRIVATE_NETWORKS (``allowed_networks``). A tenant changing the value clears its name.
    operator_set_fields = models.JSONField(
        default=list, blank=True,
        help_text="Values last set by an operator (admin, connect_integration), not a tenant user: only those "
                  "may point inside OUTBOUND_PRIVATE_NETWORKS.",
    )
    # What operators were last told about this integration (integrations/notifications.py): the
    # conditional update on it lets one worker, and one only, send the e-mail of a state change.
    notified_state = models.CharField(
        max_length=16, default="ok", editable=False,
        help_text="The state operators were last e-mailed about: ok, failing or dead.",
    )
    # What the receiver's per-process cache (``webhooks.fastpath``) was filled from. A trigger
    # (migration 0005) adds one on every UPDATE that changes what verifying a delivery reads: the
    # webhook secrets and the grace expiry, ``is_active``, ``settings`` (GoHighLevel's location id),
    # the credentials, the tenant or the provider. A trigger rather than ``updated_at`` or a bump in
    # ``save()``: ``QuerySet.update()`` (``.update(is_active=False)``), raw SQL and an operator's
    # psql session write past ``save()`` and ``auto_now``, and the trigger sees them all. Whatever
    # value Django writes is replaced by the trigger, so a stale in-memory copy saved back never
    # turns the version back. The tenant's own ``is_active`` is read live by the store function.
    secrets_version = models.BigIntegerField(
        default=0, editable=False,
        help_text="Moves whenever a secret, the settings or the active state change (a database trigger): "
                  "the receiver's cache of this connection is then out of date.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantOwned.Meta):
        db_table = "integrations_tenantintegration"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "provider"], name="integration_unique_tenant_provider")
        ]
        ordering = ["provider"]

    def __str__(self):
        # What admin titles, breadcrumbs and messages print: the tenant's name, never its UUID.
        return f"{self.provider_obj.label} for {self.tenant.name}"

    @property
    def provider_obj(self):
        return get_provider(self.provider)

    @property
    def webhook_url(self) -> str:
        return webhook_url(self.tenant, self.provider)

    # --- credentials ---------------------------------------------------------------------
    def value(self, name: str) -> str:
        """A credential or setting by its registry name (secret or not)."""
        field = self.provider_obj.field(name)
        if field is None:
            raise KeyError(name)
        return (self.credentials if field.secret else self.settings).get(name, "")

    def set_values(self, values: dict[str, str], by_operator: bool = False) -> list[str]:
        """Store registry fields: secrets into ``credentials``, the rest into ``settings``.
        An empty value leaves a saved secret as it is (secrets are write-only). Returns the names
        that changed, never their values.

        ``by_operator``: the values come from an operator (the admin's form, ``connect_integration``),
        not a tenant user (the setup page, the default). Each changed field is marked accordingly in
        ``operator_set_fields``; an unchanged one keeps its mark."""
        provider = self.provider_obj
        changed = []
        marked = set(self.operator_set_fields or [])
        credentials = dict(self.credentials)
        plain = dict(self.settings)
        for name, value in values.items():
            field = provider.field(name)
            if field is None:
                raise KeyError(name)
            value = (value or "").strip()
            target = credentials if field.secret else plain
            if field.secret and not value:
                continue
            if target.get(name, "") != value:
                target[name] = value
                changed.append(name)
                (marked.add if by_operator else marked.discard)(name)
        self.credentials, self.settings = credentials, plain
        self.operator_set_fields = sorted(marked)
        if changed:
            # New credentials deserve a new try: a permanent sync error was about the old ones.
            self.sync_disabled_reason = ""
        return changed

    def allowed_networks(self, name: str) -> tuple:
        """The private networks the URL in field ``name`` may reach (``integrations.http``'s
        ``allowed_networks``): ``OUTBOUND_PRIVATE_NETWORKS`` when an operator set it, else none, so a
        URL a tenant typed is public https only."""
        return tuple(settings.OUTBOUND_PRIVATE_NETWORKS) if name in (self.operator_set_fields or []) else ()

    def missing_fields(self) -> list[str]:
        missing = [f.name for f in self.provider_obj.credential_fields if f.required and not self.value(f.name)]
        if self.provider_obj.receives_webhooks and not self.webhook_secret:
            missing.append("webhook_secret")
        return missing

    def missing_labels(self) -> list[str]:
        """What ``missing_fields`` names, as the tenant reads it on the page."""
        provider = self.provider_obj
        return [provider.webhook_secret_label if name == "webhook_secret" else provider.field(name).label
                for name in self.missing_fields()]

    @property
    def is_configured(self) -> bool:
        return not self.missing_fields()

    def masked(self, name: str) -> str:
        return mask(self.webhook_secret if name == "webhook_secret" else self.value(name))

    # --- webhook secret --------------------------------------------------------------------
    @staticmethod
    def generate_token() -> str:
        return secrets.token_urlsafe(32)

    def set_webhook_secret(self, new_secret: str, grace: timedelta | None = None) -> None:
        """Replace the webhook secret. With ``grace``, the old one keeps verifying deliveries
        until then, so a rotation loses nothing in flight."""
        if grace and self.webhook_secret:
            self.previous_webhook_secret = self.webhook_secret
            self.previous_webhook_secret_expires_at = timezone.now() + grace
        else:
            self.previous_webhook_secret = ""
            self.previous_webhook_secret_expires_at = None
        self.webhook_secret = new_secret

    def valid_webhook_secrets(self, now=None) -> list[str]:
        """The secrets a delivery may be signed with right now, current first."""
        now = now or timezone.now()
        found = [self.webhook_secret] if self.webhook_secret else []
        expires = self.previous_webhook_secret_expires_at
        if self.previous_webhook_secret and expires and now < expires:
            found.append(self.previous_webhook_secret)
        return found
