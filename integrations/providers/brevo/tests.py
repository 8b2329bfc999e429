"""Brevo: a new contact goes into its own tenant's Brevo list, with its own tenant's key.

Brevo is a local fake here (``responses``, at ``BREVO_API_BASE``): every request the code makes
is recorded, and any request to a URL the fake does not serve fails the way a network error does.
"""

import json
import logging

import pytest
import requests
import responses
from celery.signals import task_retry

from conftest import SHARED_EMAIL
from contacts.models import Contact
from contacts.services import upsert_contact
from integrations.http import ApiError, RateLimited
from integrations.models import TenantIntegration
from integrations.providers.brevo.client import BrevoClient
from integrations.providers.stripe.tests import stripe_signature
from integrations.tasks import sync_contact_to_brevo
from tenants.context import tenant_context
from webhooks.testing import connect, fixture_bytes, webhook_path

BREVO = "https://brevo.fake/v3"
CONTACTS_URL = f"{BREVO}/contacts"
KEYS = {"acme": "xkeysib-acme-0123456789abcdef0123456789abcdef", "globex": "xkeysib-globex-fedcba9876543210fedcba98"}
LISTS = {"acme": "7", "globex": "9"}
STRIPE_SECRET = "whsec_acme_brevo_0123456789abcdefghij"


@pytest.fixture
def brevo(settings):
    """The fake Brevo: ``POST /contacts`` answers 201 unless a test registers something else first."""
    settings.BREVO_API_BASE = BREVO
    with responses.RequestsMock(assert_all_requests_are_fired=False) as fake:
        yield fake


def connect_brevo(tenant, **overrides):
    values = {"api_key": KEYS[tenant.slug], "list_id": LISTS[tenant.slug], **overrides}
    return connect(tenant, "brevo", **values)


@pytest.fixture
def both(world):
    connect_brevo(world.acme)
    connect_brevo(world.globex)
    return world


def new_contact(tenant, capture, **fields):
    """Create a contact in a committed transaction, running what is queued on commit (the sync)."""
    fields = {"source": "manual", "email": "new.person@example.com", "first_name": "New", "last_name": "Person",
              **fields}
    with capture(execute=True):
        with tenant_context(tenant):
            contact, created = upsert_contact(**fields)
    return contact, created


def sent(fake):
    return [(call.request.headers.get("api-key"), json.loads(call.request.body)) for call in fake.calls]


def integration_of(tenant) -> TenantIntegration:
    with tenant_context(tenant):
        return TenantIntegration.objects.get(provider="brevo")


# --- the sync -----------------------------------------------------------------------------------
def test_a_stripe_customer_lands_in_its_tenants_list(both, brevo, client, django_capture_on_commit_callbacks):
    brevo.add(responses.POST, CONTACTS_URL, json={"id": 42}, status=201)
    connect(both.acme, "stripe", STRIPE_SECRET)
    body = fixture_bytes("stripe", "checkout_session_completed")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(webhook_path(both.acme, "stripe"), data=body, content_type="application/json",
                               HTTP_STRIPE_SIGNATURE=stripe_signature(body, STRIPE_SECRET))
    assert response.status_code == 200
    assert sent(brevo) == [(
        KEYS["acme"],
        {"email": "jamie.rivera@example.com", "attributes": {"FIRSTNAME": "Jamie", "LASTNAME": "Rivera"},
         "listIds": [7], "updateEnabled": True},
    )]
    assert brevo.calls[0].request.method == "POST"
    everything = "".join(str(call.request.headers) + str(call.request.body) for call in brevo.calls)
    assert KEYS["globex"] not in everything and '"listIds": [9]' not in everything
    assert integration_of(both.acme).last_error == ""


def test_each_tenant_syncs_with_its_own_key_and_list(both, brevo, django_capture_on_commit_callbacks):
    brevo.add(responses.POST, CONTACTS_URL, status=201)
    new_contact(both.globex, django_capture_on_commit_callbacks, email="g@example.com", first_name="", last_name="")
    new_contact(both.acme, django_capture_on_commit_callbacks, email="a@example.com")
    assert sent(brevo) == [
        (KEYS["globex"], {"email": "g@example.com", "attributes": {}, "listIds": [9], "updateEnabled": True}),
        (KEYS["acme"], {"email": "a@example.com", "attributes": {"FIRSTNAME": "New", "LASTNAME": "Person"},
                        "listIds": [7], "updateEnabled": True}),
    ]


