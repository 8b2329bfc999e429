"""The drain processes each tenant's claimed rows together (``processing.process_batch``: one
read, one write transaction): fewer statements per event, the processed marks in one UPDATE, and
every failure still handled the one-by-one way, exactly as before. In-process, on PostgreSQL as the runtime role (RLS on); the
real-worker properties (a burst, a SIGKILL mid-batch, fairness) are tests/test_row_queue.py's."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from conftest import requires_postgres
from contacts.models import Payment
from integrations.providers.stripe.handlers import HANDLERS
from tenants.context import tenant_context
from tests.test_reliability import stripe_event
from webhooks.drain import drain_once
from webhooks.models import WebhookLog
from webhooks.testing import post_stripe

pytestmark = requires_postgres


@pytest.fixture(autouse=True)
def no_other_rows(stripe):
    """The world comes with a stored delivery per tenant: these tests count only their own."""
    for tenant in (stripe.acme, stripe.globex):
        with tenant_context(tenant):
            WebhookLog.objects.all().delete()


def store(client, tenant, prefix: str, count: int) -> None:
    """Stored and left ``received``: the test's transaction never commits, so no drain was woken."""
    for i in range(count):
        body = stripe_event(f"evt_{prefix}_{i}", f"pi_{prefix}_{i}", f"{prefix}{i}@example.com")
        assert post_stripe(client, tenant, body).json()["status"] == "received"


def states(tenant) -> dict[str, tuple[str, int]]:
    with tenant_context(tenant):
        return {row.event_id: (row.status, row.attempts) for row in WebhookLog.objects.all()}


def contact_lookups(queries, field: str) -> tuple[list[str], list[str], list[str]]:
    """The contact SELECTs captured: those by ``field`` one by one, those by ``field`` together
    (``IN``), and all of them (for the assertion's message)."""
    sql = [q["sql"] for q in queries.captured_queries if 'FROM "contacts_contact"' in q["sql"] and q["sql"].startswith("SELECT")]
    return ([q for q in sql if f'"contacts_contact"."{field}" = ' in q],
            [q for q in sql if f'"contacts_contact"."{field}" IN (' in q], sql)


def test_a_tenants_batch_is_read_locked_and_marked_once_and_every_row_is_processed_once(stripe, client):
    store(client, stripe.acme, "ok", 10)
    with CaptureQueriesContext(connection) as queries:
        assert drain_once() == (10, False)
    assert states(stripe.acme) == {f"evt_ok_{i}": ("processed", 1) for i in range(10)}
    with tenant_context(stripe.acme):
        assert Payment.objects.filter(external_id__startswith="pi_ok_").count() == 10
    sql = [q["sql"] for q in queries.captured_queries]
    # The bodies read once for the batch and its rows locked by one statement, not a read and a
    # locked read per row; the integration read once, not once per row; the processed marks in
    # one statement.
    bodies = [q for q in sql if q.startswith("SELECT") and '"webhooks_webhooklog"."body"' in q]
    assert len(bodies) == 1, bodies
    locks = [q for q in sql if q.startswith('SELECT "webhooks_webhooklog"."id"') and q.endswith("FOR UPDATE")
             and " IN (" in q]
    assert len(locks) == 1, locks
    assert len([q for q in sql if q.startswith("SELECT") and 'FROM "integrations_tenantintegration"' in q]) == 1
    marks = [q for q in sql if q.startswith('UPDATE "webhooks_webhooklog"') and "'processed'" in q]
    assert len(marks) == 1  # the processed marks of the whole batch in one statement


def test_two_tenants_batches_stay_apart(stripe, client):
    store(client, stripe.acme, "a", 3)
    store(client, stripe.globex, "g", 2)
    assert drain_once() == (5, False)
    assert states(stripe.acme) == {f"evt_a_{i}": ("processed", 1) for i in range(3)}
    assert states(stripe.globex) == {f"evt_g_{i}": ("processed", 1) for i in range(2)}
    for tenant, prefix in ((stripe.acme, "a"), (stripe.globex, "g")):
        with tenant_context(tenant):
            assert Payment.objects.filter(external_id__startswith="pi_").exclude(external_id__startswith=f"pi_{prefix}_")\
                .exclude(external_id="pi_same").count() == 0
            assert Payment.objects.filter(external_id__startswith=f"pi_{prefix}_").count() == {"a": 3, "g": 2}[prefix]


