"""Captured Claude Code statusline inputs: the official quota windows, as rate-limit snapshots.

Each capture is `{"captured_at", "session_id", "model", "rate_limits": {window: {
"used_percentage", "resets_at"}}}`; `resets_at` is an ISO time or unix seconds. `five_hour`
and `seven_day` have their own columns; any other window (e.g. `seven_day_opus`) is kept in
`extra_windows`. Captures without rate limits carry nothing to store and are skipped.
"""

import re
from datetime import timedelta
from decimal import Decimal

from usage.ingest.parsers.base import ParseError, RateLimitRow, Reader

MAX_PERCENT = Decimal("1000")
PERCENT_PLACES = Decimal("0.01")
_WINDOW = re.compile(r"[a-z0-9_]{1,40}")


def parse_statusline(data, path: str, r: Reader) -> list[RateLimitRow]:
    rows: dict = {}
    for i, capture in enumerate(r.arr(data, path)):
        item_path = f"{path}[{i}]"
        r.obj(capture, item_path)
        captured_at = r.instant(
            r.get(capture, "captured_at", item_path), f"{item_path}.captured_at"
        )
        limits = capture.get("rate_limits")
        if limits is None:
            continue
        limits_path = f"{item_path}.rate_limits"
        r.obj(limits, limits_path)
        row = RateLimitRow(captured_at=captured_at)
        for name, window in limits.items():
            window_path = f"{limits_path}.{name}"
            if not isinstance(name, str) or not _WINDOW.fullmatch(name):
                raise ParseError(window_path, "window names are lowercase letters, digits and _")
            if window is None:
                continue
            r.obj(window, window_path)
            used = window.get("used_percentage")
            pct = (
                r.decimal(
                    used,
                    f"{window_path}.used_percentage",
                    maximum=MAX_PERCENT,
                    places=PERCENT_PLACES,
                )
                if used is not None
                else None
            )
            reset = window.get("resets_at")
            # A weekly window resets up to a week after the capture.
            resets_at = (
                r.instant(
                    reset,
                    f"{window_path}.resets_at",
                    latest=captured_at + timedelta(days=31),
                )
                if reset is not None
                else None
            )
            if name == "five_hour":
                row.five_hour_used_pct, row.five_hour_resets_at = pct, resets_at
            elif name == "seven_day":
                row.seven_day_used_pct, row.seven_day_resets_at = pct, resets_at
            else:
                row.extra_windows[name] = {
                    "used_percentage": float(pct) if pct is not None else None,
                    "resets_at": resets_at.isoformat() if resets_at else None,
                }
        rows[captured_at] = row
    return list(rows.values())
