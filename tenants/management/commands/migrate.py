"""``migrate`` runs as the tables' owner when ``MIGRATE_DATABASE_URL`` is set.

The runtime role (``DATABASE_URL``) may read and write rows but owns no table and may not change
the schema; the "owner" alias does that. ``--database`` still picks any alias explicitly.
"""

from django.core.management.commands.migrate import Command as MigrateCommand
from django.db import DEFAULT_DB_ALIAS, connections

OWNER_ALIAS = "owner"


class Command(MigrateCommand):
    def handle(self, *args, **options):
        if options["database"] == DEFAULT_DB_ALIAS and OWNER_ALIAS in connections.settings:
            options["database"] = OWNER_ALIAS
        return super().handle(*args, **options)
