"""Issue 7.7 and issue 12 "Accounts and invitations": nobody joins a tenant from its members page
without accepting an invitation; the e-mail is an invitation; pending invitations on the page.

Conftest world: acme (alice owner, bob member), globex (dana owner), charlie in no tenant.
"""

import hashlib
import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from conftest import SHARED_INVITEE
from tenants.context import tenant_context
from tenants.models import Invitation, Membership

LINK = re.compile(r"http://testserver(/invitations/[^/\s]+/[^/\s]+/)")


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def invite(mailoutbox, email, role="member", by=None, world=None):
    response = signed_in(by or world.alice).post("/members/invite/", {"email": email, "role": role})
    assert response.status_code == 302, response.content.decode()[:500]
    return LINK.search(mailoutbox[-1].body).group(1)


def role_in(tenant, user):
    with tenant_context(tenant):
        membership = Membership.objects.filter(user=user).first()
        return membership.role if membership else None


def pending(tenant):
    with tenant_context(tenant):
        return list(Invitation.objects.exclude(email=SHARED_INVITEE).values_list("email", flat=True))


def test_inviting_an_existing_account_makes_no_membership_until_it_accepts(world, mailoutbox):
    link = invite(mailoutbox, "Dana@Example.com", world=world)
    assert role_in(world.acme, world.dana) is None
    assert pending(world.acme) == ["dana@example.com"]
    # Only the token's hash is stored.
    token = link.rstrip("/").rsplit("/", 1)[1]
    with tenant_context(world.acme):
        stored = Invitation.objects.get(email="dana@example.com")
        assert token not in str(list(Invitation.objects.values()))
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert stored.expires_at > timezone.now() + timedelta(days=6)

    page = Client().get(link).content.decode()
    assert "Sign in to accept" in page and "Acme" in page
    dana = signed_in(world.dana)
    assert "Join Acme" in dana.get(link).content.decode()
    response = dana.post(link)
    assert response.status_code == 302 and response["Location"] == "/?tenant=acme"
    assert role_in(world.acme, world.dana) == "member" and role_in(world.globex, world.dana) == "owner"
    assert pending(world.acme) == []
    assert "no longer works" in Client().get(link).content.decode()


def test_the_email_is_an_invitation_not_a_password_reset(world, mailoutbox):
    world.alice.first_name, world.alice.last_name = "Alice", "Archer"
    world.alice.save()
    invite(mailoutbox, "newcomer@example.com", role="admin", world=world)
    (mail,) = mailoutbox
    assert mail.to == ["newcomer@example.com"]
    assert mail.subject == "Alice Archer invited you to Acme on En Garde"
    assert "Alice Archer invited you to join Acme on En Garde as admin." in mail.body
    assert "choose your password" in mail.body and LINK.search(mail.body)
    assert "password reset" not in mail.body.lower() and "/accounts/reset/" not in mail.body
    # No account exists before the invitation is accepted.
    assert not get_user_model().objects.filter(email="newcomer@example.com").exists()


def test_someone_new_chooses_a_name_and_password_and_joins(world, mailoutbox):
    link = invite(mailoutbox, "new.person@example.com", role="admin", world=world)
    person = Client()
    assert "Choose a password" in person.get(link).content.decode()
    response = person.post(link, {"first_name": "Nina", "last_name": "Novak",
                                  "password1": "quiet river lamp 27", "password2": "quiet river lamp 27"})
    assert response.status_code == 302 and response["Location"] == "/?tenant=acme"
    newcomer = get_user_model().objects.get(email="new.person@example.com")
    assert newcomer.get_full_name() == "Nina Novak" and newcomer.check_password("quiet river lamp 27")
    assert role_in(world.acme, newcomer) == "admin"
    members = signed_in(world.alice).get("/members/").content.decode()
    assert "Nina Novak" in members and "new.person@example.com" in members
    # Signed in already; and the account signs in again with the address it was invited at.
    assert "Acme" in person.get("/").content.decode()
    again = Client().post("/accounts/login/", {"username": "New.Person@example.com", "password": "quiet river lamp 27"})
    assert again.status_code == 302


def test_a_weak_or_mismatched_password_is_refused_and_nothing_is_made(world, mailoutbox):
    link = invite(mailoutbox, "weak@example.com", world=world)
    response = Client().post(link, {"first_name": "W", "password1": "123", "password2": "123"})
    assert response.status_code == 400
    response = Client().post(link, {"first_name": "W", "password1": "long river 55 x", "password2": "other 55 river"})
    assert response.status_code == 400
    assert not get_user_model().objects.filter(email="weak@example.com").exists()
    assert pending(world.acme) == ["weak@example.com"]


