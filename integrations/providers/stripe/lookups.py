"""The fetch phase of Stripe events: what the event leaves out, asked of Stripe before the row is
locked (``Provider.fetchers``; see ``api.py`` for the why and the cache).

Each fetcher returns a dict for ``event.fetched``:

* ``payer``: ``{"email", "name", "phone"}`` of the customer, or of ``latest_charge``'s billing
  details, when the event itself names nobody (PaymentIntents since 2022-11-15);
* ``customer``: the same, for a subscription (which names only ``customer``);
* ``payment_intent``: the PaymentIntent that paid an invoice of basil or later;
* ``charge_refunded``: a charge's ``amount_refunded`` now, after one of its refunds changed;
* ``lookup_error``: why a lookup was refused (the key's permissions), kept on the payment.

Nothing is asked when the event carries what is needed or the tenant has entered no secret key.
"""

from __future__ import annotations

from integrations.providers.stripe.api import LookupRefused, StripeApi


def _api(event) -> StripeApi | None:
    key = event.integration.value("secret_key")
    return StripeApi(key, event.integration.tenant_id) if key else None


def _guarded(lookup):
    """A refused lookup becomes ``lookup_error``; 429, 5xx and network errors propagate (retried)."""
    def fetcher(event) -> dict:
        api = _api(event)
        if api is None:
            return {}
        try:
            return lookup(event, api)
        except LookupRefused as exc:
            return {"lookup_error": str(exc)}
    fetcher.__name__ = lookup.__name__
    return fetcher


def details_of_charge(charge) -> dict:
    details = charge.billing_details
    return {"email": details.email or charge.receipt_email, "name": details.name, "phone": details.phone}


def _payer_in_event(intent) -> bool:
    """Whether a PaymentIntent names its payer itself (old ``charges``, an expanded latest charge)."""
    charges = intent.charges.data if intent.charges else []
    charge = charges[0] if charges else intent.latest_charge if not isinstance(intent.latest_charge, str) else None
    return bool(charge is not None and details_of_charge(charge)["email"])


@_guarded
def payment_intent(event, api: StripeApi) -> dict:
    intent = event.data.data.object
    if _payer_in_event(intent) or intent.receipt_email:
        return {}
    if intent.customer:
        return {"payer": api.customer(intent.customer)}
    if isinstance(intent.latest_charge, str):
        from integrations.providers.stripe.schemas import Charge

        return {"payer": details_of_charge(Charge.model_validate(api.charge(intent.latest_charge)))}
    return {}


@_guarded
def charge(event, api: StripeApi) -> dict:
    obj = event.data.data.object
    if details_of_charge(obj)["email"] or not obj.customer:
        return {}
    return {"payer": api.customer(obj.customer)}


@_guarded
def invoice(event, api: StripeApi) -> dict:
    obj = event.data.data.object
    answer = {}
    if not _invoice_intent(obj) and obj.amount_paid:
        answer["payment_intent"] = api.invoice_payment_intent(obj.id)
    if not obj.customer_email and obj.customer:
        answer["payer"] = api.customer(obj.customer)
    return answer


@_guarded
def subscription(event, api: StripeApi) -> dict:
    return {"customer": api.customer(event.data.data.object.customer)}


@_guarded
def refund(event, api: StripeApi) -> dict:
    obj = event.data.data.object
    if not obj.charge:
        return {}
    return {"charge_refunded": api.charge(obj.charge).get("amount_refunded")}


def _invoice_intent(invoice) -> str:
    """The PaymentIntent an invoice names itself: ``payment_intent`` until basil, ``payments``
    (the paid one first) since."""
    if invoice.payment_intent:
        return invoice.payment_intent
    payments = invoice.payments.data if invoice.payments else []
    paid = [p for p in payments if p.status == "paid"] or payments
    return next((p.payment.payment_intent for p in paid if p.payment.payment_intent), "")


invoice_intent = _invoice_intent


FETCHERS = {
    **dict.fromkeys(("payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled"),
                    payment_intent),
    **dict.fromkeys(("charge.succeeded", "charge.failed", "charge.refunded"), charge),
    **dict.fromkeys(("invoice.paid", "invoice.payment_succeeded", "invoice.payment_failed"), invoice),
    **dict.fromkeys(("customer.subscription.created", "customer.subscription.updated",
                     "customer.subscription.deleted", "customer.subscription.trial_will_end"), subscription),
    "charge.refund.updated": refund,
}
