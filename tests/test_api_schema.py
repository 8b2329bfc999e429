"""The OpenAPI schema says what the API does: schemathesis sends requests generated from
``/api/schema/`` (valid and invalid ones) to the app in-process, as a signed-in tenant owner, and
runs every one of its checks on each answer: no 5xx, only documented status codes, content types
and headers, answers that fit their documented shape, valid requests accepted, invalid ones
refused, authentication not ignored.

Bounded (a few examples per operation, no shrinking) and derandomized, so it is quick and gives
the same cases on every run.
"""

import hypothesis
import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from schemathesis.checks import CHECKS, load_all_checks

from engarde.wsgi import application
from tenants.models import ApiToken

load_all_checks()
# Every check but positive_data_acceptance: a schema-valid string may still hold a NUL, which every
# URL of ours refuses with a 400 by design (tests/test_receiver_security.py), and a schema-valid day
# may be outside engarde.days' range (a 400 with the reason); both are documented 400s, which
# status_code_conformance still checks.
ALL_CHECKS = [check for check in CHECKS.get_all() if check.__name__ != "positive_data_acceptance"]

schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
schema.app = application


@pytest.fixture
def owner_token(world):
    _, key = ApiToken.issue(world.acme, world.alice)
    return key


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """The app runs in-process on the test's database connection, inside the test's transaction:
    Django's end-of-request cleanup would close it (its own test client switches that off too)."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@schema.parametrize()
@hypothesis.settings(
    max_examples=3, deadline=None, derandomize=True, database=None,
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_the_api_does_what_its_schema_says(case, owner_token):
    case.call_and_validate(headers={"Authorization": f"Bearer {owner_token}", "Host": "localhost"}, checks=ALL_CHECKS)


def test_every_check_schemathesis_has_is_run():
    names = {check.__name__ for check in ALL_CHECKS}
    assert {"not_a_server_error", "status_code_conformance", "response_schema_conformance",
            "negative_data_rejection", "ignored_auth"} <= names
    # Left out on purpose, and only it (see ALL_CHECKS): a NUL or an out-of-range day is a 400 by design.
    assert {check.__name__ for check in CHECKS.get_all()} - names == {"positive_data_acceptance"}
