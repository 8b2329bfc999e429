"""What a tenant user reads when something failed: a sentence about their data or their platform,
never a Python exception's name (that stays in the traceback operators see in the admin and in
the log).

``Explained`` marks an exception whose message already is such a sentence (a platform's refusal,
our own validation): it is shown as it is. Anything else is put into words here.
"""

from __future__ import annotations

import requests
from django.db import DatabaseError, DataError


class Explained(Exception):
    """An error whose message is a sentence fit for a tenant user: no secret, no class name."""


#: A generic failure of ours: what the tenant can know, and that it is not lost.
OUR_SIDE = "an error on our side stopped processing; the operators can see what happened"


def why_unreachable(exc: BaseException) -> str:
    """Why a request to a platform got no answer, in words (``requests``' exception classes)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "the connection timed out"
    if isinstance(exc, requests.exceptions.Timeout):
        return "it did not answer in time"
    if isinstance(exc, requests.exceptions.SSLError):
        return "its TLS certificate could not be verified"
    if isinstance(exc, requests.exceptions.ProxyError):
        return "the proxy refused the connection"
    if isinstance(exc, requests.exceptions.TooManyRedirects):
        return "it redirected too many times"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return "the connection failed"
    return "the request failed"


def unreachable(label: str, exc: BaseException, what: str = "") -> str:
    """``"Stripe could not be reached (the connection timed out)"``; ``what``: " for a token"."""
    return f"{label} could not be reached{what} ({why_unreachable(exc)})"


def sentence_for(error: BaseException) -> str:
    """The sentence for a failure that is not ``Explained``."""
    if isinstance(error, requests.RequestException):
        return unreachable("the platform", error)
    if isinstance(error, DataError):
        return "a value in the event does not fit what we store (too long or out of range)"
    if isinstance(error, UnicodeError):
        return "the event holds text that cannot be stored (an invalid character)"
    if isinstance(error, DatabaseError):
        return "our database was briefly unavailable; the delivery is retried"
    return OUR_SIDE