def test_one_failing_event_leaves_the_others_processed_and_itself_failed_as_before(stripe, client, monkeypatch):
    real = HANDLERS["payment_intent.succeeded"]

    def breaking(event):
        real(event)  # its writes must not survive
        if event.data.data.object.id == "pi_mix_2":
            raise RuntimeError("the handler broke after writing")

    monkeypatch.setitem(HANDLERS, "payment_intent.succeeded", breaking)
    store(client, stripe.acme, "mix", 5)
    assert drain_once()[0] == 5
    found = states(stripe.acme)
    assert found.pop("evt_mix_2") == ("failed", 1)  # counted once, not once for the batch and again
    assert found == {f"evt_mix_{i}": ("processed", 1) for i in (0, 1, 3, 4)}
    with tenant_context(stripe.acme):
        assert sorted(Payment.objects.filter(external_id__startswith="pi_mix_").values_list("external_id", flat=True)) == [f"pi_mix_{i}" for i in (0, 1, 3, 4)]
        assert WebhookLog.objects.get(event_id="evt_mix_2").error  # the reason tenant users see


def test_a_row_another_drain_claimed_again_is_not_touched(stripe, client):
    """A claim whose lease ran out and that another drain took: its ``updated_at`` is that drain's,
    so the first drain's batch (``claimed_at``) finds nothing of it to process."""
    from django.utils import timezone

    from webhooks.processing import process_batch

    store(client, stripe.acme, "lease", 1)
    with tenant_context(stripe.acme):
        row = WebhookLog.objects.get()
        then = timezone.now() - timezone.timedelta(seconds=600)
        WebhookLog.objects.filter(pk=row.pk).update(status="processing", updated_at=timezone.now())
    assert process_batch(str(stripe.acme.pk), [row.pk], then) == []
    assert states(stripe.acme) == {"evt_lease_0": ("processing", 0)}


def test_a_batch_writes_without_savepoints_and_links_its_contacts_in_one_insert(stripe, client):
    from contacts.models import Contact, ContactDelivery

    store(client, stripe.acme, "link", 6)
    with CaptureQueriesContext(connection) as queries:
        assert drain_once() == (6, False)
    sql = [q["sql"] for q in queries.captured_queries]
    links = [q for q in sql if q.startswith('INSERT INTO "contacts_contactdelivery"')]
    assert len(links) == 1, links
    # No savepoint around a write. (Inside this test's transaction each tenant_context is itself a
    # savepoint, followed by its set_config; in production it is the transaction's BEGIN.)
    batch = sql[next(i for i, q in enumerate(sql) if '"webhooks_webhooklog"."body"' in q):]
    writes = [batch[i + 1] for i, q in enumerate(batch) if q.startswith("SAVEPOINT")]
    assert writes and all(q.startswith("SELECT set_config('app.tenant_id'") for q in writes), writes
    with tenant_context(stripe.acme):
        for i in range(6):
            contact = Contact.objects.get(email=f"link{i}@example.com")
            row = WebhookLog.objects.get(event_id=f"evt_link_{i}")
            assert list(ContactDelivery.objects.filter(contact=contact).values_list("webhook_log_id", flat=True)) == [row.pk]


