"""Idempotent upserts that webhook handlers (and syncs) use. Run inside a tenant context.

Each write is keyed on a unique constraint of the database, so a concurrent duplicate (two
workers, a replay, a redelivery) ends on the same row instead of a second one: we try the insert in
a savepoint and, when the unique key is taken, update the row that holds it.

Every value is made fit for its column here (``contacts.values``: NUL and lone surrogates removed,
text cut to its column, ids and e-mails refused rather than cut) and every amount goes through the
one money parser (``contacts.money``), so no caller can store what PostgreSQL refuses or book a
rounded sum. A refusal is ``InvalidValue``, which processing marks ``malformed``.

Savepoints and ``optimistic_writes()``: an insert that may meet a concurrent duplicate runs in a
savepoint, so the unique key's refusal leaves the transaction usable and the row that won is
read instead. Inside ``optimistic_writes()`` (the drain's batch, which runs many handlers in one
transaction and has a safe way to redo them) there are no savepoints, two round trips fewer per
write: a refusal is raised, the batch rolls back, and its rows are processed again one by one,
each in its own transaction with savepoints. A conflict is rare (two deliveries of one new
customer processed at the same moment), so the batch almost always commits.
"""

from __future__ import annotations

import contextvars
import logging
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterator

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from contacts import deferred
from contacts.models import Contact, Payment, PendingSignup
from contacts.money import parse_amount, parse_currency
from contacts.provenance import link_current_delivery
from contacts.signals import announce_contact_created
from contacts.values import InvalidValue, clean_email, clean_id, clean_json, fit, strings_in
from tenants.context import current_tenant_id

log = logging.getLogger(__name__)


_optimistic: contextvars.ContextVar[bool] = contextvars.ContextVar("engarde_optimistic_writes", default=False)


@contextmanager
def optimistic_writes() -> Iterator[None]:
    """Inside the block a unique key's refusal is raised instead of handled (see the module's
    docstring). Only for a caller that rolls the whole transaction back and redoes the work with
    savepoints when an ``IntegrityError`` comes out."""
    token = _optimistic.set(True)
    try:
        yield
    finally:
        _optimistic.reset(token)


def _guarded():
    """Where a concurrent duplicate may be refused: a savepoint, or none in ``optimistic_writes``."""
    return transaction.atomic(savepoint=not _optimistic.get())


def _conflict_is_handled() -> bool:
    """False in ``optimistic_writes``: the ``IntegrityError`` must reach the caller, which redoes the
    batch; the transaction cannot go on after it without a savepoint anyway."""
    return not _optimistic.get()


#: Per identifier field, the candidates a drain batch looked up that no contact of the tenant has.
_absent_contacts: contextvars.ContextVar[dict[str, set[str]] | None] = contextvars.ContextVar(
    "engarde_absent_contacts", default=None
)

#: How many strings of one payload are looked at, and how many candidate e-mails are kept from it.
_SCAN_STRINGS, _SCAN_EMAILS = 2000, 20


def emails_in(payload: Any) -> set[str]:
    """Every string of a parsed payload that is an e-mail address, as ``upsert_contact`` would
    store it: the candidates of ``emails_looked_up_together``. More than a handler uses is harmless."""
    found: set[str] = set()
    for value in strings_in(payload, _SCAN_STRINGS):
        if "@" in value:
            try:
                email = clean_email(value)
            except InvalidValue:
                continue
            if email:
                found.add(email)
                if len(found) >= _SCAN_EMAILS:
                    break
    return found


