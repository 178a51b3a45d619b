"""Ingest: one request body becomes facts exactly once, all or nothing, never lost.

The steps of one request:
1. The view authenticates, throttles, reads the body within `INGEST_MAX_BODY_BYTES` and
   `decode_body` decompresses it within `INGEST_MAX_DECOMPRESSED_BYTES`. A refusal here
   (auth, throttle, size, broken gzip) stores nothing.
2. `archive` stores the body (gzip, SHA-256, sizes) in its own committed transaction, before
   any parsing, so a report that fails to parse is still there to be reprocessed. A body
   above INGEST_ASYNC_BODY_BYTES is acknowledged here (202) and `hand_to_worker` leaves
   steps 3 and 4 to the worker (usage.ingest.backlog, which also picks up batches left
   `received`). A body refused before is not archived again (usage.ingest.rejected).
3. `process_batch` parses it and, in ONE transaction, locks (or registers) the machine,
   creates projects and upserts every fact (usage.ingest.facts). A refused report rolls all of that
   back and leaves the batch archived as failed with its error (the machine's last sync says
   so, if the machine is the sender's): nothing else is stored. A database that goes away
   mid-way leaves the batch `received` for the backlog sweep.
4. After commit, derived work is queued; a broker outage is logged and the beat sweep catches
   up, because the facts are already safe.

Which report wins: a fact remembers when the batch that last changed it was received
(`reported_at`). A batch replaces a fact only if it was received at or after that moment; equal
values are not written again, so a batch received earlier but stored after a later one leaves
the rows the later one listed alone (facts.without_later_reports). So the most recently
received report wins, whatever order transactions commit in, and `reprocess_batches` replays
archived batches in received order. Days and sessions absent from a report are kept: a report
replaces only what it lists again, possibly under other keys (facts.replace_regrouped).

Identical bodies: a body whose SHA-256 matches a processed batch of the same sender is a
retry of that batch. It is answered from that batch (`duplicate: true`, everything unchanged)
without archiving it again.
"""

import gzip
import hashlib
import logging
import time
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import date

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import Max, Q
from django.utils import timezone

from accounts.models import Membership
from usage import signals
from usage.analytics import ratelimits
from usage.ingest import derive, facts
from usage.ingest import rejected as rejected_bodies
from usage.ingest.parsers import (
    DAILY_KINDS,
    Envelope,
    MachineInfo,
    ParseError,
    Reader,
    decode_json,
    parse_envelope,
    peek_machine_uuid,
)
from usage.ingest.parsers.request_keys import parse_request_keys
from usage.models import (
    BatchStatus,
    DailyUsage,
    IngestBatch,
    IngestPath,
    Machine,
    Subscription,
)
from usage.naming import free_machine_name

log = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b"
CHUNK = 64 * 1024
SYNC_OK = "ok"
SYNC_FAILED = "failed"


class IngestError(Exception):
    """A refusal the client must see: HTTP status, a sentence, and errors by JSON path."""

    status = 400

    def __init__(self, detail: str, errors: dict[str, list[str]] | None = None, status=None):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or {}
        if status is not None:
            self.status = status
        self.batch: IngestBatch | None = None


class TooLarge(IngestError):
    status = 413


class UnsupportedEncoding(IngestError):
    status = 415


class Refused(IngestError):
    """The report is well formed but may not be stored (machine of another user, no team)."""

    status = 403


@dataclass
class IngestResult:
    batch: IngestBatch
    machine: Machine
    counts: dict[str, dict[str, int]]
    timezone: str
    last_day: date | None
    duplicate: bool = False
    ignored_kinds: list[str] = field(default_factory=list)
    # Keys of requests in this report that another machine reported first (16 hex digits).
    foreign_request_keys: list[str] = field(default_factory=list)


