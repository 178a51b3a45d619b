"""Numbers and names for people: one wording and one rounding for pages, emails, webhooks, CSV.

Money is US dollars rounded half up to cents; an empty day that ccusage reports as -0.0 never
prints as "-$0.00". Token counts are compact (`12.3M`). Percentages keep one decimal under 10
so small readings are not shown as 0%.
"""

import csv
import re
from collections.abc import Iterable
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")
EMPTY = "—"

_COMPACT_STEPS = (
    (Decimal(10**3), "K"),
    (Decimal(10**6), "M"),
    (Decimal(10**9), "B"),
    (Decimal(10**12), "T"),
)
WINDOW_NAMES = {"five_hour": "5-hour window", "seven_day": "Weekly (7-day)"}
WINDOW_ADJECTIVES = {"five_hour": "5-hour", "seven_day": "weekly"}


def as_decimal(value) -> Decimal | None:
    """`value` as a Decimal, or None when it is empty or not a number."""
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None


def usd(value) -> str:
    """`1234.5` → `$1,234.50`, `-12.3` → `-$12.30`; nothing or not a number → an em dash."""
    amount = as_decimal(value)
    if amount is None:
        return EMPTY
    rounded = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    sign = "-" if rounded < 0 else ""
    return f"{sign}${abs(rounded):,.2f}"


def decimal_string(value) -> str:
    """An exact amount as a decimal string, trailing zeros trimmed to at least cents (API)."""
    text = format(value, "f")
    if "." in text:
        whole, fraction = text.split(".")
        fraction = fraction.rstrip("0").ljust(2, "0")
        text = f"{whole}.{fraction}"
    return text


def compact(value) -> str:
    """`12345678` → `12.3M`, `950` → `950`, `50000` → `50K`."""
    number = as_decimal(value)
    if number is None:
        return EMPTY
    sign = "-" if number < 0 else ""
    number = abs(number)
    if number < 1000:
        return f"{sign}{int(number):,}"
    for step, suffix in _COMPACT_STEPS:
        scaled = number / step
        tenths = scaled.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
        # 999,950 is 1000.0K once rounded; the next unit says it better: 1.0M.
        if tenths >= 1000 and suffix != "T":
            continue
        if tenths >= 100:
            return f"{sign}{scaled.quantize(Decimal('1'), rounding=ROUND_HALF_UP)}{suffix}"
        # 50.0K reads better as 50K; 12.3M keeps its decimal.
        return f"{sign}{str(tenths).removesuffix('.0')}{suffix}"
    return f"{sign}{int(number):,}"


def tokens(value) -> str:
    """`12345678` → `12.3M tokens`, `1` → `1 token`."""
    if as_decimal(value) is None:
        return EMPTY
    text = compact(value)
    return f"{text} token" if text == "1" else f"{text} tokens"


def pct(value) -> str:
    """`42.46` → `42%`; under 10 keeps one decimal (`4.5%`) so small readings are not 0%."""
    number = as_decimal(value)
    if number is None:
        return EMPTY
    if abs(number) < 10 and number != number.to_integral_value():
        return f"{number.quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)}%"
    return f"{number.quantize(Decimal('1'), rounding=ROUND_HALF_UP)}%"


