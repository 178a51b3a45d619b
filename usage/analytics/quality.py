"""Data quality: history a machine lost (Claude Code cleaned up its logs), copied sessions,
and the advice the machines page gives for them and for copied folders and shared requests.

None of it changes a fact. Lost days stay stored (the server is the long-term memory); a
session id seen on two machines is reported, so double counting is visible, not hidden.
"""

import logging
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db.models import Count, Q
from django.utils import timezone

from usage.ingest.parsers.base import ParseError
from usage.ingest.parsers.envelope import decode_json, parse_envelope
from usage.models import (
    CopiedSession,
    DailyUsage,
    IngestBatch,
    Machine,
    ModelPrice,
    SessionUsage,
    SharedRequest,
    Source,
)

log = logging.getLogger(__name__)

LOST_HISTORY_ADVICE = (
    "This machine's latest full report no longer contains days it reported before: Claude Code "
    "deletes transcripts older than its cleanupPeriodDays setting (30 days by default). The "
    "server keeps the days it already has. To keep more history on the machine, set "
    '"cleanupPeriodDays" to a larger number (e.g. 365) in ~/.claude/settings.json.'
)
COPIED_FOLDER_ADVICE = (
    "This machine's agent folder (with its machine id) was copied from another machine, to "
    "another PC or another user's home. The server told the two apart by where each runs and "
    "registered this one as a machine of its own, so neither's usage is merged into the "
    "other's; the agent adopted its new id by itself. Nothing to do, unless the copy also "
    "brought Claude Code's logs along (see duplicate sessions)."
)
SHARED_REQUESTS_ADVICE = (
    "This machine's Claude Code logs hold requests another machine reported first, usually "
    "because ~/.claude was copied or synced between them, or a transcript was resumed there. "
    "The agent leaves them out of this machine's reports, so each request counts once, on the "
    "machine that reported it first, as ccusage counts the logs of both together."
)
DUPLICATE_SESSION_ADVICE = (
    "The same Claude Code session was reported by more than one machine, usually because a "
    "transcript folder was copied or synced between them. Its usage is counted once per "
    "machine; remove the copy from one machine's Claude folder to stop double counting."
)


def full_batch_envelope(batch: IngestBatch):
    """The archived envelope of a full report, parsed again; None for an incremental one.

    Only a full report can show lost history, so an incremental one is not parsed twice.
    """
    if batch.ingest_path != "agent":
        # OTLP exports are protobuf or JSON of another shape, and never a full report.
        return None

    try:
        data = decode_json(batch.body())
        if not isinstance(data, dict) or data.get("full") is not True:
            return None
        return parse_envelope(data, now=batch.received_at)
    except (OSError, EOFError, ParseError):
        log.warning("archived batch does not parse", extra={"batch": batch.pk})
        return None


def check_lost_history(
    batch: IngestBatch, envelope=None, *, reported_days: set[date] | None = None
) -> list[date]:
    """Flag the batch's machine when a full report no longer lists days stored before.

    Any stored Claude Code day the report lacks counts, before its first day or in a gap
    (Claude Code deletes transcripts file by file, so a long session can outlive the days
    around it). Days a timezone change regrouped were replaced at ingest, so they are not
    among the stored ones. Returns the newly lost days; running it twice adds nothing.
    `reported_days`, the days the full report's daily report listed, spares parsing the
    archive again (derived work passes what ingest kept).
    """
    machine = batch.machine
    if machine is None:
        return []
    if reported_days is not None:
        # The days of the full report's daily report, as ingest kept them.
        reported = reported_days
    else:
        envelope = envelope if envelope is not None else full_batch_envelope(batch)
        if envelope is None or not envelope.full:
            return []
        rows = envelope.reports.get("claude_daily_instances")
        if rows is None:
            # The report was not sent at all: nothing to compare with.
            return []
        reported = {row.day for row in rows}
    stored = DailyUsage.objects.filter(machine=machine, source=Source.CLAUDE_CODE)
    lost = set(stored.values_list("day", flat=True).distinct()) - reported
    known = {date.fromisoformat(d) for d in machine.lost_history_days or []}
    new = sorted(lost - known)
    if not new:
        return []
    machine.lost_history_days = [d.isoformat() for d in sorted(known | lost)]
    machine.lost_history_at = timezone.now()
    Machine.objects.filter(pk=machine.pk).update(
        lost_history_days=machine.lost_history_days, lost_history_at=machine.lost_history_at
    )
    log.warning(
        "machine lost history",
        extra={
            "machine": str(machine.uuid),
            "days": len(new),
            "first": new[0].isoformat(),
            "last": new[-1].isoformat(),
        },
    )
    return new


@dataclass(frozen=True)
class SessionCopy:
    machine_id: int
    machine_name: str
    total_tokens: int
    cost_usd: Decimal


@dataclass(frozen=True)
class DuplicateSession:
    session_id: str
    copies: list[SessionCopy]

    @property
    def double_counted_cost(self) -> Decimal:
        """What the copies add beyond the largest one."""
        costs = sorted((c.cost_usd for c in self.copies), reverse=True)
        return sum(costs[1:], Decimal(0))