# --- 1. body ---------------------------------------------------------------------------------
def read_body(stream, content_length: str | None, limit: int | None = None) -> bytes:
    """The request body, refusing more than `limit` bytes before reading them all."""
    limit = limit or settings.INGEST_MAX_BODY_BYTES
    try:
        declared = int(content_length) if content_length else None
    except ValueError:
        raise IngestError("Content-Length is not a number.") from None
    if declared is not None and declared > limit:
        raise TooLarge(f"The body is {declared} bytes; the limit is {limit}.")
    parts, size = [], 0
    while True:
        chunk = stream.read(CHUNK)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"The body is larger than the limit of {limit} bytes.")
        parts.append(chunk)
    return b"".join(parts)


def decode_body(raw: bytes, content_encoding: str | None = None) -> tuple[bytes, bytes | None]:
    """(JSON bytes, the gzip bytes as received or None); gzip is inflated with a hard cap."""
    encoding = (content_encoding or "").strip().lower()
    if encoding not in ("", "identity", "gzip", "x-gzip"):
        raise UnsupportedEncoding(f"Content-Encoding {encoding!r} is not supported; use gzip.")
    limit = settings.INGEST_MAX_DECOMPRESSED_BYTES
    # JSON never starts with the gzip magic, so a body compressed without the header is safe
    # to recognise; an agent behind a proxy that drops the header still gets through.
    if encoding in ("gzip", "x-gzip") or raw[:2] == GZIP_MAGIC:
        return gunzip_capped(raw, limit), raw
    if len(raw) > limit:
        raise TooLarge(f"The body is larger than the limit of {limit} bytes.")
    return raw, None


def gunzip_capped(data: bytes, limit: int) -> bytes:
    """Inflate gzip (any number of members) without ever holding more than `limit` bytes."""
    out = bytearray()
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    pending = data
    try:
        while True:
            chunk = decompressor.decompress(pending, limit + 1 - len(out))
            out += chunk
            if len(out) > limit:
                raise TooLarge(f"The body inflates to more than the limit of {limit} bytes.")
            if decompressor.eof:
                rest = decompressor.unused_data
                if not rest.strip(b"\x00"):
                    break
                # Concatenated gzip members form one body (RFC 1952).
                decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
                pending = rest
                continue
            pending = decompressor.unconsumed_tail
            if not pending and not chunk:
                raise IngestError(
                    "The gzip body is truncated.", {"body": ["truncated gzip stream"]}
                )
    except zlib.error as exc:
        raise IngestError("The body is not valid gzip.", {"body": [str(exc)]}) from None
    return bytes(out)


# --- 2. archive ------------------------------------------------------------------------------
def archive(
    user,
    token,
    body: bytes,
    gzipped: bytes | None = None,
    *,
    claimed: bool = True,
    digest: str | None = None,
) -> IngestBatch:
    """Store the body before parsing it, in its own committed transaction.

    `claimed` (the default) says the caller processes it now, so the backlog sweep leaves it
    alone for INGEST_BACKLOG_GRACE_SECONDS; False leaves it for the worker (usage.ingest.backlog).
    `digest` is the body's SHA-256 (hex) when the caller already computed it (body_digest).
    """
    stored = gzipped if gzipped is not None else gzip.compress(body, compresslevel=6)
    now = timezone.now()
    with transaction.atomic():
        return IngestBatch.objects.create(
            user=user,
            token=token,
            received_at=now,
            body_gzip=stored,
            sha256=digest or body_digest(body),
            size_bytes=len(body),
            compressed_bytes=len(stored),
            claimed_at=now if claimed else None,
            attempts=1 if claimed else 0,
        )


def defers_to_worker(body: bytes) -> bool:
    """Is this body big enough (INGEST_ASYNC_BODY_BYTES, decompressed) to be answered 202
    and processed by the worker, rather than within the request?"""
    return len(body) > settings.INGEST_ASYNC_BODY_BYTES


