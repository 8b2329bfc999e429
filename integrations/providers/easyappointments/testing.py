"""Test helpers: the fake E!A (``fake_api``) serving two tenants' installations with look-alike
data, acme with an API token (Bearer) and globex with an admin user (Basic), connected as an
operator would connect a self-hosted installation (http on loopback, listed in
``OUTBOUND_PRIVATE_NETWORKS``)."""

from __future__ import annotations

import ipaddress

import pytest

from integrations.models import TenantIntegration
from integrations.providers.easyappointments.fake_api import FakeEasyAppointments, look_alike
from tenants.context import tenant_context

TOKENS = {"acme": "ea-acme-api-token-0123456789abcdef"}
USERS = {"globex": ("globex-admin", "ea-globex-password-fedcba9876")}
LOOPBACK = (ipaddress.ip_network("127.0.0.1/32"),)


def accounts():
    return {
        "acme": look_alike("acme.example", token=TOKENS["acme"]),
        "globex": look_alike("globex.example", users=dict([USERS["globex"]])),
    }


@pytest.fixture
def fake_ea(settings):
    settings.OUTBOUND_PRIVATE_NETWORKS = LOOPBACK
    made = accounts()
    with FakeEasyAppointments(made["acme"], made["globex"]) as server:
        server.by_slug = made
        yield server


def connect_ea(tenant, server, *, by_operator: bool = True, url: str | None = None,
               token: str | None = None) -> TenantIntegration:
    """The tenant's E!A integration pointing at ``server`` (acme: token; globex: user and password)."""
    if tenant.slug in USERS:
        username, password = USERS[tenant.slug]
    else:
        username, password = "", token or TOKENS.get(tenant.slug, "ea-unknown-token-000000000")
    with tenant_context(tenant):
        integration, _ = TenantIntegration.objects.get_or_create(provider="easyappointments")
        integration.set_values({"url": url or server.url, "username": username, "password": password},
                               by_operator=by_operator)
        if not integration.webhook_secret:
            integration.set_webhook_secret(f"ea-webhook-{tenant.slug}-0123456789abcdef")
        integration.is_active = True
        integration.save()
        return integration
