"""Create or update the runtime database role. Idempotent; run as the tables' owner.

The role can log in and read and write rows, and nothing else: not superuser, not BYPASSRLS,
not CREATEDB/CREATEROLE, not the owner (nor a member of it), no DDL, and ``django_migrations``
read-only. Row-level security therefore applies to every query it makes.
"""

import base64
import hashlib
import hmac
import os
import re

from django.core.management.base import CommandError
from django.db import DEFAULT_DB_ALIAS, connections
from psycopg import sql

from engarde.commands import Command as BaseCommand


def scram_sha_256_verifier(password: str, iterations: int = 4096, salt: bytes | None = None) -> str:
    """The verifier PostgreSQL stores for ``password`` (RFC 5802/7677), computed here so that the
    password itself never reaches the server, nor its statement log. PostgreSQL accepts a
    ``PASSWORD 'SCRAM-SHA-256$…'`` as given. (No SASLprep: an ASCII password is unchanged by it.)"""
    salt = salt or os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# PostgreSQL refuses these itself, with an error that quotes the statement (and its password).
RESERVED_ROLE_NAME = re.compile(r"^(pg_.*|public|none)$")


class Command(BaseCommand):
    help = "Create or update the runtime PostgreSQL role that the web and the workers use."

    def add_arguments(self, parser):
        parser.add_argument("role", help="Role name: lowercase letters, digits and underscores.")
        parser.add_argument("--password", required=True, help="The role's login password.")
        parser.add_argument("--database", default=None, help="Alias to run as (default: owner if set, else default).")

    def handle(self, role, password, database, **options):
        alias = database or ("owner" if "owner" in connections.settings else DEFAULT_DB_ALIAS)
        if alias not in connections.settings:
            raise CommandError(f"unknown database alias {alias!r}")
        connection = connections[alias]
        if connection.vendor != "postgresql":
            raise CommandError("setup_app_role needs PostgreSQL (DATABASE_URL or MIGRATE_DATABASE_URL)")
        if not ROLE_NAME.fullmatch(role):  # fullmatch: "$" would let a trailing newline through
            raise CommandError("role name must be lowercase letters, digits and underscores, starting with a letter")
        if RESERVED_ROLE_NAME.match(role):
            raise CommandError(f"role name {role!r} is reserved by PostgreSQL (public, none, pg_…)")
        if not password:
            raise CommandError("--password must not be empty")
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user, current_database()")
            owner, dbname = cursor.fetchone()
            if role == owner:
                raise CommandError("the runtime role must not be the role that owns the tables")
            cursor.execute("SELECT rolsuper OR rolbypassrls OR rolcreaterole FROM pg_roles WHERE rolname = %s", [role])
            existing = cursor.fetchone()
            if existing and existing[0]:
                # Never demote an administrator by a typo: a runtime role is made for the purpose.
                raise CommandError(f"role {role} exists with superuser, BYPASSRLS or CREATEROLE rights; pick another name")
            verb = "ALTER" if existing else "CREATE"
            ident = sql.Identifier(role)
            statements = [
                sql.SQL(
                    "{} ROLE {} WITH LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION "
                    "INHERIT PASSWORD {}"
                ).format(sql.SQL(verb), ident, sql.Literal(scram_sha_256_verifier(password))),
                sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(owner), ident),
                sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(dbname), ident),
                sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(ident),
                sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {}").format(ident),
                sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}").format(ident),
                sql.SQL("REVOKE INSERT, UPDATE, DELETE ON django_migrations FROM {}").format(ident),
                sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(ident),
                # Tables and sequences the owner creates in later migrations get the same grants.
                sql.SQL(
                    "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {}"
                ).format(ident),
                sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {}").format(
                    ident
                ),
            ]
            # Straight to psycopg, past Django's query logging: the password is in the first one.
            raw_cursor = cursor.cursor
            for statement in statements:
                raw_cursor.execute(statement)
        self.stdout.write(f"{'updated' if verb == 'ALTER' else 'created'} role {role} on database {dbname}")