def test_only_new_contacts_with_an_email_of_a_tenant_with_brevo_are_sent(world, brevo,
                                                                        django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    brevo.add(responses.POST, CONTACTS_URL, status=201)
    # acme has no Brevo connection at all.
    assert new_contact(world.acme, capture)[1] is True
    # globex has one, switched off.
    connect_brevo(world.globex)
    with tenant_context(world.globex):
        TenantIntegration.objects.filter(provider="brevo").update(is_active=False)
    assert new_contact(world.globex, capture)[1] is True
    assert len(brevo.calls) == 0
    # Switched on: a known contact is not news, a contact with only a ManyChat id has no address.
    with tenant_context(world.globex):
        TenantIntegration.objects.filter(provider="brevo").update(is_active=True)
    assert new_contact(world.globex, capture, email=SHARED_EMAIL)[1] is False
    assert new_contact(world.globex, capture, email="", mc_id="mc-no-mail")[1] is True
    assert len(brevo.calls) == 0


def test_no_task_is_queued_for_a_tenant_without_an_active_brevo(world, brevo, django_capture_on_commit_callbacks):
    """The hook looks once per announcement: a tenant without Brevo costs no message and no task."""
    from celery.signals import before_task_publish, task_prerun

    ran = []

    def seen(sender=None, **kwargs):
        name = sender if isinstance(sender, str) else getattr(sender, "name", "")
        if name == "integrations.sync_contact_to_brevo":
            ran.append(name)

    task_prerun.connect(seen, weak=False)
    before_task_publish.connect(seen, weak=False)
    try:
        new_contact(world.acme, django_capture_on_commit_callbacks, email="no.brevo@example.com")
        assert ran == []
        connect_brevo(world.acme)
        brevo.add(responses.POST, CONTACTS_URL, status=201)
        new_contact(world.acme, django_capture_on_commit_callbacks, email="with.brevo@example.com")
        assert ran == ["integrations.sync_contact_to_brevo"] and len(brevo.calls) == 1
    finally:
        task_prerun.disconnect(seen)
        before_task_publish.disconnect(seen)


def test_a_missing_list_id_is_recorded_and_nothing_is_sent(world, brevo, django_capture_on_commit_callbacks):
    connect_brevo(world.acme, list_id="")
    contact, _ = new_contact(world.acme, django_capture_on_commit_callbacks)
    assert len(brevo.calls) == 0
    assert integration_of(world.acme).last_error == "Brevo sync: the list id is missing or not a number"
    assert sync_contact_to_brevo.apply(args=(str(world.acme.pk), contact.pk)).get() == "failed (no list id)"


# --- rate limits ----------------------------------------------------------------------------------
@pytest.fixture
def retries():
    """The countdowns of the task's retries, as Celery reports them (``task_retry``)."""
    seen = []

    def on_retry(sender=None, request=None, reason=None, **kwargs):
        if sender.name == "integrations.sync_contact_to_brevo":
            seen.append(reason.when)

    task_retry.connect(on_retry, weak=False)
    yield seen
    task_retry.disconnect(on_retry)


def test_a_429_comes_back_after_brevos_reset(both, brevo, retries, django_capture_on_commit_callbacks):
    """A worker waits the 7 s Brevo asked for (``countdown``). Eager mode (the tests' and the
    embedded default's) re-runs a retried task at once, so the second request follows directly."""
    brevo.add(responses.POST, CONTACTS_URL, status=429, headers={"x-sib-ratelimit-reset": "7"},
              json={"code": "too_many_requests", "message": "rate limit"})
    brevo.add(responses.POST, CONTACTS_URL, status=201)
    with tenant_context(both.acme):
        contact = Contact.objects.create(email="burst@example.com", source="manual")
    result = sync_contact_to_brevo.apply(args=(str(both.acme.pk), contact.pk))
    assert result.get() == "synced"
    assert retries == [7.0]
    assert [key for key, _ in sent(brevo)] == [KEYS["acme"], KEYS["acme"]]
    assert integration_of(both.acme).last_error == ""


def test_still_rate_limited_after_every_retry_is_recorded(both, brevo, retries):
    brevo.add(responses.POST, CONTACTS_URL, status=429, headers={"x-sib-ratelimit-reset": "3"})
    with tenant_context(both.acme):
        contact = Contact.objects.create(email="burst@example.com", source="manual")
    result = sync_contact_to_brevo.apply(args=(str(both.acme.pk), contact.pk))
    assert result.get() == "failed (rate limited)"
    max_retries = sync_contact_to_brevo.max_retries
    assert retries == [3.0] * max_retries and len(brevo.calls) == max_retries + 1
    integration = integration_of(both.acme)
    assert integration.last_error == f"Brevo sync: still rate limited after {max_retries + 1} tries"
    assert integration.last_error_at is not None


# --- refused requests -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "status, body, expected",
    [
        (400, {"code": "invalid_parameter", "message": "email is not valid"},
         "Brevo sync: Brevo answered 400 to POST /contacts: invalid_parameter - email is not valid"),
        (401, {"code": "unauthorized", "message": f"Key not found: {KEYS['acme']}"},  # even if Brevo echoed it
         "Brevo sync: Brevo answered 401 to POST /contacts: unauthorized - Key not found: [redacted]"),
        (500, None, "Brevo sync: Brevo answered 500 to POST /contacts"),
    ],
)
def test_a_refused_request_is_recorded_without_the_key(both, brevo, caplog, django_capture_on_commit_callbacks,
                                                       status, body, expected):
    caplog.set_level(logging.DEBUG)
    brevo.add(responses.POST, CONTACTS_URL, status=status, json=body)
    contact, _ = new_contact(both.acme, django_capture_on_commit_callbacks)
    # 5xx: the HTTP session tried again (3 retries) before giving up; 4xx: once.
    assert len(brevo.calls) == (4 if status >= 500 else 1)
    integration = integration_of(both.acme)
    assert integration.last_error == expected and integration.last_error_at is not None
    assert KEYS["acme"] not in integration.last_error
    assert KEYS["acme"] not in caplog.text
    assert all(KEYS["acme"] not in str(record.args) for record in caplog.records)
    assert "failed" in caplog.text  # the failure is logged, just without the key
    assert integration_of(both.globex).last_error == ""
    # Not retried: a refused request would be refused again.
    assert sync_contact_to_brevo.apply(args=(str(both.acme.pk), contact.pk)).get() == "failed"


