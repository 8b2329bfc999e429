from django import forms
from django.db.models import F
from django.db.models.functions import Coalesce
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers

from contacts.filters import ContactFilter, ListFilter, PaymentFilter
from contacts.models import Contact, Payment, PendingSignup
from engarde.api import TenantScopedViewSet


class ContactSerializer(serializers.ModelSerializer):
    class Meta:
        model = Contact
        fields = [
            "id", "email", "first_name", "last_name", "phone", "source", "mc_id", "ghl_id",
            "custom_fields", "activity", "subscription_id", "subscription_status", "subscription_plan",
            "subscription_period_end", "subscription_cancel_at_period_end", "subscription_trial_end",
            "created_at", "updated_at",
        ]


class PaymentSerializer(serializers.ModelSerializer):
    contact_email = serializers.CharField(source="contact.email", default="", read_only=True)

    class Meta:
        model = Payment
        fields = [
            "id", "amount", "amount_refunded", "currency", "status", "source", "external_id",
            "payment_event_id", "invoice_id", "subscription_id", "description", "failure_reason", "dispute",
            "dispute_status", "dispute_reason", "disputed_amount", "contact", "contact_email", "occurred_at", "created_at",
        ]


class PendingSignupSerializer(serializers.ModelSerializer):
    contact = ContactSerializer(read_only=True)

    class Meta:
        model = PendingSignup
        fields = ["id", "contact", "source", "external_id", "metadata", "status", "decided_at", "created_at"]


#: What each filter means, for the schema (the forms' labels are the pages' short words).
DESCRIPTIONS = {
    "source": "Only rows from this platform.",
    "date_from": "From this day on (inclusive), in your tenant's time zone.",
    "date_to": "Up to this day (inclusive), in your tenant's time zone.",
    "sort": "The order of the list; the first value listed is the default.",
}


class ContactApiFilter(ContactFilter):
    descriptions = {
        **DESCRIPTIONS, "q": "Every word must match a name, the e-mail, the phone or a platform id (ManyChat, "
        "GoHighLevel), case-insensitively: `pat example` finds Pat at example.com.",
        "date_from": "Created on or after this day, in your tenant's time zone.",
        "date_to": "Created on or before this day, in your tenant's time zone.",
    }


class PaymentApiFilter(PaymentFilter):
    parameter_schemas = {"currency": {"type": "string", "pattern": "^[A-Za-z]{3}$"}}
    descriptions = {
        **DESCRIPTIONS, "q": "Every word must match the payment's platform id or description, or its contact's "
        "name, e-mail, phone or platform id.",
        "date_from": "Paid on or after this day (when the platform says it happened, else when it reached us).",
        "date_to": "Paid on or before this day.",
        "status": "Only payments in this state.", "currency": "Only payments in this currency (three letters).",
    }


class StatusListFilter(ListFilter):
    """A list filter with ``?status=``, one of the model's ``status_choices``."""

    status = forms.ChoiceField(required=False, label="Status")
    status_choices: list[tuple[str, str]] = []

    def __init__(self, query, *, tenant):
        super().__init__(query, tenant=tenant)
        self.fields["status"].choices = [("", "Any status"), *self.status_choices]

    def filter_more(self, queryset):
        if status := self.value("status"):
            queryset = queryset.filter(status=status)
        return queryset


class PendingSignupApiFilter(StatusListFilter):
    """Sign-ups waiting for (or past) the tenant's decision."""

    status_choices = PendingSignup.Status.choices
    search_fields = ("external_id", "contact__email", "contact__first_name", "contact__last_name", "contact__phone")
    sorts = {"-created": ("-created_at", "Newest first"), "created": ("created_at", "Oldest first")}
    descriptions = {
        **DESCRIPTIONS, "q": "Every word must match the contact's name, e-mail or phone, or the platform's id.",
        "status": "Only sign-ups in this state.",
    }


@extend_schema_view(
    list=extend_schema(summary="List contacts", description="The people your platforms told us about, newest "
                       "first: searched and filtered like the Contacts page."),
    retrieve=extend_schema(summary="Get a contact", description="One contact of your tenant, by id."),
)
class ContactViewSet(TenantScopedViewSet):
    model = Contact
    serializer_class = ContactSerializer
    ordering = ("-created_at", "-pk")
    filter_form = ContactApiFilter


@extend_schema_view(
    list=extend_schema(summary="List payments", description="Payments, refunds included, newest first: searched "
                       "and filtered like the Payments page. Amounts are decimals in the payment's currency."),
    retrieve=extend_schema(summary="Get a payment", description="One payment of your tenant, by id."),
)
class PaymentViewSet(TenantScopedViewSet):
    model = Payment
    serializer_class = PaymentSerializer
    ordering = ("-created_at", "-pk")
    filter_form = PaymentApiFilter

    def filter_queryset_for_request(self, queryset):
        # ``when`` is what the date filters and the order read, as on the page.
        return queryset.select_related("contact").annotate(when=Coalesce(F("occurred_at"), F("created_at")))


@extend_schema_view(
    list=extend_schema(summary="List sign-ups", description="Sign-ups your platforms sent for you to approve or "
                       "dismiss (on the Sign-ups page), with their contact, newest first."),
    retrieve=extend_schema(summary="Get a sign-up", description="One sign-up of your tenant, by id."),
)
class PendingSignupViewSet(TenantScopedViewSet):
    model = PendingSignup
    serializer_class = PendingSignupSerializer
    ordering = ("-created_at", "-pk")
    filter_form = PendingSignupApiFilter

    def filter_queryset_for_request(self, queryset):
        return queryset.select_related("contact")