def duplicate_sessions(machines, session_ids=None) -> list[DuplicateSession]:
    """Session ids reported by two or more of `machines` (a Machine queryset).

    `session_ids` (a list or a values_list queryset) narrows the search; querysets stay
    subqueries, so a machine with thousands of sessions costs no huge parameter list.
    """
    facts = SessionUsage.objects.filter(machine__in=machines)
    if session_ids is not None:
        facts = facts.filter(session_id__in=session_ids)
    # Grouping by session id uses the session id index.
    ids = (
        facts.values("session_id")
        .annotate(machines=Count("machine_id", distinct=True))
        .filter(machines__gt=1)
        .values_list("session_id", flat=True)
    )
    copies: dict[str, list[SessionCopy]] = {}
    # Only the columns a copy needs: whole session and machine rows (JSON fields included)
    # cost more to load than to find.
    rows = (
        facts.filter(session_id__in=ids)
        .order_by("session_id", "machine__name", "machine_id")
        .values_list("session_id", "machine_id", "machine__name", "total_tokens", "cost_usd")
    )
    for session_id, machine_id, machine_name, total_tokens, cost_usd in rows:
        copies.setdefault(session_id, []).append(
            SessionCopy(machine_id, machine_name, total_tokens, cost_usd)
        )
    return [DuplicateSession(sid, found) for sid, found in copies.items()]


def check_duplicate_sessions(batch: IngestBatch, session_ids=None) -> list[DuplicateSession]:
    """Copies involving the batch's machine, among the machines of its team.

    `session_ids` (a list or values_list queryset; default all the machine's sessions)
    narrows it: derived work passes the sessions the batch changed.
    """
    machine = batch.machine
    if machine is None:
        return []
    mine = (
        session_ids
        if session_ids is not None
        else SessionUsage.objects.filter(machine=machine).values_list("session_id", flat=True)
    )
    found = duplicate_sessions(Machine.objects.filter(team_id=machine.team_id), mine)
    if found:
        log.warning(
            "session reported by more than one machine",
            extra={
                "machine": str(machine.uuid),
                "sessions": len(found),
                "example": found[0].session_id,
            },
        )
    return found


@dataclass
class MachineFindings:
    """What may be off in one machine's figures (see the *_ADVICE texts for each kind)."""

    machine: Machine
    lost_history_days: list[str] = field(default_factory=list)
    copied_from: Machine | None = None
    duplicate_sessions: int = 0
    duplicate_with: list[str] = field(default_factory=list)
    # What the copies add beyond the largest one, in USD, charged to one machine per session.
    double_counted_usd: Decimal = Decimal(0)
    shared_requests: int = 0
    shared_with: list[str] = field(default_factory=list)
    # Models whose tokens ccusage reported at $0 and no server price covers (counted as $0).
    unpriced_models: list[str] = field(default_factory=list)

    @property
    def any(self) -> bool:
        return bool(
            self.lost_history_days
            or self.copied_from
            or self.duplicate_sessions
            or self.shared_requests
            or self.unpriced_models
        )


def findings_by_machine(machines: list[Machine], among=None) -> dict[int, MachineFindings]:
    """Per machine id, the data-quality findings of `machines` (the ones a viewer may see).

    `among` (a Machine queryset; default `machines`) is every machine the viewer may see, when
    `machines` is one page of them: copies are looked for among all of them. Other machines
    are named only when they are among those, so a viewer never learns the name of a machine
    they may not see. Costs a constant number of queries.
    """
    by_id = {m.pk: m for m in machines}
    if among is None:
        among = Machine.objects.filter(pk__in=list(by_id))
        names = {pk: m.name for pk, m in by_id.items()}
    else:
        # Only the machines this page may name (a big team has thousands): the copies' sources
        # and the machines that reported shared requests first.
        shared_owners = SharedRequest.objects.filter(machine__in=list(by_id)).values("owner_id")
        named = among.filter(
            Q(pk__in=[m.copied_from_id for m in machines if m.copied_from_id])
            | Q(pk__in=shared_owners)
        )
        names = dict(named.values_list("pk", "name"))
    found = {
        m.pk: MachineFindings(
            machine=m,
            lost_history_days=[str(d) for d in (m.lost_history_days or [])],
            copied_from=m.copied_from if m.copied_from_id in names else None,
        )
        for m in machines
    }
    # Only the ids a trigger recorded when the second machine's session was stored (usage
    # migration 0014): grouping every session of a big team by id took seconds.
    recorded = CopiedSession.objects.filter(team_id__in={m.team_id for m in machines}).values_list(
        "session_id", flat=True
    )
    # Of those, the ones a machine of this page holds.
    # Read once into a list (a few ids a page): as a subquery it was planned and run again
    # inside each of the two queries below.
    shown = list(
        SessionUsage.objects.filter(machine__in=list(by_id), session_id__in=recorded)
        .order_by()
        .values_list("session_id", flat=True)
        .distinct()
    )
    for duplicate in duplicate_sessions(among, shown) if shown else []:
        for copy in duplicate.copies:
            entry = found.get(copy.machine_id)
            if entry is None:
                continue  # on another page
            entry.duplicate_sessions += 1
            others = {c.machine_name for c in duplicate.copies if c is not copy}
            entry.duplicate_with = sorted(set(entry.duplicate_with) | others)
        if duplicate.copies[0].machine_id in found:
            found[
                duplicate.copies[0].machine_id
            ].double_counted_usd += duplicate.double_counted_cost
    shared = (
        SharedRequest.objects.filter(machine__in=list(by_id))
        .values("machine_id", "owner_id")
        .annotate(requests=Count("id"))
        .order_by("machine_id", "owner_id")
    )
    for row in shared:
        entry = found[row["machine_id"]]
        entry.shared_requests += row["requests"]
        entry.shared_with.append(names.get(row["owner_id"], "another machine"))
    unpriced = (
        DailyUsage.objects.filter(
            machine__in=list(by_id), cost_usd=0, total_tokens__gt=0, priced_by_server=False
        )
        .exclude(model__in=ModelPrice.objects.values("model"))
        .values_list("machine_id", "model")
        .distinct()
        .order_by("machine_id", "model")
    )
    for machine_id, model in unpriced:
        found[machine_id].unpriced_models.append(model)
    return found
