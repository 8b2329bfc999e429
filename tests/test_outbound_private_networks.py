"""``OUTBOUND_PRIVATE_NETWORKS``: where an operator may point a platform URL (a self-hosted
Easy!Appointments on the company network), with plain http allowed there only; a URL a tenant typed
stays public https, whatever the setting.

Who set a URL: the admin's form and ``connect_integration`` are operators (``by_operator``); the
setup page is the tenant, whoever is signed in. ``TenantIntegration.operator_set_fields`` keeps it.

Real sockets on loopback: ``CORP`` (127.0.0.2) stands for the company network, listed in the setting
as a /32; ``INSIDE`` (127.0.0.1) for an address that is private and *not* listed. A scripted resolver
answers each lookup of ``NAME`` from a list, so a name can change its answer between lookups.
"""

import io
import ipaddress
import json
import socket
import subprocess
import sys
import threading
from http.server import ThreadingHTTPServer

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import override_settings

from engarde.networks import parse_networks
from integrations.forms import integration_form_for
from integrations.http import UnsafeUrl, ensure_public_https, pinned_session
from integrations.models import TenantIntegration
from integrations.registry import get_provider
from tenants.context import tenant_context
from tests.test_deploy_defaults import PROJECT_ROOT, production_env
from tests.test_outbound_pinning import Recorder, certificate_for

NAME = "booking.corp.test"
CORP, INSIDE, PUBLIC = "127.0.0.2", "127.0.0.1", "93.184.216.34"
CORP_NETWORKS = (ipaddress.ip_network(f"{CORP}/32"),)
PASSWORD = "ea-acme-pass-000000"
EA = get_provider("easyappointments")


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, tls=None):
        super().__init__(address, Recorder)
        self.seen, self.connections, self.tls = [], 0, tls

    def get_request(self):
        sock, address = super().get_request()
        self.connections += 1  # reaching the socket at all is what must not happen
        return (self.tls.wrap_socket(sock, server_side=True) if self.tls else sock), address


def serve_pair(tls=None):
    """A server on CORP and one on INSIDE, on the same port (so only the address tells them apart)."""
    for _attempt in range(20):
        corp = Server((CORP, 0), tls)
        try:
            inside = Server((INSIDE, corp.server_address[1]), tls)
            break
        except OSError:
            corp.server_close()
    else:
        pytest.fail("no port free on both loopback addresses")
    for server in (corp, inside):
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return corp, inside


@pytest.fixture
def plain():
    corp, inside = serve_pair()
    yield corp, inside
    for server in (corp, inside):
        server.shutdown()
        server.server_close()


@pytest.fixture
def tls(tmp_path):
    context, ca_file = certificate_for(NAME, tmp_path)
    corp, inside = serve_pair(context)
    yield corp, inside, ca_file
    for server in (corp, inside):
        server.shutdown()
        server.server_close()


@pytest.fixture
def dns(monkeypatch):
    """``dns["answers"]``: what NAME resolves to, one entry per lookup, the last one repeated;
    ``dns["asked"]``: how many lookups were made."""
    state = {"answers": [CORP], "asked": 0}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host != NAME:
            return real(host, port, *args, **kwargs)
        answer = state["answers"][min(state["asked"], len(state["answers"]) - 1)]
        state["asked"] += 1
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (answer, port or 0))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return state


def operator_connects(tenant, url):
    """The operator's way in: ``connect_integration`` (marks the URL operator-set)."""
    call_command("connect_integration", tenant.slug, "easyappointments", "--set", f"url={url}",
                 "--set", "username=api", "--set", f"password={PASSWORD}", stdout=io.StringIO())
    with tenant_context(tenant):
        return TenantIntegration.objects.get(provider="easyappointments")


def tenant_saves_url(client, world, url):
    """The tenant's way in: the setup page, signed in as acme's owner (alice)."""
    client.force_login(world.alice)
    response = client.post("/setup/easyappointments/", {
        "is_active": "on", "url": url, "username": "api", "password": PASSWORD, "new_webhook_secret": "",
        "generate_webhook_secret": "on",
    })
    assert response.status_code in (200, 302), response.content.decode()[:500]
    with tenant_context(world.acme):
        return TenantIntegration.objects.get(provider="easyappointments")


def check(integration):
    with tenant_context(integration.tenant_id):
        integration = TenantIntegration.objects.get(pk=integration.pk)
    return EA.check_connection(integration)


# --- start-up ------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, words", [
    ("10.0.0.300/8", "'10.0.0.300/8' is not a network"),
    ("10.20.3.4/16", "has host bits set"),
    ("corp-network", "'corp-network' is not a network"),
    ("0.0.0.0/0", "is every address"),
    ("::/0", "is every address"),
])
def test_a_bad_cidr_is_refused_with_the_value_named(value, words):
    with pytest.raises(ImproperlyConfigured, match="OUTBOUND_PRIVATE_NETWORKS") as refused:
        parse_networks(["10.20.0.0/16", value])
    assert words in str(refused.value)


