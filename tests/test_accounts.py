"""Issue 12 "Accounts and invitations": the admin's user form asks for the e-mail, sign-in by
e-mail is case-insensitive for every account, a deactivated tenant's user is told so."""

from django.contrib.auth import get_user_model
from django.test import Client


def sign_in(username, password):
    client = Client()
    return client, client.post("/accounts/login/", {"username": username, "password": password})


def test_the_admin_user_form_asks_for_the_email(world):
    admin = Client()
    admin.force_login(world.oscar)
    page = admin.get("/admin/auth/user/add/").content.decode()
    assert 'name="email"' in page and 'name="first_name"' in page
    response = admin.post("/admin/auth/user/add/", {"username": "nadia", "usable_password": "false"})
    assert response.status_code == 200 and "This field is required" in response.content.decode()
    response = admin.post("/admin/auth/user/add/", {
        "username": "nadia", "email": "Nadia@Example.com", "first_name": "Nadia", "usable_password": "false",
    })
    assert response.status_code == 302
    assert get_user_model().objects.get(username="nadia").email == "nadia@example.com"
    # An address another account uses (in any case) is refused.
    response = admin.post("/admin/auth/user/add/", {"username": "other", "email": "ALICE@example.com",
                                                    "usable_password": "false"})
    assert "Another account already uses this address" in response.content.decode()


def test_sign_in_by_email_ignores_case_for_every_account(world):
    # An account made with its address as username and no e-mail field (as older admin forms did).
    get_user_model().objects.create_user(username="Ada@Example.com", password="pw-ada-ada-ada")
    for typed in ("ada@example.com", "ADA@EXAMPLE.COM", "Ada@Example.com"):
        _, response = sign_in(typed, "pw-ada-ada-ada")
        assert response.status_code == 302, typed
    for typed in ("ALICE", "Alice@Example.COM"):
        _, response = sign_in(typed, "pw-alicealice")
        assert response.status_code == 302, typed


def test_an_address_two_accounts_share_signs_in_neither(world):
    get_user_model().objects.create_user(username="twin", email="ALICE@example.com", password="pw-twin-twin")
    assert sign_in("alice@example.com", "pw-alicealice")[1].status_code == 200
    assert sign_in("alice", "pw-alicealice")[1].status_code == 302  # the exact username still works


def test_a_user_of_a_deactivated_tenant_is_told_so(world):
    world.globex.is_active = False
    world.globex.save()
    client, _ = sign_in("dana", "pw-danadana")
    response = client.get("/")
    page = response.content.decode()
    assert response.status_code == 403
    assert "Globex is deactivated" in page and "not in any tenant" not in page
    # Someone in no tenant at all still reads that.
    charlie, _ = sign_in("charlie", "pw-charliecharlie")
    assert "You are not in any tenant yet" in charlie.get("/").content.decode()
