"""Serializer fields the API shares: money as a decimal string, never a float; days a calendar
can still count past."""

from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from rest_framework import serializers

from telemetry_site.formatting import decimal_string


class MoneyField(serializers.DecimalField):
    """US dollars as a decimal string with at least cents (`"12.5"` → `"12.50"`)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_digits", 30)
        kwargs.setdefault("decimal_places", 10)
        kwargs.setdefault("help_text", "US dollars as a decimal string (never a float).")
        super().__init__(**kwargs)

    def to_representation(self, value):
        # Computed amounts (means, rates) can carry more places than the schema allows.
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
        places = self.decimal_places if self.decimal_places is not None else 10
        exponent = amount.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -places:
            amount = amount.quantize(Decimal(1).scaleb(-places))
        return decimal_string(amount)


# Days a filter may name: a day's end and any timezone's offset must still be a datetime
# (9999-12-31 plus one day is not), and nothing here predates 1970.
EARLIEST_DAY = date(1970, 1, 1)
LATEST_DAY = date(2999, 12, 31)


def day_in_range(value: date) -> None:
    """Validator for date filters (API query serializers and the pages' filter forms): raises
    ValidationError for days before EARLIEST_DAY or after LATEST_DAY."""
    if not EARLIEST_DAY <= value <= LATEST_DAY:
        raise ValidationError(
            f"Give a day from {EARLIEST_DAY.isoformat()} to {LATEST_DAY.isoformat()}."
        )


class DayField(serializers.DateField):
    """A day in a query (`YYYY-MM-DD`) that a calendar can count past (see day_in_range)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("validators", []).append(day_in_range)
        super().__init__(**kwargs)