def test_a_unique_key_conflict_in_a_batch_is_redone_one_by_one_and_handled_as_before(stripe, client, caplog):
    """Without savepoints a refusal cannot be handled inside the batch: it rolls the batch back,
    and the one-by-one way (with savepoints) handles it as it always did. Here a known Stripe
    customer without an e-mail pays with one that another contact already has: the customer's
    contact stays as it was (without it), and the payment is its."""
    import json

    from contacts.models import Contact, ContactDelivery

    with tenant_context(stripe.acme):
        known = Contact.objects.create(stripe_customer_id="cus_known", source="stripe")
        Contact.objects.create(email="taken@example.com", source="manual")
        links_before = ContactDelivery.objects.count()
    store(client, stripe.acme, "ok", 2)
    payload = json.loads(stripe_event("evt_clash", "pi_clash", "taken@example.com"))
    payload["data"]["object"]["customer"] = "cus_known"
    assert post_stripe(client, stripe.acme, json.dumps(payload).encode()).json()["status"] == "received"
    store(client, stripe.acme, "after", 2)
    with caplog.at_level("INFO", logger="webhooks.processing"):
        assert drain_once()[0] == 5
    assert "drain batch of 5 rows" in caplog.text and "rolled back (IntegrityError)" in caplog.text
    assert set(states(stripe.acme).values()) == {("processed", 1)}
    with tenant_context(stripe.acme):
        known.refresh_from_db()
        assert known.email == ""
        payment = Payment.objects.get(external_id="pi_clash")
        assert payment.contact_id == known.pk
        assert Payment.objects.filter(external_id__regex=r"^pi_(ok|after)_").count() == 4
        clash = WebhookLog.objects.get(event_id="evt_clash")
        assert ContactDelivery.objects.filter(webhook_log_id=clash.pk, contact=known).count() == 1
        assert ContactDelivery.objects.count() == links_before + 5  # one per delivery, none doubled by the redo


def test_a_batch_looks_its_e_mail_addresses_up_once_and_still_finds_a_known_contact(stripe, client):
    from contacts.models import Contact

    with tenant_context(stripe.acme):
        known = Contact.objects.create(email="mail3@example.com", first_name="Known", source="manual")
    store(client, stripe.acme, "mail", 6)
    with CaptureQueriesContext(connection) as queries:
        assert drain_once() == (6, False)
    by_email, together, sql = contact_lookups(queries, "email")
    # Looked up one by one: only the address a contact has; the five new ones not at all.
    assert len(by_email) == 1 and "'mail3@example.com'" in by_email[0] and len(together) == 1, sql
    with tenant_context(stripe.acme):
        assert Contact.objects.filter(email__startswith="mail").count() == 6
        assert Payment.objects.get(external_id="pi_mail_3").contact_id == known.pk


def test_a_batch_looks_its_stripe_customers_up_once_and_still_finds_a_known_contact(stripe, client):
    """A payer is found by the Stripe customer first: the batch asks once which of its ``cus_…``
    ids a contact has; only that one is looked up by itself, the new ones not at all."""
    import json

    from contacts.models import Contact

    with tenant_context(stripe.acme):
        known = Contact.objects.create(email="earlier@example.com", stripe_customer_id="cus_cust_3", source="stripe")
    for i in range(6):
        payload = json.loads(stripe_event(f"evt_cust_{i}", f"pi_cust_{i}", f"cust{i}@example.com"))
        payload["data"]["object"]["customer"] = f"cus_cust_{i}"
        assert post_stripe(client, stripe.acme, json.dumps(payload).encode()).json()["status"] == "received"
    with CaptureQueriesContext(connection) as queries:
        assert drain_once() == (6, False)
    by_customer, together, sql = contact_lookups(queries, "stripe_customer_id")
    assert len(by_customer) == 1 and "'cus_cust_3'" in by_customer[0] and len(together) == 1, sql
    with tenant_context(stripe.acme):
        assert Payment.objects.get(external_id="pi_cust_3").contact_id == known.pk
        assert Contact.objects.get(pk=known.pk).email == "earlier@example.com"  # an identifier is never overwritten
        assert set(Contact.objects.filter(stripe_customer_id__startswith="cus_cust_").values_list(
            "stripe_customer_id", flat=True)) == {f"cus_cust_{i}" for i in range(6)}


def test_a_contact_identifier_scope_refuses_what_is_no_identifier():
    from contacts.services import contacts_looked_up_together

    with pytest.raises(ValueError):
        with contacts_looked_up_together("first_name", {"Ada"}):
            pass


