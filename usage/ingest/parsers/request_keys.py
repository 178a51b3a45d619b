"""The agent's `request_keys` report: per UTC hour, the hashed keys of the requests it saw.

ccusage counts a request once per set of logs it reads, keyed by message id and request id.
The agent hashes that key (the first 8 bytes of SHA-256, as 16 hex digits: no prompt text,
no id leaves the PC) so the server can tell which requests two machines' logs share.
"""

import re
from dataclasses import dataclass
from datetime import datetime

from usage.ingest.parsers.base import ParseError, Reader

_KEY = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True)
class RequestKeyRow:
    hour: datetime
    key: int  # signed 64-bit, as stored

    @property
    def hex(self) -> str:
        return key_hex(self.key)


def key_int(text: str) -> int:
    return int.from_bytes(bytes.fromhex(text), "big", signed=True)


def key_hex(value: int) -> str:
    return value.to_bytes(8, "big", signed=True).hex()


def parse_request_keys(data, path: str, r: Reader) -> list[RequestKeyRow]:
    """`{"hours": {"<UTC hour, ISO 8601>": ["<16 hex digits>", …]}}` → one row per key.

    Hours must start on a whole hour; a key listed twice keeps its earliest hour. ParseError
    names the offending hour or key.
    """
    r.obj(data, path)
    hours = r.obj(r.get(data, "hours", path), f"{path}.hours")
    found: dict[int, datetime] = {}
    for stamp, keys in hours.items():
        hour_path = f"{path}.hours.{str(stamp)[:40]}"
        hour = r.instant(stamp, hour_path)
        if hour.minute or hour.second or hour.microsecond:
            raise ParseError(hour_path, "must start on a whole hour")
        for i, text in enumerate(r.arr(keys, hour_path)):
            if not isinstance(text, str) or not _KEY.fullmatch(text):
                raise ParseError(f"{hour_path}[{i}]", "expected 16 lowercase hexadecimal digits")
            key = key_int(text)
            if key not in found or hour < found[key]:
                found[key] = hour
    return [RequestKeyRow(hour=hour, key=key) for key, hour in found.items()]
