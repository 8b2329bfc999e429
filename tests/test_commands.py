"""The management commands: happy paths, and every bad input refused in one line.

Each command is driven through ``call_command`` (a refusal is a ``CommandError`` with a one-line
message, never another exception) and a few times as a real ``manage.py`` process (exit status
non-zero, stderr exactly one line, no traceback). The processes run against a throwaway SQLite
database of their own, migrated once per module, whatever database the test run itself uses.
"""

import hashlib
import io
import json
import logging
import os
import re
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections

from conftest import ON_POSTGRES, SHARED_WEBHOOK_SECRET, requires_postgres
from integrations.models import TenantIntegration
from tenants.context import tenant_context
from tenants.models import ApiToken, Membership, Tenant

PROJECT_ROOT = Path(__file__).resolve().parent.parent
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
STRONG_PASSWORD = "C0rrect-Horse-Battery-Staple"


# --- helpers ---------------------------------------------------------------------------------
def run(*args, **options) -> list[str]:
    """Run a command in-process; its stdout as lines."""
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), **options)
    lines = out.getvalue().splitlines()
    assert lines, f"{args[0]} printed nothing"
    return lines


def refused(*args, **options) -> str:
    """Run a command that must refuse; its one-line message."""
    out = io.StringIO()
    with pytest.raises(CommandError) as info:
        call_command(*args, stdout=out, stderr=io.StringIO(), **options)
    message = str(info.value)
    assert message.strip(), "empty refusal message"
    assert "\n" not in message.strip(), f"refusal is not one line: {message!r}"
    assert "Traceback" not in message
    return message


def assert_one_line_failure(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), f"stderr is not exactly one line: {result.stderr!r}"
    return lines[0]


def integrations_of(tenant) -> dict[str, TenantIntegration]:
    with tenant_context(tenant):
        return {i.provider: i for i in TenantIntegration.objects.all()}


