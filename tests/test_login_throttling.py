"""Issue 7.6: sign-in throttling (django-axes) on /accounts/login/ and /admin/login/.

The cool-off is passed by moving the stored failures back in time, not by waiting: axes compares
each failure's ``attempt_time`` with now minus ``AXES_COOLOFF_TIME``.
"""

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client

LIMIT = settings.AXES_FAILURE_LIMIT
LOGIN_PAGES = [("/accounts/login/", "alice", "pw-alicealice", "/"), ("/admin/login/", "oscar", "pw-oscaroscar", "/admin/")]


def sign_in(client, url, username, password):
    return client.post(url, {"username": username, "password": password})


def signed_in(client, home) -> bool:
    return client.get(home).status_code == 200


def lock(client, url, username):
    answers = [sign_in(client, url, username, "wrong-password").status_code for _ in range(LIMIT)]
    assert answers == [200] * (LIMIT - 1) + [429]


@pytest.mark.parametrize("url,username,password,home", LOGIN_PAGES)
def test_after_the_limit_the_right_password_is_refused(world, url, username, password, home):
    client = Client()
    lock(client, url, username)
    response = sign_in(client, url, username, password)
    assert response.status_code == 429
    assert not signed_in(client, home)


@pytest.mark.parametrize("url,username,password,home", LOGIN_PAGES)
def test_the_lockout_page_says_the_account_is_locked_and_when_to_retry(world, url, username, password, home):
    client = Client()
    lock(client, url, username)
    page = sign_in(client, url, username, password).content.decode()
    assert "This account is locked for now" in page
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    assert f"paused for\n    {minutes} minutes" in page or f"paused for {minutes} minutes" in page
    assert "Try again after" in page and 'datetime="' in page


@pytest.mark.parametrize("url,username,password,home", LOGIN_PAGES)
def test_the_lock_lifts_after_the_cool_off(world, url, username, password, home):
    client = Client()
    lock(client, url, username)
    assert sign_in(client, url, username, password).status_code == 429
    past = settings.AXES_COOLOFF_TIME + settings.AXES_COOLOFF_TIME / 10
    for attempt in AccessAttempt.objects.all():
        AccessAttempt.objects.filter(pk=attempt.pk).update(attempt_time=attempt.attempt_time - past)
    assert sign_in(client, url, username, password).status_code == 302
    assert signed_in(client, home)


def test_failures_count_for_the_account_however_its_address_is_typed(world):
    client = Client()
    typed = ["alice@example.com", "Alice@Example.com", " ALICE@example.com"]
    for i in range(LIMIT):
        sign_in(client, "/accounts/login/", typed[i % len(typed)], "wrong-password")
    assert sign_in(client, "/accounts/login/", "alice@example.com", "pw-alicealice").status_code == 429


def test_a_success_starts_the_count_again(world):
    client = Client()
    for _ in range(LIMIT - 1):
        sign_in(client, "/accounts/login/", "alice", "wrong-password")
    assert sign_in(client, "/accounts/login/", "alice", "pw-alicealice").status_code == 302
    client.post("/accounts/logout/")
    for _ in range(LIMIT - 1):
        sign_in(client, "/accounts/login/", "alice", "wrong-password")
    assert sign_in(client, "/accounts/login/", "alice", "pw-alicealice").status_code == 302
