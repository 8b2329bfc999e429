from datetime import date

from engarde.days import day_option
from django.core.management.base import CommandError
from django.utils import timezone

from engarde.commands import Command as BaseCommand
from reports.sending import prepare, send
from reports.weekly import due_week, week_start_of
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Send the weekly reports that are due now (after Monday 07:00 in each tenant's time zone), or one "
        "tenant's report for the week containing --week-of. A report already sent is not sent again "
        "unless --force. --dry-run prints the text part and sends nothing. Last line: how many were sent."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", metavar="SLUG")
        parser.add_argument("--week-of", type=day_option("--week-of"), metavar="YYYY-MM-DD")
        parser.add_argument("--force", action="store_true", help="Send again even if already sent.")
        parser.add_argument("--dry-run", action="store_true", help="Print the text part; send nothing.")

    def handle(self, tenant, week_of, force, dry_run, **options):
        tenants = self.tenants(tenant)
        now, sent = timezone.now(), 0
        for one in tenants:
            week_start = week_start_of(week_of) if week_of else due_week(one, now)
            if dry_run:
                self.stdout.write(prepare(one, week_start).text)
                continue
            outcome = send(one, week_start, force=force, now=now)
            self.stdout.write(f"{one.slug} week of {week_start}: {outcome}")
            sent += outcome == "sent"
        self.stdout.write(f"{sent} sent" + (f" (dry run: {len(tenants)} shown)" if dry_run else ""))

    def tenants(self, slug: str | None) -> list[Tenant]:
        if slug is None:
            return list(Tenant.objects.filter(is_active=True).exclude(report_email="").order_by("slug"))
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"no tenant with slug {slug!r}")
        if not tenant.report_email:
            raise CommandError(f"{slug} has no report_email; set one (onboard_tenant --report-email) first")
        return [tenant]
