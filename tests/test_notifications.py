"""A new contact e-mails its tenant's owners and admins: only that tenant's, only once, and only
for a contact whose transaction committed."""

import json

import pytest

from conftest import SHARED_EMAIL, make_user
from contacts.models import Contact
from contacts.services import upsert_contact
from contacts.tasks import notify_new_contact
from tenants.context import tenant_context
from tenants.models import Membership
from webhooks.models import WebhookLog
from webhooks.testing import BROKEN_ERROR, break_checkouts, fixture_bytes, post_stripe, rows

CHECKOUT_EMAIL = "jamie.rivera@example.com"  # the customer of the checkout fixture


@pytest.fixture
def deliver(client, django_capture_on_commit_callbacks):
    """POST a signed Stripe body to a tenant, running what is queued on commit (processing, then
    the notification) before returning, as a worker would right after."""

    def post(tenant, body: bytes | None = None):
        body = fixture_bytes("stripe", "checkout_session_completed") if body is None else body
        with django_capture_on_commit_callbacks(execute=True):
            response = post_stripe(client, tenant, body)
        assert response.status_code == 200, response.content
        return response

    return post


def checkout(event_id: str, payment_intent: str, **customer) -> bytes:
    """The checkout fixture as another event (own id and payment), for the customer given."""
    payload = json.loads(fixture_bytes("stripe", "checkout_session_completed"))
    payload["id"] = event_id
    session = payload["data"]["object"]
    session["id"], session["payment_intent"] = f"cs_{event_id}", payment_intent
    session["customer_details"].update(customer)
    return json.dumps(payload).encode()


def recipients(mailoutbox) -> list[str]:
    return sorted(address for message in mailoutbox for address in message.recipients())


def test_a_new_contact_mails_the_tenants_owner_only(stripe, deliver, mailoutbox):
    deliver(stripe.acme)
    with tenant_context(stripe.acme):
        contact = Contact.objects.get(email=CHECKOUT_EMAIL)  # the delivery made a new contact
    (message,) = mailoutbox
    assert message.to == ["alice@example.com"]  # the owner; not bob (a member), not dana (globex)
    assert message.recipients() == ["alice@example.com"]
    assert message.subject == "[Acme] New contact from stripe: Jamie Rivera"
    assert CHECKOUT_EMAIL in message.body and contact.phone in message.body
    assert "Globex" not in message.subject + message.body


def test_the_same_customer_again_sends_nothing_more(stripe, deliver, mailoutbox):
    deliver(stripe.acme)
    assert len(mailoutbox) == 1
    # A second purchase by the same customer: a new event and a new payment, but a known contact.
    deliver(stripe.acme, checkout("evt_second_purchase", "pi_second_purchase", email="JAMIE.RIVERA@example.com"))
    assert [r.status for r in rows(stripe.acme, source="stripe")] == ["processed", "processed"]
    with tenant_context(stripe.acme):
        assert Contact.objects.filter(email=CHECKOUT_EMAIL).count() == 1
    assert len(mailoutbox) == 1
    # The world's own contact (pat@) buying is not news either.
    deliver(stripe.acme, checkout("evt_pat_buys", "pi_pat_buys", email=SHARED_EMAIL, name="Pat"))
    assert len(mailoutbox) == 1


def test_each_tenant_mails_its_own_people(stripe, deliver, mailoutbox):
    deliver(stripe.globex)
    assert recipients(mailoutbox) == ["dana@example.com"]
    assert mailoutbox[0].subject.startswith("[Globex] ")
    # The same customer is new at acme too: a contact of each tenant, a mail for each.
    deliver(stripe.acme)
    assert recipients(mailoutbox) == ["alice@example.com", "dana@example.com"]


def test_admins_are_mailed_too_each_their_own_message(stripe, deliver, mailoutbox):
    carol = make_user("carol")
    eve = make_user("eve", is_active=False)  # an admin whose account is switched off
    nomail = make_user("nomail")
    nomail.email = ""
    nomail.save()
    with tenant_context(stripe.acme):
        for user in (carol, eve, nomail):
            Membership.objects.create(user=user, role=Membership.Role.ADMIN)
    deliver(stripe.acme)
    assert recipients(mailoutbox) == ["alice@example.com", "carol@example.com"]
    # One message each: admins do not see each other's addresses.
    assert sorted(len(message.recipients()) for message in mailoutbox) == [1, 1]


def test_a_handler_that_fails_after_creating_the_contact_sends_nothing(stripe, deliver, mailoutbox, monkeypatch):
    """The handler upserts the customer, then fails: the whole transaction rolls back, so the
    contact never existed and nobody is told about it."""
    break_checkouts(monkeypatch, email="new.person@example.com")
    deliver(stripe.acme, checkout("evt_broken_checkout", "pi_3QxBrokenCheckout001", email="new.person@example.com"))
    (row,) = rows(stripe.acme, source="stripe")
    assert (row.status, row.error) == (WebhookLog.Status.FAILED, BROKEN_ERROR)
    with tenant_context(stripe.acme):
        assert not Contact.objects.filter(email="new.person@example.com").exists()
    assert mailoutbox == []


def test_a_rolled_back_transaction_sends_nothing(world, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError):
            with tenant_context(world.acme):
                _, created = upsert_contact(source="manual", email="rolled.back@example.com")
                assert created
                raise RuntimeError("something later in the same transaction failed")
    assert callbacks == [] and mailoutbox == []
    with tenant_context(world.acme):
        assert not Contact.objects.filter(email="rolled.back@example.com").exists()
    # The same, committed: one mail.
    with django_capture_on_commit_callbacks(execute=True):
        with tenant_context(world.acme):
            upsert_contact(source="manual", email="rolled.back@example.com")
    assert recipients(mailoutbox) == ["alice@example.com"]


