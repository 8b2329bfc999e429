"""Inside ``operator_context`` every query goes to the operator alias; outside it, to default.

The router decides from the scope alone (never from where an instance was loaded), so a row read
by an operator and saved later for a tenant goes through the runtime role, and nothing outside an
operator context ever uses the operator's connection.
"""

from django.db import DEFAULT_DB_ALIAS

from tenants.context import is_operator, operator_alias

OPERATOR_ALIAS = "operator"


class OperatorRouter:
    def db_for_read(self, model, **hints):
        return operator_alias() if is_operator() else DEFAULT_DB_ALIAS

    db_for_write = db_for_read

    def allow_relation(self, obj1, obj2, **hints):
        return True  # one database, reached as two roles

    def allow_migrate(self, db, app_label, **hints):
        # The schema is the owner's; the operator role may not change it anyway.
        return False if db == OPERATOR_ALIAS else None
