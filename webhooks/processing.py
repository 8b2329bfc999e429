"""Processing one stored delivery, exactly once in effect, in three steps:

1. *Read and check* (a short transaction, no lock): the row, its integration (without decrypting
   credentials unless the event type has a fetcher), the payload parsed and validated against the
   event type's schema. What does not fit is ``malformed`` at once.
2. *Fetch* (no transaction, no lock): a handler that needs the platform (``Provider.fetchers``)
   gets its answer now, so no row lock or transaction is ever held while we wait on a platform, and
   a redelivery's duplicate counter never waits behind an HTTP call.
3. *Claim and write* (one transaction under the row lock): the claim, the handler's writes and the
   ``processed`` mark. A worker killed half-way rolls all of it back and the redelivered task
   starts clean; two deliveries of the same task serialise on the lock and the second finds the
   row processed. Side effects outside the database (e-mail, Brevo) are queued on commit.

A failure no retry can fix (``outcome_of``) is ``malformed`` or ``dead`` at once with its reason;
any other is ``failed`` and retried with backoff. ``error`` holds the sentence tenant users see,
``traceback`` the details for operators.
"""

from __future__ import annotations

import logging
import random
import traceback
from contextlib import ExitStack

from django.conf import settings
from django.db import DataError
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from engarde.errors import Explained, sentence_for

from contacts.deferred import rows_written_together
from contacts.models import Contact, Payment
from contacts.provenance import delivery_scope, links_written_together
from contacts.services import emails_in, emails_looked_up_together, optimistic_writes
from contacts.signals import announced_together
import engarde.metrics as metrics
from contacts.values import InvalidValue
from tenants.context import tenant_context
from webhooks import sources
from webhooks.contract import Event, Handler, Malformed, PermanentError, Source
from webhooks.models import WebhookLog
from webhooks.redaction import redact_text

log = logging.getLogger(__name__)

PROCESSABLE = (WebhookLog.Status.RECEIVED, WebhookLog.Status.FAILED)
TRACEBACK_LIMIT = 16000


class NothingToDo(Exception):
    """The row is gone, already processed, or not processable (rejected, ignored, malformed)."""


def process(log_id: int, tenant_id: str, states=PROCESSABLE) -> str:
    """Run the row's handler. Returns the final status; raises what the handler raised. ``states``:
    what the row may be in (a drain also takes the rows it claimed, ``processing``)."""
    provider, handler, event = _read(log_id, tenant_id, states)
    fetcher = provider.fetchers.get(event.log.event_type)
    if fetcher is not None:
        event.fetched = fetcher(event)  # outside any transaction: see the module's docstring
    return _claim_and_write(log_id, tenant_id, provider, handler, event, states)


def _read(log_id: int, tenant_id: str, states=PROCESSABLE) -> tuple[Source, Handler, Event]:
    with tenant_context(tenant_id):
        row = _processable(WebhookLog.objects.filter(pk=log_id), states)
        provider = sources.get_source(row.source)
        handler = provider.handler_for(row.event_type)
        if handler is None:
            raise PermanentError(f"no handler for the {provider.label} event type {row.event_type!r}")
        # Credentials are decrypted only for an event type whose fetcher calls the platform.
        integration = sources.connections().get(row.source, credentials=row.event_type in provider.fetchers)
    try:
        payload = provider.parse(bytes(row.body))
    except (ValueError, RecursionError) as exc:
        raise Malformed(f"the {provider.label} delivery is not a JSON object") from exc
    data = provider.validate(row.event_type, payload)
    return provider, handler, Event(payload=payload, data=data, log=row, integration=integration)


