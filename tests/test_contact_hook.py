"""The "contacts created" hook: contacts/ announces committed new contacts, the layers above
subscribe (contacts' own notice, every provider's ``contacts_created``, Brevo's list sync)."""

import logging

import pytest

from contacts.services import upsert_contact
from contacts.signals import announce_collected, announced_together, contacts_created
from integrations.registry import PROVIDERS
from tenants.context import tenant_context


@pytest.fixture
def heard():
    """What a subscriber connected for the test hears."""
    calls = []

    def listener(sender, tenant_id, contact_ids, **kwargs):
        calls.append((tenant_id, contact_ids))

    contacts_created.connect(listener, weak=False, dispatch_uid="test.heard")
    yield calls
    contacts_created.disconnect(dispatch_uid="test.heard")


def test_a_committed_new_contact_is_announced_once_with_its_tenant(world, heard, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        with tenant_context(world.acme):
            contact, created = upsert_contact(source="manual", email="new.one@example.com")
            upsert_contact(source="manual", email="new.one@example.com")  # found again: not new
    assert created
    assert heard == [(str(world.acme.pk), [contact.pk])]


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
        monkeypatch.setattr(provider, "contacts_created", lambda t, c, name=provider.name: told.append(name))
    with django_capture_on_commit_callbacks(execute=True):
        with tenant_context(world.globex):
            upsert_contact(source="manual", email="hello@example.com")
    assert sorted(told) == sorted(PROVIDERS)


def test_a_failing_subscriber_is_logged_and_the_others_still_run(world, heard, caplog, django_capture_on_commit_callbacks):
    def broken(sender, **kwargs):
        raise RuntimeError("subscriber bug")

    contacts_created.connect(broken, weak=False, dispatch_uid="test.broken")
    try:
        with caplog.at_level(logging.ERROR, logger="contacts.signals"):
            with django_capture_on_commit_callbacks(execute=True):
                with tenant_context(world.acme):
                    contact, _ = upsert_contact(source="manual", email="still@example.com")
    finally:
        contacts_created.disconnect(dispatch_uid="test.broken")
    assert heard == [(str(world.acme.pk), [contact.pk])]
    assert "contacts_created receiver" in caplog.text and "broken" in caplog.text


def test_contacts_committed_together_are_announced_once_per_tenant(world, heard, django_capture_on_commit_callbacks):
    """Inside ``announced_together`` (a drain batch, a sync run) the committed contacts are told
    in one announcement per tenant when the block ends; a rolled-back one is not among them."""
    from django.db import transaction

    with announced_together():
        with django_capture_on_commit_callbacks(execute=True):
            with tenant_context(world.acme):
                first, _ = upsert_contact(source="zoom", email="r1@example.com")
                second, _ = upsert_contact(source="zoom", email="r2@example.com")
                with transaction.atomic():
                    upsert_contact(source="zoom", email="rolled.back@example.com")
                    transaction.set_rollback(True)
        with django_capture_on_commit_callbacks(execute=True):
            with tenant_context(world.globex):
                other, _ = upsert_contact(source="zoom", email="g1@example.com")
            with announced_together():  # a nested block joins the outer one
                with tenant_context(world.acme):
                    third, _ = upsert_contact(source="zoom", email="r3@example.com")
        assert heard == []  # nothing before the block ends
    assert sorted(heard) == sorted([(str(world.acme.pk), [first.pk, second.pk, third.pk]),
                                    (str(world.globex.pk), [other.pk])])


def test_what_committed_is_announced_even_when_the_block_then_fails(world, heard, django_capture_on_commit_callbacks):
    with pytest.raises(RuntimeError):
        with announced_together():
            with django_capture_on_commit_callbacks(execute=True):
                with tenant_context(world.acme):
                    contact, _ = upsert_contact(source="zoom", email="kept@example.com")
            raise RuntimeError("the sync failed on its next page")
    assert heard == [(str(world.acme.pk), [contact.pk])]


def test_what_a_block_collected_is_announced_at_each_commit_boundary_it_is_told_of(world, heard,
                                                                                 django_capture_on_commit_callbacks):
    """A sync calls ``announce_collected`` after each page commits: that page's contacts are told
    then, not held back until the run ends (a run killed later would never tell them)."""
    with announced_together():
        with django_capture_on_commit_callbacks(execute=True):
            with tenant_context(world.acme):
                first, _ = upsert_contact(source="zoom", email="page1@example.com")
        announce_collected()
        assert heard == [(str(world.acme.pk), [first.pk])]
        with django_capture_on_commit_callbacks(execute=True):
            with tenant_context(world.acme):
                second, _ = upsert_contact(source="zoom", email="page2@example.com")
        assert len(heard) == 1
    assert heard == [(str(world.acme.pk), [first.pk]), (str(world.acme.pk), [second.pk])]
    announce_collected()  # outside a block: nothing to do
    assert len(heard) == 2
