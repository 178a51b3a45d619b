"""OTLP/HTTP bodies in and out: protobuf or JSON, with the OpenTelemetry project's messages.

The JSON encoding is protobuf's JSON mapping with the deviations the OTLP specification
lists; the one that matters here is that trace and span ids are hex, not base64. Claude Code's
log records carry none we use, so they are dropped before parsing.
"""

import json
from collections.abc import Iterable
from typing import TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from usage.ingest.pipeline import IngestError, UnsupportedEncoding

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

M = TypeVar("M", bound=Message)


def media_type(content_type: str | None) -> str:
    """The body's media type, PROTOBUF or JSON; raises UnsupportedEncoding (415) otherwise."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media not in (PROTOBUF, JSON):
        raise UnsupportedEncoding(
            f"Content-Type {media or '(none)'!r} is not supported; OTLP/HTTP sends "
            f"{PROTOBUF} or {JSON}.",
            {"Content-Type": ["unsupported media type"]},
        )
    return media


def parse(body: bytes, media: str, message: type[M]) -> M:
    """The decoded export request; raises IngestError (400) for a body that is not one."""
    parsed = message()
    try:
        if media == PROTOBUF:
            parsed.ParseFromString(body)
        else:
            data = json.loads(body)
            if not isinstance(data, dict):
                raise ValueError("the body is not a JSON object")
            _drop_ids(data)
            json_format.ParseDict(data, parsed, ignore_unknown_fields=True)
    except (DecodeError, json_format.ParseError, ValueError, RecursionError, TypeError) as exc:
        raise IngestError(
            f"The body is not an OTLP {message.__name__}: {exc}",
            {"body": [str(exc)[:500] or "undecodable"]},
        ) from None
    return parsed


def encode(message: Message, media: str) -> bytes:
    """The response body in the request's encoding (OTLP/HTTP: the same as the request)."""
    if media == PROTOBUF:
        return message.SerializeToString()
    return json_format.MessageToJson(message, indent=None).encode()


def _drop_ids(node) -> None:
    if isinstance(node, dict):
        for key in ("traceId", "spanId", "trace_id", "span_id"):
            node.pop(key, None)
        for value in node.values():
            _drop_ids(value)
    elif isinstance(node, list):
        for value in node:
            _drop_ids(value)


def attributes(pairs: Iterable[KeyValue]) -> dict[str, object]:
    """OTLP attributes as a dict of plain values (str, int, float, bool; others as None)."""
    return {pair.key: value_of(pair.value) for pair in pairs}


def value_of(value: AnyValue) -> object:
    kind = value.WhichOneof("value")
    if kind in ("string_value", "int_value", "double_value", "bool_value"):
        return getattr(value, kind)
    return None