@contextmanager
def contacts_looked_up_together(field: str, candidates: set[str]) -> Iterator[None]:
    """One query for which of ``candidates`` already are the ``field`` (one of ``IDENTIFIERS``, each
    unique in the tenant) of a contact of the active tenant; inside the block ``upsert_contact``
    skips its lookup by that field for the others (one SELECT fewer per new contact in a drain
    batch). Only inside ``optimistic_writes``, and safe if the answer goes stale (a contact made
    meanwhile by another transaction, or by a write here that did not say so): the lookups it skips
    are all on unique keys, so acting on a stale "absent" ends in the unique key's refusal, which
    rolls the batch back to the one-by-one way, never in a second contact. Scopes for different
    fields nest; a second scope for a field already looked up does nothing."""
    if field not in IDENTIFIERS:
        raise ValueError(f"{field!r} is not a contact identifier")
    state = _absent_contacts.get()
    if not candidates or not _optimistic.get() or (state is not None and field in state):
        yield
        return
    present = set(Contact.objects.filter(**{f"{field}__in": sorted(candidates)}).values_list(field, flat=True))
    token = _absent_contacts.set({**(state or {}), field: set(candidates) - present})
    try:
        yield
    finally:
        _absent_contacts.reset(token)


def emails_looked_up_together(candidates: set[str]) -> AbstractContextManager[None]:
    """The batch's e-mail addresses (``emails_in``) looked up together: ``contacts_looked_up_together``."""
    return contacts_looked_up_together("email", candidates)


def _known_absent(lookup: dict) -> bool:
    absent = _absent_contacts.get()
    if absent is None or not _optimistic.get() or len(lookup) != 1:
        return False
    ((field, value),) = lookup.items()
    return field in absent and value in absent[field]


def _now_present(contact: Contact) -> None:
    for field, absent in (_absent_contacts.get() or {}).items():
        value = getattr(contact, field)
        if value:
            absent.discard(value)


@dataclass
class _PaymentKeys:
    """The ids of one source's payments that this transaction holds (``hold_payment_keys``) and,
    in a drain batch, which of the looked-up ones a payment has (``present``; ``None`` outside
    ``optimistic_writes``, where no lookup is skipped)."""

    source: str
    held: set[str]
    present: set[str] | None


_payment_keys: contextvars.ContextVar[_PaymentKeys | None] = contextvars.ContextVar(
    "engarde_payment_keys", default=None
)


def hold_payment_keys(source: str, keys) -> None:
    """Serialise the writers of one money movement: a transaction-level advisory lock on each of
    ``keys`` (ids a payment of ``source`` is found by: Stripe's PaymentIntent, invoice, charge),
    for the active tenant, taken in one statement in a fixed order and released at commit or
    rollback. Every writer of a provider's payments takes the locks of the ids it finds by
    *before* it looks (``Provider.batch_scope``, and the provider's own lookup for an id not held
    yet), so two events of one movement processed at the same moment, in a batch or one by one,
    run one after the other and the second sees the first's payment. Without it, under READ
    COMMITTED, an invoice event and its PaymentIntent's event each find nothing and insert a row
    keyed on a different id, and no unique key refuses the second.

    Transaction-level locks work through pgbouncer in transaction mode. A hash collision between
    two ids only makes two unrelated writers wait for each other. A lock taken out of order (an id
    a handler finds that its scope did not hold) can deadlock against another writer: PostgreSQL
    ends one of them after ``deadlock_timeout``, and that one is retried (a batch goes one by one,
    a task retries with backoff). Only on PostgreSQL: SQLite, the embedded default, lets one
    writer in at a time anyway (``transaction_mode=IMMEDIATE``).

    The ids serialise the writers that share one; a writer that reaches the same payment through
    other ids is serialised by the payment's row lock (Stripe's ``payments.find``)."""
    state = _payment_keys.get()
    held = state.held if state is not None and state.source == source else set()
    wanted = sorted({key for key in keys if key} - held)
    if not wanted:
        return
    connection = transaction.get_connection()
    if connection.vendor == "postgresql":
        if not connection.in_atomic_block:
            raise RuntimeError("payment keys are held for a transaction: run inside transaction.atomic()")
        names = [f"engarde.payment:{current_tenant_id()}:{source}:{key}" for key in wanted]
        with connection.cursor() as cursor:
            # pg_advisory_xact_lock is volatile: evaluated after the ORDER BY, so in the hashes' order.
            cursor.execute(
                "SELECT pg_advisory_xact_lock(h) FROM (SELECT DISTINCT hashtextextended(name, 0) AS h"
                " FROM unnest(%s::text[]) AS name) AS wanted ORDER BY h",
                [names],
            )
    held.update(wanted)  # only once they are: a lock that failed is not counted as held


