"""HTTP sessions for platform APIs: timeouts always, retries on 5xx, and a clear rate-limit signal.

A 429 is not retried here: it becomes ``RateLimited`` with the platform's own wait, so the Celery
task can come back later instead of holding a worker in a sleep.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

DEFAULT_TIMEOUT = (5, 20)  # connect, read (seconds)


class RateLimited(Exception):
    def __init__(self, retry_after: float):
        super().__init__(f"rate limited; retry after {retry_after:.0f}s")
        self.retry_after = retry_after


class ApiError(Exception):
    """A platform answered with an error. The message never carries credentials."""


class TimeoutSession(requests.Session):
    def request(self, method, url, **kwargs):
        kwargs.setdefault("timeout", DEFAULT_TIMEOUT)
        return super().request(method, url, **kwargs)


def make_session(total_retries: int = 3) -> requests.Session:
    session = TimeoutSession()
    retry = Retry(
        total=total_retries,
        backoff_factor=0.5,
        status_forcelist=(500, 502, 503, 504),
        allowed_methods=None,  # platform calls we retry are idempotent upserts or reads
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def retry_after_seconds(response, *header_names: str, default: float = 10.0) -> float:
    for name in (*header_names, "Retry-After"):
        value = response.headers.get(name)
        if value:
            try:
                return max(float(value), 1.0)
            except ValueError:
                continue
    return default


def call_json(session: requests.Session, method: str, url: str, *, platform: str, **kwargs) -> dict:
    """One API call: the JSON answer, ``RateLimited`` on 429, ``ApiError`` otherwise. Error
    messages name the platform, the status and the path, never a header or a credential."""
    from urllib.parse import urlsplit

    response = session.request(method, url, allow_redirects=False, **kwargs)
    path = urlsplit(url).path
    if response.status_code == 429:
        raise RateLimited(retry_after_seconds(response))
    if not 200 <= response.status_code < 300:
        raise ApiError(f"{platform} answered {response.status_code} to {method} {path}")
    try:
        return response.json()
    except ValueError:
        raise ApiError(f"{platform} answered {method} {path} with something that is not JSON") from None


def get_with_bearer(url: str, token: str, *, platform: str, headers: dict | None = None, **kwargs) -> dict:
    """``call_json`` for the common case: a GET with ``Authorization: Bearer <token>``."""
    return call_json(make_session(), "GET", url, platform=platform,
                     headers={"Authorization": f"Bearer {token}", **(headers or {})}, **kwargs)


class UnsafeUrl(ApiError):
    """A tenant-entered URL that points inside our network (or is not https): never requested."""


def resolve_host(host: str) -> list[str]:
    """The addresses ``host`` resolves to (a seam: tests give names of their local fakes)."""
    return [info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)]


def ensure_public_https(url: str) -> str:
    """Refuse a URL a tenant typed in unless it is https on a host whose every address is public.

    Without this, "check connection" would let a tenant make our servers call (with the tenant's
    credentials) any address they can reach: metadata services, databases, admin ports."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
        raise UnsafeUrl("the URL must be https://host/… with no user name or password in it")
    try:
        addresses = resolve_host(parts.hostname)
    except OSError:
        raise UnsafeUrl(f"{parts.hostname} could not be resolved") from None
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global:
            raise UnsafeUrl(f"{parts.hostname} is not a public address")
    return url
