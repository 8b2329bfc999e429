"""The Meta Ads pull: ads, creatives, then daily ad-level insights, page by page.

Each page is upserted (one ``INSERT … ON CONFLICT … DO UPDATE``, by the store ``reports``
registers: the ads data are ``reports``' models, and ``integrations`` sits below ``reports``)
together with the cursor in one short ``tenant_context`` transaction, after the page arrived: memory stays flat whatever the
account's size, no transaction waits on Meta, and a stopped sync (rate limit, crash) resumes from
the last page written. A re-pull of a restated day changes its numbers in place.

Window: the first sync pulls ``META_BACKFILL_DAYS`` up to today (UTC); every later one the last
``META_LOOKBACK_DAYS``, because Meta restates recent days; ``since`` (the command's ``--since``)
starts wherever it says. Insights are asked for ``META_INSIGHTS_CHUNK_DAYS`` at a time.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Protocol

from django.conf import settings
from django.utils import timezone

from integrations.providers.meta.client import GraphClient
from integrations.sync import PermanentSyncError, SyncResult, checkpoint

AD_FIELDS = "id,name,status,effective_status,adset_id,adset{name},campaign_id,campaign{name},creative{id}"
CREATIVE_FIELDS = "id,name,title,body,image_url,thumbnail_url,call_to_action_type,object_story_spec,link_url"
INSIGHT_FIELDS = (
    "ad_id,adset_id,campaign_id,spend,impressions,reach,clicks,unique_clicks,ctr,cpc,cpm,"
    "actions,action_values,account_currency,date_start"
)


class Store(Protocol):
    """Where the pages go (``reports.meta_store.MetaAdsStore``, registered at start-up)."""

    def write(self, kind: str, rows: list[dict]) -> int:
        """Upsert ``rows`` of ``kind`` (ads, creatives, insight rows) for the active tenant."""


_store: Store | None = None


def register_store(store: Store) -> None:
    global _store
    _store = store


def decimal(value, default=None) -> Decimal | None:
    """Meta's numbers come as strings ("12.34"); anything unreadable is ``default``."""
    if value in (None, ""):
        return default
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return default
    return number if number.is_finite() else default


def integer(value) -> int:
    number = decimal(value, Decimal(0))
    return int(number)


def text(value, limit: int) -> str:
    return str(value or "")[:limit]


def url(value) -> str:
    value = str(value or "")
    return value if value.startswith(("https://", "http://")) and len(value) <= 2000 else ""


def ad_row(item: dict) -> dict:
    return dict(
        ad_id=text(item.get("id"), 64), name=text(item.get("name"), 400),
        adset_id=text(item.get("adset_id"), 64), adset_name=text((item.get("adset") or {}).get("name"), 400),
        campaign_id=text(item.get("campaign_id"), 64),
        campaign_name=text((item.get("campaign") or {}).get("name"), 400),
        status=text(item.get("effective_status") or item.get("status"), 32),
        creative_id=text((item.get("creative") or {}).get("id"), 64),
    )


def creative_row(item: dict) -> dict:
    link = ((item.get("object_story_spec") or {}).get("link_data") or {}).get("link")
    return dict(
        creative_id=text(item.get("id"), 64), name=text(item.get("name"), 400), title=text(item.get("title"), 400),
        body=text(item.get("body"), 10000), image_url=url(item.get("image_url")),
        thumbnail_url=url(item.get("thumbnail_url")), call_to_action=text(item.get("call_to_action_type"), 64),
        link_url=url(item.get("link_url") or link),
    )


def insight_row(item: dict) -> dict | None:
    try:
        day = date.fromisoformat(str(item.get("date_start")))
    except ValueError:
        return None
    actions, values = item.get("actions"), item.get("action_values")
    return dict(
        ad_id=text(item.get("ad_id"), 64), date=day, adset_id=text(item.get("adset_id"), 64),
        campaign_id=text(item.get("campaign_id"), 64), spend=decimal(item.get("spend"), Decimal(0)),
        impressions=integer(item.get("impressions")), reach=integer(item.get("reach")),
        clicks=integer(item.get("clicks")), unique_clicks=integer(item.get("unique_clicks")),
        ctr=decimal(item.get("ctr")), cpc=decimal(item.get("cpc")), cpm=decimal(item.get("cpm")),
        actions=actions if isinstance(actions, list) else [], action_values=values if isinstance(values, list) else [],
        currency=text(item.get("account_currency"), 3).upper(),
    )


