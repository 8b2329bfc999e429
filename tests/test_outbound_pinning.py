"""DNS rebinding: a URL a tenant typed is checked and then connected to at the address that was
checked. The resolver here answers differently the second time (public, then ours), the trick that
got around a check which resolved the name again for the request.

Real sockets, no ``responses``: two local servers stand for "the address that was checked"
(127.0.0.2, allowed through ``allowed_networks`` as an operator's private network would be) and
"inside our network" (127.0.0.1, never to be reached).
"""

import datetime
import ipaddress
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from integrations import http
from integrations.http import UnsafeUrl, address_allowed, pinned_session
from integrations.registry import get_provider
from webhooks.testing import connect

NAME = "booking.rebind.test"
CHECKED = "127.0.0.2"
INSIDE = "127.0.0.1"
ALLOWED = (ipaddress.ip_network(f"{CHECKED}/32"),)


class Recorder(BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.seen.append((self.path, self.headers.get("Host")))
        body = b'[{"id": 1}]'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, tls: ssl.SSLContext | None = None):
        super().__init__(address, Recorder)
        self.seen, self.connections, self.tls = [], 0, tls

    def get_request(self):
        sock, address = super().get_request()
        self.connections += 1  # counted before any TLS: reaching the socket at all is the harm
        return (self.tls.wrap_socket(sock, server_side=True) if self.tls else sock), address


def certificate_for(name: str, tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context, str(cert_file)


@pytest.fixture
def servers(tmp_path):
    """A TLS server for NAME on CHECKED and one on INSIDE, on the same port."""
    tls, ca_file = certificate_for(NAME, tmp_path)
    for _attempt in range(20):
        checked = Server((CHECKED, 0), tls)
        try:
            inside = Server((INSIDE, checked.server_address[1]), tls)
            break
        except OSError:  # that port is taken on 127.0.0.1: another pair
            checked.server_close()
    else:
        pytest.fail("no port free on both loopback addresses")
    for server in (checked, inside):
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield checked, inside, ca_file
    for server in (checked, inside):
        server.shutdown()
        server.server_close()


@pytest.fixture
def rebinding_dns(monkeypatch):
    """NAME answers ``first`` once, then INSIDE forever (a TTL of 0 and a hostile name server)."""
    answers = {"first": "93.184.216.34", "asked": 0}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host != NAME:
            return real(host, port, *args, **kwargs)
        answers["asked"] += 1
        address = answers["first"] if answers["asked"] == 1 else INSIDE
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port or 0))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


def test_check_connection_never_reaches_the_address_of_the_second_answer(world, servers, rebinding_dns):
    """The early check sees a public address; the request would have gone wherever the name
    pointed next. It is refused instead, and nothing inside was ever connected to."""
    _checked, inside, _ca = servers
    port = inside.server_address[1]
    connect(world.acme, "easyappointments", url=f"https://{NAME}:{port}", username="api", password="ea-acme-pass-000000")
    from integrations.models import TenantIntegration
    from tenants.context import tenant_context

    with tenant_context(world.acme):
        integration = TenantIntegration.objects.get(provider="easyappointments")
        with pytest.raises(UnsafeUrl, match="not a public address"):
            get_provider("easyappointments").check_connection(integration)
    assert rebinding_dns["asked"] >= 2  # the early check, then the connection's own
    assert inside.connections == 0


def test_a_pinned_connection_goes_to_the_checked_address_with_the_names_certificate(servers, rebinding_dns):
    checked, inside, ca_file = servers
    rebinding_dns["first"] = CHECKED
    port = checked.server_address[1]
    session = pinned_session(allowed_networks=ALLOWED)
    answer = session.get(f"https://{NAME}:{port}/index.php/api/v1/services", verify=ca_file, timeout=5)
    assert answer.json() == [{"id": 1}]
    assert checked.seen == [("/index.php/api/v1/services", f"{NAME}:{port}")]
    assert inside.connections == 0
    assert rebinding_dns["asked"] == 1  # resolved once; urllib3 was handed the address


def test_the_certificate_is_still_checked_against_the_name(servers, rebinding_dns, tmp_path):
    """Pinning the address must not turn certificate checking off: the server's certificate is
    for NAME, and trusting only another name's certificate refuses it."""
    checked, _inside, _ca = servers
    rebinding_dns["first"] = CHECKED
    (tmp_path / "other").mkdir()
    _other_context, other_ca = certificate_for("elsewhere.test", tmp_path / "other")
    with pytest.raises(requests.exceptions.SSLError):
        pinned_session(allowed_networks=ALLOWED, total_retries=0).get(
            f"https://{NAME}:{checked.server_address[1]}/", verify=other_ca, timeout=5)


def test_without_the_allowed_network_the_same_address_is_refused(servers, rebinding_dns):
    checked, _inside, ca_file = servers
    rebinding_dns["first"] = CHECKED
    with pytest.raises(UnsafeUrl):
        pinned_session().get(f"https://{NAME}:{checked.server_address[1]}/", verify=ca_file, timeout=5)
    assert checked.connections == 0


@pytest.mark.parametrize("address, allowed", [
    ("93.184.216.34", True), ("2606:2800:220:1:248:1893:25c8:1946", True),
    ("127.0.0.1", False), ("10.1.2.3", False), ("169.254.169.254", False), ("100.64.0.1", False),
    ("::1", False), ("fe80::1%eth0", False), ("::ffff:127.0.0.1", False), ("::ffff:10.0.0.1", False),
    ("64:ff9b::7f00:1", False), ("2002:7f00:1::", False), ("0.0.0.0", False),
])
def test_what_counts_as_public(address, allowed):
    assert address_allowed(address) is allowed


def test_an_operators_network_is_allowed_only_when_named():
    networks = (ipaddress.ip_network("10.20.0.0/16"),)
    assert address_allowed("10.20.3.4", networks)
    assert not address_allowed("10.21.3.4", networks)
    assert not address_allowed("127.0.0.1", networks)


def test_one_private_answer_among_public_ones_is_a_refusal(monkeypatch):
    monkeypatch.setattr(http, "resolve_host", lambda host, port=None: ["93.184.216.34", "10.0.0.7"])
    with pytest.raises(UnsafeUrl):
        http.checked_address("mixed.example")
