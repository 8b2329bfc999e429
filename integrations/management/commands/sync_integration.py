from datetime import date

from engarde.days import day_option
from django.core.management.base import CommandError

from engarde.commands import Command as BaseCommand
from integrations.models import TenantIntegration
from integrations.registry import PROVIDERS, UnknownProvider, get_provider
from integrations.sync import run_sync
from tenants.context import tenant_context
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Run one integration's pull sync now, in the foreground, and print what it did as the last "
        "line (e.g. 'meta: 12 ads, 12 creatives, 336 insight rows'). Waits for no schedule, but "
        "respects a run already under way (the same claim as the beat's tasks)."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("provider")
        parser.add_argument("--since", type=day_option("--since"), help="Re-pull from this day (YYYY-MM-DD).")

    def handle(self, slug, provider, since, **options):
        provider_obj = self.syncing_provider(provider)
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"no tenant with slug {slug!r}")
        with tenant_context(tenant):
            integration = TenantIntegration.objects.filter(provider=provider_obj.name).first()
        if integration is None or not integration.is_active:
            raise CommandError(f"{provider_obj.label} is not connected for {slug}")
        if integration.sync_disabled_reason:
            raise CommandError(
                f"{provider_obj.label} sync is stopped until the credentials change: {integration.sync_disabled_reason}"
            )
        if integration.missing_fields():
            raise CommandError(f"{provider_obj.label} for {slug} is missing {', '.join(integration.missing_fields())}")
        if missing := provider_obj.sync_missing(integration):
            raise CommandError(f"{provider_obj.label} for {slug} syncs only with {', '.join(missing)} set; "
                               "enter them on the setup page")
        outcome = run_sync(integration.pk, str(tenant.pk), since=since)
        if outcome.status != "synced":
            raise CommandError(outcome.line())
        self.stdout.write(outcome.line())

    def syncing_provider(self, name: str):
        syncing = [n for n, p in PROVIDERS.items() if p.syncs]
        try:
            provider_obj = get_provider(name)
        except UnknownProvider:
            raise CommandError(f"unknown provider {name!r}; these sync: {', '.join(syncing) or 'none'}") from None
        if not provider_obj.syncs:
            raise CommandError(f"{provider_obj.label} does not sync; these do: {', '.join(syncing) or 'none'}")
        return provider_obj
