"""The validation mechanism (issue 7.21): the one money parser, text and JSON fitted for their
columns, and the sentence a schema's error becomes. Processing's use of them (``malformed`` at
once, ``dead`` at once) is in test_processing.py; each provider's fuzz cases in test_fuzz.py."""

from datetime import datetime
from datetime import timezone as dt_timezone
from decimal import Decimal
import json

import pytest
from pydantic import ValidationError

from contacts.models import Contact, Payment
from contacts.money import parse_amount, parse_currency
from contacts.services import record_activity, record_payment, upsert_contact
from contacts.values import InvalidValue, clean_email, clean_json, clean_text, fit, parse_moment
from integrations.providers.base import Malformed
from integrations.providers.poshvip.schemas import PurchaseEvent
from integrations.providers.schema import describe
from integrations.registry import get_provider
from tenants.context import tenant_context


# --- money ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "currency", "minor", "expected"), [
    (1999, "usd", True, Decimal("19.99")),
    ("1999", "USD", True, Decimal("19.99")),
    (1000, "JPY", True, Decimal("1000")),
    (1234, "KWD", True, Decimal("1.234")),
    ("19.99", "USD", False, Decimal("19.99")),
    (19.99, "EUR", False, Decimal("19.99")),
    ("12.500", "USD", False, Decimal("12.5")),  # trailing zeros are not a fraction of a cent
    (0, "USD", True, Decimal("0")),
])
def test_the_money_parser_reads_plain_amounts(value, currency, minor, expected):
    assert parse_amount(value, currency, minor=minor) == expected


@pytest.mark.parametrize(("value", "currency", "minor", "why"), [
    ("abc", "USD", False, "is not a plain decimal number"),
    ("NaN", "USD", False, "is not a plain decimal number"),
    ("Infinity", "USD", False, "is not a plain decimal number"),
    ("-Infinity", "USD", True, "is not a plain decimal number"),
    ("1e1000", "USD", False, "is not a plain decimal number"),
    ("1E3", "USD", True, "is not a plain decimal number"),
    (float("nan"), "USD", False, "is not a finite number"),
    (float("inf"), "USD", True, "is not a finite number"),
    (1e16, "USD", True, "is not a plain decimal number"),  # a float in exponent form
    (True, "USD", True, "is not a number"),
    (None, "USD", False, "is not a number"),
    ({"value": 1}, "USD", False, "is not a number"),
    (12.7, "USD", True, "is not a whole number of minor units"),
    ("12.7", "USD", True, "is not a whole number of minor units"),
    ("12.345", "USD", False, "is finer than the smallest unit of USD"),
    ("10.5", "JPY", False, "is finer than the smallest unit of JPY"),
    (10**15, "USD", True, "is too large to store"),
    (2**63, "USD", True, "is too large to store"),
    ("1000000000000", "USD", False, "is too large to store"),
    ("9" * 400, "USD", False, "is not a plain decimal number"),
    (-500, "USD", True, "is negative"),
])
def test_the_money_parser_refuses_what_it_cannot_book_exactly(value, currency, minor, why):
    with pytest.raises(InvalidValue, match=why):
        parse_amount(value, currency, minor=minor)


def test_a_negative_amount_only_when_asked_for():
    assert parse_amount(-500, "USD", minor=True, signed=True) == Decimal("-5")


@pytest.mark.parametrize("currency", ["USDX", "US", "", "U$D", None, 840, "ÜSD"])
def test_a_currency_is_three_iso_letters(currency):
    with pytest.raises(InvalidValue, match="is not a three-letter ISO 4217 code"):
        parse_currency(currency)


def test_the_sentence_names_the_amount_and_quotes_little_of_it():
    with pytest.raises(InvalidValue) as refused:
        parse_amount("x" * 500, "USD", what="purchase.total_amount")
    assert str(refused.value).startswith("the purchase.total_amount 'xxxx")
    assert len(str(refused.value)) < 150


# --- text, JSON, e-mail, dates -----------------------------------------------------------------
def test_text_loses_nul_and_lone_surrogates_and_fits_its_column():
    assert clean_text("  Jo\x00rdan\ud800 ") == "Jordan\ufffd"
    assert clean_text(None) == "" and clean_text(42) == "42"
    assert fit(Contact, "first_name", "a" * 500) == "a" * 150
    assert fit(Payment, "description", "\x00" * 10 + "b" * 300) == "b" * 255


def test_json_strings_and_keys_are_cleaned_at_every_level():
    dirty = {"na\x00me": ["x\x00", {"deep\ud83d": "v\x00"}], "n": 1, "ok": None}
    assert clean_json(dirty) == {"name": ["x", {"deep\ufffd": "v"}], "n": 1, "ok": None}


def test_json_deeper_than_any_platform_sends_is_refused():
    nested: list = []
    for _ in range(100):
        nested = [nested]
    with pytest.raises(InvalidValue, match="nested deeper"):
        clean_json(nested)


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "x" * 250 + "@example.com", "a\x00@"])
def test_an_email_is_checked_not_cut(email):
    with pytest.raises(InvalidValue):
        clean_email(email)


def test_an_email_is_lowercased_and_cleaned():
    assert clean_email(" Jordan.Blake@Example.COM\x00 ") == "jordan.blake@example.com"
    assert clean_email("") == "" and clean_email(None) == ""


