"""``integrations.http.retry_after_seconds``: what every platform client reads after a 429."""

from datetime import datetime, timezone

import pytest
import requests

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
