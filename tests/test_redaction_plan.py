"""The receiver's per-process preparations (da7330f): redaction plans kept per set of secrets and
provider headers, and the delivery counter's labelled children kept per label set. What is kept
must give the same answers as deciding each time, stay bounded whatever a sender writes, and count
into the metric operators scrape."""

from engarde import metrics
from webhooks import redaction
from webhooks.redaction import REDACTED, redact_bytes, redact_headers

SECRET = "whsec_plan_current_0123456789"
LONGER = SECRET + "_and_more"
OTHER = "whsec_plan_rotated_9876543210"


def test_a_kept_plan_redacts_as_the_first_call_did():
    headers = {"Stripe-Signature": "t=1,v1=abc", "X-Echo": f"url?token={LONGER}", "Accept": "*/*",
               "X-Api-Key": "k", "User-Agent": "Stripe/1.0"}
    first = redact_headers(headers, [SECRET, LONGER], ("stripe-signature",))
    again = redact_headers(headers, [SECRET, LONGER], ("stripe-signature",))
    assert first == again == {
        "Stripe-Signature": REDACTED, "X-Echo": f"url?token={REDACTED}", "Accept": "*/*",
        "X-Api-Key": REDACTED, "User-Agent": "Stripe/1.0",
    }


def test_plans_differ_by_secrets_so_a_rotation_redacts_the_new_secret():
    before = redact_bytes(f'{{"a":"{SECRET}","b":"{OTHER}"}}'.encode(), [SECRET])
    after = redact_bytes(f'{{"a":"{SECRET}","b":"{OTHER}"}}'.encode(), [OTHER])
    assert SECRET.encode() not in before and OTHER.encode() in before
    assert OTHER.encode() not in after and SECRET.encode() in after


def test_provider_headers_count_in_the_plan_whatever_their_case():
    assert redact_headers({"x-custom-sig": "v"}, [], ("X-Custom-Sig",)) == {"x-custom-sig": REDACTED}
    assert redact_headers({"x-custom-sig": "v"}, [], ()) == {"x-custom-sig": "v"}


def test_a_plan_keeps_few_and_short_names_only():
    plan = redaction.redaction(["whsec_plan_bounded_secret_01"], ("Stripe-Signature",))
    forged = {f"X-Made-Up-{i}": "v" for i in range(redaction.CACHED_NAMES * 4)}
    long_name = "X-" + "a" * (redaction.CACHED_NAME_LENGTH + 10) + "-Token"
    forged[long_name] = "v"
    result = plan.headers(forged)
    assert len(plan.names) <= redaction.CACHED_NAMES
    assert long_name not in plan.names
    # Decided all the same, kept or not: "token" in a name is a secret header.
    assert result[long_name] == REDACTED
    assert result["X-Made-Up-0"] == "v" and result[f"X-Made-Up-{redaction.CACHED_NAMES * 4 - 1}"] == "v"


def test_kept_counter_children_are_the_metrics_own():
    child = metrics._delivery_counter("stripe", "received", "")
    assert child is metrics.DELIVERIES.labels("stripe", "received", "")
    before = child._value.get()
    metrics.delivery("stripe", "received")
    metrics.delivery("stripe", "no-such-status")  # counted as a handshake, as before
    assert metrics.DELIVERIES.labels("stripe", "received", "")._value.get() == before + 1
    assert metrics._delivery_counter("stripe", "handshake", "") is metrics.DELIVERIES.labels("stripe", "handshake", "")
