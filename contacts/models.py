"""What webhooks and syncs produce for a tenant: people, money and the sign-up queue.

Every external id is unique per tenant (the same ManyChat id at two tenants is two contacts), so
handlers can upsert on it and a concurrent duplicate hits the database's unique key, not a race.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from contacts import deferred
from tenants.models import Tenant, TenantOwned


class Contact(TenantOwned):
    # No index of its own: every query is by tenant (RLS adds it), and each of this table's
    # composite indexes starts with tenant_id, so a lone tenant_id index was one more write per row.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="contacts", db_index=False)
    email = models.EmailField(blank=True, default="", help_text="Stored lowercased.")
    first_name = models.CharField(max_length=150, blank=True, default="")
    last_name = models.CharField(max_length=150, blank=True, default="")
    phone = models.CharField(max_length=40, blank=True, default="")
    source = models.CharField(max_length=32, help_text="The platform this contact first came from.")
    mc_id = models.CharField("ManyChat subscriber id", max_length=64, blank=True, default="")
    ghl_id = models.CharField("GoHighLevel contact id", max_length=64, blank=True, default="")
    custom_fields = models.JSONField(default=dict, blank=True)
    activity = models.JSONField(default=list, blank=True, help_text="Check-ins, transfers and the like.")
    # The contact's subscription as the platform (Stripe) last described it. One per contact: a
    # second subscription replaces the first here (its payments keep their own subscription id).
    stripe_customer_id = models.CharField(
        "Stripe customer id", max_length=255, blank=True, default="", db_default="",
        help_text="Learnt from invoices and checkouts, so subscription events (which name only the customer) find the contact.",
    )
    subscription_id = models.CharField(max_length=255, blank=True, default="", db_default="")
    subscription_status = models.CharField(
        max_length=32, blank=True, default="", db_default="", help_text="The platform's word: trialing, active, past_due, canceled…"
    )
    subscription_plan = models.CharField(max_length=255, blank=True, default="", db_default="", help_text="The price's or product's name.")
    subscription_period_end = models.DateTimeField(null=True, blank=True, help_text="End of the paid period.")
    subscription_cancel_at_period_end = models.BooleanField(default=False, db_default=False)
    subscription_trial_end = models.DateTimeField(null=True, blank=True)
    subscription_changed_at = models.DateTimeField(
        null=True, blank=True,
        help_text="When the platform made the change shown (its event time): an older event never overwrites a newer one.",
    )
    notified_at = models.DateTimeField(
        null=True, blank=True, help_text="When the tenant's admins were told about this new contact (once)."
    )
    notice_due = models.BooleanField(
        default=False, db_default=False,
        help_text="Arrived within the tenant's notice window: told in the digest at its end (contacts.tasks).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantOwned.Meta):
        db_table = "contacts_contact"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "email"], condition=~Q(email=""), name="contact_unique_email"),
            models.UniqueConstraint(fields=["tenant", "mc_id"], condition=~Q(mc_id=""), name="contact_unique_mc_id"),
            models.UniqueConstraint(fields=["tenant", "ghl_id"], condition=~Q(ghl_id=""), name="contact_unique_ghl_id"),
            models.UniqueConstraint(
                fields=["tenant", "stripe_customer_id"], condition=~Q(stripe_customer_id=""),
                name="contact_unique_stripe_customer",
            ),
        ]
        indexes = [
            # The digest at the end of a tenant's notice window reads only these (contacts.tasks).
            models.Index(fields=["tenant"], condition=Q(notice_due=True, notified_at__isnull=True),
                         name="contact_notice_due_idx"),
        ]

    def __str__(self):
        return self.email or self.full_name or f"contact {self.pk}"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    def normalize(self) -> None:
        """What every write of a contact does first (``save``, and ``contacts.deferred``)."""
        self.email = (self.email or "").strip().lower()

    def after_save(self) -> None:
        """What every write of a contact does once it is made (nothing yet)."""

    def save(self, *args, **kwargs):
        deferred.flush()  # rows of a drain batch waiting to be written go first
        self.normalize()
        super().save(*args, **kwargs)
        self.after_save()


class Payment(TenantOwned):
    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        REFUNDED = "refunded"
        PARTIALLY_REFUNDED = "partially_refunded"
        CANCELED = "canceled"

    class Dispute(models.TextChoices):
        NONE = "", "not disputed"
        OPEN = "open", "disputed"
        WON = "won"
        LOST = "lost"

    # No index of its own: every query is by tenant (RLS adds it), and each of this table's
    # composite indexes starts with tenant_id, so a lone tenant_id index was one more write per row.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="payments", db_index=False)
    contact = models.ForeignKey(Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="payments")
    # Major units (12.50 EUR, 1000 JPY). Three places hold every ISO 4217 currency (KWD has 3).
    amount = models.DecimalField(max_digits=15, decimal_places=3)
    amount_refunded = models.DecimalField(max_digits=15, decimal_places=3, default=0)
    currency = models.CharField(max_length=3, help_text="ISO 4217, upper case.")
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.SUCCEEDED)
    source = models.CharField(max_length=32)
    external_id = models.CharField(max_length=255, blank=True, default="", help_text="The platform's payment id.")
    payment_event_id = models.CharField(
        max_length=255, help_text="Idempotency key: the platform event (or payment) this row was made from."
    )
    description = models.CharField(max_length=255, blank=True, default="")
    failure_reason = models.CharField(
        max_length=255, blank=True, default="", db_default="", help_text="Why the platform refused or cancelled it (code: message)."
    )
    invoice_id = models.CharField(max_length=255, blank=True, default="", db_default="", help_text="The platform's invoice, if any.")
    subscription_id = models.CharField(max_length=255, blank=True, default="", db_default="")
    dispute = models.CharField(max_length=8, choices=Dispute.choices, blank=True, default="", db_default="")
    dispute_status = models.CharField(max_length=32, blank=True, default="", db_default="", help_text="The platform's own dispute status.")
    dispute_reason = models.CharField(max_length=64, blank=True, default="", db_default="")
    disputed_amount = models.DecimalField(max_digits=15, decimal_places=3, null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantOwned.Meta):
        db_table = "contacts_payment"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "payment_event_id"], name="payment_unique_event"),
        ]
        indexes = [
            models.Index(fields=["tenant", "source", "external_id"], name="payment_external_idx"),
            models.Index(fields=["tenant", "source", "invoice_id"], name="payment_invoice_idx"),
        ]

    def __str__(self):
        return f"{self.amount} {self.currency} ({self.status})"

    def normalize(self) -> None:
        """What every write of a payment does first (``save``, and ``contacts.deferred``)."""
        self.currency = (self.currency or "").upper()

    def after_save(self) -> None:
        """Its ids are present for the rest of a drain batch (``contacts.services.payment_saved``)."""
        from contacts.services import payment_saved  # services imports this module

        payment_saved(self)

    def save(self, *args, **kwargs):
        deferred.flush()  # rows of a drain batch waiting to be written go first
        self.normalize()
        super().save(*args, **kwargs)
        self.after_save()


class PendingSignup(TenantOwned):
    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        DISMISSED = "dismissed"
        # Decided on the platform (the registrant cancelled, the host denied, the order was refunded):
        # out of the queue, ``decided_at`` says when, ``decided_by`` stays empty.
        CANCELLED = "cancelled"
        DENIED = "denied"

    # No index of its own: every query is by tenant (RLS adds it), and each of this table's
    # composite indexes starts with tenant_id, so a lone tenant_id index was one more write per row.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="pending_signups", db_index=False)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="pending_signups")
    source = models.CharField(max_length=32)
    external_id = models.CharField(
        max_length=255, blank=True, default="", help_text="What the platform calls this sign-up (registration, order)."
    )
    metadata = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantOwned.Meta):
        db_table = "contacts_pendingsignup"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "source", "external_id"], condition=~Q(external_id=""), name="signup_unique_external"
            ),
        ]
        indexes = [models.Index(fields=["tenant", "status"], name="signup_status_idx")]

    def __str__(self):
        # The platform is a column of its own in the admin; a title shows who and in what state.
        return f"{self.contact} ({self.status})"


class ContactDelivery(TenantOwned):
    """A stored webhook delivery that made or touched a contact (see ``contacts.provenance``).

    ``webhook_log_id`` is a plain number, not a foreign key: ``contacts`` sits below ``webhooks``
    and never imports it, and a delivery pruned by retention leaves the contact as it is."""

    # No index of its own: every query is by tenant (RLS adds it), and each of this table's
    # composite indexes starts with tenant_id, so a lone tenant_id index was one more write per row.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="deliveries")
    webhook_log_id = models.PositiveBigIntegerField()
    source = models.CharField(max_length=32)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(TenantOwned.Meta):
        db_table = "contacts_contactdelivery"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "contact", "webhook_log_id"], name="contactdelivery_unique"),
        ]

    def __str__(self):
        return f"delivery {self.webhook_log_id} -> contact {self.contact_id}"
