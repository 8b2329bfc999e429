"""Credentials at rest: encrypted columns, key rotation, start-up checks, nothing leaks.

Raw column reads go through ``connection.cursor()`` inside a tenant (or operator) context: on
PostgreSQL the runtime role sees no row of a tenant-owned table otherwise.
"""

import gc
import io
import os
import subprocess
import sys
import traceback
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from conftest import SHARED_WEBHOOK_SECRET
from integrations import crypto
from integrations.crypto import DecryptionError
from integrations.models import TenantIntegration
from tenants.context import operator_context, tenant_context

PROJECT_ROOT = Path(__file__).resolve().parent.parent
FERNET_PREFIX = "gAAAAA"
OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()
STRAY_KEY = Fernet.generate_key().decode()
ACME_API_KEY = "mc-api-key-of-acme-0000"
GLOBEX_API_KEY = "mc-api-key-of-globex-0000"

COLUMNS = "credentials, webhook_secret, previous_webhook_secret"


def raw_columns(pk) -> tuple[str, str, str]:
    """The stored text of the encrypted columns of one row (call inside a tenant/operator context)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {COLUMNS} FROM integrations_tenantintegration WHERE id = %s", [pk])
        row = cursor.fetchone()
    assert row is not None, "row not visible: wrong tenant context?"
    return row


def all_raw_rows() -> list[tuple]:
    with operator_context("test: read raw ciphertext"):
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id, {COLUMNS} FROM integrations_tenantintegration ORDER BY id")
            return cursor.fetchall()


def rotate(**kwargs) -> str:
    out = io.StringIO()
    call_command("rotate_encryption_keys", stdout=out, stderr=io.StringIO(), **kwargs)
    return out.getvalue()


def make_stripe(tenant, secret_key="sk_live_rotate_me_123", current="whsec_current_rot_456",
                previous="whsec_previous_rot_789") -> TenantIntegration:
    with tenant_context(tenant):
        integration = TenantIntegration(provider="stripe")
        integration.set_values({"secret_key": secret_key})
        integration.set_webhook_secret(previous)
        integration.set_webhook_secret(current, grace=timedelta(hours=1))
        integration.save()
    return integration


# --- ciphertext in the database --------------------------------------------------------------
def test_credentials_and_webhook_secrets_are_ciphertext_in_the_database(world):
    integration = make_stripe(world.acme)
    with tenant_context(world.acme):
        credentials, secret, previous = raw_columns(integration.pk)
        manychat = TenantIntegration.objects.get(provider="manychat")
        mc_credentials, mc_secret, mc_previous = raw_columns(manychat.pk)
    for stored, plaintext in [
        (credentials, "sk_live_rotate_me_123"),
        (secret, "whsec_current_rot_456"),
        (previous, "whsec_previous_rot_789"),
        (mc_credentials, ACME_API_KEY),
        (mc_secret, SHARED_WEBHOOK_SECRET),
    ]:
        assert stored.startswith(FERNET_PREFIX), stored
        assert plaintext not in stored
    assert "secret_key" not in credentials  # the JSON keys are encrypted too
    assert mc_previous == ""  # an empty secret stays empty, not an encrypted ""
    # Fernet is randomised: the same secret in two tenants gives different ciphertext.
    with tenant_context(world.globex):
        globex_secret = raw_columns(TenantIntegration.objects.get(provider="manychat").pk)[1]
    assert globex_secret != mc_secret
    # ... and the values read back.
    with tenant_context(world.acme):
        loaded = TenantIntegration.objects.get(pk=integration.pk)
    assert loaded.credentials == {"secret_key": "sk_live_rotate_me_123"}
    assert (loaded.webhook_secret, loaded.previous_webhook_secret) == ("whsec_current_rot_456", "whsec_previous_rot_789")


def test_dumpdata_style_serialisation_never_writes_plaintext(world):
    with tenant_context(world.acme):
        integration = TenantIntegration.objects.get(provider="manychat")
    field = TenantIntegration._meta.get_field("credentials")
    assert field.value_to_string(integration) == "<encrypted>"


# --- values no key decrypts ------------------------------------------------------------------
def test_value_under_a_key_no_longer_configured_raises_without_leaking(world):
    plaintext = "xkeysib-under-a-retired-key-31337"
    with override_settings(FIELD_ENCRYPTION_KEYS=[STRAY_KEY]):
        with tenant_context(world.acme):
            integration = TenantIntegration(provider="brevo")
            integration.set_values({"api_key": plaintext, "list_id": "7"})
            integration.save()
            stored = raw_columns(integration.pk)[0]
            # readable while its key is configured
            assert TenantIntegration.objects.get(pk=integration.pk).value("api_key") == plaintext
    with tenant_context(world.acme):
        with pytest.raises(DecryptionError) as info:
            TenantIntegration.objects.get(pk=integration.pk)
        # other rows of the tenant still load on their own
        assert TenantIntegration.objects.get(provider="manychat").value("api_key") == ACME_API_KEY
    shown = str(info.value) + repr(info.value) + "".join(traceback.format_exception(info.value))
    assert "FIELD_ENCRYPTION_KEYS" in str(info.value)
    assert plaintext not in shown
    assert stored not in shown and stored[:40] not in shown
    assert STRAY_KEY not in shown


def test_plaintext_in_an_encrypted_column_is_an_error_not_a_value(world):
    with tenant_context(world.acme):
        pk = TenantIntegration.objects.get(provider="manychat").pk
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE integrations_tenantintegration SET webhook_secret = %s WHERE id = %s",
                ["plain-text-secret-slipped-in", pk],
            )
        with pytest.raises(DecryptionError) as info:
            TenantIntegration.objects.get(pk=pk)
    assert "plain-text-secret-slipped-in" not in str(info.value)


# --- key rotation ----------------------------------------------------------------------------
def test_rotation_moves_every_value_to_the_newest_key(world):
    original_keys = list(settings.FIELD_ENCRYPTION_KEYS)
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD_KEY]):
        integration = make_stripe(world.acme)
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY]):
        with tenant_context(world.acme), pytest.raises(DecryptionError):
            TenantIntegration.objects.get(pk=integration.pk)  # control: the new key alone cannot read it yet

    # The world's rows are under the run's own key: keep it after the old one.
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY, *original_keys]):
        before = all_raw_rows()
        assert rotate().strip() == "re-encrypted 3 integration(s) with the newest key"
        after = all_raw_rows()
    new = Fernet(NEW_KEY.encode())
    assert [row[0] for row in after] == [row[0] for row in before]
    for old_row, new_row in zip(before, after, strict=True):
        for old_value, new_value in zip(old_row[1:], new_row[1:], strict=True):
            if old_value:
                assert new_value != old_value and new_value.startswith(FERNET_PREFIX)
                new.decrypt(new_value.encode())  # under the newest key now
            else:
                assert new_value == ""

    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY]):
        with tenant_context(world.acme):
            stripe = TenantIntegration.objects.get(pk=integration.pk)
            manychat = TenantIntegration.objects.get(provider="manychat")
        with tenant_context(world.globex):
            globex = TenantIntegration.objects.get(provider="manychat")
    assert stripe.credentials == {"secret_key": "sk_live_rotate_me_123"}
    assert stripe.webhook_secret == "whsec_current_rot_456"
    assert stripe.previous_webhook_secret == "whsec_previous_rot_789"
    assert stripe.valid_webhook_secrets() == ["whsec_current_rot_456", "whsec_previous_rot_789"]
    assert manychat.credentials == {"api_key": ACME_API_KEY}
    assert manychat.webhook_secret == SHARED_WEBHOOK_SECRET
    assert globex.credentials == {"api_key": GLOBEX_API_KEY}
    assert globex.webhook_secret == SHARED_WEBHOOK_SECRET

    # The old key really is out of the picture.
    old = Fernet(OLD_KEY.encode())
    for row in after:
        for value in row[1:]:
            if value:
                with pytest.raises(InvalidToken):
                    old.decrypt(value.encode())


def test_rotation_with_an_undecryptable_row_refuses_and_rewrites_nothing(world):
    with override_settings(FIELD_ENCRYPTION_KEYS=[STRAY_KEY]):
        with tenant_context(world.globex):
            stray = TenantIntegration(provider="brevo")
            stray.set_values({"api_key": "xkeysib-stray-secret-555"})
            stray.save()
    before = all_raw_rows()
    assert before[-1][0] == stray.pk  # the bad row comes last: the good ones were rewritten first
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY, *settings.FIELD_ENCRYPTION_KEYS]):
        with pytest.raises(CommandError) as info:
            rotate()
    message = str(info.value)
    del info
    # Whatever the failed run left behind (a server-side cursor of the rolled-back block, say)
    # must not break this connection's next statements once it is collected.
    gc.collect()
    assert "nothing was rewritten" in message and "\n" not in message
    assert "xkeysib-stray-secret-555" not in message and before[-1][1] not in message
    assert all_raw_rows() == before
    # and the configured key still reads the good rows
    with tenant_context(world.acme):
        assert TenantIntegration.objects.get(provider="manychat").value("api_key") == ACME_API_KEY


def test_rotation_covers_more_than_one_batch(world):
    from integrations.registry import PROVIDERS
    from tenants.models import Tenant

    tenants = Tenant.objects.bulk_create(Tenant(slug=f"bulk-{n}", name=f"Bulk {n}") for n in range(46))
    with operator_context("test: bulk integrations"):
        TenantIntegration.objects.bulk_create(
            TenantIntegration(tenant=tenant, provider=name, credentials={"k": f"{tenant.slug}-{name}"})
            for tenant in tenants for name in PROVIDERS
        )
    total = 2 + 46 * len(PROVIDERS)
    assert total > 500
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY, *settings.FIELD_ENCRYPTION_KEYS]):
        assert rotate().strip() == f"re-encrypted {total} integration(s) with the newest key"
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY]):
        with operator_context("test: read back"):
            loaded = list(TenantIntegration.objects.select_related("tenant").order_by("pk"))
    assert len(loaded) == total
    bulk = [i for i in loaded if i.tenant.slug.startswith("bulk-")]
    assert all(i.credentials == {"k": f"{i.tenant.slug}-{i.provider}"} for i in bulk) and len(bulk) == total - 2


def test_rotation_with_nothing_stored(db):
    assert rotate().strip() == "re-encrypted 0 integration(s) with the newest key"


# --- bad key configuration -------------------------------------------------------------------
@pytest.mark.parametrize(
    "keys",
    [["not-a-fernet-key"], [Fernet.generate_key().decode()[:-4]], [NEW_KEY, "second-one-is-bad"], []],
    ids=["garbage", "truncated", "one-bad-of-two", "empty"],
)
def test_invalid_encryption_keys_are_improperly_configured(world, keys):
    with override_settings(FIELD_ENCRYPTION_KEYS=keys):
        with pytest.raises(ImproperlyConfigured) as info:
            crypto.encrypt("anything")
        for key in keys:
            assert key not in str(info.value)
        with tenant_context(world.acme), pytest.raises(ImproperlyConfigured):
            TenantIntegration.objects.get(provider="manychat")
    # the cache is cleared again afterwards: the configured keys work
    assert crypto.decrypt(crypto.encrypt("round trip")) == "round trip"


# --- start-up checks -------------------------------------------------------------------------
def startup_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "FIELD_ENCRYPTION_KEYS")}
    env.update(DJANGO_SETTINGS_MODULE="engarde.settings", DEBUG="false", **extra)
    return env


def run_python(args, env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )


def test_settings_refuse_to_start_without_keys_when_debug_is_off():
    result = run_python(["-c", "import django; django.setup()"], startup_env())
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY and FIELD_ENCRYPTION_KEYS must be set when DEBUG is off" in result.stderr

    result = run_python(["-c", "import django; django.setup()"], startup_env(SECRET_KEY="x" * 50))
    assert result.returncode != 0
    message = result.stderr.strip().splitlines()[-1]
    assert "FIELD_ENCRYPTION_KEYS must be set" in message and "SECRET_KEY" not in message


def test_manage_py_without_keys_says_configuration_error_in_one_line():
    result = run_python(["manage.py", "check"], startup_env())
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("configuration error: ")
    assert "SECRET_KEY" in lines[0] and "FIELD_ENCRYPTION_KEYS" in lines[0]


# --- secrets never leak ----------------------------------------------------------------------
def test_api_lists_integrations_without_any_secret(world, client):
    client.force_login(world.alice)
    with tenant_context(world.acme):
        integration = TenantIntegration.objects.get(provider="manychat")
        stored = raw_columns(integration.pk)
    for path in ("/api/v1/integrations/", f"/api/v1/integrations/{integration.pk}/"):
        response = client.get(path)
        assert response.status_code == 200, response.content
        body = response.content.decode()
        assert "configured" in body
        for secret in (ACME_API_KEY, GLOBEX_API_KEY, SHARED_WEBHOOK_SECRET, *[s for s in stored if s]):
            assert secret not in body
    listed = client.get("/api/v1/integrations/").json()["results"]
    assert [(i["provider"], i["configured"]) for i in listed] == [("manychat", True)]
    assert "credentials" not in listed[0] and "webhook_secret" not in listed[0]


def test_repr_and_str_hold_no_secret(world):
    with tenant_context(world.acme):
        integration = TenantIntegration.objects.get(provider="manychat")
    shown = repr(integration) + str(integration)
    assert "ManyChat" in shown
    for secret in (ACME_API_KEY, SHARED_WEBHOOK_SECRET):
        assert secret not in shown


def longest_common_run(a: str, b: str) -> int:
    return max((n for i in range(len(a)) for n in range(1, len(a) - i + 1) if a[i:i + n] in b), default=0)


def test_masked_shows_at_most_the_last_four_characters(world):
    with tenant_context(world.acme):
        integration = TenantIntegration.objects.get(provider="manychat")
    masked_key = integration.masked("api_key")
    masked_secret = integration.masked("webhook_secret")
    assert masked_key.startswith("configured") and masked_key.endswith(ACME_API_KEY[-4:])
    assert masked_secret.startswith("configured") and masked_secret.endswith(SHARED_WEBHOOK_SECRET[-4:])
    assert longest_common_run(ACME_API_KEY, masked_key) <= 4
    assert longest_common_run(SHARED_WEBHOOK_SECRET, masked_secret) <= 4
    # a short secret shows nothing of itself; an unset one shows nothing at all
    integration.set_values({"api_key": "short-key"})
    assert integration.masked("api_key") == "configured"
    assert TenantIntegration(provider="manychat").masked("api_key") == ""
    assert TenantIntegration(provider="manychat").masked("webhook_secret") == ""


# --- webhook secret grace period -------------------------------------------------------------
def test_webhook_secret_grace_keeps_the_old_one_until_it_expires(world):
    with tenant_context(world.acme):
        integration = TenantIntegration.objects.get(provider="manychat")
        integration.set_webhook_secret("brand-new-secret-0001", grace=timedelta(hours=1))
        integration.save()
        loaded = TenantIntegration.objects.get(pk=integration.pk)
    now = timezone.now()
    assert loaded.valid_webhook_secrets() == ["brand-new-secret-0001", SHARED_WEBHOOK_SECRET]
    assert loaded.valid_webhook_secrets(now=now + timedelta(minutes=59)) == ["brand-new-secret-0001", SHARED_WEBHOOK_SECRET]
    assert loaded.valid_webhook_secrets(now=now + timedelta(hours=1, minutes=1)) == ["brand-new-secret-0001"]
    assert loaded.valid_webhook_secrets(now=now + timedelta(days=30)) == ["brand-new-secret-0001"]


def test_webhook_secret_without_grace_drops_the_old_one_at_once(world):
    with tenant_context(world.acme):
        integration = TenantIntegration.objects.get(provider="manychat")
        integration.set_webhook_secret("second-secret-0002", grace=timedelta(hours=1))
        integration.set_webhook_secret("third-secret-0003")  # no grace: both earlier ones are gone
        integration.save()
        loaded = TenantIntegration.objects.get(pk=integration.pk)
    assert loaded.valid_webhook_secrets() == ["third-secret-0003"]
    assert loaded.previous_webhook_secret == ""
    assert loaded.previous_webhook_secret_expires_at is None


def test_grace_with_no_previous_secret_adds_nothing():
    integration = TenantIntegration(provider="stripe")
    integration.set_webhook_secret("first-ever-secret", grace=timedelta(hours=1))
    assert integration.valid_webhook_secrets() == ["first-ever-secret"]
    assert integration.previous_webhook_secret_expires_at is None
