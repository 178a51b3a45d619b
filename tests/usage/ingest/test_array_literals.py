"""The array literals facts are sent to PostgreSQL in read back as exactly the values written:
quotes, backslashes, braces, commas, "NULL" as text, accents, exponents and offsets included."""

import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.db import connection

from usage.ingest import facts

pytestmark = pytest.mark.django_db

TEXTS = [
    "claude-sonnet-4-5-20250929",
    "",
    "NULL",
    'say "hi"',
    "C:\\Users\\dev\\repo",
    'both \\" and "\\',
    "{a,b}",
    " spaced , out ",
    "é ☃ 漢字",
    None,
]
CASES = [
    ("bigint", facts.array_of_numbers, [0, 1, -5, 10**15, 2**62, None]),
    (
        "numeric(20, 10)",
        facts.array_of_numbers,
        [
            Decimal("0E-10"),
            Decimal("-0E-10"),
            Decimal("0.1234567890"),
            Decimal("1E+2"),
            Decimal("999999999.9999999999"),
            None,
        ],
    ),
    ("boolean", facts.array_of_booleans, [True, False, None]),
    ("date", facts.array_of_instants, [date(2026, 11, 29), date(2000, 1, 1), None]),
    (
        "timestamp with time zone",
        facts.array_of_instants,
        [
            datetime(2026, 11, 29, 9, tzinfo=UTC),
            datetime(2026, 11, 29, 9, 30, 1, 123456, tzinfo=UTC),
            datetime(2026, 11, 29, 9, tzinfo=timezone(timedelta(hours=-3, minutes=-30))),
            None,
        ],
    ),
    ("varchar(200)", facts.array_of_texts, TEXTS),
    ("text", facts.array_of_texts, TEXTS),
]


@pytest.mark.parametrize(("db_type", "write", "values"), CASES, ids=[c[0] for c in CASES])
def test_an_array_literal_reads_back_as_the_values_written(db_type, write, values):
    if connection.vendor != "postgresql":
        pytest.skip("array literals are PostgreSQL's")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT %s::{db_type}[]", [write(values)])
        assert cursor.fetchone()[0] == values


def test_json_values_read_back_as_the_values_written():
    if connection.vendor != "postgresql":
        pytest.skip("array literals are PostgreSQL's")
    values = [["claude-opus-4-5"], [], {"five_hour": {"used": 12.5, "note": 'a "b" \\ c'}}, None]
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::text[]::jsonb[]", [facts.array_of_json(values)])
        # Django reads jsonb as its text (the model field decodes it).
        read = cursor.fetchone()[0]
    assert [None if text is None else json.loads(text) for text in read] == values