def test_good_values_are_networks_and_empty_is_none():
    assert parse_networks([]) == ()
    assert parse_networks(["10.20.0.0/16", " fd00:1::/64 ", "192.168.7.9", ""]) == (
        ipaddress.ip_network("10.20.0.0/16"), ipaddress.ip_network("fd00:1::/64"), ipaddress.ip_network("192.168.7.9/32"),
    )


def test_a_bad_cidr_stops_start_up_in_one_line():
    env = production_env(OUTBOUND_PRIVATE_NETWORKS="10.20.0.0/16,10.0.0.300/8")
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert result.stderr.splitlines() == [
        line for line in result.stderr.splitlines() if line.startswith("configuration error: OUTBOUND_PRIVATE_NETWORKS:")
    ] and len(result.stderr.splitlines()) == 1, result.stderr
    assert "'10.0.0.300/8'" in result.stderr


def test_the_setting_is_read_at_start_up():
    env = production_env(OUTBOUND_PRIVATE_NETWORKS="10.20.0.0/16, fd00:1::/64")
    code = ("import json, django; django.setup(); from django.conf import settings as s; "
            "print(json.dumps([str(n) for n in s.OUTBOUND_PRIVATE_NETWORKS]))")
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == ["10.20.0.0/16", "fd00:1::/64"]


# --- who set the URL ------------------------------------------------------------------------------
def test_connect_integration_marks_the_url_operator_set(world):
    integration = operator_connects(world.acme, f"http://{NAME}")
    assert integration.operator_set_fields == ["password", "url", "username"]
    with override_settings(OUTBOUND_PRIVATE_NETWORKS=CORP_NETWORKS):
        assert integration.allowed_networks("url") == CORP_NETWORKS


def test_the_admins_form_marks_the_url_operator_set(world):
    with tenant_context(world.acme):
        form = integration_form_for(EA)(
            {"tenant": world.acme.pk, "provider": "easyappointments", "is_active": "on", "url": f"https://{NAME}",
             "username": "api", "password": PASSWORD, "generate_webhook_secret": "on"},
            instance=TenantIntegration(provider="easyappointments"),
        )
        assert form.is_valid(), form.errors
        integration = form.save()
    assert "url" in integration.operator_set_fields


def test_a_tenant_changing_the_url_takes_the_operators_mark_away(world, client):
    operator_connects(world.acme, f"https://{NAME}")
    unchanged = tenant_saves_url(client, world, f"https://{NAME}")
    assert "url" in unchanged.operator_set_fields  # the same value saved again is still the operator's
    changed = tenant_saves_url(client, world, f"https://other.{NAME}")
    assert "url" not in changed.operator_set_fields
    with override_settings(OUTBOUND_PRIVATE_NETWORKS=CORP_NETWORKS):
        assert changed.allowed_networks("url") == ()


def test_a_url_a_tenant_typed_first_is_not_operator_set(world, client):
    integration = tenant_saves_url(client, world, f"https://{NAME}")
    assert "url" not in integration.operator_set_fields


# --- where a URL may go -----------------------------------------------------------------------------
def test_a_private_address_is_refused_by_default_even_when_an_operator_set_it(world, tls, dns):
    corp, _inside, _ca = tls
    integration = operator_connects(world.acme, f"https://{NAME}:{corp.server_address[1]}")
    with pytest.raises(UnsafeUrl, match="not a public address"):
        check(integration)
    assert corp.connections == 0


@override_settings(OUTBOUND_PRIVATE_NETWORKS=CORP_NETWORKS)
def test_an_operator_set_http_url_inside_the_listed_network_is_called(world, plain, dns):
    corp, inside = plain
    integration = operator_connects(world.acme, f"http://{NAME}:{corp.server_address[1]}")
    assert check(integration) == "1 service(s) visible"
    assert corp.seen == [("/index.php/api/v1/services?length=1", f"{NAME}:{corp.server_address[1]}")]
    assert inside.connections == 0


@override_settings(OUTBOUND_PRIVATE_NETWORKS=CORP_NETWORKS)
def test_an_operator_set_https_url_inside_the_listed_network_is_called(world, tls, dns, monkeypatch):
    corp, inside, ca_file = tls
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca_file)  # trust the test certificate for NAME
    integration = operator_connects(world.acme, f"https://{NAME}:{corp.server_address[1]}")
    assert check(integration) == "1 service(s) visible"
    assert len(corp.seen) == 1 and inside.connections == 0


@override_settings(OUTBOUND_PRIVATE_NETWORKS=CORP_NETWORKS)
def test_http_is_refused_outside_the_listed_networks(world, plain, dns):
    corp, inside = plain
    port = corp.server_address[1]
    integration = operator_connects(world.acme, f"http://{NAME}:{port}")
    dns["answers"] = [PUBLIC]  # a public address: https only
    with pytest.raises(UnsafeUrl, match="not inside OUTBOUND_PRIVATE_NETWORKS"):
        check(integration)
    dns["answers"] = [INSIDE]  # private, but not listed
    with pytest.raises(UnsafeUrl, match="not inside OUTBOUND_PRIVATE_NETWORKS"):
        check(integration)
    assert inside.connections == 0 and corp.connections == 0