def _claim_and_write(log_id: int, tenant_id: str, provider: Source, handler: Handler, event: Event,
                     states=PROCESSABLE) -> str:
    with tenant_context(tenant_id):
        row = _processable(WebhookLog.objects.select_for_update().defer("body", "headers").filter(pk=log_id), states)
        row.status, row.attempts = WebhookLog.Status.PROCESSING, row.attempts + 1
        event.log = row
        # The contact's page lists the deliveries that made it; the provider's scope serialises
        # writers of one payment (Stripe: its ids held before they are looked up).
        with delivery_scope(row.pk, row.source), provider.batch_scope([event]):
            handler(event)
        now = timezone.now()
        row.status, row.error, row.traceback, row.processed_at = WebhookLog.Status.PROCESSED, "", "", now
        row.save(update_fields=["status", "attempts", "error", "traceback", "processed_at", "updated_at"])
        sources.connections().event_processed(event.integration, now)  # throttled to one write a minute
    metrics.processed(row.source, row.status, tenant_id, lag_seconds=(now - row.received_at).total_seconds())
    return row.status


def process_batch(tenant_id: str, ids: list[int], claimed_at) -> list[int]:
    """The row queue's way through: one tenant's claimed rows in two transactions in all, instead
    of two per row. Returns the ids it processed; the caller takes the others one by one.

    1. *Read* (one query, no lock): the rows still held by this claim (``processing`` with
       ``updated_at`` = ``claimed_at``, so a row whose lease ran out and that another drain took is
       left alone), and each source's integration once (credentials decrypted once, and only when
       one of the rows has a fetcher). Bodies are parsed and validated; a row that fails here is
       left out, for the one-by-one way to record why.
    2. *Fetch* (no transaction): the fetchers, as ``process`` runs them; a row whose fetch fails is
       left out likewise.
    3. *Write* (one transaction): the rows locked in one statement, each handler in turn, the
       processed marks in one UPDATE, each integration's ``last_event_at`` once; what handlers
       queue on commit goes out when the batch commits.

    Optimistic: a failure in step 3 rolls the whole batch back and returns ``[]``; the caller then
    processes every row with ``process``, which keeps each failure's exact handling (reason,
    retry, ``dead``). Nothing of a rolled-back batch is kept, so each row is processed once in
    effect either way."""
    if not ids:
        return []
    with tenant_context(tenant_id):
        rows = list(
            WebhookLog.objects.defer("headers").filter(pk__in=ids, status=WebhookLog.Status.PROCESSING,
                                                       updated_at=claimed_at).order_by("received_at", "pk")
        )
        found = {row.source: sources.find_source(row.source) for row in rows}
        needs_credentials = {source for source, provider in found.items() if provider and any(
            row.event_type in provider.fetchers for row in rows if row.source == source)}
        integrations = {source: sources.connections().get(source, credentials=source in needs_credentials)
                        for source, provider in found.items() if provider}
    work = []
    for row in rows:
        provider = found[row.source]
        handler = provider.handler_for(row.event_type) if provider else None
        if handler is None:
            continue  # the one-by-one way says why
        try:
            payload = provider.parse(bytes(row.body))
            event = Event(payload=payload, data=provider.validate(row.event_type, payload), log=row,
                          integration=integrations[row.source])
            fetcher = provider.fetchers.get(row.event_type)
            if fetcher is not None:
                event.fetched = fetcher(event)  # outside any transaction, as in ``process``
        except Exception:  # malformed, or a platform's error: the one-by-one way records it
            continue
        work.append((row, handler, event))
    if not work:
        return []
    try:
        # No savepoints and the contacts' delivery links in one INSERT: any conflict rolls the
        # whole batch back to the one-by-one way below, which has both (contacts.services).
        # What the batch creates is announced together right after it commits: one notice task
        # and one e-mail per admin for the tenant's new contacts, not one per contact.
        # New contacts and payments wait and go in one INSERT per table (contacts.deferred).
        with announced_together(), tenant_context(tenant_id), optimistic_writes(), links_written_together(), \
                rows_written_together(Contact, Payment, expected=len(work)):
            held = set(WebhookLog.objects.select_for_update().filter(
                pk__in=[row.pk for row, _, _ in work], status=WebhookLog.Status.PROCESSING, updated_at=claimed_at,
            ).order_by("pk").values_list("pk", flat=True))
            work = [item for item in work if item[0].pk in held]
            # One query for which of the batch's e-mail addresses are known contacts, instead of
            # a lookup per new contact (contacts.services.emails_looked_up_together).
            with ExitStack() as scopes:
                scopes.enter_context(emails_looked_up_together(
                    set().union(*(emails_in(event.payload) for _, _, event in work))))
                for source in sorted({row.source for row, _, _ in work}):
                    # What the source's handlers would look up one by one (Stripe: its payments).
                    scopes.enter_context(found[source].batch_scope(
                        [event for row, _, event in work if row.source == source]))
                for row, handler, event in work:
                    row.attempts += 1
                    with delivery_scope(row.pk, row.source):
                        handler(event)
            now = timezone.now()
            WebhookLog.objects.filter(pk__in=[row.pk for row, _, _ in work]).update(
                status=WebhookLog.Status.PROCESSED, attempts=F("attempts") + 1, error="", traceback="",
                processed_at=now, updated_at=now,
            )
            for source in {row.source for row, _, _ in work}:
                sources.connections().event_processed(integrations[source], now)
    except Exception as exc:  # all of it rolled back: the caller takes the rows one by one
        log.info("drain batch of %d rows for tenant %s rolled back (%s): one by one instead",
                 len(work), tenant_id, exc.__class__.__name__)
        return []
    for row, _, _ in work:
        metrics.processed(row.source, WebhookLog.Status.PROCESSED, tenant_id,
                          lag_seconds=(now - row.received_at).total_seconds())
    return [row.pk for row, _, _ in work]