def hand_to_worker(batch: IngestBatch) -> None:
    """Ask the worker to process an archived batch (usage.receivers queues it). The batch is
    already safe: a broker that is down leaves it `received` for the backlog sweep."""
    signals.batch_waiting.send(sender=IngestBatch, batch_id=batch.pk)


def body_digest(body: bytes) -> str:
    """The SHA-256 (hex) a batch's body is known by (duplicates, refused bodies)."""
    return hashlib.sha256(body).hexdigest()


def find_earlier(user, digest: str) -> tuple[IngestBatch | None, IngestBatch | None]:
    """(the sender's processed batch with this body (SHA-256 hex) whose machine is still
    theirs, the sender's refused agent batch with this body), newest first, each None when
    there is none; one indexed query (user, sha256) answers both."""
    duplicate = refused = None
    candidates = (
        IngestBatch.objects.defer("body_gzip")
        # The answer to a duplicate names the machine's subscription and team's timezone.
        .select_related("machine__subscription", "machine__team")
        .filter(user=user, sha256=digest)
        .filter(
            Q(status=BatchStatus.PROCESSED, machine__owner=user)
            | Q(rejected=True, status=BatchStatus.FAILED, ingest_path=IngestPath.AGENT)
        )
        .order_by("-received_at", "-id")
    )
    for batch in candidates:
        if batch.status == BatchStatus.PROCESSED:
            duplicate = duplicate or batch
        else:
            refused = refused or batch
    return duplicate, refused


def answer_duplicate(batch: IngestBatch, body: bytes | None = None) -> IngestResult:
    machine = batch.machine
    assert machine is not None, "find_earlier only returns batches of the sender's machines"
    # Everything the original stored is now simply unchanged; nothing more is removed.
    counts = {
        kind: {
            "created": 0,
            "updated": 0,
            "unchanged": sum(values.get(k, 0) for k in ("created", "updated", "unchanged")),
            "removed": 0,
        }
        for kind, values in (batch.counts or {}).items()
    }
    Machine.objects.filter(pk=machine.pk).update(
        last_seen_at=timezone.now(),
        last_sync_status=SYNC_OK,
        last_sync_error="",
        last_sync_counts=counts,
    )
    log.info(
        "ingest duplicate answered from its batch",
        extra={"batch": str(batch.public_id), "machine": str(machine.uuid)},
    )
    return IngestResult(
        batch=batch,
        machine=machine,
        counts=counts,
        timezone=machine.team.timezone,
        last_day=_last_day(machine),
        duplicate=True,
        foreign_request_keys=_foreign_keys_again(batch, machine, body),
    )


def result_of(batch: IngestBatch) -> IngestResult | None:
    """What a processed batch stored, as its ingest answer said it (for the batch status
    endpoint, polled after a 202); None when its machine is gone."""
    machine = batch.machine
    if batch.status != BatchStatus.PROCESSED or machine is None:
        return None
    return IngestResult(
        batch=batch,
        machine=machine,
        counts=batch.counts or {},
        timezone=machine.team.timezone,
        last_day=_last_day(machine),
        foreign_request_keys=_foreign_keys_again(batch, machine),
    )


def _foreign_keys_again(
    batch: IngestBatch, machine: Machine, body: bytes | None = None
) -> list[str]:
    """The other machines' request keys among a retried batch's keys: the agent needs them
    again to leave those requests out of its reports. `body` is the batch's body when the
    caller holds it (a retry is the same bytes), else the archive is read."""
    # A key's owner never changes (the first machine keeps it), so a batch that met no other
    # machine's keys then meets none now: nothing to parse.
    if not ((batch.counts or {}).get("request_keys") or {}).get("updated"):
        return []
    data = decode_json(body if body is not None else batch.body())
    # The batch was processed, so its envelope is valid: only its keys are read again.
    report = data["reports"].get("request_keys")
    if report is None:
        return []
    rows = parse_request_keys(report, "reports.request_keys", Reader(batch.received_at))
    return facts.shared_request_keys(machine, [row.key for row in rows])


