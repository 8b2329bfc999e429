"""Create or update the database roles the application connects as. Idempotent; run it after the
first ``migrate``, connected (the ``owner`` alias, ``MIGRATE_DATABASE_URL``) as a superuser, or as a
role with CREATEROLE that owns the tables or is a member of their owner. A connection that can
create no roles is refused in one line before anything changes.

Three roles: the *owner* owns the tables and runs the migrations (whoever owns
``django_migrations``); the *runtime* role and the *operator* role below are made here. Grants
cover the tables that exist now, and default privileges ``FOR ROLE <owner>`` cover the tables and
sequences the owner's later migrations create, whoever runs this command.

The runtime role (``DATABASE_URL``: the web and the workers) can log in and read and write rows,
and nothing else: not superuser, not BYPASSRLS, not CREATEDB/CREATEROLE, not the owner (nor a
member of it), no DDL, ``django_migrations`` read-only. Row-level security applies to every query
it makes, and no setting it can change widens that: it sees one tenant at most.

The operator role (``--operator``, for ``OPERATOR_DATABASE_URL``: the admin, operator commands and
beat fan-out, only inside ``operator_context``) has the same grants plus ``BYPASSRLS``: it reads
across tenants. Creating a BYPASSRLS role needs a superuser. The runtime role is never a member of it.

Passwords reach PostgreSQL only as SCRAM verifiers made by libpq (``PQencryptPasswordConn``), so
neither the server's statement log nor an error quoting the statement ever holds a password.
"""

import re

import psycopg
from django.core.management.base import CommandError
from django.db import DEFAULT_DB_ALIAS, connections
from psycopg import sql

from engarde.commands import Command as BaseCommand

ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# PostgreSQL refuses these itself, with an error that quotes the statement.
RESERVED_ROLE_NAME = re.compile(r"^(pg_.*|public|none)$")


def check_role_name(role: str, what: str) -> None:
    if not ROLE_NAME.fullmatch(role):  # fullmatch: "$" would let a trailing newline through
        raise CommandError(f"{what} name must be lowercase letters, digits and underscores, starting with a letter")
    if RESERVED_ROLE_NAME.match(role):
        raise CommandError(f"{what} name {role!r} is reserved by PostgreSQL (public, none, pg_…)")


def grants(ident, dbname: str, owner: str) -> list:
    """Rows, not schema: the same for the runtime and the operator role. ``owner`` is the role
    that runs the migrations: default privileges are per creating role, so they must name it
    (without ``FOR ROLE`` they would cover only tables the role running this command creates).
    Functions: the migrations revoke PUBLIC's EXECUTE on the ones they make (the receiver's
    ``webhooks_store_delivery``, ``SECURITY INVOKER``), so the roles are granted EXECUTE here, on
    today's functions and by default privileges on later ones. Execute only: the owner keeps
    them, and a role that is not the owner can neither replace nor drop one."""
    owner_ident = sql.Identifier(owner)
    return [
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(dbname), ident),
        sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(ident),
        sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {}").format(ident),
        sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}").format(ident),
        sql.SQL("REVOKE INSERT, UPDATE, DELETE ON django_migrations FROM {}").format(ident),
        sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(ident),
        # Tables and sequences the owner creates in later migrations get the same grants.
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {}"
        ).format(owner_ident, ident),
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {}").format(
            owner_ident, ident
        ),
        sql.SQL("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {}").format(ident),
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public GRANT EXECUTE ON FUNCTIONS TO {}").format(
            owner_ident, ident
        ),
    ]


