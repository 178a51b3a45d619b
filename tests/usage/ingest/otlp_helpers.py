"""Claude Code's OTLP log events, made with the OpenTelemetry SDK and encoded by its exporter's
own encoder, so the bodies are what a real Claude Code export sends."""

from datetime import datetime

from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

LOGS_URL = "/otlp/v1/logs"
METRICS_URL = "/otlp/v1/metrics"
PROTOBUF = "application/x-protobuf"


def resource(host: str | None = "laptop", **extra) -> Resource:
    attrs = {"service.name": "claude-code", "service.version": "2.1.0", "os.type": "linux"}
    if host:
        attrs["host.name"] = host
    attrs.update(extra)
    # Not Resource.create: the Python SDK would add a random service.instance.id per process.
    return Resource(attrs)


def api_request(
    at: datetime,
    *,
    request_id: str | None = "req_1",
    model: str = "claude-sonnet-4-5",
    session: str = "session-1",
    input_tokens=100,
    output_tokens=50,
    cache_read_tokens=1000,
    cache_creation_tokens=10,
    cost_usd="0.0125",
) -> dict:
    """One `claude_code.api_request` event as Claude Code emits it (numbers as strings)."""
    attributes = {
        "event.name": "api_request",
        "event.timestamp": at.isoformat().replace("+00:00", "Z"),
        "session.id": session,
        "user.account_uuid": "account-1",
        "user.email": "member@a.example",
        "organization.id": "org-1",
        "terminal.type": "xterm-256color",
        "model": model,
        "cost_usd": str(cost_usd),
        "duration_ms": "1200",
        "input_tokens": str(input_tokens),
        "output_tokens": str(output_tokens),
        "cache_read_tokens": str(cache_read_tokens),
        "cache_creation_tokens": str(cache_creation_tokens),
    }
    if request_id is not None:
        attributes["request_id"] = request_id
    return {
        "body": "claude_code.api_request",
        "attributes": attributes,
        "timestamp": int(at.timestamp() * 1e9),
    }


def user_prompt(at: datetime, text: str = "refactor the billing module") -> dict:
    return {
        "body": "claude_code.user_prompt",
        "attributes": {
            "event.name": "user_prompt",
            "session.id": "session-1",
            "prompt_length": str(len(text)),
            "prompt": text,
        },
        "timestamp": int(at.timestamp() * 1e9),
    }


def emit(provider: LoggerProvider, events: list[dict]) -> None:
    logger = provider.get_logger("com.anthropic.claude_code.events", "2.1.0")
    for event in events:
        logger.emit(
            body=event["body"], attributes=event["attributes"], timestamp=event["timestamp"]
        )


def logs_body(events: list[dict], res: Resource | None = None) -> bytes:
    """An ExportLogsServiceRequest (protobuf) of these events, encoded by the SDK's encoder."""
    memory = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=res or resource())
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    emit(provider, events)
    provider.shutdown()
    return encode_logs(memory.get_finished_logs()).SerializeToString()
