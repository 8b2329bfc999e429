"""The test world, after healthchecks' alice/bob/charlie.

Two tenants with look-alike data: ``acme`` (alice owns it, bob is a member) and ``globex`` (dana
owns it). Both have a contact with the same e-mail and the same ManyChat id, a payment with the
same event id and a ManyChat integration with the same webhook secret, so every test about data
is a test about isolation too. charlie is signed up but belongs to no tenant; oscar is staff.

On PostgreSQL (``DATABASE_URL`` + ``MIGRATE_DATABASE_URL`` + ``OPERATOR_DATABASE_URL``) the test
database is created and migrated by the owner, then the runtime and the operator roles are set up
on it with ``setup_app_role`` and every test runs connected as the runtime role, with row-level
security in force; operator contexts take the operator role (see "The operator role in tests").
"""

import os
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.signals import connection_created
from psycopg import sql as psycopg_sql

from tenants.context import is_operator, tenant_context

ON_POSTGRES = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
RUNS_AS_RUNTIME_ROLE = ON_POSTGRES and "owner" in settings.DATABASES and (
    settings.DATABASES["owner"].get("USER") != settings.DATABASES["default"].get("USER")
)

requires_postgres = pytest.mark.skipif(
    not RUNS_AS_RUNTIME_ROLE,
    reason="needs PostgreSQL as a restricted role: set DATABASE_URL and MIGRATE_DATABASE_URL (see README)",
)

# --- The operator role in tests ---------------------------------------------------------------
# In production operator contexts run on their own connection (the "operator" alias, a role with
# BYPASSRLS). A test's rows live in the test's own, never committed, transaction, which no second
# connection can see; so here the one test connection takes the operator role for the statements
# of an operator context (SET LOCAL ROLE, inside that context's transaction) and drops it again
# after. The policies and roles are the real ones; only the runtime role's membership in the
# operator role (granted below for the run and revoked after it) is the harness's. The tests in
# tests/test_operator_role.py use the real operator alias with committed rows, and check that a
# runtime role made by setup_app_role cannot take the operator role nor see across tenants.
OPERATOR_ROLE = (settings.DATABASES.get("operator") or {}).get("USER") or (
    f"{settings.DATABASES['default'].get('USER')}_operator"
)
OPERATOR_PASSWORD = (settings.DATABASES.get("operator") or {}).get("PASSWORD") or "operator"


def _take_operator_role(execute, sql, params, many, context):
    connection = context["connection"]
    if connection.in_atomic_block:
        wanted = OPERATOR_ROLE if is_operator() else None
        if wanted or getattr(connection, "_test_operator_role", None):
            role = psycopg_sql.Identifier(wanted) if wanted else psycopg_sql.SQL("NONE")
            connection.connection.execute(psycopg_sql.SQL("SET LOCAL ROLE {}").format(role))
            connection._test_operator_role = wanted
    return execute(sql, params, many, context)


def _install_role_switch(sender, connection, **kwargs):
    if connection.alias == DEFAULT_DB_ALIAS and _take_operator_role not in connection.execute_wrappers:
        connection.execute_wrappers.insert(0, _take_operator_role)


if RUNS_AS_RUNTIME_ROLE:
    settings.OPERATOR_DB_ALIAS = DEFAULT_DB_ALIAS
    connection_created.connect(_install_role_switch, dispatch_uid="conftest.operator_role_switch")

# Hashing passwords at production strength costs ~0.3 s a user; tests need no such strength.
settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Tasks run in-process in tests (published on commit, which the webhook helpers execute); the
# tests about a real worker start one themselves.
from engarde.celery import app as celery_app  # noqa: E402

celery_app.conf.task_always_eager = True

SHARED_WEBHOOK_SECRET = "whsec_look-alike-secret-0123456789"
SHARED_EMAIL = "pat@example.com"
SHARED_MC_ID = "mc-4242"
SHARED_EVENT_ID = "evt_same_everywhere"
SHARED_INVITEE = "invitee@example.com"  # a pending invitation at each tenant


@pytest.fixture(scope="session")
def django_db_setup(request, django_test_environment, django_db_blocker, django_db_keepdb, django_db_createdb,
                    django_db_modify_db_settings):
    """pytest-django's database setup, plus the owner alias, plus the runtime role's grants.

    The runtime alias mirrors the owner's test database, so the owner must always be set up even
    though tests only ask for "default"; then ``setup_app_role`` grants the runtime role its rights
    on the fresh database, and every test connects as that role."""
    from django.test.utils import setup_databases, teardown_databases
    from pytest_django.fixtures import _get_databases_for_setup

    aliases, serialized_aliases = _get_databases_for_setup(request.session.items)
    if "owner" in settings.DATABASES:
        aliases = set(aliases) | {"owner"}
    keepdb = django_db_keepdb and not django_db_createdb
    with django_db_blocker.unblock():
        db_cfg = setup_databases(
            verbosity=request.config.option.verbose, interactive=False, aliases=aliases,
            serialized_aliases=serialized_aliases, keepdb=keepdb,
        )
        if RUNS_AS_RUNTIME_ROLE:
            _set_up_roles()
    yield
    if RUNS_AS_RUNTIME_ROLE:
        with django_db_blocker.unblock():
            _grant_operator_role("REVOKE {} FROM {}")  # roles are cluster-wide: leave no such grant
    if not keepdb:
        with django_db_blocker.unblock():
            connections.close_all()  # the runtime role's session would keep the database in use
            _end_other_sessions()
            teardown_databases(db_cfg, verbosity=request.config.option.verbose)


