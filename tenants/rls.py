"""The database wall: PostgreSQL row-level security for tenant-owned tables.

Each migration that creates a tenant-owned model adds ``EnableRowLevelSecurity("model")``. The
policy admits a row when its ``tenant_id`` is the transaction's ``app.tenant_id`` (set by
``tenant_context``), and nothing else: an unset setting reads as '' and matches nothing, so a
connection with no tenant sees no rows and can insert none. ``FORCE`` applies the policy to the
tables' owner too; only superusers and BYPASSRLS roles skip it. The runtime role is neither; the
operator role (``setup_app_role --operator``, the ``operator`` alias) is BYPASSRLS, so there is no
setting the runtime role could flip to see across tenants. On SQLite the operation does nothing:
there the ORM wall stands alone.
"""

from django.db import migrations

POLICY_NAME = "tenant_isolation"
# A second, read-only policy for an extra condition (a user's own memberships): permissive
# policies are OR-ed per command, so it widens SELECT and nothing else.
READ_POLICY_NAME = "own_rows_read"

TENANT_MATCH = "(tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)"
# Until issue 7.16 the policy also admitted any session that set app.operator = 'on' itself.
LEGACY_OPERATOR_MATCH = (
    "(tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid "
    "OR current_setting('app.operator', true) = 'on')"
)


class EnableRowLevelSecurity(migrations.operations.base.Operation):
    reversible = True
    reduces_to_sql = True

    def __init__(self, model_name: str, extra_read_condition: str = ""):
        self.model_name = model_name
        # An extra USING condition for reads only (memberships: a user sees their own).
        self.extra_read_condition = extra_read_condition

    def state_forwards(self, app_label, state):
        pass

    def _table(self, app_label, state):
        return state.apps.get_model(app_label, self.model_name)._meta.db_table

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return
        table = schema_editor.quote_name(self._table(app_label, to_state))
        schema_editor.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        schema_editor.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        schema_editor.execute(f"DROP POLICY IF EXISTS {POLICY_NAME} ON {table}")
        schema_editor.execute(f"DROP POLICY IF EXISTS {READ_POLICY_NAME} ON {table}")
        schema_editor.execute(
            f"CREATE POLICY {POLICY_NAME} ON {table} USING {TENANT_MATCH} WITH CHECK {TENANT_MATCH}"
        )
        if self.extra_read_condition:
            schema_editor.execute(
                f"CREATE POLICY {READ_POLICY_NAME} ON {table} FOR SELECT USING ({self.extra_read_condition})"
            )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return
        table = schema_editor.quote_name(self._table(app_label, from_state))
        schema_editor.execute(f"DROP POLICY IF EXISTS {POLICY_NAME} ON {table}")
        schema_editor.execute(f"DROP POLICY IF EXISTS {READ_POLICY_NAME} ON {table}")
        schema_editor.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        schema_editor.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")

    def describe(self):
        return f"Enable row-level security on {self.model_name}"

    @property
    def migration_name_fragment(self):
        return f"rls_{self.model_name.lower()}"

    def deconstruct(self):
        kwargs = {"model_name": self.model_name}
        if self.extra_read_condition:
            kwargs["extra_read_condition"] = self.extra_read_condition
        return (self.__class__.__qualname__, [], kwargs)


MEMBERSHIP_OWN_ROWS = "user_id = NULLIF(current_setting('app.user_id', true), '')::bigint"
# API tokens: the one row whose hash the authenticator presents (``presented_token``), before the
# tenant is known. A hash matches at most one row (unique), and only a holder of the token knows it.
TOKEN_OWN_HASH = "key_hash = NULLIF(current_setting('app.token_hash', true), '')"


