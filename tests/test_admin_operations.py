"""The operators' daily tools: test events, token rotation, tenant health columns, and list pages
whose cost does not grow with their rows."""

import re
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from conftest import SHARED_WEBHOOK_SECRET, assert_token_shown_once_and_never_stored
from contacts.models import Contact, Payment, PendingSignup
from integrations.models import TenantIntegration
from integrations.providers.base import TEST_EVENT_TYPE
from integrations.registry import PROVIDERS
from integrations.state import LABELS, state_of
from tenants.context import operator_context, tenant_context
from tenants.models import Tenant
from webhooks.models import WebhookLog
from webhooks.testing import connect

WEBHOOK_SOURCES = sorted(name for name, p in PROVIDERS.items() if p.receives_webhooks)


@pytest.fixture
def oscar(client, world):
    client.force_login(world.oscar)
    return client


def integration_of(tenant, provider):
    with tenant_context(tenant):
        return TenantIntegration.objects.select_related("tenant").get(provider=provider)


def messages_of(response):
    return [str(m) for m in response.context["messages"]] if response.context else []


def connect_for_test(tenant, source):
    values = {"location_id": f"loc-{tenant.slug}"} if source == "ghl" else {}
    return connect(tenant, source, f"{source}-secret-of-{tenant.slug}-0123456789", **values)