# --- 3. process ------------------------------------------------------------------------------
def process_batch(batch: IngestBatch, *, body: bytes | None = None, live: bool = True, team=None):
    """Parse an archived batch and store its facts in one transaction.

    `live` is False when replaying (reprocess_batches): the machine's last-seen time,
    versions and name then stay as the newest real request left them. `team` is the
    sender's team as the request just read it (the ingest view); without it the sender's
    membership is read afresh (a replayed batch's user may have joined or left a team since).
    Raises IngestError (with `.batch` set) when the report is refused.
    """
    started = time.monotonic()
    if body is None:
        if batch.body_discarded:
            # Nothing to parse: the stored reason stays as it is.
            raise IngestError(
                "The body of this refused report was not kept (the team's archive of refused "
                "reports was full); only its metadata and reason remain."
            )
        body = batch.body()
    data = None
    try:
        data = decode_json(body)
        # "In the future" is judged against when the batch arrived, so a replay decides alike.
        envelope = parse_envelope(data, now=batch.received_at)
        try:
            with transaction.atomic():
                result = _store(batch, envelope, live=live, team=team)
                transaction.on_commit(lambda: queue_derived_work(batch.pk, result.machine))
        except _Unregistered:
            # The report registers a machine: its subscription is read (or created) outside
            # the long transaction, so a member's second machine never waits for the first
            # one's ingest to create the member's default subscription. Nothing was written
            # yet (the machine's row is the first thing _store locks).
            subscription = Subscription.default_for(batch.user)
            with transaction.atomic():
                result = _store(batch, envelope, live=live, team=team, subscription=subscription)
                transaction.on_commit(lambda: queue_derived_work(batch.pk, result.machine))
    except ParseError as exc:
        error = IngestError(f"Invalid report: {exc}", exc.as_errors())
        _mark_failed(batch, str(exc), peek_machine_uuid(data), live=live, refused=True)
        error.batch = batch
        raise error from None
    except IngestError as exc:
        _mark_failed(batch, exc.detail, peek_machine_uuid(data), live=live, refused=True)
        exc.batch = batch
        raise
    except (OperationalError, InterfaceError) as exc:
        # The database went away or gave up (a restart, a dropped connection): worth another
        # try, not a broken report. Nothing was stored; the batch waits for the backlog sweep.
        log.exception("ingest batch interrupted", extra={"batch": str(batch.public_id)})
        _leave_waiting(batch, f"database unavailable: {exc.__class__.__name__}")
        raise
    except Exception as exc:
        log.exception("ingest batch failed unexpectedly", extra={"batch": str(batch.public_id)})
        _mark_failed(batch, f"internal error: {exc.__class__.__name__}", None, live=live)
        raise
    log.info(
        "ingest batch processed",
        extra={
            "batch": str(batch.public_id),
            "machine": str(result.machine.uuid),
            "counts": result.counts,
            "bytes": len(body),
            "ms": round((time.monotonic() - started) * 1000),
            "ignored_kinds": envelope.ignored_kinds,
        },
    )
    result.ignored_kinds = envelope.ignored_kinds
    return result


def queue_derived_work(batch_id: int, machine: Machine | None = None) -> None:
    """Ask for blocks, pace and budget checks (usage.receivers queues them); the ingest already
    succeeded whatever happens, and a batch left underived is found by the sweep. `machine`,
    the batch's machine when at hand, saves receivers reading it again."""
    signals.batch_stored.send(sender=IngestBatch, batch_id=batch_id, machine=machine)


def _leave_waiting(batch: IngestBatch, reason: str) -> None:
    """Leave an interrupted batch `received` and free to be taken again (usage.ingest.backlog);
    if the database cannot even record that, its claim simply runs out."""
    try:
        IngestBatch.objects.filter(pk=batch.pk, status=BatchStatus.RECEIVED).update(
            claimed_at=None, error=reason[:10_000]
        )
    except (OperationalError, InterfaceError):
        log.warning("ingest batch left claimed", extra={"batch": str(batch.public_id)})