def test_a_stale_absent_e_mail_ends_in_the_unique_key_and_a_redo_not_a_second_contact(stripe, client, monkeypatch,
                                                                                     caplog):
    """Something in the batch makes a contact without telling the batch's lookup (here a handler
    that creates it directly): acting on "absent", the upsert's INSERT meets the unique key, the
    batch rolls back, and the one-by-one redo finds the contact."""
    from contacts.models import Contact

    real = HANDLERS["payment_intent.succeeded"]

    def sneaky(event):
        if event.data.data.object.id == "pi_stale_1":
            Contact.objects.get_or_create(email="stale1@example.com", defaults={"source": "manual"})
        real(event)

    monkeypatch.setitem(HANDLERS, "payment_intent.succeeded", sneaky)
    store(client, stripe.acme, "stale", 3)
    with caplog.at_level("INFO", logger="webhooks.processing"):
        assert drain_once()[0] == 3
    assert "rolled back (IntegrityError)" in caplog.text
    assert set(states(stripe.acme).values()) == {("processed", 1)}
    with tenant_context(stripe.acme):
        (contact,) = Contact.objects.filter(email="stale1@example.com")
        assert Payment.objects.get(external_id="pi_stale_1").contact_id == contact.pk
        assert Contact.objects.filter(email__startswith="stale").count() == 3


def test_a_batch_looks_its_payments_up_once(stripe, client):
    store(client, stripe.acme, "pay", 6)
    with CaptureQueriesContext(connection) as queries:
        assert drain_once() == (6, False)
    lookups = [q["sql"] for q in queries.captured_queries
               if q["sql"].startswith("SELECT") and 'FROM "contacts_payment"' in q["sql"]]
    assert len(lookups) == 1 and '"contacts_payment"."payment_event_id" IN (' in lookups[0], lookups
    with tenant_context(stripe.acme):
        assert Payment.objects.filter(external_id__startswith="pi_pay_").count() == 6


def test_two_events_of_one_payment_in_one_batch_are_one_payment_and_a_known_one_is_found(stripe, client, caplog):
    """The checkout and its PaymentIntent in one batch: the second finds the payment the first made
    in the batch (``Payment.save`` tells the batch's lookup). A payment made earlier under another
    key (an invoice's) that names the PaymentIntent as its ``external_id`` is found too."""
    import json

    from webhooks.testing import fixture_bytes

    checkout = fixture_bytes("stripe", "checkout_session_completed")
    intent = json.loads(fixture_bytes("stripe", "payment_intent_succeeded"))
    intent["id"] = "evt_batch_same_intent"
    intent["data"]["object"].update(id="pi_3QxCheckout00000001", amount=4900, amount_received=4900, currency="eur")
    other = json.loads(stripe_event("evt_batch_known", "pi_batch_known", "known.payer@example.com"))
    with tenant_context(stripe.acme):
        known = Payment.objects.create(payment_event_id="in_batch_known", external_id="pi_batch_known",
                                       source="stripe", amount=49, currency="EUR", status="pending")
    for body in (checkout, json.dumps(intent).encode(), json.dumps(other).encode()):
        assert post_stripe(client, stripe.acme, body).json()["status"] == "received"
    with caplog.at_level("INFO", logger="webhooks.processing"):
        assert drain_once()[0] == 3
    assert "rolled back" not in caplog.text  # done in the batch, not by the one-by-one redo
    assert set(states(stripe.acme).values()) == {("processed", 1)}
    with tenant_context(stripe.acme):
        (payment,) = Payment.objects.filter(external_id="pi_3QxCheckout00000001")
        assert payment.status == "succeeded"
        (again,) = Payment.objects.filter(external_id="pi_batch_known")
        assert again.pk == known.pk and again.status == "succeeded"