@pytest.mark.parametrize("source", WEBHOOK_SOURCES)
def test_a_test_event_passes_verification_and_creates_nothing(oscar, world, source, django_capture_on_commit_callbacks):
    integration = connect_for_test(world.acme, source)
    with tenant_context(world.acme):
        before = (Contact.objects.count(), Payment.objects.count(), PendingSignup.objects.count())
    url = reverse("admin:integrations_tenantintegration_send_test_event", args=[integration.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = oscar.post(url, follow=True)
    assert response.status_code == 200
    assert any("passed verification" in m for m in messages_of(response)), messages_of(response)
    with tenant_context(world.acme):
        (row,) = WebhookLog.objects.filter(source=source, event_type=TEST_EVENT_TYPE)
        assert row.status == WebhookLog.Status.IGNORED and row.error == ""
        assert (Contact.objects.count(), Payment.objects.count(), PendingSignup.objects.count()) == before
    with tenant_context(world.globex):
        assert not WebhookLog.objects.filter(event_type=TEST_EVENT_TYPE).exists()


def test_a_test_event_without_a_secret_says_so(oscar, world):
    integration = connect_for_test(world.acme, "stripe")
    with tenant_context(world.acme):
        TenantIntegration.objects.filter(pk=integration.pk).update(webhook_secret="")
    response = oscar.post(reverse("admin:integrations_tenantintegration_send_test_event", args=[integration.pk]), follow=True)
    assert any("no webhook secret is configured" in m for m in messages_of(response))


def test_actions_only_answer_post(oscar, world):
    integration = connect_for_test(world.acme, "manychat")
    for name in ("send_test_event", "rotate_token"):
        assert oscar.get(reverse(f"admin:integrations_tenantintegration_{name}", args=[integration.pk])).status_code == 405


def test_rotating_a_token_shows_it_once_in_its_box_and_keeps_the_old_one_24h(oscar, world):
    old = "manychat-secret-of-acme-0123456789"
    integration = connect(world.acme, "manychat", old)
    url = reverse("admin:integrations_tenantintegration_rotate_token", args=[integration.pk])
    tenant_page = reverse("admin:tenants_tenant_change", args=[world.acme.pk])
    response = oscar.post(url, {"next": tenant_page})
    rotated = integration_of(world.acme, "manychat")
    assert rotated.webhook_secret != old
    assert_token_shown_once_and_never_stored(oscar, response, rotated.webhook_secret)
    text = response.content.decode()
    assert "The old token keeps working for 24 h more." in text  # beside it: the next step and the grace
    assert f'href="{tenant_page}" data-testid="token-done"' in text  # "Done" goes back where it came from
    secrets = rotated.valid_webhook_secrets()
    assert secrets == [rotated.webhook_secret, old]
    assert rotated.valid_webhook_secrets(now=timezone.now() + timedelta(hours=25)) == [rotated.webhook_secret]
    # Recorded by name; the page afterwards does not show it again.
    entry = LogEntry.objects.latest("action_time")
    assert "webhook_secret" in entry.change_message and rotated.webhook_secret not in entry.change_message
    assert rotated.webhook_secret not in oscar.get(tenant_page).text


def test_rotating_from_the_list_shows_each_new_token_once(oscar, world):
    acme, globex = integration_of(world.acme, "manychat"), integration_of(world.globex, "manychat")
    stripe = connect_for_test(world.acme, "stripe")  # a signing secret: refused, said in a message
    response = oscar.post(reverse("admin:integrations_tenantintegration_changelist"), {
        "action": "rotate_tokens", "_selected_action": [acme.pk, globex.pk, stripe.pk],
    })
    tokens = [integration_of(tenant, "manychat").webhook_secret for tenant in (world.acme, world.globex)]
    assert SHARED_WEBHOOK_SECRET not in tokens and tokens[0] != tokens[1]
    text = response.content.decode()
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    assert [text.count(token) for token in tokens] == [1, 1]
    assert text.count('data-testid="new-token"') == 2
    assert f'id="new-token-{acme.pk}"' in text and f'id="new-token-{globex.pk}"' in text
    shown = messages_of(response)
    assert any("enter the new one" in m for m in shown) and not [m for m in shown if any(t in m for t in tokens)]
    assert not [t for t in tokens if t in repr(dict(oscar.session.items())) or t in str(oscar.cookies)]


def test_the_integration_list_shows_each_ones_state_as_everywhere_else(oscar, world):
    connect_for_test(world.acme, "stripe")  # connected, nothing received
    with tenant_context(world.globex):  # globex's ManyChat: failing (deliveries died today)
        WebhookLog.objects.create(source="manychat", event_id="dead-1", body=b"{}", status=WebhookLog.Status.DEAD)
    with tenant_context(world.acme):  # acme's ManyChat: receiving; its Zoom: switched off
        TenantIntegration.objects.filter(provider="manychat").update(last_event_at=timezone.now())
        TenantIntegration.objects.create(provider="zoom", is_active=False)
    response = oscar.get(reverse("admin:integrations_tenantintegration_changelist"))
    text = response.content.decode()
    with operator_context("test: states"):
        expected = sorted(state_of(i).key for i in TenantIntegration.objects.select_related("tenant"))
    assert expected == ["connected", "failing", "not-connected", "receiving"]
    pills = re.findall(r'<span class="state ([a-z-]+)" title="[^"]*">([^<]+)</span>', text)
    assert sorted(key for key, _ in pills) == expected
    assert {key: label for key, label in pills} == {key: LABELS[key] for key in expected}
    assert 'class="column-state_pill' in text and "engarde-admin.css" in text


def test_a_signing_secret_is_not_rotated_by_us(oscar, world):
    integration = connect_for_test(world.acme, "stripe")
    response = oscar.post(reverse("admin:integrations_tenantintegration_rotate_token", args=[integration.pk]), follow=True)
    assert any("enter the new one" in m for m in messages_of(response))
    assert integration_of(world.acme, "stripe").webhook_secret == integration.webhook_secret


def test_bulk_actions_on_the_integration_list(oscar, world, django_capture_on_commit_callbacks):
    acme, globex = connect_for_test(world.acme, "poshvip"), connect_for_test(world.globex, "poshvip")
    with django_capture_on_commit_callbacks(execute=True):
        response = oscar.post(reverse("admin:integrations_tenantintegration_changelist"), {
            "action": "send_test_events", "_selected_action": [acme.pk, globex.pk],
        }, follow=True)
    assert sum("passed verification" in m for m in messages_of(response)) == 2
    for tenant in (world.acme, world.globex):
        with tenant_context(tenant):
            assert WebhookLog.objects.filter(event_type=TEST_EVENT_TYPE).count() == 1


def test_tenant_page_has_the_buttons_and_they_come_back(oscar, world):
    connect_for_test(world.acme, "manychat")
    page = oscar.get(reverse("admin:tenants_tenant_change", args=[world.acme.pk])).text
    integration = integration_of(world.acme, "manychat")
    assert reverse("admin:integrations_tenantintegration_send_test_event", args=[integration.pk]) in page
    assert reverse("admin:integrations_tenantintegration_rotate_token", args=[integration.pk]) in page
    assert 'name="next"' in page


def test_tenant_list_shows_last_event_and_failures_and_can_deactivate(oscar, world):
    with tenant_context(world.acme):
        WebhookLog.objects.create(source="stripe", event_id="e-dead", body=b"{}", status=WebhookLog.Status.DEAD)
        WebhookLog.objects.create(source="stripe", event_id="e-failed", body=b"{}", status=WebhookLog.Status.FAILED)
        WebhookLog.objects.create(source="stripe", event_id="e-bad", body=b"{}", status=WebhookLog.Status.REJECTED)
    response = oscar.get(reverse("admin:tenants_tenant_changelist"))
    rows = {t.slug: t for t in response.context["cl"].result_list}
    assert rows["acme"].failures_24h == 2 and rows["globex"].failures_24h == 0
    assert rows["acme"].last_event_at is not None
    # The first press asks; nothing changes until "Yes".
    asked = oscar.post(reverse("admin:tenants_tenant_changelist"), {"action": "deactivate", "_selected_action": [world.acme.pk]})
    assert asked.status_code == 200 and "Deactivate these tenants?" in asked.text and "Acme" in asked.text
    assert 'name="post" value="yes"' in asked.text and Tenant.objects.get(pk=world.acme.pk).is_active is True
    oscar.post(reverse("admin:tenants_tenant_changelist"),
               {"action": "deactivate", "_selected_action": [world.acme.pk], "post": "yes"})
    assert Tenant.objects.get(pk=world.acme.pk).is_active is False
    assert Tenant.objects.get(pk=world.globex.pk).is_active is True


def grow(n):
    """n more rows for each tenant in every list the admin shows."""
    for tenant in (Tenant.objects.get(slug="acme"), Tenant.objects.get(slug="globex")):
        with tenant_context(tenant):
            for i in range(n):
                contact = Contact.objects.create(email=f"grow{i}@example.com", source="zoom")
                Payment.objects.create(contact=contact, amount=1, currency="EUR", source="stripe", payment_event_id=f"g{i}")
                PendingSignup.objects.create(contact=contact, source="zoom", external_id=f"g{i}")
                WebhookLog.objects.create(source="stripe", event_id=f"g{i}", body=b"{}")


@pytest.mark.parametrize("model", [
    "webhooks_webhooklog", "contacts_contact", "contacts_payment", "contacts_pendingsignup",
    "integrations_tenantintegration", "tenants_tenant",
])
def test_list_pages_run_the_same_queries_as_rows_grow(oscar, world, model):
    url = reverse(f"admin:{model}_changelist")
    with CaptureQueriesContext(connection) as few:
        assert oscar.get(url).status_code == 200
    grow(12)
    for name in ("stripe", "zoom"):
        for tenant in (world.acme, world.globex):
            connect_for_test(tenant, name)
    with CaptureQueriesContext(connection) as many:
        response = oscar.get(url)
    assert response.context["cl"].result_count > 2 or model == "tenants_tenant"
    assert len(many) == len(few), [q["sql"][:120] for q in many.captured_queries]


def test_operator_context_sees_every_tenant_in_lists(oscar, world):
    grow(2)
    with operator_context("test: count"):
        expected = WebhookLog.objects.count()
    response = oscar.get(reverse("admin:webhooks_webhooklog_changelist"))
    assert response.context["cl"].result_count == expected