def test_a_task_for_one_tenant_cannot_read_anothers_contact(world, mailoutbox):
    with tenant_context(world.globex):
        globex_contact = Contact.objects.get(email=SHARED_EMAIL)
    assert notify_new_contact(str(world.acme.pk), globex_contact.pk) == 0
    assert mailoutbox == []
    assert notify_new_contact(str(world.globex.pk), globex_contact.pk) == 1
    assert recipients(mailoutbox) == ["dana@example.com"]


def test_a_line_break_in_a_name_from_a_payload_does_not_lose_the_mail(world, mailoutbox,
                                                                     django_capture_on_commit_callbacks):
    """Names come from webhook payloads. A line break in a mail header makes Django refuse the
    message (BadHeaderError), and the notification would be lost; nor may it add a header."""
    with django_capture_on_commit_callbacks(execute=True):
        with tenant_context(world.acme):
            upsert_contact(source="manychat", email="crlf@example.com", first_name="Mallory\r\nBcc: spy@evil.test",
                           last_name="X")
    (message,) = mailoutbox
    assert message.recipients() == ["alice@example.com"]
    assert "\n" not in message.subject and "\r" not in message.subject
    assert "spy@evil.test" not in message.message().get_all("Bcc", [])
    assert message.subject == "[Acme] New contact from manychat: Mallory Bcc: spy@evil.test X"


def test_a_redelivered_notification_task_sends_nothing_again(stripe, mailoutbox):
    """acks_late redelivers a task whose worker died after sending: the claim on the contact
    makes the second run a no-op."""
    from contacts.models import Contact
    from contacts.tasks import notify_new_contact
    from tenants.context import tenant_context

    with tenant_context(stripe.acme):
        contact = Contact.objects.create(email="once@example.com", source="stripe")
    assert notify_new_contact.apply(args=(str(stripe.acme.pk), contact.pk)).get() == 1
    assert notify_new_contact.apply(args=(str(stripe.acme.pk), contact.pk)).get() == 0
    assert len(mailoutbox) == 1
    with tenant_context(stripe.acme):
        assert Contact.objects.get(pk=contact.pk).notified_at is not None


def test_several_contacts_are_one_digest_per_recipient(world, mailoutbox, monkeypatch):
    from contacts import tasks

    with tenant_context(world.acme):
        made = [Contact.objects.create(email=f"fan{i}@example.com", first_name=f"Fan{i}", source=source)
                for i, source in enumerate(("zoom", "zoom", "eventbrite"))]
    monkeypatch.setattr(tasks, "DIGEST_LISTED", 2)
    assert tasks.notify_new_contacts(str(world.acme.pk), [c.pk for c in made]) == 1
    (message,) = mailoutbox
    assert message.to == ["alice@example.com"]
    assert message.subject == "[Acme] 3 new contacts from your platforms"  # zoom and eventbrite
    assert "- Fan0 (fan0@example.com) from zoom" in message.body
    assert "fan2@example.com" not in message.body and "… and 1 more" in message.body
    # Every one of them is claimed, the unlisted one too: nobody is told twice.
    assert tasks.notify_new_contacts(str(world.acme.pk), [c.pk for c in made]) == 0
    with tenant_context(world.acme):
        assert not Contact.objects.filter(pk__in=[c.pk for c in made], notified_at__isnull=True).exists()


def test_a_digest_never_lists_or_claims_another_tenants_contact(world, mailoutbox):
    from contacts.tasks import notify_new_contacts

    with tenant_context(world.acme):
        ours = [Contact.objects.create(email=f"ours{i}@example.com", source="stripe") for i in range(2)]
    with tenant_context(world.globex):
        theirs = Contact.objects.create(email="theirs@example.com", source="stripe")
    assert notify_new_contacts(str(world.acme.pk), [ours[0].pk, theirs.pk, ours[1].pk]) == 1
    (message,) = mailoutbox
    assert message.subject == "[Acme] 2 new contacts from stripe"
    assert "theirs@example.com" not in message.body
    with tenant_context(world.globex):
        assert Contact.objects.get(pk=theirs.pk).notified_at is None



@pytest.mark.django_db(transaction=True, databases=["default", "owner"])
def test_a_contact_locked_by_a_handler_is_waited_for_not_skipped(mailoutbox):
    """Another transaction holds the contact's row (a handler updating it) when the notice task
    claims it: the task waits for it and sends, rather than skipping it and leaving it untold."""
    import threading

    from django.db import connections

    from conftest import make_user
    from contacts.tasks import notify_new_contacts
    from tests.test_reliability import owner_connection
    from tests.test_row_queue import make_tenant

    tenant = make_tenant("locked")
    owner = make_user("locked_owner")
    with tenant_context(tenant):
        Membership.objects.create(tenant=tenant, user=owner, role=Membership.Role.OWNER)
        contact = Contact.objects.create(email="held@example.com", source="stripe")
    holder = owner_connection(autocommit=False)
    try:
        holder.execute("UPDATE contacts_contact SET phone = '+15550100' WHERE id = %s", [contact.pk])
        released = threading.Event()

        def release_soon():
            released.wait(0.5)  # not a timing assertion: the task must wait however long this takes
            holder.commit()

        threading.Thread(target=release_soon, daemon=True).start()
        assert notify_new_contacts(str(tenant.pk), [contact.pk]) == 1
        (message,) = mailoutbox
        assert message.to == ["locked_owner@example.com"]
    finally:
        holder.close()
        connections["owner"].close()