class AddTenantForeignKey(migrations.operations.base.Operation):
    """A composite foreign key ``(tenant_id, <field>_id) → <related> (tenant_id, id)``: a row can
    only point at a row of its own tenant, whatever the ORM did (PostgreSQL checks a plain foreign
    key past row-level security, so ``contact_id=<another tenant's contact>`` would pass it).

    Each migration that adds a relation between tenant-owned models adds one for it;
    ``tests/test_composite_keys.py`` checks the catalogue and the migrations. The referenced
    table gets the unique index ``(tenant_id, id)`` the key needs. Deferred to commit, like
    Django's own keys (Django deletes and nulls related rows itself, so no ON DELETE action).
    A NULL relation is not checked (MATCH SIMPLE). On SQLite the operation does nothing: there
    ``TenantOwned.stamp_tenant`` refuses such a row.
    """

    reversible = True
    reduces_to_sql = True

    def __init__(self, model_name: str, field_name: str):
        self.model_name = model_name
        self.field_name = field_name

    def state_forwards(self, app_label, state):
        pass

    def _names(self, app_label, state):
        model = state.apps.get_model(app_label, self.model_name)
        field = model._meta.get_field(self.field_name)
        related = field.related_model._meta
        return {
            "table": model._meta.db_table,
            "column": field.column,
            "related_table": related.db_table,
            "related_column": field.target_field.column,
            "constraint": f"{model._meta.db_table}_{field.column}_tenant_fk"[:63],
            "unique_index": f"{related.db_table}_tenant_id_id_uniq"[:63],
        }

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return
        n = {key: schema_editor.quote_name(value) for key, value in self._names(app_label, to_state).items()}
        schema_editor.execute(
            f"CREATE UNIQUE INDEX IF NOT EXISTS {n['unique_index']} ON {n['related_table']} "
            f"(tenant_id, {n['related_column']})"
        )
        schema_editor.execute(f"ALTER TABLE {n['table']} DROP CONSTRAINT IF EXISTS {n['constraint']}")
        schema_editor.execute(
            f"ALTER TABLE {n['table']} ADD CONSTRAINT {n['constraint']} FOREIGN KEY (tenant_id, {n['column']}) "
            f"REFERENCES {n['related_table']} (tenant_id, {n['related_column']}) DEFERRABLE INITIALLY DEFERRED"
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return
        names = self._names(app_label, from_state)
        n = {key: schema_editor.quote_name(value) for key, value in names.items()}
        schema_editor.execute(f"ALTER TABLE {n['table']} DROP CONSTRAINT IF EXISTS {n['constraint']}")
        # The unique index stays while another composite key still needs it.
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND confrelid = %s::regclass "
                "AND array_length(confkey, 1) = 2",
                [names["related_table"]],
            )
            (still_used,) = cursor.fetchone()
        if not still_used:
            schema_editor.execute(f"DROP INDEX IF EXISTS {n['unique_index']}")

    def describe(self):
        return f"Composite tenant foreign key on {self.model_name}.{self.field_name}"

    @property
    def migration_name_fragment(self):
        return f"tenant_fk_{self.model_name.lower()}_{self.field_name.lower()}"

    def deconstruct(self):
        return (self.__class__.__qualname__, [], {"model_name": self.model_name, "field_name": self.field_name})


class DropOperatorSetting(migrations.operations.base.Operation):
    """Rewrite every ``tenant_isolation`` policy in the schema without the ``app.operator`` escape
    (every table at once, whichever app made it; tables made later get the new policy anyway)."""

    reversible = True
    reduces_to_sql = False

    def state_forwards(self, app_label, state):
        pass

    def _rewrite(self, schema_editor, match):
        if schema_editor.connection.vendor != "postgresql":
            return
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(
                "SELECT c.relname FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE p.polname = %s AND n.nspname = current_schema()",
                [POLICY_NAME],
            )
            tables = [row[0] for row in cursor.fetchall()]
        for table in tables:
            schema_editor.execute(
                f"ALTER POLICY {POLICY_NAME} ON {schema_editor.quote_name(table)} USING {match} WITH CHECK {match}"
            )

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        self._rewrite(schema_editor, TENANT_MATCH)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        self._rewrite(schema_editor, LEGACY_OPERATOR_MATCH)

    def describe(self):
        return "Tenant policies without the app.operator setting"

    def deconstruct(self):
        return (self.__class__.__qualname__, [], {})


class PostgreSQLOnly(migrations.RunSQL):
    """``RunSQL`` (with its reverse) that runs on PostgreSQL and does nothing on SQLite: the
    functions and triggers behind the receiver's fast path, which SQLite (the embedded default,
    where the fast path is off) neither has nor needs."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
