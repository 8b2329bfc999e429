"""At most one new-contact e-mail per tenant per ``NEW_CONTACT_NOTICE_SECONDS`` (contacts.tasks):
a webinar's registrations arriving for minutes, a drain batch at a time, were one e-mail per admin
per batch. Contacts that arrive within the window are marked and told in one digest at its end,
queued once; the digest opens the next window. The task runs here as a worker would run it,
publishing for real to Redis (the digest's message, with its delay, is read back from there)."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from django.test import override_settings

from conftest import make_user, requires_postgres
from contacts.models import Contact
from contacts.tasks import DUE_KEY, WINDOW_KEY, notify_new_contacts
from tenants.context import tenant_context
from tenants.models import Membership, Tenant
from tests.test_reliability import REDIS_URL, celery_broker, redis_db, requires_redis

__all__ = ["redis_db"]

pytestmark = [requires_postgres, requires_redis]


def tenant_with_owner(label: str) -> Tenant:
    tenant = Tenant.objects.create(slug=f"{label}-{uuid.uuid4().hex[:6]}", name=label.title())
    owner = make_user(f"{label}_{tenant.slug[-6:]}")
    with tenant_context(tenant):
        Membership.objects.create(tenant=tenant, user=owner, role=Membership.Role.OWNER)
    return tenant


def contacts(tenant: Tenant, *names: str) -> list[int]:
    with tenant_context(tenant):
        return [Contact.objects.create(email=f"{name}@example.com", first_name=name, source="zoom").pk for name in names]


def queued(broker) -> list[dict]:
    """The digests waiting in the broker: their arguments and their delay."""
    found = []
    for raw in broker.lrange("default", 0, -1):
        message = json.loads(raw)
        if message["headers"]["task"] == "contacts.notify_new_contacts":
            found.append({"args": json.loads(base64.b64decode(message["body"]))[0], "eta": message["headers"]["eta"]})
    return found


@pytest.mark.django_db
def test_notices_within_a_window_wait_for_one_digest_at_its_end(redis_db, mailoutbox):
    tenant = tenant_with_owner("webinar")
    with override_settings(NEW_CONTACT_NOTICE_SECONDS=300), celery_broker(REDIS_URL):
        first = contacts(tenant, "ada")
        assert notify_new_contacts(str(tenant.pk), first) == 1  # opens the window
        later = contacts(tenant, "bo", "cy")
        assert notify_new_contacts(str(tenant.pk), later) == 0  # within it: held back
        assert notify_new_contacts(str(tenant.pk), contacts(tenant, "di")) == 0
        assert len(mailoutbox) == 1
        (digest,) = queued(redis_db)  # queued once for the window, not once per held-back notice
        assert digest["args"] == [str(tenant.pk), None] and digest["eta"]
        with tenant_context(tenant):
            assert set(Contact.objects.filter(notice_due=True).values_list("first_name", flat=True)) == {"bo", "cy", "di"}
        assert notify_new_contacts(str(tenant.pk), None) == 1  # what the worker runs at the window's end
        assert len(mailoutbox) == 2 and "3 new contacts" in mailoutbox[1].subject
        assert all(name in mailoutbox[1].body for name in ("bo", "cy", "di")) and "ada" not in mailoutbox[1].body
        with tenant_context(tenant):
            assert not Contact.objects.filter(notice_due=True).exists()
            assert not Contact.objects.filter(notified_at__isnull=True).exists()
        # The digest opened the next window: the next contact waits again, and queues a digest again.
        assert notify_new_contacts(str(tenant.pk), contacts(tenant, "ed")) == 0
        assert len(queued(redis_db)) == 2
        assert notify_new_contacts(str(tenant.pk), None) == 1 and len(mailoutbox) == 3
        assert notify_new_contacts(str(tenant.pk), None) == 0  # a digest with nothing due sends nothing


@pytest.mark.django_db
def test_one_tenants_window_does_not_hold_back_another_tenants_notice(redis_db, mailoutbox):
    busy, quiet = tenant_with_owner("busy"), tenant_with_owner("quiet")
    with override_settings(NEW_CONTACT_NOTICE_SECONDS=300), celery_broker(REDIS_URL):
        assert notify_new_contacts(str(busy.pk), contacts(busy, "a1")) == 1
        assert notify_new_contacts(str(busy.pk), contacts(busy, "a2")) == 0
        assert notify_new_contacts(str(quiet.pk), contacts(quiet, "q1")) == 1
        # The busy tenant's digest names only its own contacts, whatever ids it is handed.
        assert notify_new_contacts(str(busy.pk), None) == 1
    assert [m.to for m in mailoutbox] == [[f"busy_{busy.slug[-6:]}@example.com"], [f"quiet_{quiet.slug[-6:]}@example.com"],
                                          [f"busy_{busy.slug[-6:]}@example.com"]]
    assert "a2" in mailoutbox[2].body and "q1" not in mailoutbox[2].body


@pytest.mark.django_db
def test_without_a_window_or_in_process_every_notice_goes_at_once(redis_db, mailoutbox):
    from django.core.cache import cache

    tenant = tenant_with_owner("nowindow")
    with override_settings(NEW_CONTACT_NOTICE_SECONDS=0), celery_broker(REDIS_URL):
        assert [notify_new_contacts(str(tenant.pk), contacts(tenant, f"n{i}")) for i in range(3)] == [1, 1, 1]
    with override_settings(NEW_CONTACT_NOTICE_SECONDS=300):  # the suite's in-process mode: make run's
        assert [notify_new_contacts(str(tenant.pk), contacts(tenant, f"e{i}")) for i in range(2)] == [1, 1]
    assert len(mailoutbox) == 5
    assert cache.get(WINDOW_KEY.format(tenant_id=tenant.pk)) is None
    assert cache.get(DUE_KEY.format(tenant_id=tenant.pk)) is None


@pytest.mark.django_db
def test_a_digest_that_cannot_be_queued_is_queued_by_the_next_contact(redis_db, mailoutbox):
    """The broker down when the digest is queued: its key is given back, so the next held-back
    notice queues it instead of the marked contacts waiting for good."""
    from tests.test_reliability import CLOSED_BROKER

    tenant = tenant_with_owner("down")
    with override_settings(NEW_CONTACT_NOTICE_SECONDS=300):
        with celery_broker(REDIS_URL):
            assert notify_new_contacts(str(tenant.pk), contacts(tenant, "d1")) == 1
        with celery_broker(CLOSED_BROKER):
            assert notify_new_contacts(str(tenant.pk), contacts(tenant, "d2")) == 0
        with celery_broker(REDIS_URL):
            assert notify_new_contacts(str(tenant.pk), contacts(tenant, "d3")) == 0
            assert len(queued(redis_db)) == 1
            assert notify_new_contacts(str(tenant.pk), None) == 1
    assert "2 new contacts" in mailoutbox[1].subject  # d2 (held back while the broker was down) and d3


@pytest.mark.django_db
def test_a_digest_marks_its_contacts_in_slices_and_tells_every_one(redis_db, mailoutbox, monkeypatch):
    """A window may gather more contacts than one statement may carry parameters: the digest marks
    them a slice at a time (``CLAIM_SLICE``, here 2) and still counts, lists and sources them all."""
    import contacts.tasks as tasks

    monkeypatch.setattr(tasks, "CLAIM_SLICE", 2)
    tenant = tenant_with_owner("slices")
    tid = str(tenant.pk)
    with override_settings(NEW_CONTACT_NOTICE_SECONDS=300), celery_broker(REDIS_URL):
        assert notify_new_contacts(tid, contacts(tenant, "g0")) == 1
        names = [f"s{i}" for i in range(5)]
        assert notify_new_contacts(tid, contacts(tenant, *names)) == 0
        with tenant_context(tenant):
            Contact.objects.filter(first_name="s4").update(source="eventbrite")
        assert notify_new_contacts(tid, None) == 1
    with tenant_context(tenant):
        assert not Contact.objects.filter(notified_at__isnull=True).exists()
        assert not Contact.objects.filter(notice_due=True).exists()
    digest = mailoutbox[1]
    assert "5 new contacts" in digest.subject and all(name in digest.body for name in names)
    assert "eventbrite" in digest.subject + digest.body and "zoom" in digest.subject + digest.body
