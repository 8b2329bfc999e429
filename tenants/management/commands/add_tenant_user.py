import logging
import sys

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.core.validators import validate_email
from django.db import transaction

from engarde.commands import Command as BaseCommand
from tenants.accounts import AmbiguousAccount, find_or_create_user
from tenants.context import tenant_context
from tenants.models import ApiToken, Membership, Tenant

audit_log = logging.getLogger("engarde.audit")


class Command(BaseCommand):
    help = "Add a user to a tenant (creating the user if needed). Prints a new API token of that tenant as the last line."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("email")
        parser.add_argument("--role", choices=[r.value for r in Membership.Role], default=Membership.Role.MEMBER)
        parser.add_argument("--password", help="Sets the user's password (otherwise unusable until reset); "
                                               "'-' reads it from the first line of standard input.")

    def handle(self, slug, email, role, password, **options):
        # call_command(role=...) skips argparse's choices: check here too.
        if role not in Membership.Role.values:
            raise CommandError(f"unknown role {role!r}; use one of: {', '.join(Membership.Role.values)}")
        email = email.strip().lower()
        try:
            validate_email(email)
        except ValidationError:
            raise CommandError(f"not an e-mail address: {email!r}") from None
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"no tenant with slug {slug!r}")
        if password == "-":
            # Kept out of the shell history and the process list, like connect_integration's secrets.
            password = sys.stdin.readline().rstrip("\n")
            if not password:
                raise CommandError("--password -: standard input gave no password")
        with transaction.atomic():
            try:
                user, created = find_or_create_user(email)
            except AmbiguousAccount as exc:
                raise CommandError(exc.message) from None
            if password is not None:
                try:
                    validate_password(password, user)
                except ValidationError as exc:
                    raise CommandError("password refused: " + " ".join(exc.messages)) from None
                user.set_password(password)
            user.save()
            with tenant_context(tenant):
                refuse_demoting_last_owner(tenant, user, role)
                membership, _ = Membership.objects.update_or_create(user=user, defaults={"role": role})
            # A token of this tenant only, acting with the role just given.
            _, key = ApiToken.issue(tenant, user, role=membership.role, name=f"add_tenant_user {tenant.slug}")
        audit_log.info("user %s %s as %s of tenant %s", user.pk, "created" if created else "added", role, tenant.slug)
        self.stdout.write(f"{email} is {membership.role} of {tenant.slug}; API token (shown once):")
        self.stdout.write(key)


def refuse_demoting_last_owner(tenant, user, role: str) -> None:
    """The members page keeps the last owner an owner; so does the command."""
    owners = Membership.objects.filter(role=Membership.Role.OWNER)
    if role != Membership.Role.OWNER and owners.filter(user=user).exists() and owners.count() == 1:
        raise CommandError(f"{user.email or user} is the last owner of {tenant.slug}; make another owner first")
