"""What every platform client reads after a 429 (``integrations.http``) and the words a tenant reads when a call failed (``engarde.errors``)."""

from datetime import datetime, timezone

import pytest
import requests

from django.db import DataError

from engarde.errors import sentence_for, unreachable
from integrations.http import MAX_RETRY_AFTER, parse_retry_after, retry_after_seconds

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=timezone.utc)


def answer(**headers) -> requests.Response:
    response = requests.Response()
    response.status_code = 429
    response.headers.update(headers)
    return response


@pytest.mark.parametrize("value, seconds", [
    ("7", 7.0),
    ("0", 1.0),  # never a busy loop
    ("-5", 1.0),
    ("2.5", 2.5),
    ("Wed, 02 Dec 2026 10:05:00 GMT", 300.0),  # an HTTP date (RFC 9110)
    ("2026-12-02T10:30:00Z", 1800.0),  # an ISO time (Zoom's daily limits)
    ("2026-12-02T09:00:00Z", 1.0),  # already past: at once, never negative
    ("1796206200", 600.0),  # epoch seconds
    ("1796206200000", 600.0),  # epoch milliseconds
    ("99999999999", MAX_RETRY_AFTER),  # far future: capped
    ("inf", MAX_RETRY_AFTER),
])
def test_a_readable_wait_is_seconds_between_one_and_the_cap(value, seconds):
    assert parse_retry_after(value, NOW) == seconds


@pytest.mark.parametrize("value", [None, "", "  ", "soon", "nan", "Wed, 99 Foo"])
def test_an_unreadable_wait_is_none(value):
    assert parse_retry_after(value, NOW) is None


def test_the_platform_header_comes_first_then_retry_after_then_the_default():
    assert retry_after_seconds(answer(**{"X-Reset": "30", "Retry-After": "5"}), "X-Reset", now=NOW) == 30
    assert retry_after_seconds(answer(**{"X-Reset": "soon", "Retry-After": "5"}), "X-Reset", now=NOW) == 5
    assert retry_after_seconds(answer(**{"Retry-After": "Wed, 02 Dec 2026 10:01:00 GMT"}), now=NOW) == 60
    assert retry_after_seconds(answer(), now=NOW) == 10.0
    assert retry_after_seconds(answer(**{"Retry-After": "nan"}), default=3, now=NOW) == 3


# --- the words a tenant reads when a platform got no answer (engarde.errors) -------------------
@pytest.mark.parametrize("exc, words", [
    (requests.exceptions.ConnectTimeout(), "the connection timed out"),
    (requests.exceptions.ReadTimeout(), "it did not answer in time"),
    (requests.exceptions.SSLError(), "its TLS certificate could not be verified"),
    (requests.exceptions.ConnectionError(), "the connection failed"),
    (requests.exceptions.TooManyRedirects(), "it redirected too many times"),
    (requests.exceptions.InvalidURL(), "the request failed"),
])
def test_an_unreachable_platform_is_said_in_words_not_an_exception_name(exc, words):
    sentence = unreachable("Stripe", exc)
    assert sentence == f"Stripe could not be reached ({words})"
    assert type(exc).__name__ not in sentence


@pytest.mark.parametrize("exc", [RuntimeError("x"), KeyError("k"), ValueError("v"), requests.ConnectionError("c"),
                                 DataError("value too long"), UnicodeEncodeError("utf-8", "x", 0, 1, "bad")])
def test_a_failure_we_did_not_explain_is_a_sentence_without_a_class_name(exc):
    sentence = sentence_for(exc)
    assert type(exc).__name__ not in sentence and "Error" not in sentence and sentence[0].islower()