# --- real processes --------------------------------------------------------------------------
class Cli:
    def __init__(self, tmp: Path):
        self.db_path = tmp / f"engarde-cli-{uuid.uuid4().hex}.sqlite3"
        self.var_dir = tmp
        self.env = dict(os.environ)
        self.env.pop("MIGRATE_DATABASE_URL", None)
        self.env.update(
            DEBUG="true",
            DATABASE_URL=f"sqlite:///{self.db_path}",
            ENGARDE_VAR_DIR=str(tmp),  # its own development keys, next to its own database
            DJANGO_SETTINGS_MODULE="engarde.settings",
        )

    def __call__(self, *args, input=None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=PROJECT_ROOT, env=self.env, input=input,
            capture_output=True, text=True, timeout=120,
        )

    def fernet(self) -> Fernet:
        keys = json.loads((self.var_dir / "dev-keys.json").read_text())
        return Fernet(keys["FIELD_ENCRYPTION_KEY"].encode())


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    """A migrated throwaway SQLite database with one tenant, ``cli-co``, made by the command."""
    tool = Cli(tmp_path_factory.mktemp("cli"))
    migrated = tool("migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stderr
    tool.onboarded = tool("onboard_tenant", "cli-co", "--name", "CLI Co", "--timezone", "Europe/Paris")
    assert tool.onboarded.returncode == 0, tool.onboarded.stderr
    yield tool
    tool.db_path.unlink(missing_ok=True)


def test_cli_onboard_prints_the_tenant_id_last(cli):
    lines = cli.onboarded.stdout.splitlines()
    assert lines[0] == "created tenant cli-co"
    assert UUID_RE.match(lines[-1]), lines
    with sqlite3.connect(cli.db_path) as db:
        row = db.execute("SELECT id, name, timezone, is_active FROM tenants_tenant WHERE slug = 'cli-co'").fetchone()
    assert row is not None
    assert uuid.UUID(row[0]) == uuid.UUID(lines[-1])
    assert row[1:] == ("CLI Co", "Europe/Paris", 1)


@pytest.mark.parametrize(
    "args, says",
    [
        pytest.param(["onboard_tenant", "Bad Slug", "--name", "X"], "slug", id="onboard-bad-slug"),
        pytest.param(["onboard_tenant", "cli-co", "--active", "--inactive"], "not allowed", id="onboard-both-states"),
        pytest.param(["onboard_tenant", "new-co", "--name", "N", "--timezone", "Mars/Olympus"], "time zone", id="onboard-bad-tz"),
        pytest.param(["connect_integration", "cli-co", "paypal"], "unknown provider", id="connect-unknown-provider"),
        pytest.param(["connect_integration", "cli-co", "meta", "--set", "access_token"], "KEY=VALUE", id="connect-malformed-set"),
        pytest.param(["add_tenant_user", "cli-co", "x@example.com", "--password", "password"], "password refused", id="user-weak-pw"),
        pytest.param(["add_tenant_user", "cli-co", "x@example.com", "--role", "boss"], "invalid choice", id="user-bad-role"),
        pytest.param(["setup_app_role", "engarde_app", "--password", "pw"], "needs PostgreSQL", id="role-on-sqlite"),
        # Days: not a day, and days that exist but no arithmetic reaches (were tracebacks).
        pytest.param(["sync_integration", "cli-co", "stripe", "--since", "notadate"], "--since must be a date",
                     id="sync-bad-since"),
        pytest.param(["sync_integration", "cli-co", "stripe", "--since", "0001-01-01"], "between 1970-01-01",
                     id="sync-since-out-of-range"),
        pytest.param(["send_weekly_reports", "--week-of", "garbage"], "--week-of must be a date", id="weekly-bad-day"),
        pytest.param(["send_weekly_reports", "--week-of", "0001-01-01", "--dry-run"], "between 1970-01-01",
                     id="weekly-week-of-year-one"),
        pytest.param(["send_weekly_reports", "--week-of", "9999-12-31", "--dry-run"], "and 2999-12-31",
                     id="weekly-week-of-year-9999"),
    ],
)
def test_cli_bad_input_is_one_line_and_a_failure_exit(cli, args, says):
    line = assert_one_line_failure(cli(*args))
    assert says in line


def test_cli_connect_reads_the_secret_from_stdin_and_never_prints_it(cli):
    secret = "whsec_from_stdin_" + uuid.uuid4().hex
    result = cli("connect_integration", "cli-co", "stripe", "--webhook-secret", "-", input=secret + "\n")
    assert result.returncode == 0, result.stderr
    assert secret not in result.stdout and secret not in result.stderr
    url = result.stdout.splitlines()[-1]
    tenant_id = cli.onboarded.stdout.splitlines()[-1]
    assert url.startswith(settings.PUBLIC_BASE_URL + "/") and tenant_id in url and "/stripe/" in url
    with sqlite3.connect(cli.db_path) as db:
        stored, is_active = db.execute(
            "SELECT i.webhook_secret, i.is_active FROM integrations_tenantintegration i "
            "JOIN tenants_tenant t ON t.id = i.tenant_id WHERE t.slug = 'cli-co' AND i.provider = 'stripe'"
        ).fetchone()
    assert is_active == 1
    assert stored.startswith("gAAAAA") and secret not in stored
    assert cli.fernet().decrypt(stored.encode()).decode() == secret  # the stdin line, newline stripped


def test_cli_connect_reads_one_line_of_stdin_for_each_dash(cli):
    """The README's own line: the webhook secret and the secret key from two lines of stdin."""
    secret, key = "whsec_two_lines_" + uuid.uuid4().hex, "sk_test_two_lines_" + uuid.uuid4().hex
    result = cli("connect_integration", "cli-co", "stripe", "--webhook-secret", "-", "--set", "secret_key=-",
                 input=f"{secret}\n{key}\n")
    assert result.returncode == 0, result.stderr
    assert secret not in result.stdout + result.stderr and key not in result.stdout + result.stderr
    with sqlite3.connect(cli.db_path) as db:
        stored, credentials = db.execute(
            "SELECT i.webhook_secret, i.credentials FROM integrations_tenantintegration i "
            "JOIN tenants_tenant t ON t.id = i.tenant_id WHERE t.slug = 'cli-co' AND i.provider = 'stripe'"
        ).fetchone()
    assert cli.fernet().decrypt(stored.encode()).decode() == secret
    assert json.loads(cli.fernet().decrypt(credentials.encode()).decode())["secret_key"] == key
    # One line for two dashes: refused in one line, not the same value twice.
    short = cli("connect_integration", "cli-co", "stripe", "--webhook-secret", "-", "--set", "secret_key=-",
                input=f"{secret}\n")
    assert "--set secret_key is '-' but standard input has no line left" in assert_one_line_failure(short)


# --- onboard_tenant --------------------------------------------------------------------------
@pytest.mark.django_db
def test_onboard_creates_a_tenant_and_prints_its_id_last():
    lines = run(
        "onboard_tenant", "initech", "--name", "Initech", "--owner-name", "Bill L.",
        "--report-email", "bill@initech.test", "--timezone", "America/Chicago",
    )
    tenant = Tenant.objects.get(slug="initech")
    assert lines[-1] == str(tenant.pk)
    assert lines[0] == "created tenant initech"
    assert (tenant.name, tenant.owner_name, tenant.report_email, tenant.timezone, tenant.is_active) == (
        "Initech", "Bill L.", "bill@initech.test", "America/Chicago", True,
    )


@pytest.mark.django_db
def test_onboard_inactive_on_create():
    run("onboard_tenant", "sleepy", "--name", "Sleepy", "--inactive")
    tenant = Tenant.objects.get(slug="sleepy")
    assert tenant.is_active is False
    assert tenant.timezone == "UTC"


def test_onboard_update_changes_only_the_given_fields(world):
    before = Tenant.objects.get(pk=world.acme.pk)
    lines = run("onboard_tenant", "acme", "--timezone", "Europe/Paris")
    assert lines[0] == "updated tenant acme: timezone 'UTC' -> 'Europe/Paris'"
    assert lines[-1] == str(world.acme.pk)
    after = Tenant.objects.get(pk=world.acme.pk)
    assert after.timezone == "Europe/Paris"
    assert (after.name, after.owner_name, after.report_email, after.is_active) == (
        before.name, before.owner_name, before.report_email, before.is_active,
    )
    assert Tenant.objects.count() == 2

    run("onboard_tenant", "acme", "--inactive")
    after = Tenant.objects.get(pk=world.acme.pk)
    assert after.is_active is False and after.timezone == "Europe/Paris" and after.name == "Acme"
    run("onboard_tenant", "acme", "--active", "--owner-name", "Alice A.")
    after = Tenant.objects.get(pk=world.acme.pk)
    assert after.is_active is True and after.owner_name == "Alice A." and after.report_email == "boss@acme.test"
    # globex was never touched
    assert Tenant.objects.get(pk=world.globex.pk).timezone == "UTC"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["Initech", "--name", "X"], id="uppercase"),
        pytest.param(["bad slug", "--name", "X"], id="space"),
        pytest.param(["-initech", "--name", "X"], id="leading-hyphen-as-option"),
        pytest.param(["--name", "X", "--", "-initech"], id="leading-hyphen-as-slug"),
        pytest.param(["initech-", "--name", "X"], id="trailing-hyphen"),
        pytest.param(["ini--tech", "--name", "X"], id="double-hyphen"),
        pytest.param(["ini_tech", "--name", "X"], id="underscore"),
        pytest.param(["x" * 64, "--name", "X"], id="too-long"),
        pytest.param(["initech"], id="missing-name"),
        pytest.param(["initech", "--name", ""], id="empty-name"),
        pytest.param(["initech", "--name", "X", "--report-email", "not-an-email"], id="bad-email"),
        pytest.param(["initech", "--name", "X", "--report-email", "a@b@c.test"], id="bad-email-two-ats"),
        pytest.param(["initech", "--name", "X", "--timezone", "Mars/Olympus"], id="unknown-tz"),
        pytest.param(["initech", "--name", "X", "--timezone", "utc+2"], id="not-iana-tz"),
        pytest.param(["initech", "--name", "X", "--active", "--inactive"], id="active-and-inactive"),
    ],
)
def test_onboard_refuses_bad_input_on_create(args):
    refused("onboard_tenant", *args)
    assert not Tenant.objects.exists()