@contextmanager
def payment_keys_looked_up_together(source: str, candidates: set[str]) -> Iterator[None]:
    """Around the handlers of one event or of a drain batch's events of ``source``, inside their
    write transaction: ``candidates`` (every id of their payloads a payment may be found by) are
    held (``hold_payment_keys``), then, in a batch (``optimistic_writes``), looked up in one query;
    inside the block ``payment_keys_absent`` tells the provider's payment lookup it need not run
    (one SELECT fewer per new payment).

    Why an "absent" stays true until the batch commits: the ids are held before they are looked
    up, so a concurrent writer of a payment with any of them waits for this transaction and then
    sees what it wrote; and every payment written in the batch passes ``Payment.save``, which adds
    its ids to the present ones (``payment_saved``), so a later event of the batch for the same
    movement looks it up."""
    if _payment_keys.get() is not None:
        yield
        return
    token = _payment_keys.set(_PaymentKeys(source, set(), None))
    try:
        hold_payment_keys(source, candidates)
        if candidates and _optimistic.get():
            ordered = sorted(candidates)
            rows = Payment.objects.filter(source=source).filter(
                Q(payment_event_id__in=ordered) | Q(external_id__in=ordered) | Q(invoice_id__in=ordered)
            ).values_list("payment_event_id", "external_id", "invoice_id")
            _payment_keys.get().present = {value for row in rows for value in row if value} & candidates
        yield
    finally:
        _payment_keys.reset(token)


def payment_keys_absent(source: str, keys: list[str]) -> bool:
    """True when, inside ``payment_keys_looked_up_together`` for ``source`` in a batch, every one
    of ``keys`` was held and looked up and no payment has any of them."""
    state = _payment_keys.get()
    if state is None or state.present is None or not _optimistic.get() or state.source != source or not keys:
        return False
    return all(key in state.held and key not in state.present for key in keys)


def payment_saved(payment: Payment) -> None:
    """``Payment.save``: its ids are present from now on, for the rest of the batch."""
    state = _payment_keys.get()
    if state is not None and state.present is not None and state.source == payment.source:
        state.present.update(
            value for value in (payment.payment_event_id, payment.external_id, payment.invoice_id) if value
        )


def from_minor_units(amount: int | str, currency: str) -> Decimal:
    """12345 EUR cents -> 123.45; 1000 JPY -> 1000; 1234 KWD fils -> 1.234 (the money parser)."""
    return parse_amount(amount, currency, minor=True)


