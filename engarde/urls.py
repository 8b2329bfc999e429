from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import DefaultRouter

from contacts.api import ContactViewSet, PaymentViewSet, PendingSignupViewSet
from integrations.api import IntegrationViewSet
from tenants.api import CurrentTenantView
from webhooks import views as webhook_views
from webhooks.api import WebhookEventViewSet

router = DefaultRouter(trailing_slash="/?")
router.include_root_view = False
router.register("integrations", IntegrationViewSet, basename="integration")
router.register("contacts", ContactViewSet, basename="contact")
router.register("payments", PaymentViewSet, basename="payment")
router.register("pending-signups", PendingSignupViewSet, basename="pending-signup")
router.register("webhook-events", WebhookEventViewSet, basename="webhook-event")

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/tenant/", CurrentTenantView.as_view(), name="api-tenant"),
    path("api/v1/", include(router.urls)),
    # Webhooks: with or without the trailing slash, so a POST is never redirected.
    re_path(r"^api/webhooks/(?P<source>[a-z]+)/generate-url/(?P<tenant_key>[^/]+)/?$",
            webhook_views.generate_url, name="webhook-generate-url"),
    re_path(r"^api/webhooks/(?P<source>[a-z]+)/test/(?P<tenant_key>[^/]+)/?$",
            webhook_views.test_connection, name="webhook-test"),
    re_path(r"^api/webhooks/(?P<first>[^/]+)/(?P<second>[^/]+)/?$", webhook_views.receive_webhook, name="webhook"),
    path("api/schema/", SpectacularAPIView.as_view(permission_classes=[]), name="api-schema"),
]