@pytest.mark.parametrize(
    "args, field",
    [
        (["--report-email", "nope"], "report_email"),
        (["--timezone", "Nowhere/Special"], "timezone"),
        (["--timezone", ""], "timezone"),
        (["--name", ""], "name"),
    ],
)
def test_onboard_refuses_bad_input_on_update_and_changes_nothing(world, args, field):
    message = refused("onboard_tenant", "acme", "--owner-name", "Changed", *args)
    assert field in message
    acme = Tenant.objects.get(pk=world.acme.pk)
    assert (acme.name, acme.owner_name, acme.report_email, acme.timezone) == ("Acme", "", "boss@acme.test", "UTC")


# --- connect_integration ---------------------------------------------------------------------
@pytest.fixture
def initech(db):
    return Tenant.objects.create(slug="initech", name="Initech")


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


def test_connect_signature_provider_keeps_the_given_secret_and_prints_the_url(world, logs):
    secret, key = "whsec_given_by_stripe_0001", "sk_test_stripe_key_0002"
    lines = run("connect_integration", "acme", "stripe", "--webhook-secret", secret, "--set", f"secret_key={key}")
    integration = integrations_of(world.acme)["stripe"]
    assert integration.is_active
    assert integration.webhook_secret == secret
    assert integration.value("secret_key") == key
    assert integration.credentials == {"secret_key": key}
    url = lines[-1]
    assert url == integration.webhook_url
    assert url.startswith(settings.PUBLIC_BASE_URL + "/")
    assert str(world.acme.pk) in url and "/stripe/" in url
    assert lines[0] == "Stripe connected for acme"
    output = "\n".join(lines)
    assert "token" not in output  # nothing generated for a signature provider
    assert secret not in output and key not in output
    # the audit line is there, with field names only
    assert "integration stripe of tenant acme created (secret_key, webhook_secret)" in logs.text
    assert secret not in logs.text and key not in logs.text
    # globex got nothing
    assert "stripe" not in integrations_of(world.globex)


