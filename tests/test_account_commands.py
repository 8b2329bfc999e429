"""Issue 12 "Accounts and invitations", the command side: ``add_tenant_user`` keeps the last owner
and reads ``--password -`` from standard input; ``onboard_tenant`` on an existing slug says what
it changed."""

import io
import sys

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from tenants.context import tenant_context
from tenants.models import Membership

STRONG = "correct horse battery 42"


def run(*args) -> list[str]:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue().splitlines()


def role_of(tenant, user):
    with tenant_context(tenant):
        return Membership.objects.get(user=user).role


def test_add_tenant_user_never_demotes_the_last_owner(world):
    with pytest.raises(CommandError) as refused:
        call_command("add_tenant_user", "acme", "alice@example.com", "--role", "member", stdout=io.StringIO())
    assert str(refused.value) == "alice@example.com is the last owner of acme; make another owner first"
    assert role_of(world.acme, world.alice) == "owner"
    # With a second owner, the first may step down.
    run("add_tenant_user", "acme", "bob@example.com", "--role", "owner")
    run("add_tenant_user", "acme", "alice@example.com", "--role", "admin")
    assert (role_of(world.acme, world.alice), role_of(world.acme, world.bob)) == ("admin", "owner")


def test_add_tenant_user_reads_the_password_from_stdin(world, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(STRONG + "\n"))
    lines = run("add_tenant_user", "acme", "piped@example.com", "--password", "-")
    assert all(STRONG not in line for line in lines)
    user = get_user_model().objects.get(email="piped@example.com")
    assert user.check_password(STRONG)


def test_add_tenant_user_refuses_an_empty_stdin_password(world, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    with pytest.raises(CommandError, match="standard input gave no password"):
        call_command("add_tenant_user", "acme", "piped@example.com", "--password", "-", stdout=io.StringIO())
    assert not get_user_model().objects.filter(email="piped@example.com").exists()


def test_onboard_tenant_on_an_existing_slug_says_what_it_changed(world):
    lines = run("onboard_tenant", "acme", "--name", "Acme Studio", "--timezone", "Europe/Paris", "--report-email",
                "boss@acme.test")
    assert lines[0] == "updated tenant acme: name 'Acme' -> 'Acme Studio'; timezone 'UTC' -> 'Europe/Paris'"
    assert run("onboard_tenant", "acme", "--name", "Acme Studio")[0] == "tenant acme already exists; nothing changed"
