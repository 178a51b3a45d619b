"""Typed, path-aware readers for untrusted JSON, and the records every parser produces.

JSON is decoded with `parse_float=Decimal`, so costs keep the exact digits ccusage printed.
Every reader names the JSON path of what it refuses, e.g.
`reports.claude_session.sessions[3].totalCost`.
"""

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

# Far above any real day of one machine, far below BigIntegerField's limit.
from usage.figures import COST_PLACES

MAX_TOKENS = 10**15
# A cost above a billion dollars is corrupt input, and would not fit the column anyway.
MAX_COST = Decimal("1000000000")
# Reports may run ahead of the server clock by a timezone offset or a skewed clock, not more.
FUTURE_TOLERANCE = timedelta(days=2)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
MISSING = object()


class ParseError(ValueError):
    """Input that no parser accepts; `path` says where, `message` says why."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path or "body"
        self.message = message

    def as_errors(self) -> dict[str, list[str]]:
        return {self.path: [self.message]}


@dataclass(frozen=True)
class Tokens:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_tokens: int = 0
    cache_read_tokens: int = 0
    cost_usd: Decimal = Decimal("0")

    @property
    def total_tokens(self) -> int:
        # ccusage's totalTokens is exactly the sum of the four counts; recomputing it means
        # a report can never store a total that disagrees with its parts.
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_creation_tokens
            + self.cache_read_tokens
        )

    def __add__(self, other: "Tokens") -> "Tokens":
        return Tokens(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_creation_tokens + other.cache_creation_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cost_usd + other.cost_usd,
        )


@dataclass
class DailyRow:
    source: str
    day: date
    project_key: str
    model: str
    tokens: Tokens


@dataclass
class HourlyRow:
    hour: datetime
    last_activity: datetime
    entries: int
    models: list[str]
    limit_reset_at: datetime | None
    tokens: Tokens
    # The hour's first entry, from the agent's `hour_first_activity` report when it sent one.
    first_activity: datetime | None = None


@dataclass
class SessionRow:
    session_id: str
    source: str
    project_key: str
    first_activity: datetime | None
    last_activity: datetime
    models: list[str]
    tokens: Tokens


@dataclass
class RateLimitRow:
    captured_at: datetime
    five_hour_used_pct: Decimal | None = None
    five_hour_resets_at: datetime | None = None
    seven_day_used_pct: Decimal | None = None
    seven_day_resets_at: datetime | None = None
    extra_windows: dict[str, dict] = field(default_factory=dict)


class Reader:
    """Reads one report against a fixed `now`, so "too far in the future" is reproducible."""

    def __init__(self, now: datetime):
        self.now = now
        self.latest_instant = now + FUTURE_TOLERANCE
        self.latest_day = self.latest_instant.date()

    # --- containers ------------------------------------------------------------------------
    @staticmethod
    def obj(value: Any, path: str) -> dict:
        if not isinstance(value, dict):
            raise ParseError(path, f"expected an object, got {_type_name(value)}")
        return value

    @staticmethod
    def arr(value: Any, path: str) -> list:
        if not isinstance(value, list):
            raise ParseError(path, f"expected a list, got {_type_name(value)}")
        return value

    @staticmethod
    def get(o: dict, key: str, path: str, default: Any = MISSING) -> Any:
        """The value at `key`; a missing (or null) required value is refused."""
        value = o.get(key)
        if value is None:
            if default is MISSING:
                raise ParseError(f"{path}.{key}" if path else key, "required")
            return default
        return value

    # --- scalars ---------------------------------------------------------------------------
    @staticmethod
    def integer(value: Any, path: str, *, maximum: int = MAX_TOKENS) -> int:
        # Almost every value is a plain int in range (a bool's type is bool, not int).
        if type(value) is int and 0 <= value <= maximum:
            return value
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise ParseError(path, f"expected a whole number, got {_type_name(value)}")
        if isinstance(value, Decimal):
            # 12.0 is a whole number written as a float; 12.5 is not.
            if not value.is_finite() or value != value.to_integral_value():
                raise ParseError(path, "expected a whole number")
            value = int(value)
        if value < 0:
            raise ParseError(path, "must not be negative")
        if value > maximum:
            raise ParseError(path, f"must be at most {maximum}")
        return value

    @staticmethod
    def decimal(
        value: Any, path: str, *, maximum: Decimal = MAX_COST, places: Decimal = COST_PLACES
    ) -> Decimal:
        # The common case (JSON floats arrive as Decimals): a positive amount within range.
        if type(value) is Decimal and value.is_finite() and 0 < value <= maximum:
            return value.quantize(places, rounding=ROUND_HALF_EVEN)
        if isinstance(value, bool) or not isinstance(value, int | Decimal | float):
            raise ParseError(path, f"expected a number, got {_type_name(value)}")
        try:
            number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        except InvalidOperation:
            raise ParseError(path, "expected a number") from None
        if not number.is_finite():
            raise ParseError(path, "must be a finite number")
        if number == 0:
            # ccusage prints -0.0 for an empty report; it is simply zero.
            return Decimal("0").quantize(places)
        if number < 0:
            raise ParseError(path, "must not be negative")
        if number > maximum:
            raise ParseError(path, f"must be at most {maximum}")
        return number.quantize(places, rounding=ROUND_HALF_EVEN)

    @staticmethod
    def string(value: Any, path: str, *, max_length: int, allow_empty: bool = False) -> str:
        if not isinstance(value, str):
            raise ParseError(path, f"expected a string, got {_type_name(value)}")
        if "\x00" in value:
            raise ParseError(path, "must not contain NUL characters")
        if not value and not allow_empty:
            raise ParseError(path, "must not be empty")
        if len(value) > max_length:
            raise ParseError(path, f"must be at most {max_length} characters")
        return value

    @staticmethod
    def boolean(value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            raise ParseError(path, f"expected true or false, got {_type_name(value)}")
        return value

    def day(self, value: Any, path: str) -> date:
        text = self.string(value, path, max_length=10)
        if not _DAY.fullmatch(text):
            raise ParseError(path, f"expected a date YYYY-MM-DD, got {text!r}")
        try:
            parsed = date.fromisoformat(text)
        except ValueError:
            raise ParseError(path, f"{text!r} is not a calendar date") from None
        if parsed > self.latest_day:
            raise ParseError(path, f"{text} is in the future")
        if parsed < EARLIEST.date():
            raise ParseError(path, f"{text} is before {EARLIEST.date()}")
        return parsed

    def instant(self, value: Any, path: str, *, latest: datetime | None = None) -> datetime:
        """An ISO 8601 time with a zone (or unix seconds), returned in UTC."""
        if isinstance(value, int | Decimal) and not isinstance(value, bool):
            seconds = self.decimal(value, path, maximum=Decimal(10**11), places=Decimal("0.001"))
            parsed = datetime.fromtimestamp(float(seconds), tz=UTC)
        else:
            text = self.string(value, path, max_length=40)
            if not _INSTANT.fullmatch(text):
                raise ParseError(path, f"expected an ISO 8601 time with a zone, got {text!r}")
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            except ValueError:
                raise ParseError(path, f"{text!r} is not a valid time") from None
            parsed = parsed.astimezone(UTC)
        if parsed > (latest or self.latest_instant):
            raise ParseError(path, f"{parsed.isoformat()} is too far in the future")
        if parsed < EARLIEST:
            raise ParseError(path, f"{parsed.isoformat()} is before {EARLIEST.date()}")
        return parsed

    def strings(self, value: Any, path: str, *, max_length: int = 200) -> list[str]:
        items = self.arr(value, path)
        if all(
            type(item) is str and 0 < len(item) <= max_length and "\x00" not in item
            for item in items
        ):
            return list(items)
        return [
            self.string(item, f"{path}[{i}]", max_length=max_length) for i, item in enumerate(items)
        ]


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
# Date, time with optional fraction, and a required zone: naive times are ambiguous.
_INSTANT = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:?\d{2})"
)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | Decimal | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