def upsert_contact(
    *,
    source: str,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    phone: str = "",
    mc_id: str = "",
    ghl_id: str = "",
    custom_fields: dict | None = None,
    stripe_customer_id: str = "",
) -> tuple[Contact, bool]:
    """The tenant's contact for these identifiers, created or filled in. Returns (contact, created).

    Matching order: the platform id (ManyChat, GoHighLevel, Stripe customer), then the e-mail. Known values are
    never blanked by an event that lacks them. A new contact notifies the tenant's admins and is
    synced to the tenant's Brevo list once the transaction commits.
    """
    email = clean_email(email)
    mc_id = clean_id(mc_id, 64, "ManyChat subscriber id")
    ghl_id = clean_id(ghl_id, 64, "GoHighLevel contact id")
    stripe_customer_id = clean_id(stripe_customer_id, 255, "Stripe customer id")
    if not (email or mc_id or ghl_id or stripe_customer_id):
        raise InvalidValue("a contact needs an e-mail or a platform id")
    lookups = [q for q in ({"mc_id": mc_id}, {"ghl_id": ghl_id}, {"stripe_customer_id": stripe_customer_id},
                           {"email": email}) if next(iter(q.values()))]
    values = {
        "first_name": fit(Contact, "first_name", first_name), "last_name": fit(Contact, "last_name", last_name),
        "phone": fit(Contact, "phone", phone), "email": email, "mc_id": mc_id, "ghl_id": ghl_id,
        "stripe_customer_id": stripe_customer_id,
    }
    custom_fields = clean_json(dict(custom_fields or {}))
    for _attempt in range(3):
        contact = _find(lookups)
        if contact is not None:
            changed = _fill_in(contact, values, custom_fields)
            if changed:
                try:
                    with _guarded():
                        contact.save()
                    _now_present(contact)
                except IntegrityError:
                    if not _conflict_is_handled():
                        raise
                    # e.g. this e-mail belongs to another contact already: keep the row as it was.
                    log.info("contact %s: an identifier is already used by another contact", contact.pk)
                    contact.refresh_from_db()
            link_current_delivery(contact)
            return contact, False
        try:
            with _guarded():
                contact = deferred.create(Contact, source=source, custom_fields=dict(custom_fields or {}), **values)
        except IntegrityError:
            if not _conflict_is_handled():
                raise
            continue  # someone else created it just now: find it on the next turn
        _now_present(contact)
        transaction.on_commit(lambda pk=contact.pk, tenant_id=contact.tenant_id: announce_contact_created(tenant_id, pk))
        link_current_delivery(contact)
        return contact, True
    raise RuntimeError("could not upsert the contact after concurrent inserts")


IDENTIFIERS = ("email", "mc_id", "ghl_id", "stripe_customer_id")


def _find(lookups: list[dict]) -> Contact | None:
    for lookup in lookups:
        if _known_absent(lookup):
            continue  # contacts_looked_up_together: no contact has it (or the unique key will say so)
        # Each identifier is unique in the tenant, so no ORDER BY: ``.first()`` would add the
        # model's ordering, whose compiling cost as much as the rest of the query.
        contact = next(iter(Contact.objects.filter(**lookup).order_by()[:1]), None)
        if contact is not None:
            return contact
    return None


def _fill_in(contact: Contact, values: dict, custom_fields: dict | None) -> bool:
    changed = False
    for name, value in values.items():
        if value and getattr(contact, name) != value:
            # An identifier already set is never overwritten by another platform's value.
            if name in IDENTIFIERS and getattr(contact, name):
                continue
            setattr(contact, name, value)
            changed = True
    if custom_fields:
        merged = {**contact.custom_fields, **custom_fields}
        if merged != contact.custom_fields:
            contact.custom_fields = merged
            changed = True
    return changed


def record_activity(contact: Contact, kind: str, **details) -> None:
    """Append one dated entry (a check-in, a transfer) to the contact's activity list."""
    entry = clean_json({"kind": kind, "at": timezone.now().isoformat(), **details})
    if entry_key := entry.get("key"):
        if any(item.get("key") == entry_key for item in contact.activity):
            return  # the same event recorded before (replay, redelivery)
    contact.activity = [*contact.activity, entry]
    contact.save(update_fields=["activity", "updated_at"])


def record_payment(
    *,
    payment_event_id: str,
    source: str,
    amount: Decimal,
    currency: str,
    status: str = Payment.Status.SUCCEEDED,
    contact: Contact | None = None,
    external_id: str = "",
    description: str = "",
    metadata: dict | None = None,
    occurred_at=None,
) -> tuple[Payment, bool]:
    """One payment per ``payment_event_id`` (unique per tenant): a second call returns the first row.
    ``amount`` is in major units of ``currency`` and passes the money parser again (a Decimal
    finer than the currency's unit, or out of range, is refused, never rounded)."""
    currency = parse_currency(currency)
    payment_event_id = clean_id(payment_event_id, what="payment's event id")
    defaults = {
        "source": source, "amount": parse_amount(amount, currency), "currency": currency, "status": status,
        "contact": contact, "external_id": clean_id(external_id, what="payment id"),
        "description": fit(Payment, "description", description), "metadata": clean_json(metadata or {}),
        "occurred_at": occurred_at,
    }
    try:
        with _guarded():
            return deferred.create(Payment, payment_event_id=payment_event_id, **defaults), True
    except IntegrityError:
        if not _conflict_is_handled():
            raise
        return Payment.objects.get(payment_event_id=payment_event_id), False


