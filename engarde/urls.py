from django.contrib import admin
from django.http import JsonResponse
from django.views import defaults
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from contacts import pages as contact_pages
from contacts.api import ContactViewSet, PaymentViewSet, PendingSignupViewSet
from integrations import dashboard
from integrations import pages as integration_pages
from integrations.api import IntegrationViewSet
from reports import pages as report_pages
from reports.api import AnalyticsView, MetaAdInsightViewSet, MetaAdViewSet
from reports.bookings_api import AddBookersView, BookingInsightsView, BookingStatsView, SyncToEmailListView
from tenants import join, members
from tenants import pages as tenant_pages
from tenants import tokens as tenant_tokens
from tenants.api import CurrentTenantView
from tenants.forms import ResetPasswordForm
from webhooks import pages as webhook_pages
from webhooks import views as webhook_views
from webhooks.api import WebhookEventViewSet

router = DefaultRouter(trailing_slash="/?")
router.include_root_view = False
router.register("integrations", IntegrationViewSet, basename="integration")
router.register("contacts", ContactViewSet, basename="contact")
router.register("payments", PaymentViewSet, basename="payment")
router.register("pending-signups", PendingSignupViewSet, basename="pending-signup")
router.register("webhook-events", WebhookEventViewSet, basename="webhook-event")
router.register("ads", MetaAdViewSet, basename="ad")
router.register("ad-insights", MetaAdInsightViewSet, basename="ad-insight")

urlpatterns = [
    path("admin/", admin.site.urls),
    # Tenant users' pages (server-rendered; the tenant comes from the signed-in user).
    path("", dashboard.dashboard, name="dashboard"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/password_reset/", auth_views.PasswordResetView.as_view(form_class=ResetPasswordForm),
         name="password_reset"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("tenants/pick/", tenant_pages.pick_tenant, name="pick-tenant"),
    path("members/", members.members, name="members"),
    path("members/invite/", members.invite_member, name="invite-member"),
    path("members/<int:membership_id>/remove/", members.remove_member, name="remove-member"),
    path("members/invitations/<int:invitation_id>/resend/", members.resend_invitation, name="resend-invitation"),
    path("members/invitations/<int:invitation_id>/cancel/", members.cancel_invitation, name="cancel-invitation"),
    path("tokens/", tenant_tokens.tokens, name="tokens"),
    path("tokens/create/", tenant_tokens.create_token, name="create-token"),
    path("tokens/<int:token_id>/revoke/", tenant_tokens.revoke_token, name="revoke-token"),
    path("invitations/<slug:tenant_slug>/<str:token>/", join.invitation, name="invitation"),
    path("setup/<str:provider_name>/", integration_pages.setup, name="setup"),
    path("setup/<str:provider_name>/check/", integration_pages.check_connection, name="check-connection"),
    path("webhooks/", webhook_pages.log_list, name="webhook-log"),
    path("webhooks/<int:pk>/", webhook_pages.log_detail, name="webhook-detail"),
    path("webhooks/<int:pk>/replay/", webhook_pages.log_replay, name="webhook-replay"),
    path("contacts/", contact_pages.contact_list, name="contacts"),
    path("contacts/export.csv", contact_pages.contact_export, name="contacts-export"),
    path("contacts/<int:pk>/", contact_pages.contact_detail, name="contact-page"),
    path("payments/", contact_pages.payment_list, name="payments"),
    path("payments/export.csv", contact_pages.payment_export, name="payments-export"),
    path("signups/", contact_pages.signups, name="signups"),
    path("reports/", report_pages.weekly, name="reports"),
    path("insights/", report_pages.insights, name="insights"),
    path("insights/add-bookers/", report_pages.insights_add_bookers, name="insights-add-bookers"),
    path("insights/sync-email-list/", report_pages.insights_sync_email, name="insights-sync-email"),
    path("signups/decide/", contact_pages.decide, name="signups-decide"),
    path("api/v1/tenant/", CurrentTenantView.as_view(), name="api-tenant"),
    path("api/v1/admin/analytics/", AnalyticsView.as_view(), name="api-analytics"),
    path("api/v1/", include(router.urls)),
    path("api/admin/easyappointments/booking-stats", BookingStatsView.as_view(), name="api-ea-booking-stats"),
    path("api/admin/easyappointments/insights", BookingInsightsView.as_view(), name="api-ea-insights"),
    path("api/admin/easyappointments/add-bookers-to-queue", AddBookersView.as_view(), name="api-ea-add-bookers"),
    path("api/admin/easyappointments/sync-to-email-list", SyncToEmailListView.as_view(), name="api-ea-sync-email"),
    # Webhooks: with or without the trailing slash, so a POST is never redirected.
    re_path(r"^api/webhooks/(?P<source>[a-z]+)/generate-url/(?P<tenant_key>[^/]+)/?$",
            webhook_views.generate_url, name="webhook-generate-url"),
    re_path(r"^api/webhooks/(?P<source>[a-z]+)/test/(?P<tenant_key>[^/]+)/?$",
            webhook_views.test_connection, name="webhook-test"),
    re_path(r"^api/webhooks/(?P<first>[^/]+)/(?P<second>[^/]+)/?$", webhook_views.receive_webhook, name="webhook"),
    path("api/schema/", SpectacularAPIView.as_view(permission_classes=[]), name="api-schema"),
    # Interactive documentation of that schema: Swagger UI, from static files. (Not Redoc: its page
    # loads fonts from Google's CDN.)
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema", permission_classes=[]), name="api-docs"),
]


def not_found(request, exception=None):
    """Under /api/ a URL that matches nothing answers in the API's own form (JSON), like the rest."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


handler404 = not_found
