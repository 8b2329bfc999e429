import logging

from django.core.management.base import CommandError

from engarde.commands import Command as BaseCommand
from tenants.models import Tenant

audit_log = logging.getLogger("engarde.audit")


class Command(BaseCommand):
    help = "Create or update a tenant. Prints the tenant's id as the last line."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="Lowercase letters, digits and hyphens.")
        parser.add_argument("--name", help="Display name (required when creating).")
        parser.add_argument("--owner-name")
        parser.add_argument("--report-email")
        parser.add_argument("--timezone", help="IANA name, e.g. Europe/Paris.")
        state = parser.add_mutually_exclusive_group()
        state.add_argument("--inactive", dest="is_active", action="store_false", default=None)
        state.add_argument("--active", dest="is_active", action="store_true")

    def handle(self, slug, **options):
        tenant = Tenant.objects.filter(slug=slug).first()
        created = tenant is None
        if created:
            if not options["name"]:
                raise CommandError("--name is required to create a tenant")
            tenant = Tenant(slug=slug)
        changes = {
            "name": options["name"],
            "owner_name": options["owner_name"],
            "report_email": options["report_email"],
            "timezone": options["timezone"],
            "is_active": options["is_active"],
        }
        changed = [field for field, value in changes.items() if value is not None and getattr(tenant, field) != value]
        before = {field: getattr(tenant, field) for field in changed}
        for field in changed:
            setattr(tenant, field, changes[field])
        tenant.full_clean()
        tenant.save()
        audit_log.info("tenant %s %s (%s)", tenant.slug, "created" if created else "updated", ", ".join(changed) or "no change")
        if created:
            self.stdout.write(f"created tenant {tenant.slug}")
        elif changed:
            # On an existing slug, say exactly what changed (and from what), so a typo is seen.
            described = "; ".join(f"{field} {before[field]!r} -> {changes[field]!r}" for field in changed)
            self.stdout.write(f"updated tenant {tenant.slug}: {described}")
        else:
            self.stdout.write(f"tenant {tenant.slug} already exists; nothing changed")
        self.stdout.write(str(tenant.pk))