def test_connect_token_provider_generates_a_token_printed_once(initech, logs):
    lines = run("connect_integration", "initech", "manychat", "--set", "api_key=mc-secret-api-key-42")
    integration = integrations_of(initech)["manychat"]
    token = integration.webhook_secret
    assert len(token) >= 32
    output = "\n".join(lines)
    assert output.count(token) == 1
    token_lines = [line for line in lines if token in line]
    assert token_lines == [f"webhook token (shown once, keep it in the platform's settings): {token}"]
    assert lines[-1] == integration.webhook_url and str(initech.pk) in lines[-1] and "/manychat/" in lines[-1]
    assert token not in logs.text and "mc-secret-api-key-42" not in logs.text
    assert "integration manychat of tenant initech created" in logs.text
    assert integration.value("api_key") == "mc-secret-api-key-42"

    # Run again: the token is kept and not shown again.
    logs.clear()
    lines = run("connect_integration", "initech", "manychat")
    assert token not in "\n".join(lines)
    assert not any("webhook token" in line for line in lines)
    again = integrations_of(initech)["manychat"]
    assert again.webhook_secret == token
    assert again.value("api_key") == "mc-secret-api-key-42"
    assert lines[0] == "ManyChat updated for initech"
    assert token not in logs.text


def test_connect_platform_key_provider_also_gets_a_token(initech):
    lines = run("connect_integration", "initech", "ghl", "--set", "location_id=loc-1")
    integration = integrations_of(initech)["ghl"]
    assert integration.webhook_secret and integration.webhook_secret in lines[-2]
    assert integration.settings == {"location_id": "loc-1"}
    assert lines[-1] == integration.webhook_url


def test_connect_token_provider_takes_a_given_secret_instead(initech):
    lines = run("connect_integration", "initech", "manychat", "--webhook-secret", "my-own-token-value-123")
    assert integrations_of(initech)["manychat"].webhook_secret == "my-own-token-value-123"
    assert not any("webhook token" in line for line in lines)


@pytest.mark.parametrize("provider, label", [("meta", "Meta Ads"), ("brevo", "Brevo")])
def test_connect_provider_without_webhooks_prints_no_url(initech, provider, label):
    values = {"meta": ["access_token=EAAB-token-1", "ad_account_id=act_1"], "brevo": ["api_key=xkeysib-1", "list_id=3"]}
    lines = run("connect_integration", "initech", provider, *(a for v in values[provider] for a in ("--set", v)))
    assert lines == [f"{label} connected for initech"]
    integration = integrations_of(initech)[provider]
    assert integration.is_active and integration.webhook_secret == ""


@pytest.mark.parametrize("provider", ["meta", "brevo"])
def test_connect_without_the_required_values_refuses_and_saves_nothing(initech, provider):
    with pytest.raises(CommandError, match=r"is not connected: .* missing .*nothing was saved$"):
        call_command("connect_integration", "initech", provider, stdout=io.StringIO())
    assert provider not in integrations_of(initech)


def test_connect_update_keeps_the_other_values(initech, logs):
    run("connect_integration", "initech", "meta", "--set", "access_token=EAAB-token-1", "--set", "ad_account_id=act_1")
    lines = run("connect_integration", "initech", "meta", "--set", "ad_account_id=act_2")
    integration = integrations_of(initech)["meta"]
    assert integration.value("access_token") == "EAAB-token-1"
    assert integration.value("ad_account_id") == "act_2"
    assert lines == ["Meta Ads updated for initech"]  # nothing missing, no URL

    run(
        "connect_integration", "initech", "zoom", "--webhook-secret", "zoom-secret-token-1",
        "--set", "account_id=AcctD8cJuqWVQ623CI4Q", "--set", "client_id=ClntIq8rNw2uT3mZ0aKc", "--set", "client_secret=zoom-client-secret-1",
    )
    run("connect_integration", "initech", "zoom", "--set", "client_id=ClntIq8rNw2uT3mZ0aK2")
    zoom = integrations_of(initech)["zoom"]
    assert zoom.value("client_secret") == "zoom-client-secret-1"
    assert zoom.value("account_id") == "AcctD8cJuqWVQ623CI4Q" and zoom.value("client_id") == "ClntIq8rNw2uT3mZ0aK2"
    assert zoom.webhook_secret == "zoom-secret-token-1"
    # an empty secret value leaves the saved one in place (secrets are write-only)
    run("connect_integration", "initech", "zoom", "--set", "client_secret=")
    assert integrations_of(initech)["zoom"].value("client_secret") == "zoom-client-secret-1"
    for value in ("EAAB-token-1", "zoom-secret-token-1", "zoom-client-secret-1"):
        assert value not in logs.text