def _mark_failed(
    batch: IngestBatch, message: str, machine_uuid, *, live: bool, refused: bool = False
) -> None:
    """Record why the batch failed. A live batch refused for its content is `rejected`: kept
    under the team's cap (usage.ingest.rejected); a replay never newly rejects a batch."""
    now = timezone.now()
    rejected = batch.rejected or (refused and live)
    # The reason may quote the refused text, NUL included, which a PostgreSQL text column
    # cannot hold: it is kept as its JSON escape.
    message = message.replace("\x00", "\\u0000")
    with transaction.atomic():
        machine = (
            Machine.objects.filter(uuid=machine_uuid, owner=batch.user).first()
            if machine_uuid
            else None
        )
        IngestBatch.objects.filter(pk=batch.pk).update(
            status=BatchStatus.FAILED,
            error=message[:10_000],
            processed_at=now,
            machine=machine,
            counts={},
            rejected=rejected,
            claimed_at=None,
        )
        if machine and live:
            Machine.objects.filter(pk=machine.pk).update(
                last_seen_at=now, last_sync_status=SYNC_FAILED, last_sync_error=message[:2000]
            )
    batch.status, batch.error, batch.machine = BatchStatus.FAILED, message, machine
    batch.rejected = rejected
    if rejected and not batch.body_discarded:
        rejected_bodies.keep_within_cap(batch)
    log.warning(
        "ingest batch refused",
        extra={"batch": str(batch.public_id), "error": message[:500]},
    )


class _Unregistered(Exception):
    """The report registers a machine and no subscription was resolved for it yet."""


def _store(
    batch: IngestBatch,
    envelope: Envelope,
    *,
    live: bool,
    team=None,
    subscription: Subscription | None = None,
) -> IngestResult:
    if team is None:
        # Read afresh: a replayed batch's user may have joined or left a team since.
        membership = Membership.objects.select_related("team").filter(user_id=batch.user_id).first()
        team = membership.team if membership else None
    if team is None:
        raise Refused(
            "Your account belongs to no team, so its usage has nowhere to go; "
            "ask a team admin to add you."
        )
    machine, registered = _lock_machine(batch.user, team, envelope.machine, subscription)
    if live and machine.retired_at is not None:
        # Refused rather than stored: a retired machine's usage must not count unseen, and
        # nothing is lost, since the body is archived and the agent's logs still hold it.
        raise Refused(
            f"Machine “{machine.name}” was retired on {machine.retired_at:%Y-%m-%d}, so its "
            "usage is not stored. Its owner can restore it on the machines page; the next "
            "sync then sends everything again.",
            {"machine.uuid": ["retired"]},
            status=409,
        )
    projects = facts.resolve_projects(team, envelope, batch.user)
    counts: dict[str, facts.Counts] = {}
    reports = envelope.reports
    # Rows a batch received later already reported (it committed first) are left as it left
    # them; usually there is no such batch and this is one indexed query. A machine this
    # report registers has no facts and no other batch yet: nothing to compare, regroup or
    # keep.
    writable, skipped = (
        (reports, {}) if registered else facts.without_later_reports(machine, batch, reports)
    )
    window_start = _daily_window_start(envelope)
    for kind in DAILY_KINDS:
        if kind in reports:
            counts[kind] = facts.upsert_daily(
                machine,
                batch,
                writable[kind],
                projects,
                timezone=envelope.machine.timezone,
                key_mode=envelope.project_key_mode,
                fresh=registered,
            )
            if registered:
                continue
            counts[kind].removed = facts.replace_regrouped(
                machine,
                batch,
                kind,
                reports[kind],
                timezone=envelope.machine.timezone,
                key_mode=envelope.project_key_mode,
                hours=reports.get("blocks_hourly"),
            )
            counts[kind].kept = facts.count_kept(machine, batch, kind, window_start, reports[kind])
    if "blocks_hourly" in reports:
        counts["blocks_hourly"] = facts.upsert_hourly(
            machine, batch, writable["blocks_hourly"], fresh=registered
        )
    if "claude_session" in reports:
        counts["claude_session"] = facts.upsert_sessions(
            machine, batch, writable["claude_session"], projects, fresh=registered
        )
    if "statusline" in reports:
        counts["statusline"] = facts.upsert_rate_limits(
            machine, batch, writable["statusline"], fresh=registered
        )
        ratelimits.readings_stored(machine, counts["statusline"])
    for kind, count in skipped.items():
        if kind in counts:
            counts[kind].unchanged += count
    foreign: list[str] = []
    if "request_keys" in reports:
        counts["request_keys"], foreign = facts.claim_request_keys(
            machine, batch, reports["request_keys"]
        )

    as_dicts = {kind: c.as_dict() for kind, c in counts.items()}
    now = timezone.now()
    if live:
        _update_machine(machine, envelope.machine, as_dicts, now)
    batch.machine = machine
    # What the lost-history check needs, kept while the parsed report is at hand.
    derive.remember_reported_days(batch.pk, envelope)
    batch.status = BatchStatus.PROCESSED
    batch.error = ""
    batch.counts = as_dicts
    batch.processed_at = now
    # A refused body that goes through when sent again is an ordinary batch from now on.
    batch.rejected = False
    batch.claimed_at = None
    batch.save(
        update_fields=[
            "status",
            "error",
            "counts",
            "processed_at",
            "machine",
            "rejected",
            "claimed_at",
        ]
    )
    return IngestResult(
        batch=batch,
        machine=machine,
        counts=as_dicts,
        timezone=team.timezone,
        last_day=_last_day(machine),
        foreign_request_keys=foreign,
    )


