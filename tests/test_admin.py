"""The operators' admin: who gets in, that every page works across tenants, and that no saved
secret ever comes back out (pages, messages, history)."""

import logging

import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from conftest import SHARED_WEBHOOK_SECRET, assert_token_shown_once_and_never_stored, make_user
from integrations.models import TenantIntegration
from tenants.context import tenant_context
from tenants.models import Tenant

ACME_API_KEY = "mc-api-key-of-acme-0000"  # what conftest.populate stores for acme's ManyChat


@pytest.fixture
def oscar(client, world):
    client.force_login(world.oscar)
    return client


def integration_of(tenant, provider="manychat"):
    with tenant_context(tenant):
        return TenantIntegration.objects.get(provider=provider)


def change_url(integration):
    return reverse("admin:integrations_tenantintegration_change", args=[integration.pk])


def add_url(**query):
    url = reverse("admin:integrations_tenantintegration_add")
    return f"{url}?{'&'.join(f'{k}={v}' for k, v in query.items())}" if query else url


def change_messages():
    return [entry.change_message for entry in LogEntry.objects.all()]


def manychat_post(**fields):
    """A change-form POST for a ManyChat integration, every input blank unless given."""
    data = {"is_active": "on", "api_key": "", "new_webhook_secret": "", "webhook_secret_grace_hours": "", "_save": "Save"}
    data.update(fields)
    return data


# --- getting in --------------------------------------------------------------------------------
def test_index_and_every_changelist_load_for_staff(oscar, world):
    assert oscar.get(reverse("admin:index")).status_code == 200
    for model in admin.site._registry:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        response = oscar.get(url)
        assert response.status_code == 200, url


def test_changelists_show_every_tenants_rows(oscar, world):
    # Operators work across tenants: both look-alike contacts, payments and deliveries are listed.
    for name in ("contacts_contact", "contacts_payment", "contacts_pendingsignup", "webhooks_webhooklog",
                 "integrations_tenantintegration"):
        response = oscar.get(reverse(f"admin:{name}_changelist"))
        assert response.context["cl"].result_count == 2, name
        assert response.text.count('name="_selected_action"') == 2, name  # both rows rendered


def test_searches_and_tenant_filters(oscar, world):
    contacts = reverse("admin:contacts_contact_changelist")
    assert oscar.get(contacts, {"q": "pat@example"}).context["cl"].result_count == 2
    assert oscar.get(contacts, {"q": "nobody@"}).context["cl"].result_count == 0
    assert oscar.get(contacts, {"tenant__id__exact": world.acme.pk}).context["cl"].result_count == 1
    payments = oscar.get(reverse("admin:contacts_payment_changelist"), {"q": "pi_same"})
    assert payments.context["cl"].result_count == 2
    signups = oscar.get(reverse("admin:contacts_pendingsignup_changelist"), {"q": "reg-1"})
    assert signups.context["cl"].result_count == 2
    logs = oscar.get(reverse("admin:webhooks_webhooklog_changelist"), {"tenant__id__exact": world.globex.pk})
    assert logs.context["cl"].result_count == 1
    tenants = oscar.get(reverse("admin:tenants_tenant_changelist"), {"q": "boss@globex"})
    assert [t.slug for t in tenants.context["cl"].result_list] == ["globex"]


def test_views_run_in_a_logged_operator_context(oscar, world, caplog):
    with caplog.at_level(logging.INFO, logger="engarde.audit"):
        oscar.get(reverse("admin:contacts_contact_changelist"))
    expected = f"operator context entered: admin {world.oscar.pk} /admin/contacts/contact/"
    assert expected in caplog.messages


@pytest.mark.parametrize("name", ["admin:index", "admin:tenants_tenant_changelist", "admin:contacts_contact_changelist"])
def test_tenant_users_are_sent_to_login(client, world, caplog, name):
    client.force_login(world.alice)
    with caplog.at_level(logging.INFO, logger="engarde.audit"):
        response = client.get(reverse(name))
    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))
    assert not [m for m in caplog.messages if "operator context" in m]  # refused before any context


