"""Sign-in throttling with django-axes: what counts as one account, and the page a locked-out
visitor sees (on ``/accounts/login/`` and ``/admin/login/`` alike).

An account is locked after ``LOGIN_FAILURE_LIMIT`` failed sign-ins in a row for
``LOGIN_COOLOFF_MINUTES``; every failure while locked starts the cool-off again, so guessing on
never gets through. The right password during the cool-off is refused too.
"""

from django.conf import settings
from django.shortcuts import render
from django.utils import timezone


def login_key(request, credentials) -> str:
    """One key per account however the address was typed (sign-in by e-mail is case-insensitive)."""
    credentials = credentials or {}
    return str(credentials.get(settings.AXES_USERNAME_FORM_FIELD) or "").strip().casefold()


def locked_out(request, original_response=None, credentials=None):
    cool_off = settings.AXES_COOLOFF_TIME
    return render(request, "registration/locked_out.html", {
        "minutes": round(cool_off.total_seconds() / 60),
        "retry_at": timezone.now() + cool_off,
        "admin": request.path.startswith("/admin/"),
    }, status=429)
