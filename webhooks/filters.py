"""What the webhook log page shows: ``q`` (an event id, an event type, or the e-mail of a contact a
delivery made or updated), ``source``, ``status``, ``from``/``to`` (days in the tenant's time zone)."""

from django import forms
from django.db.models import Q, QuerySet

from contacts.filters import ListFilter
from contacts.models import ContactDelivery
from webhooks.models import WebhookLog


class WebhookLogFilter(ListFilter):
    status = forms.ChoiceField(required=False, label="Status")

    sorts = {"-received": ("-received_at", "Newest first"), "received": ("received_at", "Oldest first")}
    date_field = "received_at"

    def __init__(self, query, *, tenant):
        super().__init__(query, tenant=tenant)
        self.fields["q"].label = "Event id or e-mail"
        self.fields["status"].choices = [("", "Any status"), *WebhookLog.Status.choices]

    def word_matches(self, word: str) -> Q:
        # An e-mail is not a column of the log: the deliveries that made or updated a contact with
        # that e-mail are (ContactDelivery, this tenant's rows only like everything here).
        by_contact = ContactDelivery.objects.filter(contact__email__icontains=word).values("webhook_log_id")
        return Q(event_id__icontains=word) | Q(event_type__icontains=word) | Q(pk__in=by_contact)

    def filter_more(self, queryset: QuerySet) -> QuerySet:
        if status := self.value("status"):
            queryset = queryset.filter(status=status)
        return queryset

    def queryset(self) -> QuerySet:
        return self.filter(WebhookLog.objects.defer("body", "headers"))