def test_an_expired_link_does_nothing(world, mailoutbox):
    link = invite(mailoutbox, "charlie@example.com", world=world)
    with tenant_context(world.acme):
        Invitation.objects.filter(email="charlie@example.com").update(expires_at=timezone.now() - timedelta(seconds=1))
    charlie = signed_in(world.charlie)
    assert charlie.get(link).status_code == 404
    assert charlie.post(link).status_code == 404
    assert role_in(world.acme, world.charlie) is None


def test_the_link_works_only_under_its_own_tenant(world, mailoutbox):
    link = invite(mailoutbox, "charlie@example.com", world=world)
    charlie = signed_in(world.charlie)
    assert charlie.post(link.replace("/acme/", "/globex/")).status_code == 404
    assert charlie.post(link.replace("/acme/", "/nobody/")).status_code == 404
    assert role_in(world.acme, world.charlie) is None and role_in(world.globex, world.charlie) is None


def test_signed_in_as_someone_else_joins_nobody(world, mailoutbox):
    link = invite(mailoutbox, "charlie@example.com", world=world)
    dana = signed_in(world.dana)
    assert "You are signed in as" in dana.get(link).content.decode()
    dana.post(link)
    assert role_in(world.acme, world.dana) is None and role_in(world.acme, world.charlie) is None


def test_pending_invitations_are_listed_with_resend_and_cancel(world, mailoutbox):
    first = invite(mailoutbox, "charlie@example.com", world=world)
    alice = signed_in(world.alice)
    page = alice.get("/members/").content.decode()
    row = re.search(r'data-testid="invitation-charlie@example.com">(.*?)</tr>', page, re.S).group(1)
    assert "Member" in row and "alice@example.com" in row and "Resend" in row and "Cancel" in row
    with tenant_context(world.acme):
        invitation = Invitation.objects.get(email="charlie@example.com")

    alice.post(f"/members/invitations/{invitation.pk}/resend/")
    second = LINK.search(mailoutbox[-1].body).group(1)
    assert len(mailoutbox) == 2 and second != first
    assert Client().get(first).status_code == 404  # the old link died with the new one
    assert "Join Acme" in signed_in(world.charlie).get(second).content.decode()

    alice.post(f"/members/invitations/{invitation.pk}/cancel/")
    assert pending(world.acme) == []
    assert signed_in(world.charlie).post(second).status_code == 404
    assert role_in(world.acme, world.charlie) is None


def test_members_and_other_tenants_cannot_resend_or_cancel(world, mailoutbox):
    invite(mailoutbox, "charlie@example.com", world=world)
    with tenant_context(world.acme):
        invitation = Invitation.objects.get(email="charlie@example.com")
    assert signed_in(world.bob).post(f"/members/invitations/{invitation.pk}/cancel/").status_code == 403
    assert signed_in(world.dana).post(f"/members/invitations/{invitation.pk}/cancel/").status_code == 404
    assert signed_in(world.dana).post(f"/members/invitations/{invitation.pk}/resend/").status_code == 404
    assert pending(world.acme) == ["charlie@example.com"] and len(mailoutbox) == 1


def test_an_admin_cannot_resend_or_cancel_an_owners_invitation(world, mailoutbox):
    invite(mailoutbox, "charlie@example.com", role="owner", world=world)
    with tenant_context(world.acme):
        Membership.objects.filter(user=world.bob).update(role="admin")
        invitation = Invitation.objects.get(email="charlie@example.com")
    response = signed_in(world.bob).post(f"/members/invitations/{invitation.pk}/cancel/", follow=True)
    assert "Only an owner" in response.content.decode()
    assert pending(world.acme) == ["charlie@example.com"]


def test_inviting_someone_already_in_the_tenant_changes_their_role(world, mailoutbox):
    response = signed_in(world.alice).post("/members/invite/", {"email": "bob@example.com", "role": "admin"})
    assert response.status_code == 302 and mailoutbox == []
    assert role_in(world.acme, world.bob) == "admin" and pending(world.acme) == []


@pytest.mark.parametrize("email", ["charlie@example.com", "someone@example.com"])
def test_inviting_twice_keeps_one_invitation_with_the_latest_role(world, mailoutbox, email):
    invite(mailoutbox, email, world=world)
    invite(mailoutbox, email, role="admin", world=world)
    with tenant_context(world.acme):
        assert list(Invitation.objects.exclude(email=SHARED_INVITEE).values_list("email", "role")) == [(email, "admin")]
