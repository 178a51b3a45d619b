"""The API's JSON parser: DRF's, refusing strings PostgreSQL cannot store.

JSON may escape a lone UTF-16 surrogate (`"\\ud800"`); Python decodes it into a str that no
UTF-8 database accepts, so it is a 400 naming where it was, never a 500 at the INSERT.
"""

import re

from rest_framework.exceptions import ValidationError
from rest_framework.parsers import JSONParser

SURROGATE = re.compile("[\ud800-\udfff]")


def find_surrogate(value, where: str = "body") -> str | None:
    """The path (`body.machine.name`) of the first string or key holding a lone surrogate."""
    if isinstance(value, str):
        return where if SURROGATE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and SURROGATE.search(key):
                return where
            found = find_surrogate(item, f"{where}.{key}")
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = find_surrogate(item, f"{where}[{index}]")
            if found:
                return found
    return None


class StrictJSONParser(JSONParser):
    """JSONParser that answers 400 for text with lone surrogates (not valid Unicode)."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        where = find_surrogate(data)
        if where is not None:
            raise ValidationError({where: ["not valid Unicode text (a lone surrogate)."]})
        return data