def test_an_unreachable_brevo_is_recorded_and_retried(both, brevo, retries):
    brevo.add(responses.POST, CONTACTS_URL, body=requests.ConnectionError("connection refused"))
    brevo.add(responses.POST, CONTACTS_URL, status=201)
    with tenant_context(both.acme):
        contact = Contact.objects.create(email="later@example.com", source="manual")
    assert sync_contact_to_brevo.apply(args=(str(both.acme.pk), contact.pk)).get() == "synced"
    assert retries == [60]
    # The failed try was recorded (its time stays); the success that followed cleared the message.
    integration = integration_of(both.acme)
    assert integration.last_error_at is not None and integration.last_error == ""


def test_an_unreachable_brevo_keeps_its_reason_until_it_works(both, brevo, retries):
    brevo.add(responses.POST, CONTACTS_URL, body=requests.ConnectionError("connection refused"))
    with tenant_context(both.acme):
        contact = Contact.objects.create(email="never@example.com", source="manual")
    sync_contact_to_brevo.apply(args=(str(both.acme.pk), contact.pk))
    assert integration_of(both.acme).last_error == "Brevo sync: Brevo could not be reached (the connection failed)"


# --- the client ---------------------------------------------------------------------------------
def test_connection_test_reads_the_account(brevo):
    brevo.add(responses.GET, f"{BREVO}/account", json={"email": "owner@acme.test", "companyName": "Acme Events"})
    assert BrevoClient(KEYS["acme"]).test_connection() == "Brevo account Acme Events"
    (call,) = brevo.calls
    assert call.request.headers["api-key"] == KEYS["acme"]
    assert call.request.headers["accept"] == "application/json"


def test_connection_test_reports_a_refused_key_without_it(brevo):
    brevo.add(responses.GET, f"{BREVO}/account", status=401,
              json={"code": "unauthorized", "message": "Key not found"})
    with pytest.raises(ApiError) as refused:
        BrevoClient(KEYS["acme"]).test_connection()
    assert str(refused.value) == "Brevo answered 401 to GET /account: unauthorized - Key not found"
    brevo.replace(responses.GET, f"{BREVO}/account", status=429, headers={"x-sib-ratelimit-reset": "7"})
    with pytest.raises(RateLimited) as limited:
        BrevoClient(KEYS["acme"]).test_connection()
    assert limited.value.retry_after == 7.0


def test_the_client_never_shows_its_key(brevo):
    client = BrevoClient(KEYS["acme"])
    assert KEYS["acme"] not in repr(client) and KEYS["acme"] not in str(client)
