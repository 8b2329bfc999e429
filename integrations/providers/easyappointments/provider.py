"""Easy!Appointments: an outgoing webhook carries one static header whose name and value the E!A
admin chooses; we treat it as the tenant's token in ``X-Webhook-Token``. E!A versions that send
no header at all can put ``?token=`` in the URL instead: the base class accepts both.

E!A tries once and keeps no id for a delivery, so the event id is derived: the action, the
object's id and the body's hash. The same bytes twice are one event; any change is a new one.
"""

from integrations.http import call_json, ensure_public_https, pinned_session
from integrations.providers.base import TEST_EVENT_TYPE, CredentialField, Provider, WebhookAuth, body_hash
from integrations.providers.easyappointments.handlers import FETCHERS, HANDLERS, IGNORED_EVENTS
from integrations.providers.easyappointments.schemas import SCHEMAS
from integrations.providers.validators import http_url


class EasyAppointmentsProvider(Provider):
    name = "easyappointments"
    label = "Easy!Appointments"
    webhook_auth = WebhookAuth.TOKEN
    webhook_secret_label = "Webhook token (X-Webhook-Token header)"
    credential_fields = (
        CredentialField("url", "Installation URL", secret=False, help_text="e.g. https://booking.example.com",
                        validators=(http_url,), example="https://booking.example.com"),
        CredentialField("username", "API user", secret=False, required=False),
        CredentialField("password", "API password or token", required=False),
    )
    handlers = HANDLERS
    fetchers = FETCHERS
    schemas = SCHEMAS
    ignored_events = IGNORED_EVENTS
    # E!A 1.5.0 sends no header at all; 1.5.1+ sends one whose name the admin chooses.
    token_in_query = True

    def event_type(self, payload, request):
        return str(payload.get("action") or "")

    def event_id(self, payload, request):
        inner = payload.get("payload")
        object_id = inner.get("id", "") if isinstance(inner, dict) else ""
        return f"{self.event_type(payload, request)}:{object_id}:{body_hash(request.body)}"

    def test_event(self, integration, event_id, sent_at):
        return {"action": TEST_EVENT_TYPE, "payload": {"id": event_id}}

    def setup_steps(self, webhook_url):
        return [
            "In Easy!Appointments open Settings → Webhooks (an administrator's page) and click Add.",
            f"URL: {webhook_url}",
            "Secret header: X-Webhook-Token, with the webhook token shown on this page as its value. Whether "
            "your E!A version sends it is unconfirmed (the public 1.4/1.5 client sends no header at all): if "
            f"deliveries are rejected, use the URL {webhook_url}?token=<your webhook token> instead.",
            "Actions: appointment save, appointment delete and customer save. Other actions are stored and "
            "marked ignored.",
            "En Garde calls the installation URL only over https on a public address. An installation on your "
            "company network (or on plain http inside it): ask your En Garde operators to enter the URL for you; "
            "they can allow that network.",
            "E!A sends each event once and does not retry: check this tenant's webhook log after a test booking. "
            "An appointment that names its customer only by id is completed with a look-up of "
            "/index.php/api/v1/customers/{id} with the API user or token entered here; without them such a "
            "delivery fails with that reason (replay it once they are entered).",
        ]

    def check_connection(self, integration) -> str:
        """GET <url>/index.php/api/v1/services with the API user (Basic) or token (Bearer)."""
        url, user, password = (integration.value(n) for n in ("url", "username", "password"))
        if not (url and password):
            raise ValueError("enter the installation URL and the API password or token first")
        networks = integration.allowed_networks("url")  # private ones only for a URL an operator set
        ensure_public_https(url, networks)
        auth = {"auth": (user, password)} if user else {"headers": {"Authorization": f"Bearer {password}"}}
        services = call_json(pinned_session(networks), "GET", f"{url.rstrip('/')}/index.php/api/v1/services",
                             platform="Easy!Appointments", params={"length": 1}, **auth)
        return f"{len(services)} service(s) visible" if isinstance(services, list) else "the API answered"
