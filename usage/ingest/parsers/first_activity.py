"""The agent's `hour_first_activity` report: when each hourly bucket's first entry was.

`ccusage blocks --session-length 1` floors every bucket to its hour, but ccusage's burn rate
runs from a block's first entry; newer agents send that instant for recent hours (older
agents do not, and the server then counts from the hour's start).
"""

from datetime import datetime, timedelta

from usage.ingest.parsers.base import HourlyRow, ParseError, Reader

HOUR = timedelta(hours=1)


def parse_hour_first_activity(data, path: str, r: Reader) -> dict[datetime, datetime]:
    """`{"hours": {"<hour, UTC ISO 8601>": "<first entry, ISO 8601>", …}}` → {hour: instant}.

    Each hour must start on a whole hour and its first entry lie in [hour, hour + 1 h]
    (ccusage's one-hour bucket keeps an entry stamped exactly at its end). ParseError names
    the offending key.
    """
    r.obj(data, path)
    hours = r.obj(r.get(data, "hours", path), f"{path}.hours")
    result: dict[datetime, datetime] = {}
    for key, value in hours.items():
        item_path = f"{path}.hours.{str(key)[:40]}"
        hour = r.instant(key, item_path)
        if hour.minute or hour.second or hour.microsecond:
            raise ParseError(item_path, "must start on a whole hour")
        first = r.instant(value, item_path)
        if not hour <= first <= hour + HOUR:
            raise ParseError(item_path, f"{first.isoformat()} is not within that hour")
        result[hour] = first
    return result


def attach(rows: list[HourlyRow], firsts: dict[datetime, datetime], path: str) -> None:
    """Give each hourly row its first entry; an instant after the row's last activity, or for
    an hour the same envelope's `blocks_hourly` lacks, contradicts ccusage and is refused."""
    by_hour = {row.hour: row for row in rows}
    for hour, first in firsts.items():
        row = by_hour.get(hour)
        # The key as the agent writes it (hours are whole, so nothing is lost).
        item_path = f"{path}.hours.{hour:%Y-%m-%dT%H:00:00.000Z}"
        if row is None:
            raise ParseError(item_path, "no such hour in reports.blocks_hourly")
        if first > row.last_activity:
            raise ParseError(item_path, "is after that hour's last activity (actualEndTime)")
        row.first_activity = first
