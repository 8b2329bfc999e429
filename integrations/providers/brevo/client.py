"""Brevo contacts API: upsert a contact into a list. ``api-key`` header; 10 req/s on contacts;
a 429 carries ``x-sib-ratelimit-reset`` (seconds until the window resets)."""

from django.conf import settings

from integrations.http import ApiError, RateLimited, make_session, retry_after_seconds


class BrevoClient:
    def __init__(self, api_key: str, base_url: str | None = None, session=None):
        self.base_url = (base_url or settings.BREVO_API_BASE).rstrip("/")
        self.session = session or make_session()
        self.session.headers.update({"api-key": api_key, "accept": "application/json"})

    def upsert_contact(self, email: str, attributes: dict, list_ids: list[int]) -> None:
        response = self.session.post(
            f"{self.base_url}/contacts",
            json={"email": email, "attributes": attributes, "listIds": list_ids, "updateEnabled": True},
        )
        if response.status_code == 429:
            raise RateLimited(retry_after_seconds(response, "x-sib-ratelimit-reset"))
        if response.status_code not in (200, 201, 204):
            raise ApiError(f"Brevo answered {response.status_code} to POST /contacts")

    def test_connection(self) -> None:
        response = self.session.get(f"{self.base_url}/account")
        if response.status_code != 200:
            raise ApiError(f"Brevo answered {response.status_code} to GET /account")
