"""``customer.subscription.*`` → the contact's subscription state (status, plan, period end,
cancel at period end, trial end), where tenant users see it (the contact's page, the API).

A subscription names only its customer: the contact is the one already linked to that customer
(invoices and checkouts link it), else the one the fetch phase found by asking Stripe for the
customer (``lookups.subscription``). With neither, the row is retried: the invoice that names the
customer's e-mail usually follows within seconds.

Stripe does not keep order: an event older than the state shown (``subscription_changed_at``)
changes nothing.
"""

from __future__ import annotations

from contacts.models import Contact
from contacts.services import upsert_contact
from contacts.values import fit
from engarde.errors import Explained

EVENTS = (
    "customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted",
    "customer.subscription.trial_will_end",
)
EVENT_DOCS = {
    "customer.subscription.created": "shows the subscription on the contact: status, plan, current period end, "
                                     "cancel at period end",
    "customer.subscription.updated": "keeps the contact's subscription state current (older events change nothing)",
    "customer.subscription.deleted": "shows the subscription as canceled",
    "customer.subscription.trial_will_end": "keeps the state and the trial's end current",
}


class CustomerUnknown(Explained):
    """No contact is linked to this Stripe customer yet, and Stripe was not asked (no secret key):
    retried, since the customer's invoice usually arrives just after."""


def contact_of_customer(customer_id: str | None):
    return Contact.objects.filter(stripe_customer_id=customer_id).first() if customer_id else None


def _contact(event, subscription):
    contact = contact_of_customer(subscription.customer)
    if contact is not None:
        return contact
    customer = (event.fetched or {}).get("customer") or {}
    if customer.get("email"):
        first, _, last = (customer.get("name") or "").strip().partition(" ")
        contact, _ = upsert_contact(source="stripe", email=customer["email"], first_name=first, last_name=last,
                                    phone=customer.get("phone") or "", stripe_customer_id=subscription.customer)
        return contact
    if (event.fetched or {}).get("lookup_error") or customer.get("deleted"):
        from integrations.providers.base import PermanentError

        raise PermanentError(f"Stripe customer {subscription.customer} cannot be looked up: "
                             f"{(event.fetched or {}).get('lookup_error') or 'deleted'}")
    raise CustomerUnknown(f"no contact is linked to Stripe customer {subscription.customer} yet "
                          "(enter the secret key to look customers up)")


def plan_name(subscription) -> str:
    """The first item's price (or legacy plan) nickname, else its product, else its id."""
    items = subscription.items.data
    price = (items[0].price or items[0].plan) if items else subscription.plan
    if price is None:
        return ""
    return price.nickname or price.product or price.id


def period_end(subscription):
    """On the subscription until basil, on each item since (the latest of them)."""
    ends = [item.current_period_end for item in subscription.items.data if item.current_period_end]
    return subscription.current_period_end or (max(ends) if ends else None)


def subscription_changed(event):
    subscription = event.data.data.object
    contact = _contact(event, subscription)
    when = event.data.created
    if contact.subscription_changed_at and when and when < contact.subscription_changed_at:
        return  # an older state than the one shown
    contact.subscription_id = fit(Contact, "subscription_id", subscription.id)
    contact.subscription_status = fit(Contact, "subscription_status", subscription.status)
    contact.subscription_plan = fit(Contact, "subscription_plan", plan_name(subscription))
    contact.subscription_period_end = period_end(subscription)
    contact.subscription_cancel_at_period_end = subscription.cancel_at_period_end
    contact.subscription_trial_end = subscription.trial_end
    contact.subscription_changed_at = when
    contact.save()