def test_connect_activates_an_inactive_integration_and_keeps_its_secret(world):
    with tenant_context(world.acme):
        TenantIntegration.objects.filter(provider="manychat").update(is_active=False)
    lines = run("connect_integration", "acme", "manychat")
    integration = integrations_of(world.acme)["manychat"]
    assert integration.is_active
    assert integration.webhook_secret == SHARED_WEBHOOK_SECRET
    assert integration.value("api_key") == "mc-api-key-of-acme-0000"
    assert not any("webhook token" in line for line in lines)
    assert lines[0] == "ManyChat updated for acme"


def test_connect_reads_dash_values_from_stdin(initech, monkeypatch, logs):
    monkeypatch.setattr(sys, "stdin", io.StringIO("xkeysib-from-stdin-777\n"))
    lines = run("connect_integration", "initech", "brevo", "--set", "api_key=-", "--set", "list_id=12")
    brevo = integrations_of(initech)["brevo"]
    assert brevo.value("api_key") == "xkeysib-from-stdin-777"
    assert brevo.value("list_id") == "12"
    assert "xkeysib-from-stdin-777" not in "\n".join(lines) + logs.text

    monkeypatch.setattr(sys, "stdin", io.StringIO("whsec_piped_secret_888\n"))
    run("connect_integration", "initech", "stripe", "--webhook-secret", "-")
    assert integrations_of(initech)["stripe"].webhook_secret == "whsec_piped_secret_888"
    assert "whsec_piped_secret_888" not in logs.text


@pytest.mark.parametrize(
    "args, says",
    [
        (["initech", "paypal"], "unknown provider"),
        (["nope", "stripe"], "no tenant"),
        (["initech", "stripe", "--set", "colour=blue"], "no field colour"),
        (["initech", "stripe", "--set", "secret_key"], "KEY=VALUE"),
        (["initech", "stripe", "--set", "=sk_value"], "KEY=VALUE"),
        (["initech", "meta", "--webhook-secret", "s3cret-value"], "sends no webhooks"),
        (["initech", "brevo", "--webhook-secret", "s3cret-value"], "sends no webhooks"),
        (["initech", "stripe", "--webhook-secret", ""], "must not be empty"),
        (["initech", "stripe", "--webhook-secret", "   "], "must not be empty"),
        (["initech", "manychat", "--webhook-secret", ""], "must not be empty"),
    ],
)
def test_connect_refuses_bad_input_and_stores_nothing(initech, args, says):
    message = refused("connect_integration", *args)
    assert says in message
    assert "s3cret-value" not in message and "sk_value" not in message
    assert integrations_of(initech) == {}


