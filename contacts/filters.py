"""What ``/contacts/`` and ``/payments/`` show: one form per list turns the query string into a
queryset, and the page, its total, its page numbers and its CSV export all read that one queryset,
so an export holds exactly the rows the page shows.

Dates are days in the tenant's time zone ("from 1 March" means from midnight in Paris for a Paris
tenant); the search matches every word against the names, the e-mail, the phone and the platform
ids, so "pat example" finds Pat at example.com.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django import forms
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Coalesce

from contacts.models import Contact, Payment
from integrations.registry import PROVIDERS

MAX_QUERY_LENGTH = 200
MAX_WORDS = 8  # each word is one more OR over a handful of columns; eight is plenty for a person


def source_choices():
    return [("", "All platforms"), *((p.name, p.label) for p in PROVIDERS.values())]


def day_bounds(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone)


class ListFilter(forms.Form):
    """The common part: ``q``, ``source``, ``from``, ``to``, ``sort``. A value that does not parse is
    dropped with the form's error shown on the page, never a 500."""

    q = forms.CharField(required=False, max_length=MAX_QUERY_LENGTH, label="Search")
    source = forms.ChoiceField(required=False, label="Platform")
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    sort = forms.ChoiceField(required=False, label="Sort")

    #: column names searched by every word of ``q``
    search_fields: tuple[str, ...] = ()
    #: ``sort`` value -> order_by expression (the default first)
    sorts: dict[str, tuple[str, str]] = {}
    date_field = "created_at"

    # The query string says ``from`` and ``to``; those are Python keywords, hence the prefix-free
    # mapping in ``__init__``.
    QUERY_NAMES = {"from": "date_from", "to": "date_to"}

    def __init__(self, query, *, tenant):
        data = {self.QUERY_NAMES.get(key, key): value for key, value in query.items()}
        super().__init__(data)
        self.zone = ZoneInfo(tenant.timezone or "UTC")
        self.fields["source"].choices = source_choices()
        self.fields["sort"].choices = [(key, label) for key, (_, label) in self.sorts.items()]
        self.fields["sort"] = self.fields.pop("sort")  # last, after a subclass's own filters
        for name, field in self.fields.items():
            field.widget.attrs.setdefault("id", f"f-{name}")

    def value(self, name: str):
        """The cleaned value of a field, or None when it was empty or refused."""
        if not self.is_bound or not self.is_valid() and name in self.errors:
            return None
        return self.cleaned_data.get(name) or None

    def is_valid(self):
        # Valid fields still apply when another one is refused: clean once, keep what parsed.
        if not hasattr(self, "_checked"):
            self._checked = super().is_valid()
        return self._checked

    def filter(self, queryset: QuerySet) -> QuerySet:
        self.is_valid()
        if words := (self.value("q") or "").split()[:MAX_WORDS]:
            for word in words:
                queryset = queryset.filter(self.word_matches(word))
        if source := self.value("source"):
            queryset = queryset.filter(source=source)
        if day := self.value("date_from"):
            queryset = queryset.filter(**{f"{self.date_field}__gte": day_bounds(day, self.zone)})
        if day := self.value("date_to"):  # inclusive: the whole of that day
            queryset = queryset.filter(**{f"{self.date_field}__lt": day_bounds(day + timedelta(days=1), self.zone)})
        queryset = self.filter_more(queryset)
        order = self.sorts.get(self.value("sort") or "", next(iter(self.sorts.values())))[0]
        return queryset.order_by(order, "-pk" if order.startswith("-") else "pk")

    def word_matches(self, word: str) -> Q:
        found = Q()
        for name in self.search_fields:
            found |= Q(**{f"{name}__icontains": word})
        return found

    def filter_more(self, queryset: QuerySet) -> QuerySet:
        return queryset

    @property
    def active(self) -> bool:
        """Whether anything narrows the list (for "no contacts match" against "no contacts yet")."""
        self.is_valid()
        return any(self.value(name) for name in self.fields if name != "sort")


class ContactFilter(ListFilter):
    search_fields = ("first_name", "last_name", "email", "phone", "mc_id", "ghl_id")
    sorts = {
        "-created": ("-created_at", "Newest first"),
        "created": ("created_at", "Oldest first"),
        "name": ("first_name", "Name A–Z"),
        "email": ("email", "E-mail A–Z"),
    }

    def queryset(self) -> QuerySet:
        return self.filter(Contact.objects.all())


class PaymentFilter(ListFilter):
    """Payments by when they happened at the platform (``occurred_at``), or when we stored them
    for platforms that send no time."""

    status = forms.ChoiceField(required=False, label="Status")
    currency = forms.CharField(required=False, max_length=3, label="Currency")

    search_fields = (
        "external_id", "description", "contact__email", "contact__first_name", "contact__last_name",
        "contact__phone", "contact__mc_id", "contact__ghl_id",
    )
    sorts = {
        "-when": ("-when", "Newest first"),
        "when": ("when", "Oldest first"),
        "-amount": ("-amount", "Largest first"),
        "amount": ("amount", "Smallest first"),
    }
    date_field = "when"

    def __init__(self, query, *, tenant):
        super().__init__(query, tenant=tenant)
        self.fields["status"].choices = [("", "Any status"), *Payment.Status.choices]

    def clean_currency(self):
        value = self.cleaned_data["currency"].strip().upper()
        if value and not (len(value) == 3 and value.isalpha()):
            raise forms.ValidationError("A currency is three letters, such as EUR.")
        return value

    def filter_more(self, queryset: QuerySet) -> QuerySet:
        if status := self.value("status"):
            queryset = queryset.filter(status=status)
        if currency := self.value("currency"):
            queryset = queryset.filter(currency=currency)
        return queryset

    def queryset(self) -> QuerySet:
        payments = Payment.objects.select_related("contact").annotate(when=Coalesce(F("occurred_at"), F("created_at")))
        return self.filter(payments)
