"""What the Stripe handlers read of each event type (``integrations.providers.schema``).

One model per Stripe object, covering the API versions from 2020-08-27 to today: fields that moved
are all declared, and the handlers read whichever the event's version carries (a PaymentIntent's
``charges`` list until 2022-11-15, ``latest_charge`` since; an invoice's ``payment_intent`` and
``subscription`` until basil, ``payments`` and ``parent.subscription_details`` since; a
subscription's ``current_period_end`` on the subscription until basil, on its items since).
Expandable fields (``customer``, ``latest_charge``…) may be an id or the object.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, create_model

from integrations.providers.schema import Currency, Email, Id, JsonObject, MinorUnits, Moment, Schema, Text


def _ref(value: Any) -> str | None:
    """An expandable field: the id, whether Stripe sent the id or the expanded object."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        value = value.get("id")
    if not isinstance(value, str) or not value.strip():
        raise ValueError("is not a Stripe id or object")
    if len(value) > 255 or "\x00" in value:
        raise ValueError("is not a Stripe id")
    return value.strip()


#: An expandable reference: ``"cus_…"`` or ``{"id": "cus_…", …}``; ``None`` when absent.
Ref = Annotated[str | None, BeforeValidator(_ref)]


class Details(Schema):
    """``billing_details`` of a charge, ``customer_details`` of a checkout session."""

    email: Email = ""
    name: Text = ""
    phone: Text = ""


class Charge(Schema):
    id: Id
    amount: MinorUnits = 0
    amount_refunded: MinorUnits = 0
    currency: Currency
    payment_intent: Ref = None
    customer: Ref = None
    invoice: Ref = None  # until basil
    billing_details: Details = Details()
    receipt_email: Email = ""
    description: Text = ""
    failure_code: Text = ""
    failure_message: Text = ""
    metadata: JsonObject = {}


class ChargeList(Schema):
    data: list[Charge] = []


class PaymentError(Schema):
    code: Text = ""
    decline_code: Text = ""
    message: Text = ""


class PaymentIntent(Schema):
    id: Id
    amount: MinorUnits = 0
    amount_received: MinorUnits = 0
    currency: Currency
    customer: Ref = None
    receipt_email: Email = ""
    description: Text = ""
    metadata: JsonObject = {}
    charges: ChargeList | None = None  # until 2022-11-15
    latest_charge: Charge | Ref = None  # since 2022-11-15: an id, unless expanded
    invoice: Ref = None  # until basil
    last_payment_error: PaymentError | None = None
    cancellation_reason: Text = ""


class CheckoutSession(Schema):
    id: Id
    mode: Text = "payment"
    payment_status: Text = ""
    amount_total: MinorUnits | None = None
    currency: Currency | None = None  # null in setup mode
    customer: Ref = None
    customer_details: Details | None = None
    customer_email: Email = ""
    payment_intent: Ref = None  # null in subscription and setup mode
    invoice: Ref = None  # subscription mode (and one-off checkouts that make an invoice)
    subscription: Ref = None
    metadata: JsonObject = {}


class InvoicePaymentRef(Schema):
    payment_intent: Ref = None
    charge: Ref = None


class InvoicePayment(Schema):
    status: Text = ""
    payment: InvoicePaymentRef = InvoicePaymentRef()


class InvoicePayments(Schema):
    data: list[InvoicePayment] = []


class SubscriptionDetails(Schema):
    subscription: Ref = None


class InvoiceParent(Schema):
    subscription_details: SubscriptionDetails | None = None


class Invoice(Schema):
    id: Id
    number: Text = ""
    status: Text = ""
    amount_due: MinorUnits = 0
    amount_paid: MinorUnits = 0
    currency: Currency
    customer: Ref = None
    customer_email: Email = ""
    customer_name: Text = ""
    customer_phone: Text = ""
    billing_reason: Text = ""
    attempt_count: int = 0
    subscription: Ref = None  # until basil
    payment_intent: Ref = None  # until basil
    charge: Ref = None  # until basil
    parent: InvoiceParent | None = None  # since basil
    payments: InvoicePayments | None = None  # since basil, when Stripe includes it


class Price(Schema):
    id: Id
    nickname: Text = ""
    product: Ref = None


class Plan(Schema):
    id: Id
    nickname: Text = ""
    product: Ref = None


class SubscriptionItem(Schema):
    price: Price | None = None
    plan: Plan | None = None
    current_period_end: Moment = None  # since basil


class SubscriptionItems(Schema):
    data: list[SubscriptionItem] = []


class Subscription(Schema):
    id: Id
    customer: Ref
    status: Text
    cancel_at_period_end: bool = False
    current_period_end: Moment = None  # until basil
    trial_end: Moment = None
    items: SubscriptionItems = SubscriptionItems()
    plan: Plan | None = None  # single-plan subscriptions of old versions


class Dispute(Schema):
    id: Id
    amount: MinorUnits
    currency: Currency
    charge: Ref
    payment_intent: Ref = None
    reason: Text = ""
    status: Text


class Refund(Schema):
    id: Id
    amount: MinorUnits
    currency: Currency
    charge: Ref = None
    payment_intent: Ref = None
    status: Text = ""


def _event(obj: type, name: str) -> type:
    """The envelope of an event whose ``data.object`` is ``obj``: missing or not an object is
    malformed, and ``created`` must be a real moment (≥ 2⁶³ is refused)."""
    data = create_model(f"{name}Data", __base__=Schema, object=(obj, ...))
    return create_model(f"{name}Event", __base__=Schema, id=(Id, ...), created=(Moment, None),
                        api_version=(Text, ""), data=(data, ...))


PaymentIntentEvent = _event(PaymentIntent, "PaymentIntent")
ChargeEvent = _event(Charge, "Charge")
CheckoutSessionEvent = _event(CheckoutSession, "CheckoutSession")
InvoiceEvent = _event(Invoice, "Invoice")
SubscriptionEvent = _event(Subscription, "Subscription")
DisputeEvent = _event(Dispute, "Dispute")
RefundEvent = _event(Refund, "Refund")

#: Which object each handled event type carries.
OBJECT_EVENTS = {
    PaymentIntentEvent: ("payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled"),
    ChargeEvent: ("charge.succeeded", "charge.failed", "charge.refunded"),
    CheckoutSessionEvent: ("checkout.session.completed", "checkout.session.async_payment_succeeded",
                           "checkout.session.async_payment_failed"),
    InvoiceEvent: ("invoice.paid", "invoice.payment_succeeded", "invoice.payment_failed"),
    SubscriptionEvent: ("customer.subscription.created", "customer.subscription.updated",
                        "customer.subscription.deleted", "customer.subscription.trial_will_end"),
    DisputeEvent: ("charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed",
                   "charge.dispute.funds_withdrawn", "charge.dispute.funds_reinstated"),
    RefundEvent: ("charge.refund.updated",),
}
SCHEMAS = {event_type: model for model, types in OBJECT_EVENTS.items() for event_type in types}
