"""The admin operators live in: tenant names (not UUIDs) in titles and messages, webhook URLs whole
with a copy button, "send test event" a button, the platform's state as everywhere else, times
to the second with their zone, platform labels instead of slugs."""

import re

import pytest
from django.urls import reverse

from integrations.models import TenantIntegration
from tenants.context import tenant_context
from webhooks.models import WebhookLog


@pytest.fixture
def oscar(client, world):
    client.force_login(world.oscar)
    return client


def manychat(tenant):
    with tenant_context(tenant):
        return TenantIntegration.objects.get(provider="manychat")


def test_the_integration_page_names_the_tenant_not_its_uuid(oscar, world):
    integration = manychat(world.acme)
    page = oscar.get(reverse("admin:integrations_tenantintegration_change", args=[integration.pk])).text
    title = re.search(r"<title>(.*?)</title>", page, re.S).group(1)
    assert "ManyChat for Acme" in title and str(world.acme.pk) not in title
    breadcrumbs = re.search(r'class="breadcrumbs">(.*?)</(div|ol|nav)>', page, re.S).group(1)
    assert "ManyChat for Acme" in breadcrumbs and str(world.acme.pk) not in breadcrumbs


def test_webhook_urls_are_whole_with_a_copy_button_and_test_event_is_a_button(oscar, world):
    integration = manychat(world.acme)
    for url in (reverse("admin:tenants_tenant_change", args=[world.acme.pk]),
                reverse("admin:integrations_tenantintegration_change", args=[integration.pk])):
        page = oscar.get(url).text
        field = (re.search(r'<input type="text" readonly value="([^"]+)" size="\d+" id="(webhook-url-\d+)"', page)
                 or re.search(r'<code id="(webhook-url-\d+)" class="webhook-url wrapped">([^<]+)</code>', page))
        shown, target = (field.group(1), field.group(2)) if "<input" in field.group(0) else (field.group(2), field.group(1))
        assert shown == integration.webhook_url
        assert f'data-copy-target="{target}">Copy</button>' in page
        assert re.search(r'<button type="submit" class="button" formaction="[^"]+send-test-event/"', page)
        assert "/static/engarde.js" in page


def test_the_admin_shows_the_platform_state_of_the_one_function(oscar, world):
    page = oscar.get(reverse("admin:tenants_tenant_change", args=[world.acme.pk])).text
    row = re.search(r'<td class="field-state_label">(.*?)</td>', page, re.S).group(1)
    assert re.sub(r"<[^>]+>", "", row).strip() == "Receiving"


def test_times_show_seconds_and_the_zone(oscar, world):
    with tenant_context(world.acme):
        row = WebhookLog.objects.filter(source="manychat").first()
    page = oscar.get(reverse("admin:webhooks_webhooklog_change", args=[row.pk])).text
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", page)
    listing = oscar.get(reverse("admin:webhooks_webhooklog_changelist")).text
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", listing)
    assert ">ManyChat<" in listing and ">manychat<" not in listing


def test_onboarding_is_one_page(oscar, world, mailoutbox):
    from integrations.registry import PROVIDERS
    from tenants.models import Invitation, Tenant

    add = reverse("admin:tenants_tenant_add")
    page = oscar.get(add).text
    for name in ("name", "slug", "owner_email", "timezone", "report_email", "platforms"):
        assert f'name="{name}"' in page, name
    refused = oscar.post(add, {"name": "Initech", "slug": "Bad Slug!", "owner_email": "not-an-email",
                               "timezone": "Mars/Olympus"})
    assert refused.status_code == 400 and not Tenant.objects.filter(name="Initech").exists()
    response = oscar.post(add, {
        "name": "Initech", "slug": "initech", "owner_name": "Bill", "owner_email": "bill@initech.test",
        "timezone": "Europe/Paris", "report_email": "reports@initech.test", "platforms": ["stripe", "poshvip"],
    }, follow=True)
    tenant = Tenant.objects.get(slug="initech")
    assert (tenant.name, tenant.timezone, tenant.report_email) == ("Initech", "Europe/Paris", "reports@initech.test")
    assert response.redirect_chain[-1][0] == reverse("admin:tenants_tenant_change", args=[tenant.pk])
    assert "Initech is onboarded: bill@initech.test is invited as owner. Next: connect Stripe, Posh.VIP" in response.text
    with tenant_context(tenant):
        made = {i.provider: i.is_active for i in TenantIntegration.objects.all()}
        invitation = Invitation.objects.get(email="bill@initech.test")
    assert made == {"stripe": False, "poshvip": False}  # not connected until their secrets are entered
    assert invitation.role == "owner"
    assert len(mailoutbox) == 1 and "Initech" in mailoutbox[0].subject + mailoutbox[0].body
    assert set(PROVIDERS) >= set(made)