def _daily_window_start(envelope: Envelope) -> date | None:
    """First day the daily reports are complete from: --since, or a full report's first day.

    A full report covers what the logs still hold, so its window opens at the earliest day of
    any agent. Facts inside the window that the report no longer lists are counted as kept.
    """
    if envelope.since is not None:
        return envelope.since
    days = [row.day for kind in DAILY_KINDS for row in envelope.reports.get(kind, ())]
    if envelope.full and days:
        return min(days)
    return None


def _lock_machine(user, team, info: MachineInfo, subscription=None) -> tuple[Machine, bool]:
    """The sender's machine, locked for this transaction; registered on its first report.
    Returns it and whether this report registered it (then it has no facts yet).

    Machine identity is the agent's UUID plus the fingerprint of where it runs (DESIGN.md,
    "Machine identity"). The same UUID from another place (an agent folder copied to another
    PC or user) becomes a machine of its own, `copied_from` the first, with a new UUID the
    agent adopts from the answer; it is never merged into the first. A machine that had no
    fingerprint yet takes the first one it is sent.

    The machine follows its owner's current team: usage counts where the owner is now.

    The row lock serialises two requests for one machine, so each one's read-compare-write
    of the facts sees the other's committed rows.
    """
    machine, registered = _get_or_register(user, team, info, info.uuid, subscription=subscription)
    if info.fingerprint and machine.fingerprint and machine.fingerprint != info.fingerprint:
        copy = _locked(
            Machine.objects.filter(copied_from=machine, fingerprint=info.fingerprint, owner=user)
        ).first()
        registered = False
        if copy is None:
            copy, registered = _get_or_register(
                user, team, info, uuid.uuid4(), copied_from=machine, subscription=subscription
            )
        return _in_team(copy, team), registered
    if machine.owner_id != user.pk:
        raise Refused(
            f"Machine {info.uuid} is registered to another user. Each PC needs its own machine "
            "id: run the agent's setup again on this PC to generate one.",
            {"machine.uuid": ["registered to another user"]},
            status=409,
        )
    if info.fingerprint and not machine.fingerprint:
        machine.fingerprint = info.fingerprint
        machine.save(update_fields=["fingerprint"])
    return _in_team(machine, team), registered


