"""HTTP sessions for platform APIs: timeouts always, retries on 5xx, and a clear rate-limit signal.

A 429 is not retried here: it becomes ``RateLimited`` with the platform's own wait, so the Celery
task can come back later instead of holding a worker in a sleep.
"""

import ipaddress
import math
import socket
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from engarde.errors import Explained

DEFAULT_TIMEOUT = (5, 20)  # connect, read (seconds)


class RateLimited(Explained):
    def __init__(self, retry_after: float):
        super().__init__(f"the platform is rate-limiting us; retrying after {retry_after:.0f} s")
        self.retry_after = retry_after


class ApiError(Explained):
    """A platform answered with an error. The message never carries credentials. ``status``: the
    HTTP status when there was an answer; ``retry_after``: the wait the answer asked for, if any."""

    def __init__(self, message: str = "", status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status, self.retry_after = status, retry_after


class TimeoutSession(requests.Session):
    def request(self, method, url, **kwargs):
        kwargs.setdefault("timeout", DEFAULT_TIMEOUT)
        return super().request(method, url, **kwargs)


#: The longest a 503's ``Retry-After`` is slept on inside one request; a longer wait ends the
#: request (the caller's task comes back later instead of holding its worker).
MAX_INLINE_RETRY_AFTER = 10.0


class PlatformRetry(Retry):
    """urllib3's retry, except that it never retries a 429 (urllib3 would, sleeping for as long as
    ``Retry-After`` says: Zoom names the next midnight there), so a rate limit always reaches the
    caller as a 429; and a 503's ``Retry-After`` is slept on only up to ``MAX_INLINE_RETRY_AFTER``."""

    RETRY_AFTER_STATUS_CODES = frozenset({503})

    def is_retry(self, method, status_code, has_retry_after=False):
        return status_code != 429 and super().is_retry(method, status_code, has_retry_after)

    def get_retry_after(self, response):
        seconds = super().get_retry_after(response)
        return None if seconds is None else min(seconds, MAX_INLINE_RETRY_AFTER)


#: urllib3's backoff between a session's retries: 0.5, 1, 2 s (the test suite sets it to 0, read
#: when a session is made; what is retried and how often stays the same).
RETRY_BACKOFF_FACTOR = 0.5


def make_session(total_retries: int = 3, adapter_class: type[HTTPAdapter] = HTTPAdapter, **adapter_kwargs) -> requests.Session:
    session = TimeoutSession()
    retry = PlatformRetry(
        total=total_retries,
        backoff_factor=RETRY_BACKOFF_FACTOR,
        status_forcelist=(500, 502, 503, 504),
        allowed_methods=None,  # platform calls we retry are idempotent upserts or reads
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    adapter = adapter_class(max_retries=retry, **adapter_kwargs)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


#: The longest wait a platform's Retry-After may ask for (a daily limit names the next midnight).
MAX_RETRY_AFTER = 2 * 86400.0


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait, from a ``Retry-After``-like value: seconds (RFC 9110), an HTTP date (RFC
    9110 too), an ISO 8601 time (Zoom's daily limits) or epoch seconds or milliseconds; at least 1,
    at most ``MAX_RETRY_AFTER``. ``None`` when the value says nothing readable (empty, NaN, words)."""
    value = (value or "").strip()
    if not value:
        return None
    now = now or datetime.now(timezone.utc)
    when = None
    try:
        seconds = float(value)
    except ValueError:
        seconds = None
    if seconds is not None:
        if math.isnan(seconds):
            return None
        if seconds > 1e12:  # epoch milliseconds
            when = datetime.fromtimestamp(min(seconds / 1000, 1e11), timezone.utc)
        elif seconds > 1e9:  # epoch seconds
            when = datetime.fromtimestamp(min(seconds, 1e11), timezone.utc)
        else:
            return min(max(seconds, 1.0), MAX_RETRY_AFTER)
    else:
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError):
                return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
    return min(max((when - now).total_seconds(), 1.0), MAX_RETRY_AFTER)


def retry_after_seconds(response, *header_names: str, default: float = 10.0, now: datetime | None = None) -> float:
    """The wait a response asks for: the first readable of ``header_names`` (a platform's own
    reset header), then ``Retry-After``; ``default`` when none says."""
    for name in (*header_names, "Retry-After"):
        seconds = parse_retry_after(response.headers.get(name), now)
        if seconds is not None:
            return seconds
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
    """A URL that points where it may not (inside our network, or plain http outside the
    operator's ``OUTBOUND_PRIVATE_NETWORKS``): never requested."""


# Globally routable by Python's reckoning, yet able to reach inside a network: NAT64 and 6to4 embed
# an IPv4 address (64:ff9b::7f00:1 is 127.0.0.1 behind a NAT64 gateway); 6to4 relays are anycast.
# (The same list as requests-hardened's, which pins addresses the same way.)
TRANSLATED_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "64:ff9b::/96", "64:ff9b:1::/48", "2002::/16", "192.88.99.0/24",
))

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def resolve_host(host: str, port: int | None = None) -> list[str]:
    """The addresses ``host`` resolves to, in the resolver's order."""
    return [info[4][0] for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)]


def address_allowed(address: str, allowed_networks: tuple[Network, ...] = (), public: bool = True) -> bool:
    """Whether we may connect to ``address``: one inside a network the operator allowed
    (``allowed_networks``, for URLs an operator set; empty for what a tenant typed), or, when
    ``public``, any public one. Plain http passes ``public=False``: it may only go to the
    operator's networks, never across the internet."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if ip.version == 6 and ip.ipv4_mapped:  # ::ffff:127.0.0.1 is 127.0.0.1
        ip = ip.ipv4_mapped
    if any(ip in network for network in allowed_networks if network.version == ip.version):
        return True
    if not public:
        return False
    return ip.is_global and not any(ip in net for net in TRANSLATED_NETWORKS if net.version == ip.version)


def checked_address(host: str, port: int | None = None, allowed_networks: tuple[Network, ...] = (),
                    public: bool = True) -> str:
    """Resolve ``host`` once and return the address to connect to, when every address it has is
    allowed (one bad answer among good ones is a refusal: the resolver could hand either out)."""
    try:
        addresses = resolve_host(host, port)
    except (OSError, UnicodeError):
        raise UnsafeUrl(f"{host} could not be resolved") from None
    if not addresses or not all(address_allowed(a, allowed_networks, public) for a in addresses):
        if public:
            raise UnsafeUrl(f"{host} is not a public address")
        raise UnsafeUrl(f"{host} is not inside OUTBOUND_PRIVATE_NETWORKS, and plain http goes nowhere else")
    return addresses[0].split("%")[0]


def ensure_public_https(url: str, allowed_networks: tuple[Network, ...] = ()) -> str:
    """Refuse a URL unless it is https on a host whose every address is public or inside
    ``allowed_networks``, or plain http on a host whose every address is inside them.

    ``allowed_networks`` is ``TenantIntegration.allowed_networks(field)``: the operator's
    ``OUTBOUND_PRIVATE_NETWORKS`` for a URL an operator set, nothing for a URL a tenant typed, which
    therefore stays public https only. Without this, "check connection" would let a tenant make our
    servers call (with the tenant's credentials) any address they can reach: metadata services,
    databases, admin ports. This is the early check with a clear message; ``pinned_session`` is what
    makes it hold, by connecting to the address it checked (a name may answer differently a second
    later: DNS rebinding)."""
    parts = urlsplit(url)
    plain = parts.scheme == "http" and bool(allowed_networks)
    if parts.scheme != "https" and not plain or not parts.hostname or parts.username or parts.password:
        raise UnsafeUrl("the URL must be https://host/… with no user name or password in it")
    checked_address(parts.hostname, parts.port, allowed_networks, public=not plain)
    return url


class PinnedAddressAdapter(HTTPAdapter):
    """Connects to the address it checked, never to a second answer of the resolver.

    Each new connection resolves the host once (``checked_address``), refuses it unless every
    address is allowed (https: public or in ``allowed_networks``; http: in ``allowed_networks``
    only), and hands urllib3 the address instead of the name, keeping the name for
    the ``Host`` header, TLS SNI and certificate checking. urllib3 then has nothing to resolve:
    its retries reuse the pinned address, and a redirect (when followed) comes back through here."""

    def __init__(self, allowed_networks: tuple[Network, ...] = (), **kwargs):
        self.allowed_networks = tuple(allowed_networks)
        super().__init__(**kwargs)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        host, port = host_params["host"], host_params["port"]
        host_header = f"[{host}]" if ":" in host else host
        request.headers["Host"] = f"{host_header}:{port}" if port else host_header
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = host  # SNI
            pool_kwargs["assert_hostname"] = host  # the certificate is the name's, not the address's
        # Plain http only inside the operator's networks (public=False), whatever the early check
        # saw: this is the resolution the connection uses, so it is the one that must hold.
        public = host_params["scheme"] == "https"
        host_params["host"] = checked_address(host, port, self.allowed_networks, public=public)
        return host_params, pool_kwargs


def pinned_session(allowed_networks: tuple[Network, ...] = (), total_retries: int = 3) -> requests.Session:
    """``make_session`` for a URL somebody typed: every connection goes to a checked address,
    public unless it lies in ``allowed_networks`` (and, for plain http, inside them only)."""
    return make_session(total_retries, adapter_class=PinnedAddressAdapter, allowed_networks=allowed_networks)