class Command(BaseCommand):
    help = "Create or update the runtime PostgreSQL role (and, with --operator, the operator role)."

    def add_arguments(self, parser):
        parser.add_argument("role", help="Runtime role name: lowercase letters, digits and underscores.")
        parser.add_argument("--password", required=True, help="The runtime role's login password.")
        parser.add_argument("--operator", default=None, help="Also make this operator role (BYPASSRLS, needs a superuser).")
        parser.add_argument("--operator-password", default=None, help="The operator role's login password.")
        parser.add_argument("--database", default=None, help="Alias to run as (default: owner if set, else default).")

    def handle(self, role, password, operator, operator_password, database, **options):
        alias = database or ("owner" if "owner" in connections.settings else DEFAULT_DB_ALIAS)
        if alias not in connections.settings:
            raise CommandError(f"unknown database alias {alias!r}")
        connection = connections[alias]
        if connection.vendor != "postgresql":
            raise CommandError("setup_app_role needs PostgreSQL (DATABASE_URL or MIGRATE_DATABASE_URL)")
        check_role_name(role, "role")
        if not password:
            raise CommandError("--password must not be empty")
        if operator is not None:
            check_role_name(operator, "operator role")
            if operator == role:
                raise CommandError("the operator role must not be the runtime role")
            if not operator_password:
                raise CommandError("--operator needs a non-empty --operator-password")
        elif operator_password is not None:
            raise CommandError("--operator-password needs --operator")
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_user, current_database(), r.rolsuper, r.rolcreaterole,"
                " (SELECT pg_get_userbyid(c.relowner) FROM pg_class c WHERE c.oid = to_regclass('django_migrations'))"
                " FROM pg_roles r WHERE r.rolname = current_user"
            )
            user, dbname, is_superuser, can_create_roles, owner = cursor.fetchone()
            if not (is_superuser or can_create_roles):
                raise CommandError(
                    f"setup_app_role needs a superuser (or a role with CREATEROLE): {user} cannot create roles; "
                    "set MIGRATE_DATABASE_URL to a superuser's URL for this command"
                )
            if owner is None:
                raise CommandError(
                    f"database {dbname} has no django_migrations table: run migrate first (as the owner), "
                    "so that the tables' owner is known"
                )
            if {owner, user} & {role, operator}:
                raise CommandError("neither role may be the role that owns the tables, nor the one running this command")
            raw = cursor.cursor  # straight to psycopg, past Django's query logging
            try:
                verb = self.make_role(raw, connection, role, password, owner, dbname, operator=False)
                self.stdout.write(f"{verb} role {role} on database {dbname}")
                if operator:
                    verb = self.make_role(raw, connection, operator, operator_password, owner, dbname, operator=True)
                    raw.execute(sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(operator), sql.Identifier(role)))
                    self.stdout.write(f"{verb} operator role {operator} on database {dbname}")
            except psycopg.errors.InsufficientPrivilege as exc:
                raise CommandError(
                    f"not allowed: {exc.diag.message_primary} (run as a superuser, or as the owner {owner} with CREATEROLE)"
                ) from None

    def make_role(self, raw, connection, role, password, owner, dbname, operator: bool) -> str:
        raw.execute("SELECT rolsuper, rolbypassrls, rolcreaterole FROM pg_roles WHERE rolname = %s", [role])
        existing = raw.fetchone()
        if existing and (existing[0] or existing[2] or (existing[1] and not operator)):
            # Never demote an administrator by a typo: these roles are made for the purpose.
            what = "superuser or CREATEROLE" if operator else "superuser, BYPASSRLS or CREATEROLE"
            raise CommandError(f"role {role} exists with {what} rights; pick another name")
        verb = "ALTER" if existing else "CREATE"
        ident = sql.Identifier(role)
        verifier = connection.connection.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256")
        bypass = sql.SQL("BYPASSRLS" if operator else "NOBYPASSRLS")
        raw.execute(
            sql.SQL(
                "{} ROLE {} WITH LOGIN NOSUPERUSER {} NOCREATEDB NOCREATEROLE NOREPLICATION INHERIT PASSWORD {}"
            ).format(sql.SQL(verb), ident, bypass, sql.Literal(verifier.decode()))
        )
        raw.execute(sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(owner), ident))
        for statement in grants(ident, dbname, owner):
            raw.execute(statement)
        return "updated" if verb == "ALTER" else "created"