# --- tenants -----------------------------------------------------------------------------------
def test_tenant_page_shows_integrations_inline(oscar, world):
    integration = integration_of(world.acme)
    response = oscar.get(reverse("admin:tenants_tenant_change", args=[world.acme.pk]))
    assert response.status_code == 200
    html = response.text
    assert f'class="webhook-url wrapped">{integration.webhook_url}</code>' in html  # whole, wrapped to fit
    assert f'href="{change_url(integration)}"' in html
    assert f'{add_url()}?tenant={world.acme.pk}"' in html
    assert "alice" in html and "bob" in html and "dana" not in html  # memberships inline, acme only
    assert SHARED_WEBHOOK_SECRET not in html and ACME_API_KEY not in html


def test_saving_the_tenant_page_adds_a_member(oscar, world):
    from tenants.models import Membership

    with tenant_context(world.acme):
        members = list(Membership.objects.order_by("pk"))
    data = {
        "name": "Acme Corp", "slug": "acme", "is_active": "on", "owner_name": "", "report_email": "boss@acme.test",
        "timezone": "Europe/Paris", "config": "{}",
        # The read-only integrations inline posts only its management form.
        "integrations-TOTAL_FORMS": "1", "integrations-INITIAL_FORMS": "1",
        "integrations-MIN_NUM_FORMS": "0", "integrations-MAX_NUM_FORMS": "0",
        "memberships-TOTAL_FORMS": "3", "memberships-INITIAL_FORMS": "2",
        "memberships-MIN_NUM_FORMS": "0", "memberships-MAX_NUM_FORMS": "1000",
        "memberships-2-user": world.charlie.pk, "memberships-2-role": "member", "_save": "Save",
    }
    for n, member in enumerate(members):
        data.update({f"memberships-{n}-id": member.pk, f"memberships-{n}-user": member.user_id,
                     f"memberships-{n}-role": member.role})
    response = oscar.post(reverse("admin:tenants_tenant_change", args=[world.acme.pk]), data)
    assert response.status_code == 302, response.context["errors"] if response.context else response
    world.acme.refresh_from_db()
    assert (world.acme.name, world.acme.timezone) == ("Acme Corp", "Europe/Paris")
    with tenant_context(world.acme):
        assert Membership.objects.filter(user=world.charlie, role="member").exists()
    assert integration_of(world.acme).webhook_secret == SHARED_WEBHOOK_SECRET  # inline left alone


def test_membership_user_autocomplete(oscar, world):
    response = oscar.get(reverse("admin:autocomplete"), {
        "app_label": "tenants", "model_name": "membership", "field_name": "user", "term": "char",
    })
    assert response.status_code == 200
    assert [r["text"] for r in response.json()["results"]] == ["charlie"]


def test_tenant_changelist_queries_do_not_grow_with_tenants(oscar, world):
    url = reverse("admin:tenants_tenant_changelist")
    with CaptureQueriesContext(connection) as two_tenants:
        assert oscar.get(url).status_code == 200
    for n in range(5):
        tenant = Tenant.objects.create(slug=f"more-{n}", name=f"More {n}", timezone=f"Etc/GMT+{n}")
        with tenant_context(tenant):
            TenantIntegration.objects.create(provider="stripe")
            TenantIntegration.objects.create(provider="meta")
    with CaptureQueriesContext(connection) as seven_tenants:
        response = oscar.get(url)
    assert response.context["cl"].result_count == 7
    assert "More 4" in response.text
    assert len(seven_tenants) == len(two_tenants)


# --- adding an integration ---------------------------------------------------------------------
def test_add_step_one_chooses_tenant_and_provider(oscar, world):
    response = oscar.get(add_url())
    assert response.status_code == 200
    assert 'name="provider"' in response.text and 'name="new_webhook_secret"' not in response.text

    response = oscar.post(add_url(), {"tenant": world.acme.pk, "provider": "stripe"})
    assert response.status_code == 302
    assert response.url == add_url(tenant=world.acme.pk, provider="stripe")


def test_add_step_one_refuses_a_second_integration_of_a_provider(oscar, world):
    response = oscar.post(add_url(), {"tenant": world.acme.pk, "provider": "manychat"})
    assert response.status_code == 200
    assert "already exists" in response.text


