import logging
import sys

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from engarde.commands import Command as BaseCommand
from integrations.models import TenantIntegration
from integrations.registry import PROVIDERS, UnknownProvider, get_provider
from tenants.context import tenant_context
from tenants.models import Tenant

audit_log = logging.getLogger("engarde.audit")


def parse_assignment(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        # The argument itself is not echoed: it may be a secret pasted without its key.
        raise CommandError("--set takes KEY=VALUE (an argument had no key or no '=')")
    return key.strip(), value


class Command(BaseCommand):
    help = (
        "Connect (or update) a platform for a tenant and activate it. Prints the webhook URL as the "
        "last line when the platform sends webhooks. A value of '-' is read from standard input, "
        "so secrets need not appear in the shell history."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("provider", help=f"One of: {', '.join(PROVIDERS)}")
        parser.add_argument("--webhook-secret", help="The platform's signing secret (generated for token platforms).")
        parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="values")

    @staticmethod
    def checked(provider, assignments: dict, webhook_secret):
        """Each value checked by its ``CredentialField`` (the setup page's and the admin's checks)."""
        cleaned, name = {}, ""
        try:
            for name, value in assignments.items():
                cleaned[name] = provider.field(name).clean(value)
            if webhook_secret is not None:
                name = "--webhook-secret"
                webhook_secret = provider.clean_webhook_secret(webhook_secret)
        except ValidationError as exc:
            raise CommandError(f"{name}: {' '.join(exc.messages)}") from None
        return cleaned, webhook_secret

    @staticmethod
    def stdin_line(option: str) -> str:
        line = sys.stdin.readline()
        if not line:
            raise CommandError(f"{option} is '-' but standard input has no line left for it")
        return line.rstrip("\r\n")

    def handle(self, slug, provider, webhook_secret, values, **options):
        try:
            provider_obj = get_provider(provider)
        except UnknownProvider:
            raise CommandError(f"unknown provider {provider!r}; known: {', '.join(PROVIDERS)}") from None
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"no tenant with slug {slug!r}")
        assignments = dict(parse_assignment(v) for v in values)
        known = {f.name for f in provider_obj.credential_fields}
        unknown = sorted(set(assignments) - known)
        if unknown:
            raise CommandError(
                f"{provider} has no field {', '.join(unknown)}; its fields: {', '.join(sorted(known)) or 'none'}"
            )
        if webhook_secret is not None and not provider_obj.receives_webhooks:
            raise CommandError(f"{provider} sends no webhooks; --webhook-secret does not apply")
        # Each "-" reads its own line of standard input: the webhook secret's first, then the
        # --set values in the order given (README: "'-' reads stdin, line by line"). A missing line
        # is refused, never taken as another field's value.
        if webhook_secret == "-":
            webhook_secret = self.stdin_line("--webhook-secret")
        for key, value in assignments.items():
            if value == "-":
                assignments[key] = self.stdin_line(f"--set {key}")
        if webhook_secret is not None and not webhook_secret.strip():
            raise CommandError("--webhook-secret must not be empty")
        assignments, webhook_secret = self.checked(provider_obj, assignments, webhook_secret)

        generated = None
        with tenant_context(tenant):
            integration, created = TenantIntegration.objects.get_or_create(provider=provider)
            changed = integration.set_values(assignments, by_operator=True)  # an operator's command
            if webhook_secret is not None:
                integration.set_webhook_secret(webhook_secret.strip())
                changed.append("webhook_secret")
            elif provider_obj.generates_webhook_secret and not integration.webhook_secret:
                generated = TenantIntegration.generate_token()
                integration.set_webhook_secret(generated)
                changed.append("webhook_secret")
            missing = integration.missing_fields()
            if missing:
                # Raised inside the tenant context's transaction: the row made above is rolled back.
                raise CommandError(
                    f"{provider_obj.label} is not connected: {', '.join(missing)} missing "
                    "(--set NAME=VALUE, --webhook-secret); nothing was saved"
                )
            integration.is_active = True
            integration.save()
        # Field names only: values, secret or not, never reach the log.
        audit_log.info(
            "integration %s of tenant %s %s (%s)",
            provider, tenant.slug, "created" if created else "updated", ", ".join(changed) or "no change",
        )
        self.stdout.write(f"{provider_obj.label} {'connected' if created else 'updated'} for {tenant.slug}")
        if generated:
            self.stdout.write(f"webhook token (shown once, keep it in the platform's settings): {generated}")
        if provider_obj.receives_webhooks:
            self.stdout.write(integration.webhook_url)