@pytest.mark.django_db(transaction=True, databases=["default", "owner"])
def test_a_batchs_new_contacts_are_one_notice_per_admin_not_one_per_contact(mailoutbox):
    """Committed for real: five deliveries stored in one transaction wake one drain, whose batch
    makes five contacts; the owner gets one e-mail listing the five, and each is claimed."""
    from django.db import connections, transaction
    from django.test import Client

    from conftest import make_user
    from contacts.models import Contact
    from tenants.models import Membership
    from tests.test_reliability import post_stripe as post_signed
    from tests.test_row_queue import make_tenant

    tenant = make_tenant("digest")
    owner = make_user("digest_owner")
    with tenant_context(tenant):
        Membership.objects.create(tenant=tenant, user=owner, role=Membership.Role.OWNER)
    client = Client()
    try:
        with transaction.atomic():  # the wake-ups (on commit) run once all five are stored
            for i in range(5):
                body = stripe_event(f"evt_digest_{i}", f"pi_digest_{i}", f"buyer{i}@example.com")
                assert post_signed(client, tenant, body).status_code == 200
        assert states(tenant) == {f"evt_digest_{i}": ("processed", 1) for i in range(5)}
        (message,) = mailoutbox
        assert message.to == ["digest_owner@example.com"]
        assert message.subject == "[digest] 5 new contacts from stripe"
        assert all(f"buyer{i}@example.com" in message.body for i in range(5))
        with tenant_context(tenant):
            assert Contact.objects.filter(notified_at__isnull=True).count() == 0
    finally:
        connections["owner"].close()


def test_the_candidate_addresses_of_a_payload_are_normalised_and_bounded():
    from contacts.services import emails_in

    payload = {"a": " Ada@Example.COM ", "b": ["x", {"c": "not-an-address@", "d": "bob@example.com"}], "n": 5,
               "e": None}
    assert emails_in(payload) == {"ada@example.com", "bob@example.com"}
    flood = {"list": [f"user{i}@example.com" for i in range(100_000)]}
    assert 0 < len(emails_in(flood)) <= 20


def test_a_batchs_new_contacts_and_payments_are_one_insert_each(stripe, client):
    """Eight new payers and their payments: one INSERT for the contacts and one for the payments
    (``contacts.deferred``), each row as one by one would have made it: its tenant, its e-mail, its
    payment pointing at it, its delivery link, its timestamps."""
    from contacts.models import Contact, ContactDelivery

    store(client, stripe.acme, "multi", 8)
    with CaptureQueriesContext(connection) as queries:
        assert drain_once() == (8, False)
    sql = [q["sql"] for q in queries.captured_queries]
    contact_inserts = [q for q in sql if q.startswith('INSERT INTO "contacts_contact" ')]
    payment_inserts = [q for q in sql if q.startswith('INSERT INTO "contacts_payment" ')]
    assert len(contact_inserts) == 1 and len(payment_inserts) == 1, (contact_inserts, payment_inserts)
    ids_taken = [q for q in sql if "nextval(" in q]
    assert len(ids_taken) == 1, ids_taken  # both tables' ids for the batch, ahead, in one statement
    assert set(states(stripe.acme).values()) == {("processed", 1)}
    with tenant_context(stripe.acme):
        for i in range(8):
            contact = Contact.objects.get(email=f"multi{i}@example.com")
            payment = Payment.objects.get(external_id=f"pi_multi_{i}")
            assert payment.contact_id == contact.pk and contact.tenant_id == stripe.acme.pk
            assert payment.currency == "EUR" and contact.created_at and payment.created_at
            row = WebhookLog.objects.get(event_id=f"evt_multi_{i}")
            assert ContactDelivery.objects.filter(contact=contact, webhook_log_id=row.pk).exists()
    with tenant_context(stripe.globex):
        assert not Contact.objects.filter(email__startswith="multi").exists()  # the other tenant sees none