def _end_other_sessions() -> None:
    """Sessions still open on the test database when the run ends (a thread's connection that was
    never closed, a subprocess's backend still exiting) would make DROP DATABASE fail the whole run
    at its last step. End them, and say which they were, so that a leak is seen, not hidden."""
    owner = connections["owner"] if "owner" in settings.DATABASES else connections[DEFAULT_DB_ALIAS]
    if owner.vendor != "postgresql":
        return
    import time
    import warnings

    others = "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    with owner.cursor() as cursor:
        # A connection closed just before (``close_all`` above, a stopped subprocess's) has sent
        # its Terminate, but its backend may still be listed for a moment, idle after its last
        # COMMIT: give those up to two seconds to go, so that what is named below is a real leak.
        for _ in range(20):
            cursor.execute(f"SELECT count(*) {others}")
            if not cursor.fetchone()[0]:
                break
            time.sleep(0.1)
        cursor.execute(
            f"SELECT pid, usename, application_name, state, left(query, 120), pg_terminate_backend(pid) {others}"
        )
        ended = cursor.fetchall()
    owner.close()
    if ended:
        warnings.warn(f"sessions still open on the test database at the end, ended: {ended}", stacklevel=1)


def _set_up_roles():
    runtime = settings.DATABASES["default"]
    with open(os.devnull, "w") as devnull:
        call_command(
            "setup_app_role", runtime["USER"], password=runtime.get("PASSWORD") or "test",
            operator=OPERATOR_ROLE, operator_password=OPERATOR_PASSWORD, database="owner", stdout=devnull,
        )
    _grant_operator_role("GRANT {} TO {}")  # the harness's grant (see above)
    _install_role_switch(None, connections[DEFAULT_DB_ALIAS])
    if "operator" in settings.DATABASES:
        # Subprocesses (workers, a web server) inherit the environment: the test database there too.
        url = os.environ.get("OPERATOR_DATABASE_URL", "")
        os.environ["OPERATOR_DATABASE_URL"] = url.rsplit("/", 1)[0] + "/" + settings.DATABASES["operator"]["NAME"]


def _grant_operator_role(statement: str) -> None:
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            psycopg_sql.SQL(statement).format(
                psycopg_sql.Identifier(OPERATOR_ROLE), psycopg_sql.Identifier(settings.DATABASES["default"]["USER"])
            )
        )
    connections["owner"].close()


@dataclass
class World:
    acme: object
    globex: object
    alice: object  # owner of acme
    bob: object  # member of acme
    charlie: object  # no tenant
    dana: object  # owner of globex
    oscar: object  # staff


def assert_token_shown_once_and_never_stored(client, response, token: str) -> None:
    """A token just made is on this answer once, in its box (``includes/token_once.html``), with
    no-store caching, and in no message, cookie or session (where the messages framework keeps
    what it has not shown yet), neither now nor on the next page."""
    assert response.status_code == 200, response.status_code
    html = response.content.decode()
    assert html.count(token) == 1, html.count(token)
    box = html.index('data-testid="new-token"')
    assert box < html.index(token) < html.index("</section>", box)
    assert "Shown only this once." in html and "Next:" in html and 'data-copy-target="' in html
    assert "no-store" in response["Cache-Control"]
    shown = [str(m) for m in response.context["messages"]] if response.context else []
    assert not [m for m in shown if token in m]
    assert token not in str(response.cookies) and token not in str(client.cookies)
    assert token not in repr(dict(client.session.items()))
    later = client.get("/admin/")
    assert token not in later.content.decode() and token not in repr(dict(client.session.items()))