def _in_team(machine: Machine, team) -> Machine:
    # The owner's membership decides the team, not the stored copy: a move that bypassed
    # usage.receivers (a bulk update) must not leave new usage in the old team.
    if machine.team_id != team.pk:
        machine.team = team
        machine.save(update_fields=["team"])
    return machine


def _get_or_register(
    user,
    team,
    info: MachineInfo,
    machine_uuid,
    *,
    copied_from: Machine | None = None,
    subscription: Subscription | None = None,
) -> tuple[Machine, bool]:
    """The machine with this UUID, locked, and whether it was registered just now."""
    machine = _locked(Machine.objects.filter(uuid=machine_uuid)).first()
    if machine is not None:
        return machine, False
    if subscription is None:
        raise _Unregistered
    # Two PCs set up with the same name would be indistinguishable on every page.
    name = free_machine_name(user.pk, info.name) if info.name else info.name
    machine, created = Machine.objects.get_or_create(
        uuid=machine_uuid,
        defaults={
            "owner": user,
            "team": team,
            # Resolved before the transaction (process_batch).
            "subscription": subscription,
            "name": name,
            "reported_name": name,
            "hostname": info.hostname,
            "os": info.os,
            "os_user": info.os_user,
            "fingerprint": info.fingerprint,
            "copied_from": copied_from,
            "agent_version": info.agent_version,
            "ccusage_version": info.ccusage_version,
            "timezone": info.timezone,
        },
    )
    if created:
        log.info(
            "machine registered",
            extra={
                "machine": str(machine_uuid),
                "user": user.pk,
                "team": team.pk,
                "copied_from": str(copied_from.uuid) if copied_from else None,
            },
        )
    return _locked(Machine.objects.filter(pk=machine.pk)).get(), created


def _locked(machines):
    """Machines locked for this transaction, with their subscription (the answer names it)
    read in the same query; only the machine's row is locked."""
    return machines.select_related("subscription").select_for_update(of=("self",))


def _update_machine(machine: Machine, info: MachineInfo, counts: dict, now) -> None:
    # A name that differs from what the agent last sent was set by a person, and it wins.
    set_by_person = bool(machine.reported_name) and machine.name != machine.reported_name
    if info.name and not set_by_person and machine.name == info.name:
        # Already the agent's name, which registration made unique among the owner's
        # machines: nothing to tell apart, no need to read the others' names again.
        machine.reported_name = machine.name
    elif info.name and not set_by_person:
        # The agent's name, told apart from the owner's other machines ("pc-one (2)"); stored
        # as reported too, so the next sync sees no person's change and keeps it stable.
        machine.name = free_machine_name(machine.owner_id, info.name, exclude_pk=machine.pk)
        machine.reported_name = machine.name
    elif info.name:
        machine.reported_name = info.name
    for name in ("hostname", "os", "os_user", "agent_version", "ccusage_version", "timezone"):
        value = getattr(info, name)
        if value:
            setattr(machine, name, value)
    machine.last_seen_at = now
    machine.last_sync_status = SYNC_OK
    machine.last_sync_error = ""
    machine.last_sync_counts = counts
    machine.save(
        update_fields=[
            "name",
            "reported_name",
            "hostname",
            "os",
            "os_user",
            "agent_version",
            "ccusage_version",
            "timezone",
            "last_seen_at",
            "last_sync_status",
            "last_sync_error",
            "last_sync_counts",
        ]
    )


def _last_day(machine: Machine) -> date | None:
    return DailyUsage.objects.filter(machine=machine).aggregate(last=Max("day"))["last"]