def window(cursor: dict, since: date | None, today: date) -> tuple[date, date]:
    if since is not None:
        return min(since, today), today
    if cursor.get("insights_through"):
        return today - timedelta(days=settings.META_LOOKBACK_DAYS - 1), today
    return today - timedelta(days=settings.META_BACKFILL_DAYS - 1), today


def chunks(start: date, end: date):
    size = timedelta(days=max(settings.META_INSIGHTS_CHUNK_DAYS, 1))
    while start <= end:
        yield start, min(start + size - timedelta(days=1), end)
        start += size


def current_day() -> date:
    """Today in UTC (a seam: tests fix the day instead of racing the clock)."""
    return timezone.now().date()


class MetaSync:
    """One run for one integration. ``today`` and ``sleep`` are seams for tests and the bench."""

    def __init__(self, integration, since: date | None = None, today: date | None = None, sleep=None):
        token, account = integration.value("access_token"), str(integration.value("ad_account_id") or "").strip()
        if not token or not account:
            raise PermanentSyncError("Meta sync needs the access token and the ad account ID")
        self.integration = integration
        self.account = account if account.startswith("act_") else f"act_{account}"
        self.client = GraphClient(token, **({"sleep": sleep} if sleep else {}))
        if _store is None:
            raise RuntimeError("no store for Meta ads data is registered (reports.apps does it at start-up)")
        self.store = _store
        self.today = today or current_day()
        self.since = since
        self.counts = {"ads": 0, "creatives": 0, "insight rows": 0, "pages": 0}

    def run(self) -> SyncResult:
        cursor = dict(self.integration.sync_cursor or {})
        pending = cursor.get("pending") if self.since is None else None
        if pending:
            start, end = date.fromisoformat(pending["since"]), date.fromisoformat(pending["until"])
        else:
            start, end = window(cursor, self.since, self.today)
            pending = {"since": start.isoformat(), "until": end.isoformat(), "phase": "ads"}
        base = {k: v for k, v in cursor.items() if k != "pending"}
        if pending["phase"] == "ads":
            self.pull(f"{self.account}/ads", {"fields": AD_FIELDS}, "ads", base, pending)
            self.pull(f"{self.account}/adcreatives", {"fields": CREATIVE_FIELDS}, "creatives", base, pending)
            pending = {**pending, "phase": "insights", "next": start.isoformat(), "after": None}
        resume = date.fromisoformat(pending["next"])
        for chunk_start, chunk_end in chunks(resume, end):
            params = {
                "level": "ad", "time_increment": 1, "fields": INSIGHT_FIELDS,
                "time_range": f'{{"since":"{chunk_start.isoformat()}","until":"{chunk_end.isoformat()}"}}',
            }
            state = {**pending, "next": chunk_start.isoformat()}
            after, pending["after"] = pending.get("after"), None
            self.pull(f"{self.account}/insights", params, "insight rows", base, state, after=after)
            pending = {**state, "next": (chunk_end + timedelta(days=1)).isoformat(), "after": None}
            checkpoint(self.integration, {**base, "pending": pending})
        done = {**base, "insights_through": end.isoformat()}
        return SyncResult(self.summary(), cursor=done, counts=dict(self.counts))

    def pull(self, path, params, kind, base, state, after=None) -> None:
        build = {"ads": ad_row, "creatives": creative_row, "insight rows": insight_row}[kind]
        for page in self.client.pages(path, params, after=after):
            rows = [row for row in map(build, page) if row is not None]
            # The page and where the next run resumes are written together, or not at all.
            position = {**base, "pending": {**state, "after": self.client.after}}
            write = (lambda rows=rows: self.store.write(kind, rows))
            self.counts[kind] += checkpoint(self.integration, position, write=write)
            self.counts["pages"] += 1

    def summary(self) -> str:
        c = self.counts
        return f"{c['ads']} ads, {c['creatives']} creatives, {c['insight rows']} insight rows"
