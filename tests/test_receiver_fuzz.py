"""A small Hypothesis fuzzer of the webhook receiver (issue 7.20): arbitrary tenant parts, bodies,
signature headers and query strings, unsigned or correctly signed with the tenant's secret, to
every source. Whatever arrives, the answer is never a 5xx (the test client re-raises a view's
exception, so a crash fails here with its traceback). Bounded: a few hundred examples in all,
no deadline (the machine is shared), derandomised so a run is repeatable.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st

from integrations.registry import PROVIDERS
from webhooks.testing import connect, freeze_rate_windows

SECRET = "fuzz-secret-0123456789abcdefghij"
SOURCES = sorted(name for name, provider in PROVIDERS.items() if provider.receives_webhooks)

FUZZ = settings(
    max_examples=100, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

text = st.text(st.characters(codec="utf-8"), max_size=40)  # a URL part: what a client can encode
json_text = st.text(st.characters(), max_size=30)  # any code point, lone surrogates and NUL included
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | json_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(json_text, children, max_size=4),
    max_leaves=12,
)
# Keys the providers read their event type and id from, so the fuzzer reaches past parsing.
NAMED = st.fixed_dictionaries({}, optional={
    key: json_values for key in ("type", "event", "action", "id", "event_ts", "webhookId", "config", "payload",
                                 "purchase", "ticket", "subscriber", "contact_id", "locationId", "api_url")
})
bodies = st.one_of(
    st.binary(max_size=300),
    NAMED.map(lambda value: json.dumps(value).encode()),
    json_values.map(lambda value: json.dumps(value).encode()),
    # Nesting around our limit (64) and past the parser's (a RecursionError near 1000).
    st.sampled_from([2, 64, 65, 999, 1500, 100_000]).map(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth),
)
header_values = st.text(st.characters(min_codepoint=1, max_codepoint=0x2FF, exclude_characters="\r\n"), max_size=60)


@pytest.fixture
def receiver(world, client, monkeypatch):
    freeze_rate_windows(monkeypatch)
    for source in SOURCES:
        connect(world.acme, source, SECRET, **({"location_id": "loc-fuzz"} if source == "ghl" else {}))
    return world, client


@FUZZ
@given(source=st.sampled_from(SOURCES), tenant=st.one_of(st.just("<id>"), st.just("<id>"), st.just("acme"), text.filter(bool)),
       body=bodies, signed=st.sampled_from([True, True, True, False]), noise=st.dictionaries(st.sampled_from(
           ["Stripe-Signature", "x-zm-signature", "x-zm-request-timestamp", "x-ghl-signature", "x-wh-signature",
            "X-Posh-Signature", "X-Webhook-Token", "X-Eventbrite-Delivery", "X-Forwarded-For"]), header_values,
           max_size=3),
       query=st.dictionaries(st.sampled_from(["token", "x"]), header_values, max_size=2))
def test_the_receiver_never_answers_5xx(receiver, source, tenant, body, signed, noise, query):
    world, client = receiver
    tenant_part = str(world.acme.pk) if tenant == "<id>" else quote(tenant, safe="")
    headers, params = dict(noise), dict(query)
    if signed:
        auth_headers, auth_query = PROVIDERS[source].test_delivery_auth(body, SECRET)
        headers.update(auth_headers)
        params.update(auth_query)
    url = f"/api/webhooks/{tenant_part}/{source}/"
    if params:
        url += "?" + "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in params.items())
    meta = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
    response = client.post(url, data=body, content_type="application/json", **meta)
    event(f"{response.status_code} {response.json().get('status', '')}")  # --hypothesis-show-statistics
    assert response.status_code < 500, (response.status_code, response.content[:200])
