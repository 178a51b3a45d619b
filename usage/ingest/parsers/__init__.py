"""Versioned, tolerant parsers for ccusage's JSON reports and the ingest envelope around them.

Unknown fields are ignored; a missing or mistyped required field is a `ParseError` naming its
JSON path. Costs are exact Decimals; tokens are whole non-negative numbers.
"""

from usage.ingest.parsers.base import (
    DailyRow,
    HourlyRow,
    ParseError,
    RateLimitRow,
    Reader,
    SessionRow,
    Tokens,
)
from usage.ingest.parsers.envelope import (
    DAILY_KINDS,
    KINDS,
    Envelope,
    MachineInfo,
    ProjectInfo,
    decode_json,
    parse_envelope,
    parser_for,
    peek_machine_uuid,
)

__all__ = [
    "DAILY_KINDS",
    "KINDS",
    "DailyRow",
    "Envelope",
    "HourlyRow",
    "MachineInfo",
    "ParseError",
    "ProjectInfo",
    "RateLimitRow",
    "Reader",
    "SessionRow",
    "Tokens",
    "decode_json",
    "parse_envelope",
    "parser_for",
    "peek_machine_uuid",
]
