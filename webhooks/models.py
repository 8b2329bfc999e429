"""The raw store of every webhook delivery and its state machine.

States: ``received → processing → processed``; ``→ failed`` (will retry) ``→ dead``; ``rejected``
(verification failed: kept for operators, never processed); ``ignored`` (verified, but an event
type nobody handles) and ``malformed`` (verified, but not JSON, or not what its handler reads:
marked at once, never retried): both kept and visible. A failure no retry can fix goes ``dead`` at
once. ``error`` is the sentence tenant users see; ``traceback`` is for operators.

What a row keeps of its request is redacted before it is stored (``webhooks.redaction``); a
rejected one is also cut and sampled (``webhooks.ingest``), and old ones are pruned
(``webhooks.retention``).
"""

from django.db import models
from django.db.models import Q

from tenants.models import Tenant, TenantOwned

class WebhookLog(TenantOwned):
    class Origin(models.TextChoices):
        # How the row came to be. Both go through the same unique key and the same processing; only
        # a delivery was verified by its signature (a backfilled event was fetched from the
        # platform's API with the tenant's own key, which is its proof of origin).
        DELIVERY = "delivery", "webhook delivery"
        BACKFILL = "backfill", "backfill (fetched from the platform's API)"

    class Status(models.TextChoices):
        RECEIVED = "received"
        PROCESSING = "processing"
        PROCESSED = "processed"
        FAILED = "failed"
        DEAD = "dead"
        REJECTED = "rejected"
        IGNORED = "ignored"
        MALFORMED = "malformed"

    # No index of its own: every index below (and the unique key) starts with tenant_id.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="webhook_logs", db_index=False)
    source = models.CharField(max_length=32, help_text="The provider that sent it.")
    event_id = models.CharField(max_length=255, help_text="The sender's id, or a documented derived key.")
    event_type = models.CharField(max_length=128, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    headers = models.JSONField(default=dict, blank=True, help_text="Request headers, secrets redacted.")
    body = models.BinaryField(help_text="The raw request body, byte for byte.")
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    origin = models.CharField(
        max_length=16, choices=Origin.choices, default=Origin.DELIVERY,
        help_text="A signed webhook delivery, or an event a backfill fetched from the platform's API (no signature, "
                  "no headers, delivered 0 times until the platform's own delivery arrives).",
    )
    delivery_count = models.PositiveIntegerField(default=1, help_text="How often the sender delivered this event.")
    attempts = models.PositiveIntegerField(default=0, help_text="Processing attempts.")
    error = models.TextField(
        blank=True, default="", help_text="Why it was rejected or why processing failed: a sentence tenant users see."
    )
    traceback = models.TextField(
        blank=True, default="", help_text="The last processing failure's traceback, for operators only."
    )
    unstored_rejections = models.PositiveIntegerField(
        default=0, help_text="Rejected deliveries after this one that were counted, not stored (the window's sample was full).",
    )
    received_at = models.DateTimeField(auto_now_add=True)
    last_delivery_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    pruned_at = models.DateTimeField(
        null=True, blank=True, help_text="When retention removed the body and headers (WEBHOOK_RETENTION_DAYS).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantOwned.Meta):
        db_table = "webhooks_webhooklog"
        ordering = ["-received_at"]
        constraints = [
            # Rejected deliveries never claim an event id: a forged delivery must not be able to
            # make the genuine one look like a duplicate.
            models.UniqueConstraint(
                fields=["tenant", "source", "event_id"],
                condition=~Q(status="rejected"),
                name="webhooklog_unique_event",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "source", "received_at"], name="webhooklog_source_idx"),
            # The sweeper's, the drain's and the metrics' lookups: only the rows still waiting or claimed (a small part of
            # the table), not every processed row (docs/architecture.md, "Indexes").
            models.Index(fields=["status", "updated_at"], name="webhooklog_waiting_idx",
                         condition=Q(status__in=["received", "failed", "processing"])),
            # The newest rejected row (counting a flood) and a tenant's rows in one state, newest first.
            models.Index(fields=["tenant", "status", "received_at"], name="webhooklog_tenant_status_idx"),
            # Retention's rejected rows past their days, across tenants (1 % of the table).
            models.Index(fields=["received_at"], name="webhooklog_rejected_idx", condition=Q(status="rejected")),
        ]

    def __str__(self):
        # Admin titles and breadcrumbs: the platform's label ("Posh.VIP"), not its name.
        from webhooks.sources import find_source

        source = find_source(self.source)
        return f"{source.label if source else self.source} {self.event_type or '?'} {self.event_id} ({self.status})"

    @property
    def body_text(self) -> str:
        return bytes(self.body).decode("utf-8", errors="replace")