def test_add_step_two_shows_the_providers_fields(oscar, world):
    response = oscar.get(add_url(tenant=world.acme.pk, provider="zoom"))
    assert response.status_code == 200
    html = response.text
    assert '<input type="password" name="client_secret"' in html  # secret: write-only input
    assert '<input type="text" name="client_id"' in html  # setting: plain text
    assert '<input type="password" name="new_webhook_secret"' in html
    assert "Secret token (Features → Event subscriptions)" in html  # the provider's own label
    assert 'name="generate_webhook_secret"' not in html  # Zoom gives the secret; we do not make it


def test_adding_stores_secrets_and_never_shows_them(oscar, world):
    secret_key, signing_secret = "sk_test_admin_0123456789abcdWXYZ", "whsec_admin_signing_secret_9876"
    response = oscar.post(add_url(tenant=world.acme.pk, provider="stripe"), {
        "tenant": world.acme.pk, "is_active": "on", "secret_key": secret_key,
        "new_webhook_secret": signing_secret, "webhook_secret_grace_hours": "", "_save": "Save",
    }, follow=True)
    assert response.status_code == 200

    stripe = integration_of(world.acme, "stripe")
    assert stripe.value("secret_key") == secret_key
    assert stripe.webhook_secret == signing_secret
    assert response.redirect_chain[-1][0] == change_url(stripe)
    pages = [response, oscar.get(change_url(stripe)), oscar.get(reverse("admin:integrations_tenantintegration_changelist")),
             oscar.get(reverse("admin:tenants_tenant_change", args=[world.acme.pk])),
             oscar.get(reverse("admin:integrations_tenantintegration_history", args=[stripe.pk]))]
    for page in pages:
        assert secret_key not in page.text and signing_secret not in page.text
    assert "ends in …WXYZ" in pages[1].text  # the masked tail is all that is shown
    assert not [m for m in change_messages() if secret_key in m or signing_secret in m]
    assert LogEntry.objects.filter(object_id=str(stripe.pk)).exists()  # the addition is recorded


# --- changing an integration -------------------------------------------------------------------
def test_change_page_shows_url_and_masked_secrets_only(oscar, world):
    integration = integration_of(world.acme)
    response = oscar.get(change_url(integration))
    assert response.status_code == 200
    html = response.text
    assert f'readonly value="{integration.webhook_url}"' in html
    assert "Configured, ends in …0000; leave blank to keep it." in html
    assert ACME_API_KEY not in html and SHARED_WEBHOOK_SECRET not in html
    assert 'name="credentials"' not in html and 'name="webhook_secret"' not in html


def test_blank_secrets_keep_the_saved_values(oscar, world):
    integration = integration_of(world.acme)
    response = oscar.post(change_url(integration), manychat_post())
    assert response.status_code == 302
    integration = integration_of(world.acme)
    assert integration.value("api_key") == ACME_API_KEY
    assert integration.webhook_secret == SHARED_WEBHOOK_SECRET


def test_changing_a_secret_records_its_name_not_its_value(oscar, world):
    new_key = "mc-brand-new-api-key-5555"
    integration = integration_of(world.acme)
    assert oscar.post(change_url(integration), manychat_post(api_key=new_key)).status_code == 302

    assert integration_of(world.acme).value("api_key") == new_key
    assert integration_of(world.globex).value("api_key") != new_key  # the other tenant is untouched
    entry = LogEntry.objects.get(object_id=str(integration.pk))
    assert "api_key" in entry.change_message and new_key not in entry.change_message
    page = oscar.get(change_url(integration))
    assert new_key not in page.text and "ends in …5555" in page.text


