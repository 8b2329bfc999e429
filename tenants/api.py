from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from tenants.models import Tenant


class TenantSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Tenant
        fields = ["id", "slug", "name", "owner_name", "report_email", "timezone", "is_active", "created_at", "role"]

    def get_role(self, tenant) -> str:
        request = self.context["request"]
        membership = getattr(request._request, "membership", None)
        return membership.role if membership else ("staff" if request._request.staff_acting else "")


@extend_schema(summary="The tenant you act for", description="Which tenant this request acts for, and your role "
               "in it (`owner`, `admin`, `member`, or `staff` for operators).")
class CurrentTenantView(APIView):
    """The tenant this request acts for."""

    serializer_class = TenantSerializer
    staff_permission = "tenants.view_tenant"

    def get(self, request):
        return Response(TenantSerializer(request._request.tenant, context={"request": request}).data)
