"""What every provider's tests share: posting a signed fixture, and the security suite.

A provider's ``tests.py`` subclasses ``WebhookSecuritySuite`` and states how its platform signs
(``sign``) and which fixture is a valid, handled event; it inherits every bad-input test: unsigned,
wrongly signed, another tenant's secret, stale, unknown/inactive tenant, unknown or unconnected
source, oversize, malformed, duplicate, grace-period secret, rate limit, both URL forms.

Tasks run in-process here (``conftest`` makes Celery eager) and ``post`` runs the on-commit
callbacks, so a 200 means the handler has run by the time ``post`` returns.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import override_settings
from django.utils import timezone

from contacts.models import Contact, Payment, PendingSignup
from integrations.models import TenantIntegration
from tenants.context import tenant_context
from webhooks.models import WebhookLog

PROVIDERS_DIR = Path(__file__).resolve().parent.parent / "integrations" / "providers"


def fixture_bytes(source: str, name: str) -> bytes:
    return (PROVIDERS_DIR / source / "fixtures" / f"{name}.json").read_bytes()


def fixture_names(source: str) -> list[str]:
    return sorted(p.stem for p in (PROVIDERS_DIR / source / "fixtures").glob("*.json"))


def webhook_path(tenant, source: str, slash: bool = True, legacy: bool = False) -> str:
    path = f"/api/webhooks/{source}/{tenant.pk}" if legacy else f"/api/webhooks/{tenant.pk}/{source}"
    return path + ("/" if slash else "")


def connect(tenant, source: str, secret: str = "", **values) -> TenantIntegration:
    with tenant_context(tenant):
        integration, _ = TenantIntegration.objects.get_or_create(provider=source)
        if values:
            integration.set_values(values)
        if secret:
            integration.set_webhook_secret(secret)
        integration.is_active = True
        integration.save()
        return integration


# Each tenant's own Stripe signing secret in the tests that post Stripe deliveries outside a suite.
STRIPE_SECRETS = {"acme": "whsec_acme_test_0123456789abcdefghij", "globex": "whsec_globex_test_0123456789abcdefgh"}


def connect_stripe(world):
    for tenant in (world.acme, world.globex):
        connect(tenant, "stripe", STRIPE_SECRETS[tenant.slug])
    return world


def post_stripe(client, tenant, body: bytes, signed: bool = True):
    """POST ``body`` to the tenant's Stripe URL, signed with the tenant's secret (or not)."""
    from integrations.providers.stripe.tests import stripe_signature

    headers = {"HTTP_STRIPE_SIGNATURE": stripe_signature(body, STRIPE_SECRETS[tenant.slug])} if signed else {}
    return client.post(webhook_path(tenant, "stripe"), data=body, content_type="application/json", **headers)


def poisoned_body(source: str, body: bytes, poison: str) -> tuple[bytes, set[str]]:
    """``body`` with ``poison`` appended to every string the provider names the event by (its
    type, and each part of its id): the bytes, and which strings were poisoned."""
    from integrations.providers.base import WebhookRequest
    from integrations.registry import PROVIDERS

    provider, payload = PROVIDERS[source], json.loads(body)
    request = WebhookRequest(body=body, headers={}, query={})
    names = {provider.event_type(payload, request), *provider.event_id(payload, request).split(":")} - {"", "-"}
    found: set[str] = set()

    def walk(value):
        if isinstance(value, dict):
            return {key: walk(item) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item) for item in value]
        if isinstance(value, str) and value in names:
            found.add(value)
            return value + poison
        return value

    return json.dumps(walk(payload)).encode(), found


#: A moment in the middle of a rate window, so no test depends on where a real boundary falls.
FROZEN_RATE_CLOCK = 1_800_000_030.0


def freeze_rate_windows(monkeypatch, at: float = FROZEN_RATE_CLOCK) -> None:
    """Fix the clock the webhook rate windows are cut from, and start them empty."""
    from django.core.cache import cache

    from webhooks import ratelimit

    monkeypatch.setattr(ratelimit, "now", lambda: at)
    cache.clear()


def rows(tenant, **filters) -> list[WebhookLog]:
    with tenant_context(tenant):
        return list(WebhookLog.objects.filter(**filters).order_by("pk"))


def counts(tenant) -> dict[str, int]:
    with tenant_context(tenant):
        return {
            "contacts": Contact.objects.count(),
            "payments": Payment.objects.count(),
            "signups": PendingSignup.objects.count(),
            "rows": WebhookLog.objects.count(),
        }


class WebhookSecuritySuite:
    """Inherit and set: ``source``, ``valid_fixture`` (a handled event), ``sign()``, ``secret_a/b``.
    Platforms that sign the body add ``SignedBodyTests``; those that sign a timestamp too add
    ``SignedTimestampTests`` (a token proves the sender, not the bytes, so token platforms have
    neither)."""

    source: str = ""
    valid_fixture: str = ""
    secret_a = "tenant-a-secret-0123456789abcdef"
    secret_b = "tenant-b-secret-fedcba9876543210"
    extra_values: dict = {}

    # --- to override -------------------------------------------------------------------------
    def sign(self, body: bytes, secret: str, timestamp: int | None = None) -> dict:
        """Request parts that authenticate ``body`` with ``secret``: ``{"headers": {...}, "query": {...}}``.
        Default: the tenant's token in ``X-Webhook-Token``, as ``Provider.verify`` expects."""
        return {"headers": {"X-Webhook-Token": secret}}

    def connect_tenant(self, tenant, secret):
        return connect(tenant, self.source, secret, **self.extra_values)

    def body(self) -> bytes:
        return fixture_bytes(self.source, self.valid_fixture)

    # --- plumbing --------------------------------------------------------------------------
    @pytest.fixture
    def hooks(self, world, client, django_capture_on_commit_callbacks, monkeypatch):
        self.world, self.client = world, client
        freeze_rate_windows(monkeypatch)
        self._capture = django_capture_on_commit_callbacks
        self.connect_tenant(world.acme, self.secret_a)
        self.connect_tenant(world.globex, self.secret_b)
        # The world may hold deliveries of this source already; the suite counts from none.
        for tenant in (world.acme, world.globex):
            with tenant_context(tenant):
                WebhookLog.objects.filter(source=self.source).delete()
        return self

    def post(self, tenant, body: bytes, signed: dict | None = None, path: str | None = None,
             content_type: str = "application/json", **extra):
        signed = signed or {}
        url = path or webhook_path(tenant, self.source)
        if signed.get("query"):
            url += ("&" if "?" in url else "?") + "&".join(f"{k}={v}" for k, v in signed["query"].items())
        headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in signed.get("headers", {}).items()}
        with self._capture(execute=True):
            return self.client.post(url, data=body, content_type=content_type, **headers, **extra)

    def deliver(self, name_or_body, tenant=None):
        """Post a fixture (by name) or bytes, signed for the tenant; it must be accepted."""
        tenant = tenant or self.world.acme
        body = name_or_body if isinstance(name_or_body, bytes) else fixture_bytes(self.source, name_or_body)
        response = self.post_signed(tenant, body)
        assert response.status_code == 200, response.content
        return response

    def contact(self, tenant, email=None, **lookup):
        """The tenant's contact with this e-mail (or other lookup), or None."""
        with tenant_context(tenant):
            return Contact.objects.filter(**({"email": email} if email else {}), **lookup).first()

    def post_signed(self, tenant, body: bytes | None = None, secret: str | None = None, **kwargs):
        body = self.body() if body is None else body
        secret = secret or (self.secret_a if tenant == self.world.acme else self.secret_b)
        return self.post(tenant, body, self.sign(body, secret), **kwargs)

    # --- the suite ---------------------------------------------------------------------------
    def test_valid_delivery_is_stored_and_processed(self, hooks):
        response = self.post_signed(self.world.acme)
        assert response.status_code == 200, response.content
        (row,) = rows(self.world.acme, source=self.source)
        assert row.status == WebhookLog.Status.PROCESSED, row.error
        assert bytes(row.body) == self.body()
        assert row.event_id and row.event_type

    def test_unsigned_is_rejected_and_not_processed(self, hooks):
        before = counts(self.world.acme)
        response = self.post(self.world.acme, self.body())
        assert response.status_code == 401
        (row,) = rows(self.world.acme, source=self.source)
        assert row.status == WebhookLog.Status.REJECTED and row.error
        after = counts(self.world.acme)
        assert {k: after[k] for k in ("contacts", "payments", "signups")} == {
            k: before[k] for k in ("contacts", "payments", "signups")
        }

    def test_wrong_signature_is_rejected(self, hooks):
        response = self.post_signed(self.world.acme, secret="not-the-secret-0000000000000000")
        assert response.status_code == 401
        assert [r.status for r in rows(self.world.acme, source=self.source)] == [WebhookLog.Status.REJECTED]

    def test_other_tenants_secret_is_rejected(self, hooks):
        response = self.post_signed(self.world.acme, secret=self.secret_b)
        assert response.status_code == 401
        assert rows(self.world.globex, source=self.source) == []

    def test_the_rejected_status_is_a_setting(self, hooks):
        with override_settings(WEBHOOK_REJECTED_STATUS=200):
            assert self.post(self.world.acme, self.body()).status_code == 200
        assert rows(self.world.acme, source=self.source)[0].status == WebhookLog.Status.REJECTED

    def test_signature_headers_are_stored_redacted(self, hooks):
        from integrations.registry import PROVIDERS
        from webhooks.redaction import is_secret_header

        body = self.body()
        signed = self.sign(body, self.secret_a)
        self.post(self.world.acme, body, signed)
        (row,) = rows(self.world.acme, source=self.source)
        stored = json.dumps(row.headers)
        for name, value in signed.get("headers", {}).items():
            # Secret-bearing headers (signatures, tokens) are redacted; others (a timestamp) may stay.
            if is_secret_header(name, PROVIDERS[self.source].secret_headers):
                assert value not in stored, name
        assert self.secret_a not in stored

    def test_unknown_tenant_unknown_source_and_unconnected_are_404(self, hooks, django_assert_num_queries):
        body = self.body()
        signed = self.sign(body, self.secret_a)
        assert self.post(self.world.acme, body, signed, path=f"/api/webhooks/no-such-tenant/{self.source}/").status_code == 404
        assert self.post(self.world.acme, body, signed, path=f"/api/webhooks/{self.world.acme.pk}/nope/").status_code == 404
        with tenant_context(self.world.globex):
            TenantIntegration.objects.filter(provider=self.source).update(is_active=False)
        assert self.post_signed(self.world.globex).status_code == 404
        with tenant_context(self.world.globex):
            TenantIntegration.objects.filter(provider=self.source).delete()
        assert self.post_signed(self.world.globex).status_code == 404
        assert rows(self.world.acme) == rows(self.world.acme, source="manychat")  # nothing new stored
        assert rows(self.world.globex, source=self.source) == []

    def test_inactive_tenant_is_404(self, hooks):
        self.world.acme.is_active = False
        self.world.acme.save()
        assert self.post_signed(self.world.acme).status_code == 404
        assert rows(self.world.acme, source=self.source) == []

    def test_oversize_is_413_and_stores_nothing(self, hooks):
        with override_settings(WEBHOOK_MAX_BODY_BYTES=64):
            response = self.post_signed(self.world.acme)
        assert response.status_code == 413
        assert rows(self.world.acme, source=self.source) == []

    def test_malformed_but_verified_is_kept_and_marked(self, hooks):
        body = b"{not json"
        response = self.post(self.world.acme, body, self.sign(body, self.secret_a))
        assert response.status_code == 200
        (row,) = rows(self.world.acme, source=self.source)
        assert row.status == WebhookLog.Status.MALFORMED and bytes(row.body) == body

    def test_deeply_nested_json_is_malformed_never_a_500(self, hooks):
        """Past the parser's own limit (a RecursionError) and past ours (64 levels): kept as
        malformed when verified; a refusal (4xx) where the nesting hides what verification reads."""
        for depth in (100_000, 100):
            body = b'{"a": ' * depth + b"1" + b"}" * depth
            response = self.post_signed(self.world.acme, body)
            assert response.status_code in (200, 401), (depth, response.status_code)
        assert {r.status for r in rows(self.world.acme, source=self.source)} <= {
            WebhookLog.Status.MALFORMED, WebhookLog.Status.REJECTED
        }

    @pytest.mark.parametrize("poison", ["\x00", "\ud800"], ids=["nul", "lone-surrogate"])
    def test_unstorable_event_type_or_id_is_kept_as_malformed(self, hooks, poison):
        """A signed delivery naming itself with a NUL or a lone surrogate (the database cannot
        hold either): the row is kept as malformed, never a DataError or UnicodeEncodeError."""
        body, poisoned = poisoned_body(self.source, self.body(), poison)
        assert poisoned, "the fixture carries no readable event type or id to poison"
        response = self.post_signed(self.world.acme, body)
        assert response.status_code == 200, response.content
        (row,) = rows(self.world.acme, source=self.source)
        assert row.status == WebhookLog.Status.MALFORMED and bytes(row.body) == body
        assert "cannot be stored" in row.error

    def test_get_answers_health_without_tenant_details(self, hooks):
        response = self.client.get(webhook_path(self.world.acme, self.source))
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ok" and body["source"] == self.source
        text = response.content.decode()
        assert self.world.acme.name not in text and self.secret_a not in text

    def test_both_url_forms_with_and_without_slash(self, hooks):
        for slash in (True, False):
            response = self.post_signed(self.world.acme, path=webhook_path(self.world.acme, self.source, slash=slash))
            assert response.status_code == 200, (slash, response.status_code)
        response = self.post_signed(self.world.globex, path=webhook_path(self.world.globex, self.source, legacy=True))
        assert response.status_code == 200
        slug_path = f"/api/webhooks/{self.world.globex.slug}/{self.source}"
        assert self.post_signed(self.world.globex, path=slug_path).status_code == 200

    def test_duplicate_is_counted_and_processed_once(self, hooks):
        assert self.post_signed(self.world.acme).status_code == 200
        before = counts(self.world.acme)
        assert self.post_signed(self.world.acme).status_code == 200
        (row,) = rows(self.world.acme, source=self.source)
        assert row.delivery_count == 2 and row.attempts == 1
        assert counts(self.world.acme) == before

    def test_same_event_at_another_tenant_is_processed_there_too(self, hooks):
        assert self.post_signed(self.world.acme).status_code == 200
        assert self.post_signed(self.world.globex).status_code == 200
        (a,) = rows(self.world.acme, source=self.source)
        (b,) = rows(self.world.globex, source=self.source)
        assert a.event_id == b.event_id and a.pk != b.pk
        assert a.status == b.status == WebhookLog.Status.PROCESSED

    def test_previous_secret_works_during_its_grace_period_only(self, hooks):
        with tenant_context(self.world.acme):
            integration = TenantIntegration.objects.get(provider=self.source)
            integration.set_webhook_secret("rotated-secret-aaaaaaaaaaaaaaaaaaaa", grace=timedelta(hours=1))
            integration.save()
        assert self.post_signed(self.world.acme, secret=self.secret_a).status_code == 200
        with tenant_context(self.world.acme):
            TenantIntegration.objects.filter(provider=self.source).update(
                previous_webhook_secret_expires_at=timezone.now() - timedelta(seconds=1)
            )
            WebhookLog.objects.all().delete()
        assert self.post_signed(self.world.acme, secret=self.secret_a).status_code == 401
        assert self.post_signed(self.world.acme, secret="rotated-secret-aaaaaaaaaaaaaaaaaaaa").status_code == 200

    def test_platform_wide_fallback_only_without_a_tenant_secret(self, hooks):
        fallback = "platform-wide-fallback-secret-000"
        with override_settings(WEBHOOK_FALLBACK_SECRETS={self.source: fallback}):
            assert self.post_signed(self.world.acme, secret=fallback).status_code == 401
            with tenant_context(self.world.acme):
                TenantIntegration.objects.filter(provider=self.source).update(webhook_secret="")
            assert self.post_signed(self.world.acme, secret=fallback).status_code == 200
        with tenant_context(self.world.acme):
            WebhookLog.objects.all().delete()
        # Unset (the default): a tenant without a secret accepts nothing.
        assert self.post_signed(self.world.acme, secret=fallback).status_code == 401

    def test_forged_deliveries_do_not_block_genuine_ones(self, hooks, caplog):
        """A flood of forgeries from the platform's own address (any account of a shared platform
        can point a webhook at a victim's URL): the genuine delivery after it is 200 and processed,
        and the flood cost a sample of rows and log lines, the rest only counted."""
        platform = {"REMOTE_ADDR": "203.0.113.9"}
        with override_settings(WEBHOOK_REJECTED_SAMPLE=3, WEBHOOK_RATE_LIMIT=5), caplog.at_level("INFO"):
            for _ in range(10):
                assert self.post(self.world.acme, self.body(), **platform).status_code == 401
            flood_lines = [r.getMessage() for r in caplog.records if r.name != "engarde.audit"]
            assert self.post_signed(self.world.acme, **platform).status_code == 200
        rejected = rows(self.world.acme, source=self.source, status=WebhookLog.Status.REJECTED)
        assert len(rejected) == 3 and rejected[-1].unstored_rejections == 7
        (genuine,) = rows(self.world.acme, source=self.source, status=WebhookLog.Status.PROCESSED)
        assert bytes(genuine.body) == self.body()
        assert len([line for line in flood_lines if "rejected for tenant" in line]) == 3
        assert len(flood_lines) <= 3 + 1, flood_lines  # the sample, and one "the rest are counted"

    def test_a_large_forged_body_is_cut_when_kept(self, hooks):
        from webhooks.ingest import REJECTED_BODY_LIMIT

        body = b'{"junk": "' + b"x" * (REJECTED_BODY_LIMIT * 2) + b'"}'
        assert self.post(self.world.acme, body).status_code == 401
        (row,) = rows(self.world.acme, source=self.source)
        assert len(bytes(row.body)) == REJECTED_BODY_LIMIT and "body cut" in row.error

    def test_many_large_forged_headers_are_cut_when_kept(self, hooks):
        """Ninety headers of 7.9 KB each stored 690 KB a row; a rejected row keeps a few KB."""
        from webhooks.ingest import REJECTED_HEADERS_LIMIT

        junk = {f"HTTP_X_JUNK_{i}": "y" * 7900 for i in range(90)}
        assert self.post(self.world.acme, self.body(), **junk).status_code == 401
        (row,) = rows(self.world.acme, source=self.source)
        assert len(json.dumps(row.headers)) < REJECTED_HEADERS_LIMIT + 1024 and "headers cut" in row.error

    def test_too_many_deliveries_for_one_tenant_get_429(self, hooks):
        with override_settings(WEBHOOK_RATE_LIMIT=2):
            assert self.post_signed(self.world.acme).status_code == 200
            assert self.post_signed(self.world.acme).status_code == 200
            response = self.post_signed(self.world.acme)
            # The clock is fixed half-way through a 60 s window: the rest of it is the wait.
            assert response.status_code == 429 and response["Retry-After"] == "30"
            assert self.post_signed(self.world.globex).status_code == 200  # another tenant's budget
        assert rows(self.world.acme, source=self.source)[0].delivery_count == 2