def test_http_is_refused_without_any_listed_network(world, plain, dns):
    corp, _inside = plain
    integration = operator_connects(world.acme, f"http://{NAME}:{corp.server_address[1]}")
    with pytest.raises(UnsafeUrl, match="must be https"):
        check(integration)
    assert corp.connections == 0


@override_settings(OUTBOUND_PRIVATE_NETWORKS=CORP_NETWORKS)
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_tenant_typed_private_url_is_refused_even_when_the_network_is_listed(world, client, plain, tls, dns, scheme):
    corp = plain[0] if scheme == "http" else tls[0]
    integration = tenant_saves_url(client, world, f"{scheme}://{NAME}:{corp.server_address[1]}")
    with pytest.raises(UnsafeUrl, match="must be https" if scheme == "http" else "not a public address"):
        check(integration)
    assert corp.connections == 0


@override_settings(OUTBOUND_PRIVATE_NETWORKS=CORP_NETWORKS)
def test_the_setup_page_says_why_a_tenant_typed_private_url_is_not_called(world, client, tls, dns):
    corp, _inside, _ca = tls
    tenant_saves_url(client, world, f"https://{NAME}:{corp.server_address[1]}")
    page = client.post("/setup/easyappointments/check/", follow=True).content.decode()
    assert "not a public address" in page
    assert corp.connections == 0


# --- the address checked is the address connected to -------------------------------------------------
@override_settings(OUTBOUND_PRIVATE_NETWORKS=CORP_NETWORKS)
def test_rebinding_from_the_listed_network_to_an_unlisted_one_is_refused(world, plain, dns):
    """The early check sees CORP; the connection's own lookup gets INSIDE and is refused there."""
    corp, inside = plain
    integration = operator_connects(world.acme, f"http://{NAME}:{corp.server_address[1]}")
    dns["answers"] = [CORP, INSIDE]
    with pytest.raises(UnsafeUrl, match="not inside OUTBOUND_PRIVATE_NETWORKS"):
        check(integration)
    assert inside.connections == 0 and corp.connections == 0


@override_settings(OUTBOUND_PRIVATE_NETWORKS=CORP_NETWORKS)
def test_rebinding_from_public_to_an_unlisted_private_address_is_refused(world, tls, dns):
    corp, inside, _ca = tls
    integration = operator_connects(world.acme, f"https://{NAME}:{corp.server_address[1]}")
    dns["answers"] = [PUBLIC, INSIDE]
    with pytest.raises(UnsafeUrl, match="not a public address"):
        check(integration)
    assert inside.connections == 0


@override_settings(OUTBOUND_PRIVATE_NETWORKS=CORP_NETWORKS)
def test_rebinding_from_public_to_a_listed_address_is_refused_for_a_tenant_url(world, client, tls, dns):
    """A tenant's URL gets no networks: a name answering public for the check and the company
    network for the connection still never reaches the company network."""
    corp, inside, _ca = tls
    integration = tenant_saves_url(client, world, f"https://{NAME}:{corp.server_address[1]}")
    dns["answers"] = [PUBLIC, CORP]
    with pytest.raises(UnsafeUrl, match="not a public address"):
        check(integration)
    assert corp.connections == 0 and inside.connections == 0


def test_the_connection_goes_to_the_address_its_one_lookup_checked(plain, dns):
    """The pinned session resolves once per connection and connects to that very answer: with a
    resolver that would answer INSIDE to any later lookup, the request still lands on CORP."""
    corp, inside = plain
    dns["answers"] = [CORP, INSIDE]
    answer = pinned_session(CORP_NETWORKS, total_retries=0).get(f"http://{NAME}:{corp.server_address[1]}/x", timeout=5)
    assert answer.json() == [{"id": 1}]
    assert dns["asked"] == 1
    assert corp.seen == [("/x", f"{NAME}:{corp.server_address[1]}")] and inside.connections == 0


def test_the_early_check_applies_the_same_rules():
    with pytest.raises(UnsafeUrl, match="must be https"):
        ensure_public_https("http://10.20.0.5/")
    assert ensure_public_https("http://10.20.0.5/", (ipaddress.ip_network("10.20.0.0/16"),)) == "http://10.20.0.5/"
    with pytest.raises(UnsafeUrl, match="not inside OUTBOUND_PRIVATE_NETWORKS"):
        ensure_public_https("http://10.21.0.5/", (ipaddress.ip_network("10.20.0.0/16"),))
    with pytest.raises(UnsafeUrl, match="must be https"):
        ensure_public_https("http://user:pw@10.20.0.5/", (ipaddress.ip_network("10.20.0.0/16"),))
    assert ensure_public_https("https://10.20.0.5/", (ipaddress.ip_network("10.20.0.0/16"),))
