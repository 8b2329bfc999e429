"""The Easy!Appointments admin endpoints (``/api/admin/easyappointments/…``) for the tenant the
request acts for: its owners' and admins' Bearer tokens (members 403), or staff naming the tenant
with ``?tenant=<slug>``. The work is in ``reports.bookings``.

These views run *without* the request's tenant transaction (``outside_tenant_transaction``): each
opens ``tenant_context`` briefly to read the connection and again to write, and calls E!A, Claude
and Brevo with no transaction open.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from contacts.models import Contact, PendingSignup
from reports import bookings
from tenants.context import tenant_context
from tenants.permissions import IsTenantAdmin, IsTenantAdminToRead

ISO_DAY = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


# --- the schema -------------------------------------------------------------------------------------


class CountsField(serializers.DictField):
    def __init__(self, **kwargs):
        super().__init__(child=serializers.IntegerField(), **kwargs)


class StatsSerializer(serializers.Serializer):
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    total_bookings = serializers.IntegerField(help_text="Appointments starting in the range.")
    unique_customers = serializers.IntegerField()
    by_status = CountsField(help_text="E!A's status (`unspecified` when it has none) -> appointments.")
    by_service = CountsField(help_text="Service name -> appointments.")
    by_provider = CountsField(help_text="Provider (staff) name -> appointments.")
    by_weekday = CountsField(help_text="Monday … Sunday -> appointments (every day listed).")
    by_hour = CountsField(help_text="`00` … `23` (start hour, the tenant's time) -> appointments.")


class InsightsSerializer(serializers.Serializer):
    analysis_type = serializers.ChoiceField(choices=bookings.ANALYSIS_TYPES)
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    stats = StatsSerializer()
    insights = serializers.CharField(help_text="Written by Claude from the aggregates only.")
    model = serializers.CharField(help_text="The Claude model that wrote it.")


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(help_text="What was wrong, in a sentence.")


class BadRequestSerializer(ReasonSerializer):
    status = serializers.ChoiceField(choices=["bad_request"])
    field = serializers.CharField(required=False, help_text="The parameter that was wrong (absent when a NUL "
                                  "character anywhere in the request was refused).")


class UnavailableSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["unavailable"])
    reason = serializers.CharField()


class InsightsFailedSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["failed"])
    reason = serializers.CharField()
    analysis_type = serializers.ChoiceField(choices=bookings.ANALYSIS_TYPES)
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    stats = StatsSerializer()


class RangeBodySerializer(serializers.Serializer):
    date_from = serializers.DateField(required=False, help_text="First day (YYYY-MM-DD, inclusive); default: 29 "
                                      "days before date_to.")
    date_to = serializers.DateField(required=False, help_text="Last day (inclusive); default: today.")


class QueueBodySerializer(RangeBodySerializer):
    auto_invite = serializers.BooleanField(required=False, default=False,
                                           help_text="Approve the bookers' pending sign-ups, as the Sign-ups page does.")
    status_filter = serializers.CharField(required=False, default="all", max_length=64,
                                          help_text="`all`, or an E!A appointment status (case-insensitive).")


class QueueAnswerSerializer(serializers.Serializer):
    added = serializers.IntegerField(help_text="Bookers newly put in the sign-up queue.")
    already_queued = serializers.IntegerField(help_text="Bookers that had their sign-up already.")
    skipped = serializers.IntegerField(help_text="Bookers without a usable e-mail in E!A.")
    approved = serializers.IntegerField(help_text="Sign-ups approved by auto_invite.")


class EmailListBodySerializer(RangeBodySerializer):
    list_id = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1,
                                       help_text="The Brevo list; default: the tenant's Brevo list.")


class EmailListAnswerSerializer(serializers.Serializer):
    synced = serializers.IntegerField()
    failed = serializers.IntegerField()
    list_id = serializers.IntegerField()


DATE_PARAMETERS = [
    OpenApiParameter("date_from", OpenApiTypes.DATE, description="First day (YYYY-MM-DD, inclusive, the tenant's time "
                     "zone); default: 29 days before date_to.", pattern=ISO_DAY),
    OpenApiParameter("date_to", OpenApiTypes.DATE, description="Last day (inclusive); default: today. At most 366 "
                     "days in all.", pattern=ISO_DAY),
]
ERRORS = {
    400: OpenApiResponse(BadRequestSerializer, description="A bad date, an inverted range, a range over 366 days "
                         "or an unknown value."),
    409: OpenApiResponse(ReasonSerializer, description="Easy!Appointments (or, for the list, Brevo) is not connected."),
    502: OpenApiResponse(ReasonSerializer, description="Easy!Appointments failed or refused (the reason says which)."),
}


# --- the views ----------------------------------------------------------------------------------------


class BookingView(APIView):
    """Shared: the range, the connection read briefly, the errors as answers."""

    staff_permission = "integrations.view_tenantintegration"
    permission_classes = [IsTenantAdminToRead]
    parser_classes = [JSONParser]

    @classmethod
    def as_view(cls, **initkwargs):
        view = super().as_view(**initkwargs)
        view.tenant_transaction = False  # see the module's docstring (tenants.decorators)
        return view

    def handle_exception(self, exc):
        if isinstance(exc, bookings.BadRequest):
            return Response({"status": "bad_request", "reason": exc.reason, "field": exc.field}, status=400)
        if isinstance(exc, bookings.NotConnected):
            return Response({"reason": str(exc)}, status=409)
        if isinstance(exc, bookings.PlatformFailed):
            return Response({"reason": str(exc)}, status=502)
        return super().handle_exception(exc)

    def values(self, request) -> dict:
        if request.method == "GET":
            return request.query_params
        if not isinstance(request.data, dict):
            raise bookings.BadRequest("body", "The body must be a JSON object.")
        return request.data

    def load(self, request, *, customers: bool = False):
        """Each date's form is checked first (400), then the connection (409), then the range
        itself (400): an inverted range of a tenant without E!A is told that E!A is missing."""
        tenant = request._request.tenant
        date_from, date_to = bookings.parse_range(self.values(request), tenant)
        with tenant_context(tenant):
            integration = bookings.connection_of()
        bookings.check_range(date_from, date_to)
        return date_from, date_to, bookings.fetch_bookings(integration, date_from, date_to, customers=customers)


class BookingStatsView(BookingView):
    @extend_schema(summary="Easy!Appointments booking stats", parameters=DATE_PARAMETERS,
                   description="Counts of your Easy!Appointments appointments starting in the range (E!A's times "
                               "read in your tenant's time zone), for owners and admins.",
                   responses={200: StatsSerializer, **ERRORS})
    def get(self, request):
        date_from, date_to, found = self.load(request)
        return Response(bookings.booking_stats(found, date_from, date_to))


class BookingInsightsView(BookingView):
    @extend_schema(
        summary="Easy!Appointments booking insights by Claude",
        parameters=[*DATE_PARAMETERS, OpenApiParameter("analysis_type", str, enum=list(bookings.ANALYSIS_TYPES),
                                                       description="What to look at; default overview.")],
        description="The booking stats and a short analysis written by Claude from those aggregates only (no "
                    "customer's name, e-mail or phone; providers numbered, not named).",
        responses={200: InsightsSerializer, **ERRORS,
                   502: OpenApiResponse(InsightsFailedSerializer, description="E!A or Claude failed: the reason, "
                                        "and the stats when they were read."),
                   503: OpenApiResponse(UnavailableSerializer, description="No ANTHROPIC_API_KEY is set.")},
    )
    def get(self, request):
        from django.conf import settings

        kind = bookings.analysis_type(request.query_params.get("analysis_type"))
        date_from, date_to, found = self.load(request)
        stats = bookings.booking_stats(found, date_from, date_to)
        head = {"analysis_type": kind, "date_from": stats["date_from"], "date_to": stats["date_to"]}
        try:
            text = bookings.insights(stats, kind)
        except bookings.ClaudeUnavailable as exc:
            return Response({"status": "unavailable", "reason": str(exc)}, status=503)
        except bookings.PlatformFailed as exc:
            return Response({"status": "failed", "reason": str(exc), **head, "stats": stats}, status=502)
        return Response({**head, "stats": stats, "insights": text, "model": settings.ANTHROPIC_MODEL})


class AddBookersView(BookingView):
    model = PendingSignup  # staff need contacts.view_ and change_pendingsignup
    staff_permission = ""
    permission_classes = [IsTenantAdmin]

    @extend_schema(summary="Put Easy!Appointments bookers in the sign-up queue", request=QueueBodySerializer,
                   description="Every customer with an appointment in the range (and status) becomes a contact "
                               "(source easyappointments) with one pending sign-up; a second call adds nothing. "
                               "auto_invite approves them as the Sign-ups page does.",
                   responses={200: QueueAnswerSerializer, **ERRORS})
    def post(self, request):
        values = self.values(request)
        auto_invite, status_filter = values.get("auto_invite", False), values.get("status_filter", "all")
        if not isinstance(auto_invite, bool):
            raise bookings.BadRequest("auto_invite", "auto_invite must be true or false.")
        if not isinstance(status_filter, str) or not status_filter.strip() or len(status_filter) > 64:
            raise bookings.BadRequest("status_filter", "status_filter must be all or an E!A appointment status.")
        _from, _to, found = self.load(request, customers=True)
        people, skipped = bookings.bookers(found, status_filter.strip())
        with tenant_context(request._request.tenant):
            answer = bookings.queue_bookers(people, skipped, auto_invite=auto_invite, user=request.user)
        return Response(answer)


class SyncToEmailListView(BookingView):
    model = Contact  # staff need contacts.view_contact and change_contact
    staff_permission = ""
    permission_classes = [IsTenantAdmin]

    @extend_schema(summary="Put Easy!Appointments bookers in a Brevo list", request=EmailListBodySerializer,
                   description="The customers with an appointment in the range, upserted into the Brevo list "
                               "(list_id, else your Brevo connection's list) with your Brevo key, a batch a "
                               "second, waiting out Brevo's 429s.",
                   responses={200: EmailListAnswerSerializer, **ERRORS})
    def post(self, request):
        values = self.values(request)
        tenant = request._request.tenant
        bookings.parse_range(values, tenant)
        with tenant_context(tenant):
            api_key, list_id = bookings.brevo_target(values.get("list_id"))
        _from, _to, found = self.load(request, customers=True)
        people, _skipped = bookings.bookers(found)
        return Response(bookings.sync_to_brevo(people, api_key, list_id))
