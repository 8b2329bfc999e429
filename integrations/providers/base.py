"""What every provider states about itself. The admin, the setup pages, the commands and the API
all build from these declarations; none of them names a provider.

A provider package (``integrations/providers/<name>/``) holds ``provider.py`` with one ``Provider``
subclass, and is registered with one line in ``integrations/registry.py``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CredentialField:
    """One thing a tenant enters to connect a platform.

    ``secret`` fields are stored encrypted in ``TenantIntegration.credentials`` and never shown
    again (a masked tail at most); the others go to the plain ``settings`` JSON.
    """

    name: str
    label: str
    secret: bool = True
    required: bool = True
    help_text: str = ""


class WebhookAuth:
    """How a platform authenticates its deliveries (the kind of ``webhook_secret`` it needs)."""

    NONE = "none"  # no webhooks
    SIGNATURE = "signature"  # the platform signs with a secret it gives the tenant: entered by hand
    TOKEN = "token"  # unsigned platform: we generate a token the tenant puts in the URL or a header
    PLATFORM_KEY = "platform-key"  # signed with the platform's published key (settings), plus a token


class Provider:
    name: str = ""
    label: str = ""
    credential_fields: tuple[CredentialField, ...] = ()
    webhook_auth: str = WebhookAuth.NONE
    webhook_secret_label: str = "Webhook secret"
    docs_url: str = ""

    @property
    def receives_webhooks(self) -> bool:
        return self.webhook_auth != WebhookAuth.NONE

    @property
    def generates_webhook_secret(self) -> bool:
        """Whether we make the webhook secret (a token) rather than the tenant copying one in."""
        return self.webhook_auth in (WebhookAuth.TOKEN, WebhookAuth.PLATFORM_KEY)

    def field(self, name: str) -> CredentialField | None:
        return next((f for f in self.credential_fields if f.name == name), None)

    @property
    def secret_fields(self) -> tuple[CredentialField, ...]:
        return tuple(f for f in self.credential_fields if f.secret)

    @property
    def setting_fields(self) -> tuple[CredentialField, ...]:
        return tuple(f for f in self.credential_fields if not f.secret)

    def __repr__(self):
        return f"<Provider {self.name}>"