def test_a_generated_token_is_shown_once_in_its_box_and_never_in_a_message(oscar, world):
    integration = integration_of(world.acme)
    response = oscar.post(
        change_url(integration), manychat_post(generate_webhook_secret="on", webhook_secret_grace_hours="24"),
    )
    integration = integration_of(world.acme)
    token = integration.webhook_secret
    assert token != SHARED_WEBHOOK_SECRET
    assert integration.valid_webhook_secrets() == [token, SHARED_WEBHOOK_SECRET]  # the grace period

    assert_token_shown_once_and_never_stored(oscar, response, token)
    text = response.content.decode()
    assert "ManyChat for Acme: new webhook token (X-Webhook-Token header)" in text
    assert "in the X-Webhook-Token header only" in text  # the next step
    assert integration.webhook_url in text  # beside it, to copy too
    # "Done" goes where saving would have gone (the list, for "Save"); the change was recorded.
    assert f'href="{reverse("admin:integrations_tenantintegration_changelist")}" data-testid="token-done"' in text
    assert any("was changed successfully" in str(m) for m in response.context["messages"])
    assert token not in oscar.get(change_url(integration)).text  # not a second time
    assert not [m for m in change_messages() if token in m]


def test_a_token_generated_when_adding_is_shown_once_too(oscar, world):
    response = oscar.post(add_url(tenant=world.acme.pk, provider="perspective"), {
        "tenant": world.acme.pk, "provider": "perspective", "is_active": "on", "api_key": "",
        "new_webhook_secret": "", "generate_webhook_secret": "on", "_save": "Save",
    })
    with tenant_context(world.acme):
        created = TenantIntegration.objects.get(provider="perspective")
    assert_token_shown_once_and_never_stored(oscar, response, created.webhook_secret)
    assert change_url(created) in response.content.decode()  # "Done" goes on to the new integration


def test_entering_and_generating_a_secret_at_once_is_refused(oscar, world):
    integration = integration_of(world.acme)
    typed = {"api_key": "typed-api-key-1111", "new_webhook_secret": "typed-token-2222"}
    response = oscar.post(change_url(integration), manychat_post(generate_webhook_secret="on", **typed))
    assert response.status_code == 200
    assert "not both" in response.text
    assert not [value for value in typed.values() if value in response.text]  # not even re-displayed
    assert integration_of(world.acme).value("api_key") == ACME_API_KEY
    assert integration_of(world.acme).webhook_secret == SHARED_WEBHOOK_SECRET


def test_view_only_staff_see_masked_values_only(client, world):
    viewer = make_user("viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_tenantintegration"))
    client.force_login(viewer)
    integration = integration_of(world.acme)
    response = client.get(change_url(integration))
    assert response.status_code == 200
    assert "configured, ends in …0000" in response.text
    assert ACME_API_KEY not in response.text and SHARED_WEBHOOK_SECRET not in response.text
    assert client.post(change_url(integration), manychat_post(api_key="nope-nope")).status_code == 403


# --- contacts ----------------------------------------------------------------------------------
def test_a_row_cannot_point_at_another_tenants_contact(oscar, world):
    from contacts.models import Contact, Payment

    with tenant_context(world.acme):
        payment = Payment.objects.get()
    with tenant_context(world.globex):
        globex_contact = Contact.objects.get()
    data = {
        "contact": globex_contact.pk, "amount": "49.00", "amount_refunded": "0", "currency": "EUR",
        "status": "succeeded", "source": "stripe", "external_id": "pi_same", "payment_event_id": payment.payment_event_id,
        "description": "", "metadata": "{}", "occurred_at_0": "", "occurred_at_1": "", "_save": "Save",
    }
    response = oscar.post(reverse("admin:contacts_payment_change", args=[payment.pk]), data)
    assert response.status_code == 200
    assert "This belongs to another tenant." in response.text
    with tenant_context(world.acme):
        assert Payment.objects.get().contact.tenant_id == world.acme.pk


# --- webhook log -------------------------------------------------------------------------------
def test_webhook_log_is_read_only_and_shows_the_request(oscar, world):
    from webhooks.models import WebhookLog

    with tenant_context(world.acme):
        log = WebhookLog.objects.get()
    url = reverse("admin:webhooks_webhooklog_change", args=[log.pk])
    response = oscar.get(url)
    assert response.status_code == 200
    assert "{&quot;id&quot;: &quot;mc-4242&quot;}" in response.text  # body_text, escaped
    assert "[redacted]" in response.text  # headers
    assert 'name="_save"' not in response.text
    assert oscar.post(url, {"event_id": "forged"}).status_code == 403
    assert oscar.get(reverse("admin:webhooks_webhooklog_add")).status_code == 403