def test_rows_written_together_are_seen_by_the_next_statement_and_can_be_changed():
    """The autoflush: a row waiting is written before whatever statement comes next, so a lookup
    finds it, an update of it changes it, and a payment can point at a contact still waiting."""
    from django.db import transaction

    from contacts import deferred
    from contacts.models import Contact
    from tenants.models import Tenant

    tenant = Tenant.objects.create(slug="deferred-rows", name="Deferred")
    with tenant_context(tenant), transaction.atomic(), deferred.rows_written_together(Contact, Payment):
        with CaptureQueriesContext(connection) as queries:
            contact = deferred.create(Contact, email="Later@Example.com", source="stripe")
            payment = deferred.create(Payment, payment_event_id="pi_later", external_id="pi_later", source="stripe",
                                      amount=12, currency="eur", contact=contact)
        assert not [q for q in queries.captured_queries if q["sql"].startswith("INSERT")]  # nothing sent yet
        assert contact.pk and payment.pk and contact.email == "later@example.com" and payment.currency == "EUR"
        assert contact.created_at is not None and payment.updated_at is not None
        found = Contact.objects.get(email="later@example.com")  # this SELECT wrote both first
        assert found.pk == contact.pk and Payment.objects.get(pk=payment.pk).contact_id == contact.pk
        again = deferred.create(Contact, email="saved.again@example.com", source="stripe")
        again.first_name = "Sam"
        again.save()  # before any other statement: written first, then updated, in that order
        stored = Contact.objects.get(pk=again.pk)
        assert stored.first_name == "Sam" and stored.created_at <= stored.updated_at
        contact.first_name = "Lee"
        contact.save()
        assert Contact.objects.get(pk=contact.pk).first_name == "Lee"
        many = [deferred.create(Contact, email=f"many{i}@example.com", source="stripe") for i in range(20)]
    with tenant_context(tenant):
        assert Contact.objects.filter(email__startswith="many").count() == 20  # written when the block ended
        assert len({c.pk for c in many}) == 20


def test_a_refusal_of_rows_written_together_comes_out_and_leaves_nothing(stripe):
    """A unique key refusing a waiting row is raised from the statement that wrote it, here the
    block's end: the batch's caller rolls back, and nothing of the block is stored."""
    from django.db import IntegrityError, transaction

    from contacts import deferred
    from contacts.models import Contact

    with tenant_context(stripe.acme):
        Contact.objects.create(email="taken.deferred@example.com", source="manual")
        before = Contact.objects.count()
    with pytest.raises(IntegrityError), tenant_context(stripe.acme), transaction.atomic():
        with deferred.rows_written_together(Contact):
            deferred.create(Contact, email="fresh.deferred@example.com", source="stripe")
            deferred.create(Contact, email="taken.deferred@example.com", source="stripe")
    with tenant_context(stripe.acme):
        assert Contact.objects.count() == before
        assert not Contact.objects.filter(email="fresh.deferred@example.com").exists()


def test_create_is_plain_outside_rows_written_together(stripe):
    from contacts import deferred
    from contacts.models import Contact

    with tenant_context(stripe.acme):
        contact = deferred.create(Contact, email="plain@example.com", source="manual")  # no block: written now
        assert Contact.objects.filter(pk=contact.pk).exists()


def test_a_tenant_waiting_alone_is_claimed_in_one_claim_and_two_share_the_batch(stripe, client):
    """Shares of ``WEBHOOK_DRAIN_PER_TENANT`` keep a flood from crowding out the tenants behind it;
    a tenant with nobody behind it takes the rest of the batch in one claim, not one per share."""
    store(client, stripe.acme, "alone", 7)

    def claims(queries) -> int:
        return sum(1 for q in queries.captured_queries if "SKIP LOCKED" in q["sql"])

    with override_settings(WEBHOOK_DRAIN_PER_TENANT=2, WEBHOOK_DRAIN_BATCH=10), \
            CaptureQueriesContext(connection) as queries:
        assert drain_once() == (7, False)
    assert claims(queries) == 1
    assert set(states(stripe.acme).values()) == {("processed", 1)}

    store(client, stripe.acme, "pair", 6)
    store(client, stripe.globex, "pair", 6)
    with override_settings(WEBHOOK_DRAIN_PER_TENANT=2, WEBHOOK_DRAIN_BATCH=8), \
            CaptureQueriesContext(connection) as queries:
        assert drain_once() == (8, True)
    # Two rounds of a share each (2 + 2 per tenant), both tenants still full: four claims, 4 rows each.
    assert claims(queries) == 4
    done = [sum(status == "processed" for status, _ in states(tenant).values()) for tenant in (stripe.acme, stripe.globex)]
    assert done == [7 + 4, 4]
