"""The "contact created" hook: contacts/ announces a committed new contact, the layers above
subscribe (contacts' own notice, every provider's ``contact_created``, Brevo's list sync)."""

import logging

import pytest

from contacts.services import upsert_contact
from contacts.signals import contact_created
from integrations.registry import PROVIDERS
from tenants.context import tenant_context


@pytest.fixture
def heard():
    """What a subscriber connected for the test hears."""
    calls = []

    def listener(sender, tenant_id, contact_id, **kwargs):
        calls.append((tenant_id, contact_id))

    contact_created.connect(listener, weak=False, dispatch_uid="test.heard")
    yield calls
    contact_created.disconnect(dispatch_uid="test.heard")


def test_a_committed_new_contact_is_announced_once_with_its_tenant(world, heard, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        with tenant_context(world.acme):
            contact, created = upsert_contact(source="manual", email="new.one@example.com")
            upsert_contact(source="manual", email="new.one@example.com")  # found again: not new
    assert created
    assert heard == [(str(world.acme.pk), contact.pk)]


def test_a_rolled_back_contact_is_never_announced(world, heard, django_capture_on_commit_callbacks):
    from django.db import transaction

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with tenant_context(world.acme):
            with transaction.atomic():
                upsert_contact(source="manual", email="gone@example.com")
                transaction.set_rollback(True)
    assert heard == []
    assert callbacks == []


def test_every_provider_hears_of_it_through_its_hook(world, monkeypatch, django_capture_on_commit_callbacks):
    told = []
    for provider in PROVIDERS.values():
        monkeypatch.setattr(provider, "contact_created", lambda t, c, name=provider.name: told.append(name))
    with django_capture_on_commit_callbacks(execute=True):
        with tenant_context(world.globex):
            upsert_contact(source="manual", email="hello@example.com")
    assert sorted(told) == sorted(PROVIDERS)


def test_a_failing_subscriber_is_logged_and_the_others_still_run(world, heard, caplog, django_capture_on_commit_callbacks):
    def broken(sender, **kwargs):
        raise RuntimeError("subscriber bug")

    contact_created.connect(broken, weak=False, dispatch_uid="test.broken")
    try:
        with caplog.at_level(logging.ERROR, logger="contacts.signals"):
            with django_capture_on_commit_callbacks(execute=True):
                with tenant_context(world.acme):
                    contact, _ = upsert_contact(source="manual", email="still@example.com")
    finally:
        contact_created.disconnect(dispatch_uid="test.broken")
    assert heard == [(str(world.acme.pk), contact.pk)]
    assert "contact_created receiver" in caplog.text and "broken" in caplog.text
