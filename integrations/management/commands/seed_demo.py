"""The demo world of ``make run``: one tenant, an operator login and a tenant owner. Idempotent.

The passwords are printed, and only ever made for a DEBUG run: the command refuses otherwise.
The addresses printed are where the server runs: ``--base-url`` (``make run`` passes its HOST and
PORT), else ``PUBLIC_BASE_URL``.
"""

import secrets
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from engarde.commands import Command as BaseCommand
from integrations.models import TenantIntegration
from tenants.context import tenant_context
from tenants.models import Membership, Tenant


class Command(BaseCommand):
    help = "Create the demo tenant and logins for local development (DEBUG only)."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default=None,
                            help="Where the server runs, e.g. http://127.0.0.1:8000 (default: PUBLIC_BASE_URL).")

    def handle(self, base_url=None, **options):
        if not settings.DEBUG:
            raise CommandError("seed_demo makes known logins; it runs only with DEBUG on")
        base_url = (base_url or settings.PUBLIC_BASE_URL).rstrip("/")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or any(ord(ch) <= 32 for ch in base_url):
            raise CommandError(f"--base-url must be an http(s) URL such as http://127.0.0.1:8000, not {base_url[:100]!r}")
        tenant, _ = Tenant.objects.get_or_create(
            slug="demo", defaults={"name": "Demo Studio", "owner_name": "Demo Owner", "report_email": "owner@demo.test"}
        )
        User = get_user_model()
        lines = []
        for username, staff, role in (("operator", True, None), ("owner@demo.test", False, Membership.Role.OWNER)):
            user, created = User.objects.get_or_create(
                username=username, defaults={"email": username if "@" in username else "operator@demo.test"}
            )
            user.is_staff = user.is_superuser = staff
            password = secrets.token_urlsafe(9)
            user.set_password(password)
            user.save()
            if role:
                with tenant_context(tenant):
                    Membership.objects.get_or_create(user=user, defaults={"role": role})
            lines.append(f"  {'operator' if staff else 'tenant owner'}: {username} / {password}")
        with tenant_context(tenant):
            integration, created = TenantIntegration.objects.get_or_create(provider="poshvip")
            if created:
                integration.set_webhook_secret(TenantIntegration.generate_token())
                integration.save()
        self.stdout.write(f"Demo tenant '{tenant.slug}' ({tenant.pk}). Logins (new passwords each run):")
        for line in lines:
            self.stdout.write(line)
        self.stdout.write(f"  tenant pages: {base_url}/accounts/login/ · admin: {base_url}/admin/")