def mark_refunded(*, source: str, external_id: str, amount_refunded: Decimal | None = None) -> int:
    """Mark the tenant's payments with this platform id refunded (fully, or partly when an amount
    below the payment's is given). Returns how many rows changed."""
    changed = 0
    for payment in Payment.objects.filter(source=source, external_id=external_id):
        refunded = payment.amount if amount_refunded is None else min(amount_refunded, payment.amount)
        status = Payment.Status.REFUNDED if refunded >= payment.amount else Payment.Status.PARTIALLY_REFUNDED
        if (payment.amount_refunded, payment.status) != (refunded, status):
            payment.amount_refunded, payment.status = refunded, status
            payment.save(update_fields=["amount_refunded", "status", "updated_at"])
            changed += 1
    return changed


def add_pending_signup(*, contact: Contact, source: str, external_id: str = "", metadata: dict | None = None):
    """Queue a sign-up for the tenant to approve; one per (source, external id)."""
    external_id, metadata = clean_id(external_id, what="sign-up id"), clean_json(metadata or {})
    if not external_id:
        return PendingSignup.objects.create(contact=contact, source=source, metadata=metadata or {}), True
    try:
        with _guarded():
            return (
                PendingSignup.objects.create(
                    contact=contact, source=source, external_id=external_id, metadata=metadata or {}
                ),
                True,
            )
    except IntegrityError:
        if not _conflict_is_handled():
            raise
        return PendingSignup.objects.get(source=source, external_id=external_id), False


#: A decision taken on the platform overrides these; "approved" there only moves a pending sign-up.
PLATFORM_OVERRIDES = {
    PendingSignup.Status.CANCELLED: frozenset(PendingSignup.Status.values) - {PendingSignup.Status.CANCELLED},
    PendingSignup.Status.DENIED: frozenset(PendingSignup.Status.values) - {PendingSignup.Status.DENIED},
    PendingSignup.Status.APPROVED: frozenset({PendingSignup.Status.PENDING}),
}


def settle_signup(*, contact: Contact, source: str, external_id: str, status: str, at=None,
                  metadata: dict | None = None) -> PendingSignup:
    """The platform decided a sign-up (the registrant cancelled, the host denied or approved, the
    order was refunded): the row leaves the queue with that status and ``decided_at`` = when the
    platform decided (``decided_by`` stays empty: no user of ours did it).

    A decision that arrives before the sign-up itself (senders do not keep order) creates the row
    already decided, so the late "created" event finds it and does not put it back in the queue.
    Cancelled and denied win over any earlier state; approved only moves a pending sign-up, so a
    tenant's own dismissal stands."""
    at = at or timezone.now()
    signup, _ = add_pending_signup(contact=contact, source=source, external_id=external_id, metadata=metadata)
    if signup.status in PLATFORM_OVERRIDES[status]:
        PendingSignup.objects.filter(pk=signup.pk).update(
            status=status, decided_at=at, decided_by=None, updated_at=timezone.now()
        )
        signup.refresh_from_db()
    return signup



def decide_signups(ids, decision: str, user) -> int:
    """Approve or dismiss the tenant's pending sign-ups among ``ids`` (the Sign-ups page's buttons,
    and the bookings API's ``auto_invite``), as decided by ``user`` now. Rows no longer pending, and
    ids of another tenant's rows, match nothing. Returns how many changed."""
    now = timezone.now()
    return PendingSignup.objects.filter(pk__in=list(ids), status=PendingSignup.Status.PENDING).update(
        status=decision, decided_at=now, decided_by=user, updated_at=now
    )
