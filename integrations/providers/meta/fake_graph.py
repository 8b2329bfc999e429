"""A local fake of Meta's Graph API for the ads sync's tests and ``make bench``: a small threaded
HTTP server on 127.0.0.1 that answers ``act_<id>/ads``, ``act_<id>/adcreatives`` and
``act_<id>/insights`` the way Meta does (``data`` + ``paging`` with cursors and an absolute
``next`` carrying the token, numbers as strings), and can be told to:

* restate numbers (``account.factor``: every spend, click and impression is multiplied by it),
* send usage headers (``server.usage``: percent used, minutes to regain access),
* answer errors (``server.fail(match, code=17 | 613 | 190, status=400, times=1)`` or a 5xx),
* link ``paging.next`` to another host (``server.next_host``), or answer slowly (``server.delay``).

It records every request (path, query without the token, whether the token was right) in
``server.requests``. Pages are computed from the offset, so 45,000 insight rows cost no memory.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from urllib.parse import parse_qsl, urlencode, urlsplit

from integrations.fake_platform import FakePlatform, JsonHandler


@dataclass
class Account:
    """One ad account: ``ads`` ads with ids ``{ad_prefix}{n}``, one creative each, and an insight
    row for every ad and day. ``spend_base`` tells two accounts' numbers apart."""

    token: str
    ads: int = 3
    ad_prefix: str = "238500000000"
    spend_base: Decimal = Decimal("10.00")
    currency: str = "EUR"
    factor: Decimal = Decimal(1)

    def ad_id(self, n: int) -> str:
        return f"{self.ad_prefix}{n:04d}"

    def ad(self, n: int) -> dict:
        return {
            "id": self.ad_id(n), "name": f"Ad {n}", "status": "ACTIVE", "effective_status": "ACTIVE",
            "adset_id": f"{self.ad_prefix}9{n % 3}", "adset": {"name": f"Ad set {n % 3}"},
            "campaign_id": f"{self.ad_prefix}8", "campaign": {"name": "Campaign"},
            "creative": {"id": f"{self.ad_prefix}7{n:04d}"},
        }

    def creative(self, n: int) -> dict:
        return {
            "id": f"{self.ad_prefix}7{n:04d}", "name": f"Creative {n}", "title": f"Title {n}", "body": "Come along",
            "image_url": f"https://scontent.example/{n}.jpg", "thumbnail_url": f"https://scontent.example/{n}_t.jpg",
            "call_to_action_type": "LEARN_MORE", "object_story_spec": {"link_data": {"link": "https://shop.example/"}},
        }

    def spend(self, n: int, day: date) -> Decimal:
        return (self.spend_base + Decimal(n) + Decimal(day.day) / 100) * self.factor

    def insight(self, n: int, day: date) -> dict:
        spend, clicks, impressions = self.spend(n, day), int(10 * self.factor) + n, int(1000 * self.factor) + n
        return {
            "ad_id": self.ad_id(n), "adset_id": f"{self.ad_prefix}9{n % 3}", "campaign_id": f"{self.ad_prefix}8",
            "spend": f"{spend:.2f}", "impressions": str(impressions), "reach": str(impressions - 100),
            "clicks": str(clicks), "unique_clicks": str(clicks - 1), "ctr": f"{Decimal(clicks) * 100 / impressions:.6f}",
            "cpc": f"{spend / clicks:.6f}", "cpm": f"{spend * 1000 / impressions:.6f}",
            "actions": [{"action_type": "lead", "value": str(n % 4)}],
            "action_values": [{"action_type": "offsite_conversion.fb_pixel_purchase", "value": f"{spend * 2:.2f}"}],
            "account_currency": self.currency, "date_start": day.isoformat(), "date_stop": day.isoformat(),
        }


@dataclass
class Fault:
    match: str  # a substring of the path
    status: int = 400
    code: int | None = 17
    times: int = 1
    headers: dict = field(default_factory=dict)