def share(part, whole) -> Decimal:
    """`part` as a percentage of `whole`, to a tenth (0 when either is empty or zero)."""
    part_d, whole_d = as_decimal(part), as_decimal(whole)
    if not part_d or not whole_d:
        return Decimal(0)
    return (part_d * 100 / whole_d).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def duration(value) -> str:
    """A timedelta (or minutes) as `2 h 05 min`, `45 min`, `3 d 4 h`."""
    if value is None or value == "":
        return EMPTY
    if isinstance(value, timedelta):
        minutes = int(value.total_seconds() // 60)
    else:
        number = as_decimal(value)
        if number is None:
            return EMPTY
        minutes = int(number)
    minutes = max(minutes, 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {mins:02d} min"
    return f"{mins} min"


def _model_part(window: str) -> str:
    return window.removeprefix("seven_day_").replace("_", " ")


def window_name(window: str) -> str:
    """A quota window as a heading: `seven_day_opus` → `Weekly (7-day), Opus`."""
    if window in WINDOW_NAMES:
        return WINDOW_NAMES[window]
    if window.startswith("seven_day_"):
        return f"Weekly (7-day), {_model_part(window).title()}"
    return window.replace("_", " ").capitalize()


def window_adjective(window: str) -> str:
    """A quota window inside a sentence: `five_hour` → `5-hour`, `seven_day_opus` → `weekly
    opus` ("its 5-hour limit", "the weekly opus quota")."""
    if window in WINDOW_ADJECTIVES:
        return WINDOW_ADJECTIVES[window]
    if window.startswith("seven_day_"):
        return f"weekly {_model_part(window)}"
    return window.replace("_", " ")


def short_day(day: date, today: date | None = None) -> str:
    """A day on a chart axis or in a range: `Nov 24`; `Nov 24, 2025` outside `today`'s year."""
    if today is not None and day.year != today.year:
        return f"{day:%b} {day.day}, {day.year}"
    return f"{day:%b} {day.day}"


def day_label(day: date, today: date | None = None) -> str:
    """A day in a table or a sentence: `Tue, Nov 24`; `Tue, Nov 24, 2025` outside `today`'s
    year."""
    return f"{day:%a}, {short_day(day, today)}"


def day_span(since: date, until: date, today: date | None = None) -> str:
    """Days `since`..`until` inclusive: `Nov 1 to Nov 24`, one day alone as `Nov 24`."""
    if since == until:
        return short_day(since, today)
    return f"{short_day(since, today)} to {short_day(until, today)}"


# Anthropic's model ids (docs.anthropic.com, "Models overview"): family first since Claude 4
# (`claude-sonnet-4-5-20250929`), version first before it (`claude-3-5-sonnet-20241022`); an
# optional snapshot date or `-latest` at the end. OpenAI's GPT ids for Codex: `gpt-5-codex`.
_CLAUDE_FAMILY_FIRST = re.compile(
    r"^claude-(opus|sonnet|haiku)-(\d+)(?:-(\d{1,2}))?(?:-(?:\d{8}|latest))?$"
)
_CLAUDE_VERSION_FIRST = re.compile(
    r"^claude-(\d+)(?:-(\d{1,2}))?-(opus|sonnet|haiku)(?:-(?:\d{8}|latest))?$"
)
_GPT = re.compile(r"^gpt-(\d+(?:\.\d+)?)((?:-(?:codex|mini|nano|pro|turbo))*)$")


def model_name(model_id: str) -> str:
    """A model id as people name it: `claude-sonnet-4-5-20250929` → `Claude Sonnet 4.5`,
    `claude-3-5-haiku-20241022` → `Claude 3.5 Haiku`, `gpt-5-codex` → `GPT-5 Codex`; an id
    that follows none of these patterns (a new vendor, `<synthetic>`) is returned unchanged."""
    text = str(model_id or "")
    if match := _CLAUDE_FAMILY_FIRST.match(text):
        family, major, minor = match.groups()
        version = f"{major}.{minor}" if minor else major
        return f"Claude {family.capitalize()} {version}"
    if match := _CLAUDE_VERSION_FIRST.match(text):
        major, minor, family = match.groups()
        version = f"{major}.{minor}" if minor else major
        return f"Claude {version} {family.capitalize()}"
    if match := _GPT.match(text):
        version, suffixes = match.groups()
        words = [w.capitalize() for w in suffixes.split("-") if w]
        return " ".join([f"GPT-{version}", *words])
    return text


# How a fresh install gets its first account (accounts/management/commands/adduser.py): shown
# by `make run` (the welcome command) and, in development, on the login page.
FIRST_OWNER_COMMAND = (
    ".venv/bin/python manage.py adduser you@example.com --team my-team --role owner"
)


# A spreadsheet reads a cell starting with one of these as a formula (OWASP "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value):
    """A CSV cell that no spreadsheet runs: text starting with `=`, `+`, `-`, `@`, tab or CR
    gets a leading `'` (shown as text); numbers and other values pass unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class SafeCsvWriter:
    """csv.writer whose text cells go through spreadsheet_cell: every CSV the product writes."""

    def __init__(self, stream) -> None:
        self._writer = csv.writer(stream)

    def writerow(self, row: Iterable) -> None:
        self._writer.writerow([spreadsheet_cell(value) for value in row])