def test_connect_refuses_an_empty_secret_from_stdin(initech, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n"))
    assert "must not be empty" in refused("connect_integration", "initech", "stripe", "--webhook-secret", "-")
    assert integrations_of(initech) == {}


def test_connect_refusal_leaves_an_existing_integration_alone(world):
    refused("connect_integration", "acme", "manychat", "--set", "api_key=new-key-value", "--set", "bogus=1")
    integration = integrations_of(world.acme)["manychat"]
    assert integration.value("api_key") == "mc-api-key-of-acme-0000"
    assert integration.webhook_secret == SHARED_WEBHOOK_SECRET


# --- add_tenant_user -------------------------------------------------------------------------
def bearer_get(client, key, path="/api/v1/tenant/", **headers):
    return client.get(path, HTTP_AUTHORIZATION=f"Bearer {key}", **headers)


def membership(tenant, user):
    with tenant_context(tenant):
        return Membership.objects.filter(user=user).first()


def test_add_user_creates_user_membership_and_a_working_token(world, client):
    lines = run("add_tenant_user", "acme", "  New.Person@Example.COM ", "--role", "admin", "--password", STRONG_PASSWORD)
    user = get_user_model().objects.get(username="new.person@example.com")
    assert user.email == "new.person@example.com"
    assert user.check_password(STRONG_PASSWORD)
    assert membership(world.acme, user).role == "admin"
    assert membership(world.globex, user) is None
    assert lines[0] == "new.person@example.com is admin of acme; API token (shown once):"

    key = lines[-1]
    assert key.startswith(ApiToken.PREFIX) and len(key) > 40
    token = ApiToken.authenticate(key)
    assert token is not None and token.created_by == user and token.tenant == world.acme
    assert ApiToken.authenticate(key + "x") is None

    response = bearer_get(client, key)
    assert response.status_code == 200, response.content
    assert response.json()["slug"] == "acme"
    assert response.json()["role"] == "admin"
    assert bearer_get(client, key[:-1] + ("A" if key[-1] != "A" else "B")).status_code == 401

    # Stored as a hash: no column of the table holds the key.
    with tenant_context(world.acme), connection.cursor() as cursor:
        cursor.execute("SELECT * FROM tenants_apitoken WHERE created_by_id = %s", [user.pk])
        rows = cursor.fetchall()
    assert len(rows) == 1
    assert all(key not in str(value) for value in rows[0])
    assert hashlib.sha256(key.encode()).hexdigest() in rows[0]


def test_add_user_without_password_gets_an_unusable_one_and_member_role(world):
    lines = run("add_tenant_user", "globex", "quiet@example.com")
    user = get_user_model().objects.get(username="quiet@example.com")
    assert not user.has_usable_password()
    assert membership(world.globex, user).role == "member"
    assert ApiToken.authenticate(lines[-1]).created_by == user


def test_add_user_finds_an_account_by_its_email_and_refuses_ambiguity(world):
    """alice's username is "alice": adding alice@example.com must not make a second account."""
    User = get_user_model()
    run("add_tenant_user", "globex", "Alice@Example.com", "--role", "admin")
    assert User.objects.filter(email__iexact="alice@example.com").count() == 1
    assert membership(world.globex, world.alice).role == "admin"
    User.objects.create_user(username="alice-again", email="alice@example.com")
    assert "two accounts" in refused("add_tenant_user", "acme", "alice@example.com")


def test_add_existing_user_to_a_second_tenant_and_change_role(world, client):
    first = run("add_tenant_user", "acme", "pat@example.net", "--password", STRONG_PASSWORD)[-1]
    second = run("add_tenant_user", "globex", "pat@example.net", "--role", "owner")[-1]
    User = get_user_model()
    assert User.objects.filter(username="pat@example.net").count() == 1
    user = User.objects.get(username="pat@example.net")
    assert user.check_password(STRONG_PASSWORD)  # not reset by the second call
    assert membership(world.acme, user).role == "member"
    assert membership(world.globex, user).role == "owner"
    assert first != second
    assert bearer_get(client, second, HTTP_X_TENANT="globex").json()["slug"] == "globex"
    assert bearer_get(client, first, HTTP_X_TENANT="acme").json()["slug"] == "acme"

    run("add_tenant_user", "acme", "pat@example.net", "--role", "owner")
    with tenant_context(world.acme):
        rows = list(Membership.objects.filter(user=user))
    assert [m.role for m in rows] == ["owner"]
    assert membership(world.globex, user).role == "owner"


@pytest.mark.parametrize(
    "args, says",
    [
        (["nope", "x@example.com"], "no tenant"),
        (["acme", "not-an-email"], "not an e-mail"),
        (["acme", "x@"], "not an e-mail"),
        (["acme", "x y@example.com"], "not an e-mail"),
        (["acme", "x@example.com", "--role", "boss"], "invalid choice"),
        (["acme", "x@example.com", "--password", "password"], "password refused"),
        (["acme", "x@example.com", "--password", "12345678901"], "password refused"),
        (["acme", "x@example.com", "--password", "Sh0rt!"], "password refused"),
        (["acme", "x@example.com", "--password", "x@example.com"], "password refused"),
    ],
)
def test_add_user_refuses_bad_input_and_creates_nothing(world, args, says):
    users_before = get_user_model().objects.count()
    with tenant_context(world.acme):
        tokens_before = ApiToken.objects.count()
    assert says in refused("add_tenant_user", *args)
    assert get_user_model().objects.count() == users_before
    with tenant_context(world.acme):
        assert ApiToken.objects.count() == tokens_before
    with tenant_context(world.acme):
        assert Membership.objects.count() == 2


def test_add_user_refuses_a_bad_role_given_as_a_keyword(world):
    # call_command passes keyword options past argparse's choices.
    refused("add_tenant_user", "acme", "x@example.com", role="boss")
    assert not get_user_model().objects.filter(username="x@example.com").exists()


def test_add_user_weak_password_keeps_the_old_one(world):
    run("add_tenant_user", "acme", "pat@example.net", "--password", STRONG_PASSWORD)
    refused("add_tenant_user", "globex", "pat@example.net", "--password", "password")
    user = get_user_model().objects.get(username="pat@example.net")
    assert user.check_password(STRONG_PASSWORD)
    assert membership(world.globex, user) is None


# --- setup_app_role --------------------------------------------------------------------------
@pytest.mark.skipif(ON_POSTGRES, reason="the SQLite refusal; PostgreSQL is covered below")
@pytest.mark.django_db
def test_setup_app_role_is_refused_on_sqlite():
    assert "needs PostgreSQL" in refused("setup_app_role", "engarde_runtime", "--password", "pw")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args, says",
    [
        (["engarde_runtime"], "--password"),
        (["engarde_runtime", "--password", "pw", "--database", "nowhere"], "unknown database alias"),
    ],
)
def test_setup_app_role_refuses_bad_arguments(args, says):
    assert says in refused("setup_app_role", *args)