def _processable(rows, states=PROCESSABLE) -> WebhookLog:
    row = rows.first()
    if row is None or row.status not in states:
        raise NothingToDo(row.status if row else "missing")
    return row


def outcome_of(error: BaseException) -> str | None:
    """``malformed`` or ``dead`` for a failure no retry can fix, ``None`` for one worth retrying.

    Malformed: the delivery does not fit its schema, or a value cannot be stored as meant
    (``Malformed``, ``InvalidValue``). Dead: a handler said so (``PermanentError``: a refused
    ``api_url``), or the database refused a value (``DataError``: too long, out of range; an
    unencodable string), which the same body will always be. Everything else (a platform's 5xx or
    429, a timeout, the database gone, a bug a deploy fixes) is retried."""
    if isinstance(error, (Malformed, InvalidValue)):
        return WebhookLog.Status.MALFORMED
    if isinstance(error, (PermanentError, DataError, UnicodeError)):
        return WebhookLog.Status.DEAD
    return None


def reason_of(error: BaseException) -> str:
    """The sentence tenant users see (the row's reason, the integration's last error): the message
    of what we or the platform refused as it is, anything else in words (``engarde.errors``); the
    exception's name and text stay in the traceback, which only operators see."""
    if isinstance(error, (PermanentError, InvalidValue, Explained)):
        return str(error)[:2000] or sentence_for(error)
    return sentence_for(error)


def traceback_of(error: BaseException) -> str:
    """The formatted traceback (with its causes: a schema's full error list), its end kept."""
    text = "".join(traceback.format_exception(error))
    return text if len(text) <= TRACEBACK_LIMIT else "…" + text[-TRACEBACK_LIMIT:]