class FakeGraph(FakePlatform):
    fault_class = Fault

    def __init__(self, version: str = "v25.0"):
        super().__init__(_Handler)
        self.version = version
        self.accounts: dict[str, Account] = {}
        self.usage: tuple[float, float] = (0.0, 0.0)  # percent used, minutes to regain access
        self.next_host: str | None = None
        self.delay = 0.0

    @property
    def base(self) -> str:
        return self.origin


class _Handler(JsonHandler):
    server: FakeGraph

    def do_GET(self):  # noqa: N802 (http.server's naming)
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query))
        token = query.pop("access_token", None)
        prefix = f"/{self.server.version}/"
        account_id, _, edge = parts.path.removeprefix(prefix).partition("/")
        account = self.server.accounts.get(account_id)
        with self.server.lock:
            self.server.requests.append(
                {"path": parts.path, "query": query, "token_ok": bool(account and token == account.token),
                 "tokens": parts.query.count("access_token=")}
            )
            fault = self.server.take_fault(parts.path)
        if self.server.delay:
            time.sleep(self.server.delay)
        if fault:
            return self.error(fault.status, fault.code, "(#%s) injected" % fault.code, fault.headers)
        if not parts.path.startswith(prefix) or account is None:
            return self.error(400, 100, "Unsupported get request.")
        if token != account.token:
            return self.error(400, 190, "Error validating access token: Session has expired.")
        items = self.items(account, edge, query)
        if items is None:
            return self.error(400, 100, "Unknown edge")
        self.page(parts.path, query, token, *items)

    def items(self, account: Account, edge: str, query: dict):
        """(count, item at index) for an edge."""
        if edge == "ads":
            return account.ads, account.ad
        if edge == "adcreatives":
            return account.ads, account.creative
        if edge == "insights":
            window = json.loads(query.get("time_range") or "{}")
            start, end = date.fromisoformat(window["since"]), date.fromisoformat(window["until"])
            days = (end - start).days + 1
            return days * account.ads, lambda i: account.insight(i % account.ads, start + timedelta(days=i // account.ads))
        return None

    def page(self, path: str, query: dict, token: str, count: int, item) -> None:
        limit = int(query.get("limit") or 25)
        offset = int(base64.b64decode(query["after"]).decode()) if query.get("after") else 0
        data = [item(i) for i in range(offset, min(offset + limit, count))]
        body = {"data": data, "paging": {"cursors": {
            "before": base64.b64encode(str(offset).encode()).decode(),
            "after": base64.b64encode(str(offset + len(data)).encode()).decode(),
        }}}
        if offset + len(data) < count:
            host = self.server.next_host or self.server.base
            next_query = {**query, "access_token": token, "after": body["paging"]["cursors"]["after"]}
            body["paging"]["next"] = f"{host}{path}?{urlencode(next_query)}"
        self.answer(200, body)

    def extra_headers(self) -> dict:
        return self.usage_headers()  # every answer carries the usage (tests replace usage_headers)

    def usage_headers(self) -> dict:
        percent, regain = self.server.usage
        return {
            "X-Business-Use-Case-Usage": json.dumps({"1234": [{
                "type": "ads_insights", "call_count": percent, "total_cputime": percent / 2, "total_time": percent / 2,
                "estimated_time_to_regain_access": regain,
            }]}),
            "X-Ad-Account-Usage": json.dumps({"acc_id_util_pct": percent, "reset_time_duration": 0}),
        }

    def error(self, status: int, code: int | None, message: str, headers: dict | None = None) -> None:
        body = {"error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "Afake"}}
        self.answer(status, body if code is not None else {"detail": "server error"}, headers)


def main() -> None:
    """``python -m integrations.providers.meta.fake_graph ACCOUNT TOKEN ADS [ACCOUNT TOKEN ADS …]``:
    serve those accounts on 127.0.0.1 (a free port; the base URL is the first line printed) until
    killed. ``make bench`` runs it in its own process, so the measured memory and CPU are the sync's."""
    import sys

    server = FakeGraph()
    args = sys.argv[1:]
    for account, token, ads in zip(args[0::3], args[1::3], args[2::3]):
        server.accounts[account] = Account(token=token, ads=int(ads))
    print(server.base, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