def owner_cursor():
    return connections["owner"].cursor()


@pytest.fixture
def test_role():
    """A throwaway role name; whatever the test made of it is dropped again (roles are cluster-wide)."""
    name = f"engarde_test_role_{uuid.uuid4().hex[:10]}"
    yield name
    with owner_cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name])
        if cursor.fetchone():
            cursor.execute(f'DROP OWNED BY "{name}"')
            cursor.execute(f'DROP ROLE "{name}"')


def role_facts(role):
    owner = settings.DATABASES["owner"]["USER"]
    with owner_cursor() as cursor:
        cursor.execute(
            "SELECT rolsuper, rolbypassrls, rolcreatedb, rolcreaterole, rolreplication, rolcanlogin, rolinherit "
            "FROM pg_roles WHERE rolname = %s",
            [role],
        )
        attributes = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM pg_tables WHERE tableowner = %s", [role])
        owned = cursor.fetchone()[0]
        cursor.execute("SELECT pg_has_role(%s, %s, 'MEMBER')", [role, owner])
        member_of_owner = cursor.fetchone()[0]
        cursor.execute(
            "SELECT has_table_privilege(%s, 'django_migrations', 'INSERT'),"
            " has_table_privilege(%s, 'django_migrations', 'UPDATE'),"
            " has_table_privilege(%s, 'django_migrations', 'DELETE'),"
            " has_table_privilege(%s, 'django_migrations', 'SELECT'),"
            " has_table_privilege(%s, 'integrations_tenantintegration', 'INSERT'),"
            " has_table_privilege(%s, 'tenants_tenant', 'UPDATE'),"
            " has_schema_privilege(%s, 'public', 'CREATE')",
            [role] * 7,
        )
        privileges = cursor.fetchone()
    return {"attributes": attributes, "owned": owned, "member_of_owner": member_of_owner, "privileges": privileges}


@requires_postgres
@pytest.mark.django_db(databases=["default", "owner"])
def test_setup_app_role_makes_a_restricted_role_idempotently(test_role):
    lines = run("setup_app_role", test_role, "--password", "first-pw", database="owner")
    assert lines == [f"created role {test_role} on database {connections['owner'].settings_dict['NAME']}"]
    facts = role_facts(test_role)
    # not superuser, not bypassrls, not createdb, not createrole, not replication; can log in
    assert facts["attributes"] == (False, False, False, False, False, True, True)
    assert facts["owned"] == 0
    assert facts["member_of_owner"] is False
    # django_migrations read-only; rows of the app tables read-write; no DDL in public
    assert facts["privileges"] == (False, False, False, True, True, True, False)

    lines = run("setup_app_role", test_role, "--password", "second-pw", database="owner")
    assert lines[0].startswith(f"updated role {test_role} ")
    assert role_facts(test_role) == facts


@requires_postgres
@pytest.mark.django_db(databases=["default", "owner"])
def test_setup_app_role_strips_a_role_that_had_too_much(test_role):
    owner = settings.DATABASES["owner"]["USER"]
    with owner_cursor() as cursor:
        cursor.execute(f'CREATE ROLE "{test_role}" CREATEDB')
        cursor.execute(f'GRANT "{owner}" TO "{test_role}"')
        cursor.execute(f'GRANT INSERT ON django_migrations TO "{test_role}"')
    assert role_facts(test_role)["member_of_owner"] is True
    run("setup_app_role", test_role, "--password", "pw", database="owner")
    facts = role_facts(test_role)
    assert facts["attributes"][:5] == (False, False, False, False, False)
    assert facts["member_of_owner"] is False
    assert facts["privileges"][0] is False


@requires_postgres
@pytest.mark.django_db(databases=["default", "owner"])
@pytest.mark.parametrize("power", ["BYPASSRLS", "CREATEROLE", "SUPERUSER"])
def test_setup_app_role_refuses_to_demote_an_administrator(test_role, power):
    with owner_cursor() as cursor:
        cursor.execute(f'CREATE ROLE "{test_role}" {power}')
    before = role_facts(test_role)["attributes"]
    assert "pick another name" in refused("setup_app_role", test_role, "--password", "pw", database="owner")
    assert role_facts(test_role)["attributes"] == before