def test_moments():
    assert parse_moment("2025-11-22T19:04:11Z") == datetime(2025, 11, 22, 19, 4, 11, tzinfo=dt_timezone.utc)
    assert parse_moment("2025-11-22T19:04:11").tzinfo == dt_timezone.utc  # naive means UTC
    assert parse_moment(1732302251) == datetime(2024, 11, 22, 19, 4, 11, tzinfo=dt_timezone.utc)
    assert parse_moment(None) is None and parse_moment("") is None
    for bad in (2**63, -1, float("nan"), "yesterday", "2026-02-30T00:00:00Z", True, [2026]):
        with pytest.raises(InvalidValue):
            parse_moment(bad)


# --- the services fit what they store ----------------------------------------------------------
def test_services_store_cleaned_and_fitted_values(stripe):
    with tenant_context(stripe.acme):
        contact, _ = upsert_contact(source="poshvip", email="NUL@example.com", first_name="Jo\x00" + "n" * 400,
                                    phone="+1" * 40, custom_fields={"k\x00": "v\x00"})
        record_activity(contact, "checked_in", key="k1", note="a\x00b")
        contact.refresh_from_db()
        assert contact.first_name == "Jo" + "n" * 148 and len(contact.phone) == 40
        assert contact.custom_fields == {"k": "v"} and contact.activity[0]["note"] == "ab"
        payment, _ = record_payment(payment_event_id="p:1", source="poshvip", amount=Decimal("9.99"), currency="usd",
                                    description="d\x00" * 300, metadata={"m": "\x00"})
        payment.refresh_from_db()
        assert (payment.currency, payment.description, payment.metadata) == ("USD", "d" * 255, {"m": ""})


@pytest.mark.parametrize(("amount", "currency"), [(Decimal("9.999"), "USD"), (Decimal("NaN"), "USD"), (1, "DOLLARS")])
def test_a_payment_is_refused_rather_than_rounded(stripe, amount, currency):
    with tenant_context(stripe.acme), pytest.raises(InvalidValue):
        record_payment(payment_event_id="p:2", source="poshvip", amount=amount, currency=currency)


def test_an_id_longer_than_its_column_is_refused_not_cut(stripe):
    with tenant_context(stripe.acme), pytest.raises(InvalidValue, match="longer than 255"):
        record_payment(payment_event_id="p:" + "9" * 300, source="poshvip", amount=Decimal(1), currency="USD")


# --- the sentence a schema's error becomes -----------------------------------------------------
def sentence(payload) -> str:
    with pytest.raises(ValidationError) as refused:
        PurchaseEvent.model_validate(payload)
    return describe(refused.value, "the Posh.VIP purchase.created event")


def test_sentences_name_the_field():
    assert sentence({}) == "the Posh.VIP purchase.created event has no `purchase`"
    assert sentence({"purchase": "pur_1"}) == "`purchase` in the Posh.VIP purchase.created event is not an object"
    assert sentence({"purchase": {"id": "p", "tickets": "two"}}) == (
        "`purchase.tickets` in the Posh.VIP purchase.created event is not a list")
    assert sentence({"purchase": {"id": "p", "tickets": [{}, 3]}}) == (
        "`purchase.tickets[1]` in the Posh.VIP purchase.created event is not an object")
    assert sentence({"purchase": {"id": "p", "currency": "USDX"}}) == (
        "`purchase.currency` in the Posh.VIP purchase.created event: the currency 'USDX' is not a three-letter "
        "ISO 4217 code")
    assert sentence({"purchase": {"id": {"a": 1}, "customer": {"email": "nope"}}}) == (
        "`purchase.id` in the Posh.VIP purchase.created event is not an id (text or a number) (and 1 more problem)")


def test_the_provider_turns_a_schema_error_into_malformed():
    provider = get_provider("poshvip")
    with pytest.raises(Malformed) as refused:
        provider.validate("purchase.created", {"purchase": {"id": "p", "total_amount": "NaN"}})
    assert str(refused.value) == (
        "`purchase.total_amount` in the Posh.VIP purchase.created event: the amount 'NaN' is not a plain decimal "
        "number (no exponent, NaN or infinity)")
    assert isinstance(refused.value.__cause__, ValidationError)  # the details, for the traceback
    data = provider.validate("purchase.created", {"purchase": {"id": 7, "total_amount": "45.00", "currency": "usd"}})
    assert (data.purchase.id, data.purchase.total_amount, data.purchase.currency) == ("7", Decimal("45.00"), "USD")
    assert provider.validate("no.such.type", {"anything": 1}) is None  # no schema, nothing to check


def test_the_parser_refuses_json_nested_deeper_than_the_limit_and_only_that():
    from integrations.providers.base import MAX_JSON_DEPTH, load_json

    def nested(depth: int) -> bytes:
        return b"[" * depth + b"1" + b"]" * depth

    assert load_json(nested(MAX_JSON_DEPTH)) is not None
    with pytest.raises(ValueError, match="nested deeper"):
        load_json(nested(MAX_JSON_DEPTH + 1))
    with pytest.raises(ValueError, match="nested deeper"):
        load_json(b'{"a": [' + b'{"b": ' * MAX_JSON_DEPTH + b"1" + b"}" * MAX_JSON_DEPTH + b"]}")
    # Many brackets, shallow: a long list of objects, and brackets inside strings, are fine.
    wide = json.dumps({"items": [{"n": i, "tags": ["a", "b"]} for i in range(500)]}).encode()
    assert len(load_json(wide)["items"]) == 500
    assert load_json(json.dumps({"text": "[[[{{{" * 100}).encode())["text"].startswith("[[[")
    assert load_json(nested(MAX_JSON_DEPTH).decode()) is not None  # text as well as bytes
