"""Small charts drawn on the server as plain SVG: no chart library, no script, nothing fetched.

``daily_bars`` draws one bar per day, scaled to the busiest day, with each day's count in a
``<title>`` (a tooltip, and what a screen reader reads) and the whole as one labelled image.
"""

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH, HEIGHT, GAP = 168, 36, 2


def daily_bars(days: list[tuple[str, int, int]], label: str) -> SafeString:
    """``days``: (day label, events, failures) oldest first. Failures are drawn in the bar's
    lower part in the failure colour."""
    count = max(len(days), 1)
    step = WIDTH / count
    top = max((events for _, events, _ in days), default=0) or 1
    bars = []
    for i, (day, events, failures) in enumerate(days):
        x, height = i * step, (HEIGHT - 2) * events / top
        failed_height = (HEIGHT - 2) * failures / top
        bars.append((
            f"{x:.1f}", f"{HEIGHT - max(height, 1):.1f}", f"{step - GAP:.1f}", f"{max(height, 1):.1f}",
            "bar" if events else "bar empty", f"{HEIGHT - failed_height:.1f}", f"{failed_height:.1f}",
            f"{day}: {events} event{'s' if events != 1 else ''}" + (f", {failures} failed" if failures else ""),
        ))
    body = format_html_join(
        "", '<g><title>{7}</title><rect class="{4}" x="{0}" y="{1}" width="{2}" height="{3}" rx="1"></rect>'
            '<rect class="bar-failed" x="{0}" y="{5}" width="{2}" height="{6}"></rect></g>', bars,
    )
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" preserveAspectRatio="none" role="img" aria-label="{}">{}</svg>',
        WIDTH, HEIGHT, label, body,
    )


ROW, LABEL_WIDTH, BARS_WIDTH = 16, 118, 300


def labelled_bars(items: list[tuple[str, int]], label: str) -> SafeString:
    """One horizontal bar per (label, count), scaled to the largest, the label on the left and the
    count at the bar's end; each row has its ``<title>`` and the whole is one labelled image. For
    counts by name (services, weekdays, hours) where ``daily_bars``' spark line has no room for labels."""
    top = max((count for _, count in items), default=0) or 1
    span = BARS_WIDTH - LABEL_WIDTH - 34
    rows = []
    for i, (name, count) in enumerate(items):
        y = i * ROW
        width = span * count / top
        short = name if len(name) <= 18 else name[:17] + "…"
        rows.append((
            f"{y + ROW - 4:.0f}", short, f"{LABEL_WIDTH}", f"{y + 3:.0f}", f"{max(width, 1):.1f}", f"{ROW - 6}",
            "bar" if count else "bar empty", f"{LABEL_WIDTH + max(width, 1) + 4:.1f}", count,
            f"{name}: {count}",
        ))
    body = format_html_join(
        "", '<g><title>{9}</title><text class="label" x="0" y="{0}">{1}</text>'
            '<rect class="{6}" x="{2}" y="{3}" width="{4}" height="{5}" rx="1"></rect>'
            '<text class="count" x="{7}" y="{0}">{8}</text></g>', rows,
    )
    return format_html(
        '<svg class="chart bars" viewBox="0 0 {} {}" role="img" aria-label="{}">{}</svg>',
        BARS_WIDTH, max(len(items), 1) * ROW, label, body,
    )
