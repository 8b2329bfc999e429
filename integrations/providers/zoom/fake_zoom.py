"""A local fake of Zoom for the attendee sync's tests: a small threaded HTTP server on 127.0.0.1
with the Server-to-Server OAuth endpoint (``/oauth/token``) and the API (``/v2/...``) the sync
reads, answering as Zoom does:

* ``POST /oauth/token`` with Basic ``client_id:client_secret`` and the form
  ``grant_type=account_credentials&account_id=…``: ``{"access_token", "token_type", "expires_in",
  "scope"}``; a wrong client id or secret is 401 ``{"reason": "Invalid client_id or
  client_secret", "error": "invalid_client"}``, an app not activated 400 with its reason;
* ``GET /v2/users/<user>/meetings?type=upcoming|previous_meetings``, ``/v2/users/<user>/webinars``,
  ``/v2/meetings/<id>/registrants?status=…`` and ``/v2/webinars/<id>/registrants``, ``page_size``
  (at most 300) and ``next_page_token``; a registrant list of a meeting without registration is
  400 (code 300), an unknown user 404 (code 1001), a token without the scope 400 (code 4711);
* a token that ``expire_tokens()`` ended is 401 (code 124, "Invalid access token.").

It can be told to fail (``server.fail(path_fragment, status=429, headers={"Retry-After": "7"},
times=1)`` or a 5xx). It records every request (``server.requests``: method, path, query, whether
the token was good) and every token request (``server.token_requests``: the account and how the
values came, in the body or the query), never a secret. Two accounts may hold the very same
meeting ids, registrant ids and e-mails, as two tenants' Zoom accounts can.
"""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

from integrations.fake_platform import FakePlatform, JsonHandler

ALL_SCOPES = (
    "meeting:read:list_meetings:admin meeting:read:list_registrants:admin "
    "webinar:read:list_webinars:admin webinar:read:list_registrants:admin"
)


def registrant(n: int, status: str = "approved", prefix: str = "reg", domain: str = "example.com",
               first_name: str = "Person") -> dict:
    """A registrant as Zoom lists it."""
    return {
        "id": f"{prefix}{n:05d}-Qz2LmN4pR8sT", "email": f"person{n}@{domain}", "first_name": f"{first_name} {n}",
        "last_name": "Registrant", "phone": "", "status": status, "create_time": "2026-11-20T10:00:00Z",
        "join_url": f"https://example.zoom.us/w/1?tk=redacted-{n}",
    }


@dataclass
class Meeting:
    id: int
    topic: str = "Meeting"
    start_time: str | None = "2026-12-04T18:00:00Z"
    type: int = 2  # scheduled
    registrants: list[dict] = field(default_factory=list)
    registration: bool = True
    previous: bool = False  # listed under type=previous_meetings instead of upcoming

    def listed(self) -> dict:
        item = {"id": self.id, "uuid": base64.b64encode(str(self.id).encode()).decode(), "topic": self.topic,
                "type": self.type, "duration": 60, "timezone": "Europe/Paris"}
        if self.start_time:
            item["start_time"] = self.start_time
        return item


@dataclass
class Account:
    """One Zoom account with a Server-to-Server OAuth app (a tenant's own)."""

    account_id: str
    client_id: str
    client_secret: str
    meetings: list[Meeting] = field(default_factory=list)
    webinars: list[Meeting] = field(default_factory=list)
    users: tuple[str, ...] = ("me",)
    activated: bool = True
    scope: str = ALL_SCOPES
    webinar_plan: bool = True


@dataclass
class Fault:
    match: str  # a substring of the path
    status: int = 500
    times: int = 1
    headers: dict = field(default_factory=dict)
    body: dict = field(default_factory=lambda: {"code": 500, "message": "Internal error"})


class FakeZoom(FakePlatform):
    fault_class = Fault

    def __init__(self):
        super().__init__(_Handler)
        self.accounts: dict[str, Account] = {}
        self.tokens: dict[str, str] = {}  # token -> account id (live ones)
        self.expires_in = 3600
        self.token_requests: list[dict] = []
        self._serial = itertools.count(1)

    @property
    def base(self) -> str:
        return self.origin

    @property
    def api_base(self) -> str:
        return f"{self.base}/v2"

    @property
    def oauth_url(self) -> str:
        return f"{self.base}/oauth/token"

    def expire_tokens(self) -> None:
        """Every token issued so far stops working (Zoom revoked them, or they expired)."""
        with self.lock:
            self.tokens.clear()

    def issued(self) -> list[str]:
        with self.lock:
            return list(self.tokens)