def record_failure(log_id: int, tenant_id: str, error: BaseException, final: bool | None,
                   states=PROCESSABLE) -> str | None:
    """After a failed attempt (its transaction rolled back): count it, keep the reason and the
    traceback, and return the row's new status (``None``: another delivery finished it meanwhile).

    A failure no retry can fix is ``malformed`` or ``dead`` whatever ``final`` says. Otherwise
    ``final=None`` decides by the row's own count of attempts (in-process mode, where no Celery
    retry counter exists): ``dead`` once it has had ``WEBHOOK_MAX_RETRIES`` + 1 attempts."""
    permanent = outcome_of(error)
    if permanent is not None:
        status = Value(permanent)
    elif final is None:
        status = Case(
            When(attempts__gte=settings.WEBHOOK_MAX_RETRIES, then=Value(WebhookLog.Status.DEAD)),
            default=Value(WebhookLog.Status.FAILED),
        )
    else:
        status = Value(WebhookLog.Status.DEAD if final else WebhookLog.Status.FAILED)
    with tenant_context(tenant_id):
        # An exception's text may quote what a handler sent a platform: no credential of the
        # tenant's stays in the stored reason, the traceback or the integration's last error.
        source = WebhookLog.objects.filter(pk=log_id).values_list("source", flat=True).first()
        held = sources.connections().secrets(source) if source else []
        message, trace = redact_text(reason_of(error), held), redact_text(traceback_of(error), held)
        counted = WebhookLog.objects.filter(pk=log_id, status__in=states).update(
            status=status, attempts=F("attempts") + 1, error=message, traceback=trace,
            updated_at=timezone.now(),
        )
        # Nothing counted: another delivery of the task finished the row meanwhile; not a failure.
        row = WebhookLog.objects.filter(pk=log_id).only("source", "status").first() if counted else None
        if row is None:
            return None
        sources.connections().processing_failed(
            row.source, message, timezone.now(), dead=row.status == WebhookLog.Status.DEAD
        )
    metrics.processed(row.source, row.status, tenant_id)
    return row.status


def retry_delay(retries: int) -> float:
    """Exponential backoff with jitter: uniform(c/2, c) where c = min(cap, base * 2**retries), so
    retries never bunch up and never come sooner than half the nominal delay."""
    # The exponent is clamped: far past the cap, base * 2**retries would not fit a float
    # (OverflowError from retries ≈ 1020 on), and the cap applies long before 64 anyway.
    exponent = min(max(retries, 0), 64)
    ceiling = min(settings.WEBHOOK_RETRY_MAX_SECONDS, settings.WEBHOOK_RETRY_BASE_SECONDS * (2**exponent))
    return random.uniform(ceiling / 2, ceiling)


def replay(row: WebhookLog) -> bool:
    """Put a stored delivery back in the queue (operators, tenant admins). Rejected rows were
    never verified and stay rejected. Call inside the row's tenant (or operator) context."""
    from webhooks.drain import hand_off

    if row.status == WebhookLog.Status.REJECTED or row.pruned_at:  # pruned: no body left to run
        return False
    provider = sources.find_source(row.source)  # a row of a provider removed since: nothing to run it
    if provider is None or provider.handler_for(row.event_type) is None:
        return False
    WebhookLog.objects.filter(pk=row.pk).update(
        status=WebhookLog.Status.RECEIVED, error="", traceback="", updated_at=timezone.now()
    )
    hand_off(row.pk, str(row.tenant_id))
    return True


def stuck_rows(now=None):
    """Rows a lost publish or a broker outage left behind: ``received`` for too long, or
    ``failed`` for longer than the longest backoff (its retry message was lost).

    Oldest first: the sweeper takes a batch at a time, and with the model's newest-first order a
    backlog larger than one batch would never reach its oldest rows."""
    now = now or timezone.now()
    received_before = now - timezone.timedelta(seconds=settings.WEBHOOK_SWEEP_AFTER_SECONDS)
    failed_before = now - timezone.timedelta(seconds=settings.WEBHOOK_RETRY_MAX_SECONDS * 2)
    return WebhookLog.objects.filter(
        Q(status=WebhookLog.Status.RECEIVED, updated_at__lt=received_before)
        | Q(status=WebhookLog.Status.FAILED, updated_at__lt=failed_before)
    ).order_by("updated_at", "pk")
