"""`claude_code.api_request` log events become the OTLP machine's facts, each request once.

Rule (docs/ingest.md, "OTLP and the agent"): the agent's ccusage figures are the reference.
OTLP facts live on a machine of their own (ingest_path "otlp", identified by the resource's
host.name, else service.instance.id) and fill only the days, hours and sessions that an agent
machine of the same owner and hostname has not reported; an agent report of one of them
removes the OTLP figures for it (`supersede_after_agent`).
"""

import hashlib
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from usage import signals
from usage.ingest.otlp import rebuild as otlp_rebuild
from usage.ingest.otlp.decode import attributes, value_of
from usage.ingest.parsers import DAILY_KINDS, ParseError, Tokens, decode_json, parse_envelope
from usage.models import (
    BatchStatus,
    DailyUsage,
    HourlyUsage,
    IngestBatch,
    IngestPath,
    Machine,
    OtlpRequest,
    SessionUsage,
    Source,
    Subscription,
)

API_REQUEST = "claude_code.api_request"
# Every OTLP machine's uuid is derived from its owner and identity in this namespace.
NAMESPACE = uuid.UUID("5f0c8d6e-8a8f-4f6b-9a51-0f7b1f6f0c71")
# What the archive keeps of an api_request event (docs/otlp.md, "What is stored").
KEPT_ATTRIBUTES = frozenset(
    {
        "event.name",
        "event.timestamp",
        "session.id",
        "model",
        "request_id",
        "cost_usd",
        "duration_ms",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_creation_tokens",
    }
)
TOKEN_ATTRIBUTES = {
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "cache_read_tokens": "cache_read_tokens",
    "cache_creation_tokens": "cache_creation_tokens",
}

log = logging.getLogger(__name__)


@dataclass
class ApiRequest:
    request_id: str
    occurred_at: datetime
    model: str
    session_id: str
    tokens: Tokens


@dataclass
class Group:
    """The api_request events of one resource (one Claude Code install)."""

    identity: str
    os: str
    requests: list[ApiRequest] = field(default_factory=list)


@dataclass
class Decoded:
    groups: list[Group]
    rejected: int
    errors: list[str]
    # The export with only api_request records, resource attributes and no other event: what
    # is archived, so prompts, tool inputs and outputs are never stored.
    kept: ExportLogsServiceRequest


def decode_logs(export: ExportLogsServiceRequest) -> Decoded:
    """Claude Code's api_request events by resource; a record that cannot be read is rejected
    (counted, with a reason), a record of another event is ignored. Tokens are counts, cost USD,
    times UTC."""
    groups: list[Group] = []
    rejected, errors = 0, []
    kept = ExportLogsServiceRequest()
    for resource_logs in export.resource_logs:
        resource = attributes(resource_logs.resource.attributes)
        identity = str(resource.get("host.name") or resource.get("service.instance.id") or "")
        records = [
            record
            for scope_logs in resource_logs.scope_logs
            for record in scope_logs.log_records
            if _event_name(record) == API_REQUEST
        ]
        if not records:
            continue
        if not identity:
            rejected += len(records)
            errors.append("a resource has neither host.name nor service.instance.id")
            continue
        group = Group(identity=identity[:255], os=str(resource.get("os.type") or "")[:100])
        out = kept.resource_logs.add()
        out.resource.CopyFrom(resource_logs.resource)
        scope = out.scope_logs.add()
        for record in records:
            try:
                group.requests.append(_api_request(record))
            except ValueError as exc:
                rejected += 1
                errors.append(str(exc))
                continue
            scope.log_records.add().CopyFrom(_scrubbed(record))
        groups.append(group)
    return Decoded(groups=groups, rejected=rejected, errors=errors, kept=kept)


def _scrubbed(record: LogRecord) -> LogRecord:
    """The record as archived: its times, its event name as body and only KEPT_ATTRIBUTES, so
    nothing Claude Code may add to an event later (prompt ids, paths, text) is stored."""
    out = LogRecord(
        time_unix_nano=record.time_unix_nano,
        observed_time_unix_nano=record.observed_time_unix_nano,
        event_name=record.event_name,
    )
    out.body.string_value = API_REQUEST
    out.attributes.extend(pair for pair in record.attributes if pair.key in KEPT_ATTRIBUTES)
    return out


def _event_name(record) -> str:
    name = getattr(record, "event_name", "") or ""
    if name:
        return name if name.startswith("claude_code.") else f"claude_code.{name}"
    attrs = attributes(record.attributes)
    if attrs.get("event.name"):
        event = str(attrs["event.name"])
        return event if event.startswith("claude_code.") else f"claude_code.{event}"
    body = value_of(record.body)
    return body if isinstance(body, str) else ""