class _Handler(JsonHandler):
    server: FakeZoom

    # --- OAuth ------------------------------------------------------------------------------------
    def do_POST(self):  # noqa: N802 (http.server's naming)
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        form = dict(parse_qsl(self.rfile.read(length).decode())) if length else {}
        query = dict(parse_qsl(parts.query))
        values = {**query, **form}
        client_id, client_secret = self.basic_auth()
        account = self.server.accounts.get(values.get("account_id", ""))
        with self.server.lock:
            self.server.token_requests.append({
                "account_id": values.get("account_id"), "in_body": "account_id" in form, "in_query": bool(query),
                "grant_type": values.get("grant_type"),
            })
            fault = self.server.take_fault(parts.path)
        if fault:
            return self.answer(fault.status, fault.body, fault.headers)
        if parts.path != "/oauth/token":
            return self.answer(404, {"reason": "Not found"})
        if values.get("grant_type") != "account_credentials":
            return self.answer(400, {"reason": "Unsupported grant type", "error": "unsupported_grant_type"})
        if account is None:
            return self.answer(400, {"reason": "Invalid account_id", "error": "invalid_request"})
        if (client_id, client_secret) != (account.client_id, account.client_secret):
            return self.answer(401, {"reason": "Invalid client_id or client_secret", "error": "invalid_client"})
        if not account.activated:
            return self.answer(400, {"reason": "The app has been disabled", "error": "invalid_request"})
        token = f"fake-zoom-token-{next(self.server._serial)}-{account.account_id}"
        with self.server.lock:
            self.server.tokens[token] = account.account_id
        self.answer(200, {"access_token": token, "token_type": "bearer", "expires_in": self.server.expires_in,
                          "scope": account.scope, "api_url": "https://api.zoom.us"})

    def basic_auth(self) -> tuple[str, str]:
        header = self.headers.get("Authorization") or ""
        if not header.startswith("Basic "):
            return "", ""
        try:
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return "", ""
        return client_id, secret

    # --- the API ------------------------------------------------------------------------------------
    def do_GET(self):  # noqa: N802
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query))
        header = self.headers.get("Authorization") or ""
        token = header[7:] if header.startswith("Bearer ") else ""
        with self.server.lock:
            account_id = self.server.tokens.get(token)
            self.server.requests.append({"method": "GET", "path": parts.path, "query": query,
                                         "token_ok": account_id is not None})
            fault = self.server.take_fault(parts.path)
        if fault:
            return self.answer(fault.status, fault.body, fault.headers)
        if account_id is None:
            return self.answer(401, {"code": 124, "message": "Invalid access token."})
        account = self.server.accounts[account_id]
        segments = [unquote(s) for s in parts.path.removeprefix("/v2/").split("/")]
        match segments:
            case ["users", user, "meetings"]:
                if user not in account.users:
                    return self.answer(404, {"code": 1001, "message": f"User does not exist: {user}."})
                if not self.granted(account, "meeting:read:list_meetings:admin"):
                    return self.scope_error("meeting:read:list_meetings:admin")
                previous = query.get("type") == "previous_meetings"
                items = [m.listed() for m in account.meetings if m.previous == previous]
                return self.page(items, "meetings", query)
            case ["users", user, "webinars"]:
                if user not in account.users:
                    return self.answer(404, {"code": 1001, "message": f"User does not exist: {user}."})
                if not account.webinar_plan:
                    return self.answer(400, {"code": 200, "message": "Webinar plan is missing."})
                return self.page([w.listed() for w in account.webinars], "webinars", query)
            case [("meetings" | "webinars") as kind, object_id, "registrants"]:
                scope = f"{kind[:-1]}:read:list_registrants:admin"
                if not self.granted(account, scope):
                    return self.scope_error(scope)
                objects = account.meetings if kind == "meetings" else account.webinars
                obj = next((o for o in objects if str(o.id) == object_id), None)
                if obj is None:
                    return self.answer(404, {"code": 3001, "message": f"Meeting {object_id} is not found or has expired."})
                if not obj.registration:
                    return self.answer(400, {"code": 300, "message": "Registration has not been enabled for this meeting."})
                status = query.get("status") or "approved"
                return self.page([r for r in obj.registrants if r["status"] == status], "registrants", query)
        self.answer(404, {"code": 404, "message": "Not found"})

    @staticmethod
    def granted(account: Account, scope: str) -> bool:
        """The granular scope, or the classic one that covers it (``meeting:read:admin``)."""
        have = account.scope.split()
        return scope in have or f"{scope.split(':')[0]}:read:admin" in have

    def scope_error(self, scope: str) -> None:
        self.answer(400, {"code": 4711, "message": f"Invalid access token, does not contain scopes:[{scope}]."})

    def page(self, items: list[dict], key: str, query: dict) -> None:
        size = min(max(int(query.get("page_size") or 30), 1), 300)
        token = query.get("next_page_token") or ""
        offset = int(base64.urlsafe_b64decode(token.encode()).decode().split(":")[1]) if token else 0
        chunk = items[offset:offset + size]
        more = offset + size < len(items)
        next_token = base64.urlsafe_b64encode(f"page:{offset + size}".encode()).decode() if more else ""
        self.answer(200, {"page_size": size, "total_records": len(items), "next_page_token": next_token, key: chunk})
