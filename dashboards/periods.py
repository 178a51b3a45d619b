"""Date presets of the dated pages and the change of a figure against the previous period.

Days are the team's reporting days (`Team.today()`), the calendar the agents pass to ccusage,
so "last 7 days" on a page covers the same days as the facts it sums.
"""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

PRESETS = (
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
    ("mtd", "Month to date"),
    ("last_month", "Last month"),
    ("custom", "Custom"),
)
PRESET_LABELS = dict(PRESETS)


def preset_range(preset: str, today: date) -> tuple[date, date]:
    """The first and last day (inclusive) of a preset counted back from `today` (a team day).

    `7d` and `30d` end today; `mtd` runs from the 1st of this month; `last_month` is the whole
    previous calendar month. Raises KeyError for `custom` or an unknown preset.
    """
    if preset == "7d":
        return today - timedelta(days=6), today
    if preset == "30d":
        return today - timedelta(days=29), today
    if preset == "mtd":
        return today.replace(day=1), today
    if preset == "last_month":
        last = today.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last
    raise KeyError(preset)


def previous_period(since: date, until: date, preset: str | None = None) -> tuple[date, date]:
    """The period a figure of the days `since`..`until` (inclusive) is compared with.

    Calendar presets compare with the calendar: `mtd` with the same days of the previous
    month (Nov 1-29 with Oct 1-29; Mar 1-31 with Feb 1-28, clipped to the month's length),
    `last_month` with the calendar month before it (October with September). Any other
    preset (`7d`, `30d`), a custom range and None: the period of equal length (in days) that
    ends the day before `since`.
    """
    if preset == "mtd":
        month_end = since - timedelta(days=1)
        return month_end.replace(day=1), month_end.replace(day=min(until.day, month_end.day))
    if preset == "last_month":
        end = since - timedelta(days=1)
        return end.replace(day=1), end
    length = (until - since).days + 1
    return since - timedelta(days=length), since - timedelta(days=1)


@dataclass(frozen=True)
class Change:
    """A figure against the same figure over the previous period (`previous_period`).

    `pct` is the change in percent (one decimal), None when the previous figure is zero:
    then the current one is "new" (or both are zero: "no change").
    """

    current: Decimal
    previous: Decimal
    since: date
    until: date

    @property
    def pct(self) -> Decimal | None:
        if not self.previous:
            return None
        change = (self.current - self.previous) * 100 / self.previous
        return change.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)

    @property
    def is_new(self) -> bool:
        return not self.previous and bool(self.current)

    @property
    def arrow(self) -> str:
        pct = self.pct
        if self.is_new or (pct is not None and pct > 0):
            return "↑"
        if pct is not None and pct < 0:
            return "↓"
        return "→"

    @property
    def css(self) -> str:
        """trend-up for more spend (red), trend-down for less (green), as the pace card."""
        return {"↑": "trend-up", "↓": "trend-down"}.get(self.arrow, "trend-flat")

    @property
    def text(self) -> str:
        """`↑ 12%`, `↓ 4.5%`, `new`, or `no change`."""
        if self.is_new:
            return "new"
        pct = self.pct
        if not pct:
            return "no change"
        number = abs(pct)
        shown = (
            number
            if number < 10 and number != number.to_integral_value()
            else number.quantize(Decimal("1"), rounding=ROUND_HALF_UP)
        )
        return f"{self.arrow} {shown}%"


def change(current, previous, since: date, until: date) -> Change:
    """`current` against `previous`, the figure of the days `since`..`until` (inclusive)."""
    return Change(Decimal(current or 0), Decimal(previous or 0), since, until)
