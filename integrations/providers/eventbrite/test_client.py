"""The Eventbrite client on its own: which URLs it will request (SSRF), and how it reports
Eventbrite's answers. ``tests.py`` checks the same through the whole webhook pipeline."""

import pytest
import responses

from integrations.http import ApiError, RateLimited
from integrations.providers.eventbrite.client import EventbriteClient, UnsafeApiUrl

API = "https://www.eventbriteapi.com/v3"
ORDER_URL = f"{API}/orders/2091828963/"

FOREIGN_URLS = [
    "https://evil.example/v3/orders/1/",
    "http://www.eventbriteapi.com/v3/orders/1/",
    "https://www.eventbriteapi.com.evil.example/v3/orders/1/",
    "https://www.eventbriteapi.com@169.254.169.254/v3/orders/1/",
    "https://user:pw@www.eventbriteapi.com/v3/orders/1/",
    "https://www.eventbriteapi.com:8443/v3/orders/1/",
    "https://www.eventbriteapi.com/v3/../internal/",
    "https://www.eventbriteapi.com/v3/orders/%2e%2e/%2e%2e/admin/",
    "https://www.eventbriteapi.com/v3",
    "https://www.eventbriteapi.com/v4/orders/1/",
    "https://www.eventbriteapi.com/v3/orders/1/?next=https://evil.example/",
    "https://www.eventbriteapi.com/v3/orders/1/#frag",
    "http://127.0.0.1:8000/admin/",
    "file:///etc/passwd",
    "",
    None,
    42,
]


@pytest.fixture
def fake():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def client(token="EB-PRIVATE-ACME-0000000000"):
    return EventbriteClient(token, base_url=API)


@pytest.mark.parametrize("api_url", FOREIGN_URLS)
def test_a_url_outside_the_api_base_is_refused_without_a_request(fake, api_url):
    with pytest.raises(UnsafeApiUrl, match="refusing to fetch api_url"):
        client().get(api_url)
    assert len(fake.calls) == 0


def test_an_api_url_is_rebuilt_on_the_configured_base(fake):
    fake.get(ORDER_URL, json={"id": "2091828963"})
    assert client().checked_url("HTTPS://WWW.EVENTBRITEAPI.COM/v3/orders/2091828963/") == ORDER_URL
    assert client().get(ORDER_URL, expand="attendees") == {"id": "2091828963"}
    (call,) = fake.calls
    assert call.request.url == f"{ORDER_URL}?expand=attendees"
    assert call.request.headers["Authorization"] == "Bearer EB-PRIVATE-ACME-0000000000"


def test_a_429_is_rate_limited_with_eventbrites_wait(fake):
    fake.get(ORDER_URL, status=429, headers={"Retry-After": "30"})
    with pytest.raises(RateLimited) as raised:
        client().get(ORDER_URL)
    assert raised.value.retry_after == 30


@pytest.mark.parametrize("status", [302, 400, 401, 404, 410])
def test_other_answers_are_api_errors_and_redirects_are_not_followed(fake, status):
    fake.get(ORDER_URL, status=status, headers={"Location": "https://evil.example/steal"})
    with pytest.raises(ApiError, match=f"Eventbrite answered {status} to GET /v3/orders/2091828963/"):
        client().get(ORDER_URL)
    assert [c.request.url for c in fake.calls] == [ORDER_URL]


def test_no_private_token_is_an_error_before_any_request(fake):
    with pytest.raises(ApiError, match="no Eventbrite private token"):
        client(token="")
    assert len(fake.calls) == 0
