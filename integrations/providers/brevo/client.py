"""Brevo contacts API: upsert a contact into a list. ``api-key`` header; 10 req/s on contacts;
a 429 carries ``x-sib-ratelimit-reset`` (seconds until the window resets).

Errors never carry the API key: messages name the status and Brevo's error ``code``/``message``
(which describe the request, not the key), and the key is masked out of them all the same.
"""

from django.conf import settings

from integrations.http import ApiError, RateLimited, make_session, retry_after_seconds

RATE_LIMIT_HEADER = "x-sib-ratelimit-reset"


class BrevoClient:
    def __init__(self, api_key: str, base_url: str | None = None, session=None):
        self.base_url = (base_url or settings.BREVO_API_BASE).rstrip("/")
        self._api_key = api_key
        self.session = session or make_session()
        self.session.headers.update({"api-key": api_key, "accept": "application/json"})

    def __repr__(self):  # never the key, should a client end up in a log line or a traceback
        return f"<BrevoClient {self.base_url}>"

    def upsert_contact(self, email: str, attributes: dict, list_ids: list[int]) -> None:
        """Create the contact or update it (``updateEnabled``), and add it to ``list_ids``."""
        response = self.session.post(
            f"{self.base_url}/contacts",
            json={"email": email, "attributes": attributes, "listIds": list_ids, "updateEnabled": True},
        )
        self._raise_for(response, "POST /contacts")

    def test_connection(self) -> str:
        """Whether the key works: ``GET /account``. Returns a short description of the account;
        raises ``RateLimited`` or ``ApiError`` (401: the key is not accepted)."""
        response = self.session.get(f"{self.base_url}/account")
        self._raise_for(response, "GET /account")
        try:
            account = response.json()
        except ValueError:
            account = {}
        if not isinstance(account, dict):
            account = {}
        name = account.get("companyName") or account.get("email") or ""
        return f"Brevo account {name}" if name else "Brevo account reachable"

    def _raise_for(self, response, what: str) -> None:
        if response.status_code in (200, 201, 204):
            return
        if response.status_code == 429:
            raise RateLimited(retry_after_seconds(response, RATE_LIMIT_HEADER))
        raise ApiError(self._redact(f"Brevo answered {response.status_code} to {what}{self._detail(response)}"))

    @staticmethod
    def _detail(response) -> str:
        """Brevo's error body is ``{"code": "...", "message": "..."}``: worth keeping for operators."""
        try:
            body = response.json()
        except ValueError:
            return ""
        if not isinstance(body, dict):
            return ""
        parts = [str(body[k]) for k in ("code", "message") if body.get(k)]
        return (": " + " - ".join(parts))[:300] if parts else ""

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "[redacted]") if self._api_key else text
