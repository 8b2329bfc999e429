"""Re-encrypt every stored credential with the newest key of ``FIELD_ENCRYPTION_KEYS``.

Put the new key first, keep the old ones after it, deploy, run this, then drop the old keys.
A row that no key decrypts stops the command (nothing is rewritten half-way: one transaction).
"""

from django.core.management.base import CommandError

from engarde.commands import Command as BaseCommand
from integrations.crypto import DecryptionError
from integrations.models import TenantIntegration
from tenants.context import operator_context

ENCRYPTED_FIELDS = ["credentials", "webhook_secret", "previous_webhook_secret"]


class Command(BaseCommand):
    help = "Re-encrypt every stored credential with the newest FIELD_ENCRYPTION_KEYS key."

    def handle(self, **options):
        count = 0
        try:
            with operator_context("rotate_encryption_keys"):
                # Batches by primary key, each fetched in full: an .iterator() would hold a
                # server-side cursor that, after a failure, outlives the rolled-back block and
                # breaks the connection's next transaction when it is finally closed.
                last_pk = 0
                while batch := list(TenantIntegration.objects.filter(pk__gt=last_pk).order_by("pk")[:500]):
                    for integration in batch:
                        # Loading decrypts with whichever key matches; saving encrypts with the newest.
                        integration.save(update_fields=ENCRYPTED_FIELDS)
                        count += 1
                    last_pk = batch[-1].pk
        except DecryptionError as exc:
            raise CommandError(f"{exc}; nothing was rewritten") from None
        self.stdout.write(f"re-encrypted {count} integration(s) with the newest key")