@requires_postgres
@pytest.mark.django_db(databases=["default", "owner"])
@pytest.mark.parametrize(
    "role, says",
    [
        ("Engarde", "role name"),
        ("1engarde", "role name"),
        ("engarde-app", "role name"),
        ('engarde"; DROP TABLE tenants_tenant; --', "role name"),
        ("x" * 64, "role name"),
        ("engarde_newline\n", "role name"),
        ("", "role name"),
        ("pg_engarde", "reserved"),
        ("public", "reserved"),
        ("none", "reserved"),
    ],
)
def test_setup_app_role_refuses_bad_role_names(role, says):
    assert says in refused("setup_app_role", "--password", "pw", "--", role, database="owner")
    with owner_cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", [role])
        assert cursor.fetchone()[0] == 0
        cursor.execute("SELECT to_regclass('tenants_tenant') IS NOT NULL")
        assert cursor.fetchone()[0] is True


@requires_postgres
@pytest.mark.django_db(databases=["default", "owner"])
def test_setup_app_role_refuses_the_owner_and_an_empty_password(test_role):
    owner = settings.DATABASES["owner"]["USER"]
    owner_before = role_facts(owner)["attributes"]
    assert "owns the tables" in refused("setup_app_role", owner, "--password", "pw", database="owner")
    assert "must not be empty" in refused("setup_app_role", test_role, "--password", "", database="owner")
    with owner_cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", [test_role])
        assert cursor.fetchone()[0] == 0
    assert role_facts(owner)["attributes"] == owner_before  # the owner is left as it was


@requires_postgres
@pytest.mark.django_db(databases=["default", "owner"])
def test_postgres_stores_the_verifier_we_computed(test_role):
    """libpq's encrypt_password made it: PostgreSQL holds a SCRAM-SHA-256 verifier that re-derives
    from the password (RFC 5802/7677), and never the password itself."""
    import base64
    import hashlib
    import hmac

    run("setup_app_role", test_role, "--password", "pw-known-to-nobody-else", database="owner")
    with owner_cursor() as cursor:
        cursor.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", [test_role])
        (stored,) = cursor.fetchone()
    assert stored.startswith("SCRAM-SHA-256$") and "pw-known" not in stored
    head, keys = stored.split("$", 1)[1].split("$")
    iterations, salt = head.split(":")
    stored_key, server_key = keys.split(":")
    salted = hashlib.pbkdf2_hmac("sha256", b"pw-known-to-nobody-else", base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    assert base64.b64decode(stored_key) == hashlib.sha256(client_key).digest()
    assert base64.b64decode(server_key) == hmac.new(salted, b"Server Key", "sha256").digest()


@pytest.fixture
def operator_role():
    name = f"engarde_test_op_{uuid.uuid4().hex[:10]}"
    yield name
    with owner_cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name])
        if cursor.fetchone():
            cursor.execute(f'DROP OWNED BY "{name}"')
            cursor.execute(f'DROP ROLE "{name}"')


@requires_postgres
@pytest.mark.django_db(databases=["default", "owner"])
def test_setup_app_role_makes_the_operator_role_too_idempotently(test_role, operator_role):
    dbname = connections["owner"].settings_dict["NAME"]
    for verb in ("created", "updated"):
        lines = run(
            "setup_app_role", test_role, "--password", "pw", "--operator", operator_role,
            "--operator-password", "op-pw", database="owner",
        )
        assert lines == [f"{verb} role {test_role} on database {dbname}",
                         f"{verb} operator role {operator_role} on database {dbname}"]
        runtime, operator = role_facts(test_role), role_facts(operator_role)
        assert runtime["attributes"][:2] == (False, False)
        # not superuser, BYPASSRLS (it reads across tenants), no createdb/createrole/replication
        assert operator["attributes"] == (False, True, False, False, False, True, True)
        assert operator["owned"] == 0 and operator["member_of_owner"] is False
        assert operator["privileges"] == runtime["privileges"]
        with owner_cursor() as cursor:
            cursor.execute("SELECT pg_has_role(%s, %s, 'MEMBER')", [test_role, operator_role])
            assert cursor.fetchone()[0] is False, "the runtime role must never be able to become the operator"


@requires_postgres
@pytest.mark.django_db(databases=["default", "owner"])
def test_setup_app_role_refuses_bad_operator_arguments(test_role, operator_role):
    assert "must not be the runtime role" in refused(
        "setup_app_role", test_role, "--password", "pw", "--operator", test_role, "--operator-password", "x",
        database="owner",
    )
    assert "--operator-password" in refused(
        "setup_app_role", test_role, "--password", "pw", "--operator", operator_role, database="owner"
    )
    assert "needs --operator" in refused(
        "setup_app_role", test_role, "--password", "pw", "--operator-password", "x", database="owner"
    )
    assert "operator role name" in refused(
        "setup_app_role", test_role, "--password", "pw", "--operator", "Bad-Name", "--operator-password", "x",
        database="owner",
    )
    with owner_cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_roles WHERE rolname IN (%s, %s)", [test_role, operator_role])
        assert cursor.fetchone()[0] == 0