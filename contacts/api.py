from rest_framework import serializers

from contacts.models import Contact, Payment, PendingSignup
from engarde.api import TenantScopedViewSet


class ContactSerializer(serializers.ModelSerializer):
    class Meta:
        model = Contact
        fields = [
            "id", "email", "first_name", "last_name", "phone", "source", "mc_id", "ghl_id",
            "custom_fields", "activity", "created_at", "updated_at",
        ]


class PaymentSerializer(serializers.ModelSerializer):
    contact_email = serializers.CharField(source="contact.email", default="", read_only=True)

    class Meta:
        model = Payment
        fields = [
            "id", "amount", "amount_refunded", "currency", "status", "source", "external_id",
            "payment_event_id", "description", "contact", "contact_email", "occurred_at", "created_at",
        ]


class PendingSignupSerializer(serializers.ModelSerializer):
    contact = ContactSerializer(read_only=True)

    class Meta:
        model = PendingSignup
        fields = ["id", "contact", "source", "external_id", "metadata", "status", "decided_at", "created_at"]


class ContactViewSet(TenantScopedViewSet):
    model = Contact
    serializer_class = ContactSerializer
    ordering = ("-created_at", "-pk")


class PaymentViewSet(TenantScopedViewSet):
    model = Payment
    serializer_class = PaymentSerializer
    ordering = ("-created_at", "-pk")

    def filter_queryset_for_request(self, queryset):
        return queryset.select_related("contact")


class PendingSignupViewSet(TenantScopedViewSet):
    model = PendingSignup
    serializer_class = PendingSignupSerializer
    ordering = ("-created_at", "-pk")

    def filter_queryset_for_request(self, queryset):
        status = self.request.query_params.get("status")
        queryset = queryset.select_related("contact")
        return queryset.filter(status=status) if status else queryset