def api_auth(user, tenant=None) -> dict:
    """Headers that make a test request as ``user`` through the API: a Bearer token of ``tenant``
    (default: the user's first tenant) made by them, for a member; for anyone else (staff who are
    no member, a user of no tenant: no tenant token can be theirs) their signed-in session."""
    from django.test import Client

    from tenants.models import ApiToken, Membership

    memberships = Membership.of_user(user)
    if tenant is None and memberships:
        tenant = memberships[0].tenant
    if tenant is not None and any(m.tenant_id == tenant.pk for m in memberships):
        _, key = ApiToken.issue(tenant, user)
        return {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    client = Client()
    client.force_login(user)
    return {"HTTP_COOKIE": f"{settings.SESSION_COOKIE_NAME}={client.session.session_key}"}


def make_user(username, **extra):
    User = get_user_model()
    user = User.objects.create_user(username=username, email=f"{username}@example.com", password="pw-" + username * 2, **extra)
    return user


def make_staff(username, permissions=()):
    """A staff user with the model permissions named as ``app_label.codename``."""
    from django.contrib.auth.models import Permission

    user = make_user(username, is_staff=True)
    for dotted in permissions:
        app_label, codename = dotted.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return user


def populate(tenant, owner, member=None):
    from contacts.models import Contact, ContactDelivery, Payment, PendingSignup
    from integrations.models import TenantIntegration
    from tenants.models import ApiToken, Invitation, Membership
    from webhooks.models import WebhookLog

    with tenant_context(tenant):
        Membership.objects.create(user=owner, role=Membership.Role.OWNER)
        ApiToken.issue(tenant, owner, name="Look-alike token")
        invitation = Invitation(email=SHARED_INVITEE, invited_by=owner)
        invitation.new_token()
        invitation.save()
        if member:
            Membership.objects.create(user=member, role=Membership.Role.MEMBER)
        contact = Contact.objects.create(email=SHARED_EMAIL, first_name="Pat", source="manychat", mc_id=SHARED_MC_ID)
        Payment.objects.create(
            contact=contact, amount=Decimal("49.00"), currency="eur", source="stripe",
            external_id="pi_same", payment_event_id=SHARED_EVENT_ID,
        )
        PendingSignup.objects.create(contact=contact, source="zoom", external_id="reg-1")
        integration = TenantIntegration(provider="manychat")
        integration.set_values({"api_key": f"mc-api-key-of-{tenant.slug}-0000"})
        integration.set_webhook_secret(SHARED_WEBHOOK_SECRET)
        integration.save()
        log = WebhookLog.objects.create(
            source="manychat", event_id=SHARED_EVENT_ID, event_type="subscriber", body=b'{"id": "mc-4242"}',
            headers={"X-Webhook-Token": "[redacted]"},
        )
        ContactDelivery.objects.create(contact=contact, webhook_log_id=log.pk, source="manychat")
        populate_reports()


SHARED_AD_ID = "120200000000042"


def populate_reports():
    """Ads data and a sent report with the same Meta ids and week at every tenant."""
    from datetime import date

    from reports.models import MetaAd, MetaAdCreative, MetaAdInsight, WeeklyReport

    MetaAd.objects.create(ad_id=SHARED_AD_ID, name="Look-alike ad", creative_id="9000")
    MetaAdCreative.objects.create(creative_id="9000", title="Look-alike creative")
    MetaAdInsight.objects.create(ad_id=SHARED_AD_ID, date=date(2020, 1, 6), spend=Decimal("5.00"), currency="EUR")
    WeeklyReport.objects.create(week_start=date(2020, 1, 6), status=WeeklyReport.Status.SENT)


@pytest.fixture
def world(db):
    from tenants.models import Tenant

    acme = Tenant.objects.create(slug="acme", name="Acme", report_email="boss@acme.test")
    globex = Tenant.objects.create(slug="globex", name="Globex", report_email="boss@globex.test")
    w = World(
        acme=acme, globex=globex,
        alice=make_user("alice"), bob=make_user("bob"), charlie=make_user("charlie"), dana=make_user("dana"),
        oscar=make_user("oscar", is_staff=True, is_superuser=True),
    )
    populate(acme, w.alice, w.bob)
    populate(globex, w.dana)
    return w


# What db_tenant_setting() reads when no tenant and no operator context is set.
NO_DB_SETTING = ("", "") if ON_POSTGRES else None


@pytest.fixture
def db_tenant_setting():
    """What PostgreSQL currently holds as the tenant and operator settings of this connection
    (``NO_DB_SETTING`` on SQLite, which has no such thing)."""

    def read():
        if connection.vendor != "postgresql":
            return None
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('app.tenant_id', true), current_setting('app.operator', true)"
            )
            return tuple(value or "" for value in cursor.fetchone())

    return read


@pytest.fixture
def stripe(world):
    """The world, with Stripe connected at both tenants under their own signing secrets
    (``webhooks.testing.STRIPE_SECRETS``)."""
    from webhooks.testing import connect_stripe

    return connect_stripe(world)


@pytest.fixture(autouse=True)
def no_wake_up_left_for_the_next_test(settings):
    """Deliveries wake their drain on the spot in tests (``WEBHOOK_WAKE_COALESCE_MS=0``): a
    trailing wake-up on the coalescer's thread would publish a message, or take a key, at a moment
    no test controls, after the test looked or under the next test's settings (CI saw both). The
    coalescer has tests of its own that turn it on (``tests/test_wake_coalescer.py``), and
    ``make bench`` runs with the default. Whatever such a test left due is dropped at its end."""
    settings.WEBHOOK_WAKE_COALESCE_MS = 0
    yield
    from webhooks.drain import _coalescer

    _coalescer.discard()


@pytest.fixture(autouse=True)
def no_sleeping_between_a_sessions_retries(monkeypatch):
    """urllib3's backoff between retries (0.5, 1, 2 s) slept in every test of a 5xx or an
    unreachable platform: the retries themselves are what the tests look at, not how long they
    wait (no test is timed), so the suite makes sessions without it."""
    import integrations.http

    monkeypatch.setattr(integrations.http, "RETRY_BACKOFF_FACTOR", 0.0)
