"""What the Stripe handlers look up with the tenant's secret key, at ``STRIPE_API_BASE``.

Events of current API versions leave out what older ones carried: since 2022-11-15 a PaymentIntent
has no ``charges`` list (so no billing details), a subscription names only its customer, and since
2025-03-31 (basil) an invoice no longer names its PaymentIntent. ``lookups`` gets what is missing
*before* the row is locked (``webhooks.processing``'s fetch phase): no transaction or lock is
held while Stripe answers.

A customer is cached per tenant and customer for ``CUSTOMER_CACHE_SECONDS``, so a burst of
events of one customer asks Stripe once. A key without the needed permission (401/403) or an
object Stripe does not show (404) is not retried: the payment is recorded without what the lookup
would have added, and the reason is kept on it. 429 and 5xx are retried (``RateLimited``,
``ApiError``).
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache

from engarde.errors import Explained
from integrations.http import ApiError, RateLimited, make_session, retry_after_seconds

CUSTOMER_CACHE_SECONDS = 3600
#: Answers that no retry changes: the key, its permissions or the object.
REFUSED = (401, 403, 404)


class LookupRefused(Explained):
    """Stripe will not show this object to this key; the message says which and why."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class StripeApi:
    def __init__(self, secret_key: str, tenant_id, session=None):
        self.tenant_id = tenant_id
        self.session = session or make_session()
        self.session.headers.update({"Authorization": f"Bearer {secret_key}"})

    def get(self, path: str, params: dict | None = None) -> dict:
        """``GET <STRIPE_API_BASE><path>``; the message of a failure names the path, never the key.
        ``RateLimited`` for a 429, ``LookupRefused`` for what no retry changes (401, 403, 404),
        ``ApiError`` (with the status and any Retry-After) for the rest; the session's own
        exceptions (``requests.RequestException``) when Stripe could not be reached."""
        response = self.session.get(f"{settings.STRIPE_API_BASE}{path}", params=params or None, allow_redirects=False)
        status = response.status_code
        if status == 429:
            raise RateLimited(retry_after_seconds(response))
        if status in REFUSED:
            raise LookupRefused(f"Stripe answered {status} to GET {path} (see the key's permissions)", status)
        if not 200 <= status < 300:
            raise ApiError(f"Stripe answered {status} to GET {path}", status,
                           retry_after_seconds(response, default=0) or None)
        try:
            answer = response.json()
        except ValueError:
            raise ApiError(f"Stripe answered GET {path} with something that is not JSON", status) from None
        if not isinstance(answer, dict):
            raise ApiError(f"Stripe answered GET {path} with something that is not an object", status)
        return answer

    def customer(self, customer_id: str) -> dict:
        """The customer's e-mail, name and phone (only those are kept, and only for an hour)."""
        key = f"stripe:customer:{self.tenant_id}:{customer_id}"
        found = cache.get(key)
        if found is None:
            customer = self.get(f"/v1/customers/{customer_id}")
            found = {name: customer.get(name) or "" for name in ("email", "name", "phone")}
            found["deleted"] = bool(customer.get("deleted"))
            cache.set(key, found, CUSTOMER_CACHE_SECONDS)
        return found

    def charge(self, charge_id: str) -> dict:
        return self.get(f"/v1/charges/{charge_id}")

    def invoice_payment_intent(self, invoice_id: str) -> str:
        """The PaymentIntent that paid the invoice (basil and later: ``/v1/invoice_payments``)."""
        answer = self.get("/v1/invoice_payments", {"invoice": invoice_id, "limit": 10})
        payments = [p for p in answer.get("data") or [] if isinstance(p, dict)]
        paid = [p for p in payments if p.get("status") == "paid"] or payments
        for entry in paid:
            payment = entry.get("payment") if isinstance(entry.get("payment"), dict) else {}
            intent = payment.get("payment_intent")
            if isinstance(intent, dict):
                intent = intent.get("id")
            if isinstance(intent, str) and intent:
                return intent
        return ""