def _api_request(record) -> ApiRequest:
    attrs = attributes(record.attributes)
    model = str(attrs.get("model") or "")
    if not model:
        raise ValueError("an api_request has no model")
    nanos = record.time_unix_nano or record.observed_time_unix_nano
    if nanos:
        occurred = datetime.fromtimestamp(nanos / 1e9, tz=UTC)
    elif isinstance(attrs.get("event.timestamp"), str):
        try:
            occurred = datetime.fromisoformat(str(attrs["event.timestamp"]).replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("an api_request has an unreadable event.timestamp") from None
        if occurred.tzinfo is None:
            raise ValueError("an api_request's event.timestamp has no offset")
    else:
        raise ValueError("an api_request has no time")
    counts = {name: _count(attrs, key) for key, name in TOKEN_ATTRIBUTES.items()}
    cost = _cost(attrs.get("cost_usd"))
    request_id = str(attrs.get("request_id") or "")
    if not request_id:
        # Without Claude Code's id, the record itself is its identity: a resend is the same.
        request_id = (
            "event:" + hashlib.sha256(record.SerializeToString(deterministic=True)).hexdigest()
        )
    return ApiRequest(
        request_id=request_id[:200],
        occurred_at=occurred.astimezone(UTC),
        model=model[:200],
        session_id=str(attrs.get("session.id") or "")[:200],
        tokens=Tokens(cost_usd=cost, **counts),
    )


# Sanity bounds of one API request. Its tokens are bounded by the model's context window (at
# most 1M tokens in Anthropic's model list) and its cost by that window at the dearest list
# price (under $50); the bounds leave wide headroom, and refuse what would swamp every figure.
MAX_REQUEST_TOKENS = 100_000_000
MAX_REQUEST_COST = Decimal(1000)


def _count(attrs: dict, key: str) -> int:
    raw = attrs.get(key, 0)
    try:
        value = int(str(raw)) if not isinstance(raw, (int, float)) else int(raw)
    except (ValueError, OverflowError):  # OverflowError: an infinite float
        raise ValueError(f"an api_request's {key} is not a whole number: {raw!r}") from None
    if value < 0:
        raise ValueError(f"an api_request's {key} is negative")
    if value > MAX_REQUEST_TOKENS:
        raise ValueError(
            f"an api_request's {key} is above {MAX_REQUEST_TOKENS:,}, more than one request holds"
        )
    return value


def _cost(raw) -> Decimal:
    try:
        cost = Decimal(str(raw if raw is not None else 0))
    except InvalidOperation:
        raise ValueError(f"an api_request's cost_usd is not a number: {raw!r}") from None
    if not cost.is_finite() or cost < 0:
        raise ValueError("an api_request's cost_usd is negative or not finite")
    if cost > MAX_REQUEST_COST:
        raise ValueError(
            f"an api_request's cost_usd is above ${MAX_REQUEST_COST:,}, more than one request costs"
        )
    return cost


def store(batch: IngestBatch, team, decoded: Decoded) -> dict[str, int]:
    """Store the events and rebuild the OTLP machines' facts they touch, in one transaction.

    Returns counts: `requests` new, `duplicates` already stored (a resend never counts
    twice), `superseded` facts withheld because the agent reported them.
    """
    counts = {"requests": 0, "duplicates": 0, "superseded": 0}
    with transaction.atomic():
        first = None
        for group in decoded.groups:
            machine = lock_machine(batch.user, team, group)
            first = first or machine
            rows = [
                OtlpRequest(
                    machine=machine,
                    batch=batch,
                    request_id=r.request_id,
                    occurred_at=r.occurred_at,
                    model=r.model,
                    session_id=r.session_id,
                    input_tokens=r.tokens.input_tokens,
                    output_tokens=r.tokens.output_tokens,
                    cache_creation_tokens=r.tokens.cache_creation_tokens,
                    cache_read_tokens=r.tokens.cache_read_tokens,
                    cost_usd=r.tokens.cost_usd,
                )
                for r in {r.request_id: r for r in group.requests}.values()
            ]
            known = set(
                OtlpRequest.objects.filter(
                    machine=machine, request_id__in=[r.request_id for r in rows]
                ).values_list("request_id", flat=True)
            )
            new = [r for r in rows if r.request_id not in known]
            OtlpRequest.objects.bulk_create(new, ignore_conflicts=True)
            counts["requests"] += len(new)
            counts["duplicates"] += len(group.requests) - len(new)
            counts["superseded"] += rebuild(machine, batch, team, new)
        batch.status = BatchStatus.PROCESSED
        batch.counts = {"otlp_logs": counts}
        batch.processed_at = timezone.now()
        batch.machine = first
        batch.save(update_fields=["status", "counts", "processed_at", "machine"])
    return counts


def lock_machine(user, team, group: Group) -> Machine:
    """The owner's OTLP machine for this identity, registered on first use, row-locked."""
    machine_uuid = uuid.uuid5(NAMESPACE, f"{user.pk}:{group.identity.lower()}")
    Machine.objects.get_or_create(
        uuid=machine_uuid,
        defaults={
            "owner": user,
            "team": team,
            "subscription": Subscription.default_for(user),
            "name": group.identity[:100],
            "hostname": group.identity,
            "os": group.os,
            "ingest_path": IngestPath.OTLP,
            "timezone": team.timezone,
        },
    )
    machine = Machine.objects.select_for_update().get(uuid=machine_uuid)
    Machine.objects.filter(pk=machine.pk).update(last_seen_at=timezone.now(), last_sync_status="ok")
    return machine


def rebuild(machine: Machine, batch: IngestBatch, team, new: list[OtlpRequest]) -> int:
    """Recompute the OTLP machine's daily (team's days), hourly (UTC) and session facts that
    `new` touches (usage.ingest.otlp.rebuild). Returns how many keys were withheld for the
    agent."""
    if not new:
        return 0
    zone = team.zone
    return otlp_rebuild.rebuild(
        machine,
        batch,
        team,
        days={r.occurred_at.astimezone(zone).date() for r in new},
        hours={otlp_rebuild.hour_of(r.occurred_at) for r in new},
        sessions={r.session_id for r in new if r.session_id},
    )


def supersede_after_agent(sender, batch_id: int, machine: Machine | None = None, **kwargs) -> None:
    """After an agent batch committed: remove the OTLP figures of the days, hours and sessions
    it reported for the same owner's machine of the same hostname (the agent is the reference).
    `machine` is the batch's machine when the sender has it (ingest does), else it is read."""
    batch = None
    if machine is None:
        batch = (
            IngestBatch.objects.select_related("machine")
            .defer("body_gzip")
            .filter(pk=batch_id)
            .first()
        )
        machine = batch.machine if batch is not None else None
    if machine is None or machine.ingest_path != IngestPath.AGENT or not machine.hostname:
        return
    otlp = Machine.objects.filter(
        owner_id=machine.owner_id, ingest_path=IngestPath.OTLP, hostname__iexact=machine.hostname
    )
    if not otlp.exists():
        return
    agent = machine
    # The body is read only now, for an owner who also has an OTLP machine.
    if batch is None:
        batch = IngestBatch.objects.defer("body_gzip").filter(pk=batch_id).first()
        if batch is None:
            return
    # Ingest stamps only the facts a batch changed, so what the batch reported is read from
    # its archive: parsed again only here, for an owner who also has an OTLP machine.
    try:
        reports = parse_envelope(decode_json(batch.body()), now=batch.received_at).reports
    except (OSError, EOFError, ParseError):
        log.warning("archived agent batch does not parse", extra={"batch": batch_id})
        return
    days = {
        row.day
        for kind in DAILY_KINDS
        for row in reports.get(kind, ())
        if row.source == Source.CLAUDE_CODE
    }
    hours = {row.hour for row in reports.get("blocks_hourly", ())}
    sessions = {row.session_id for row in reports.get("claude_session", ())}
    with transaction.atomic():
        # Locked as ingest locks a machine: a move of one of them (to another team or owner)
        # meanwhile would otherwise leave these deletions on the old owner's rollups.
        list(otlp.order_by("pk").select_for_update().values_list("pk", flat=True))
        DailyUsage.objects.filter(machine__in=otlp, day__in=list(days)).delete()
        removed_hours, _ = HourlyUsage.objects.filter(
            machine__in=otlp, hour__in=list(hours)
        ).delete()
        SessionUsage.objects.filter(machine__in=otlp, session_id__in=list(sessions)).delete()
        # The agent's own derived work recomputes its subscription's blocks; an OTLP machine
        # on another subscription has lost hours there too, so that one is recomputed as well.
        others = sorted(
            set(
                otlp.exclude(subscription_id=agent.subscription_id).values_list(
                    "subscription_id", flat=True
                )
            )
            - {None}
        )
        if removed_hours and others:
            transaction.on_commit(
                lambda: signals.blocks_outdated.send(sender=Machine, subscription_ids=others)
            )