class SignedBodyTests:
    """For platforms whose signature covers the body: a changed byte must fail."""

    def test_tampered_body_is_rejected(self, hooks):
        body = self.body()
        signed = self.sign(body, self.secret_a)
        response = self.post(self.world.acme, body.replace(b"{", b"{ ", 1), signed)
        assert response.status_code == 401


class SignedTimestampTests:
    """For platforms that sign a timestamp: an old one must fail as stale."""

    def test_stale_signature_is_rejected(self, hooks):
        body = self.body()
        response = self.post(self.world.acme, body, self.sign(body, self.secret_a, timestamp=int(time.time()) - 3600))
        assert response.status_code == 401
        assert "older" in rows(self.world.acme, source=self.source)[0].error

    def test_signature_dated_in_the_future_is_rejected(self, hooks):
        body = self.body()
        ten_years = int(time.time()) + 10 * 365 * 24 * 3600
        for timestamp in (int(time.time()) + 3600, ten_years):
            response = self.post(self.world.acme, body, self.sign(body, self.secret_a, timestamp=timestamp))
            assert response.status_code == 401, timestamp
        assert {r.error for r in rows(self.world.acme, source=self.source)} == {
            "signature timestamp is more than 300 s in the future"
        }


# --- a handler failure a retry might fix ---------------------------------------------------------
#: A Stripe checkout for this customer e-mail fails after its handler has written (``break_checkouts``).
BROKEN_EMAIL = "broken.checkout@example.com"
#: What the row says of it: an exception we did not explain is a sentence, its name in the traceback.
BROKEN_ERROR = "an error on our side stopped processing; the operators can see what happened"


class HandlerBroke(Exception):
    """Stands for a transient failure in the middle of a handler (the database went away):
    validation cannot see it coming, so processing must roll back and retry."""


def break_checkouts(monkeypatch, email: str = BROKEN_EMAIL) -> None:
    """The real Stripe ``checkout.session.completed`` handler, then ``HandlerBroke`` for sessions
    of ``email``: the tests of retries, rollback and replay need a handler that fails after its
    writes, and a well-formed event no longer fails on its own."""
    from integrations.providers.stripe.handlers import HANDLERS

    real = HANDLERS["checkout.session.completed"]

    def breaking(event):
        real(event)
        details = event.data.data.object.customer_details
        if details is not None and details.email == email:
            raise HandlerBroke("the checkout handler broke after writing")

    monkeypatch.setitem(HANDLERS, "checkout.session.completed", breaking)
