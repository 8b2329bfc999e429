"""The HTTP sender of ``make bench``'s end-to-end phases: a burst, or an open loop at a fixed rate.

``send(port, path, deliveries, rate=None | r, connections=n)`` POSTs each ``(signature, body)``
once to 127.0.0.1 from ``n`` threads with ``http.client`` (the connection is kept while the server
keeps it; gunicorn's sync workers close it after each answer, as with wrk).

- ``rate=None``: a burst, each thread sends its next delivery as soon as the last was answered.
- ``rate=r``: open loop: delivery ``i`` is due at ``start + i / r`` whatever the answers so far
  (wrk is closed-loop: a slow server would slow the sender and hide its own lag). A delivery's
  latency is counted from when it was due, so a sender that fell behind shows it (``late_p99_ms``)
  instead of hiding it.

Returns the counts (``sent``, ``ok``, ``non2xx``, ``errors``), ``seconds`` (first due to last
answer), the achieved ``rate``, latency ``p50_ms``/``p99_ms`` and ``late_p99_ms``.
"""

from __future__ import annotations

import http.client
import itertools
import threading
import time


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def send(port: int, path: str, deliveries: list[tuple[str, bytes]], *, rate: float | None = None,
         connections: int = 16, timeout: float = 10.0, deadline: float | None = None) -> dict:
    total = len(deliveries)
    counter = itertools.count()
    results: list[tuple[float, float, float, int | None]] = []  # (due, started, answered, status)
    start = time.monotonic() + 0.05
    stop_at = deadline if deadline is not None else float("inf")

    def run() -> None:
        conn: http.client.HTTPConnection | None = None
        while True:
            i = next(counter)  # atomic under the GIL
            if i >= total:
                break
            due = start + i / rate if rate else time.monotonic()
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if time.monotonic() > stop_at:
                break
            began = time.monotonic()
            signature, body = deliveries[i]
            status = None
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
                conn.request("POST", path, body=body, headers={
                    "Content-Type": "application/json", "Stripe-Signature": signature,
                })
                response = conn.getresponse()
                response.read()
                status = response.status
                if response.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                if conn is not None:
                    conn.close()
                conn = None
            results.append((due, began, time.monotonic(), status))
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=run, daemon=True) for _ in range(max(1, min(connections, total)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if not results:
        return {"sent": 0, "ok": 0, "non2xx": 0, "errors": 0, "seconds": 0.0, "rate": 0.0,
                "p50_ms": None, "p99_ms": None, "late_p99_ms": None}
    first = min(due for due, _, _, _ in results)
    last = max(answered for _, _, answered, _ in results)
    latencies = [(answered - due) * 1000 for due, _, answered, _ in results]
    late = [max(0.0, (began - due) * 1000) for due, began, _, _ in results]
    ok = sum(1 for *_, status in results if status is not None and 200 <= status < 300)
    errors = sum(1 for *_, status in results if status is None)
    seconds = max(last - first, 1e-6)
    return {
        "sent": len(results), "ok": ok, "non2xx": len(results) - ok - errors, "errors": errors,
        "seconds": seconds, "rate": len(results) / seconds, "p50_ms": percentile(latencies, 0.5),
        "p99_ms": percentile(latencies, 0.99), "late_p99_ms": percentile(late, 0.99),
    }
