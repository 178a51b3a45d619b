"""Serializer fields the API shares: money as a decimal string, never a float."""

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
        return decimal_string(value)
