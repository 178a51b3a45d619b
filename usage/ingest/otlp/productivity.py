"""Claude Code's productivity metrics (what its logs do not have) summed into ProductivityDaily:
per OTLP machine (so per member), team day and project, recomputed from the stored points."""

from collections import defaultdict
from datetime import date
from decimal import Decimal

from usage.ingest.otlp.rebuild import no_project
from usage.models import IngestBatch, Machine, OtlpMetricPoint, ProductivityDaily, Project

# Names, units and attributes from Claude Code's monitoring documentation.
LINES = "claude_code.lines_of_code.count"  # count; type = added | removed
COMMITS = "claude_code.commit.count"  # count
PULL_REQUESTS = "claude_code.pull_request.count"  # count
ACTIVE_TIME = "claude_code.active_time.total"  # s; type = user | cli
EDIT_DECISIONS = "claude_code.code_edit_tool.decision"  # count; tool_name, decision
METRICS = frozenset({LINES, COMMITS, PULL_REQUESTS, ACTIVE_TIME, EDIT_DECISIONS})


def rebuild(machine: Machine, batch: IngestBatch, team, days: set[date]) -> int:
    """Replace the machine's productivity rows of `days` (team days) with the sums of all its
    stored points of those days; returns the number of rows written. Idempotent."""
    if not days:
        return 0
    zone = team.zone
    start, end = team.day_bounds(min(days), max(days))
    points = OtlpMetricPoint.objects.filter(
        machine=machine, metric__in=METRICS, end_at__gte=start, end_at__lt=end
    )
    rows: dict[tuple[date, str], dict] = defaultdict(_empty)
    for p in points:
        day = p.end_at.astimezone(zone).date()
        if day not in days:
            continue
        row = rows[(day, p.project_name)]
        if p.metric == LINES:
            if p.kind == "added":
                row["lines_added"] += int(p.value)
            elif p.kind == "removed":
                row["lines_removed"] += int(p.value)
        elif p.metric == COMMITS:
            row["commits"] += int(p.value)
        elif p.metric == PULL_REQUESTS:
            row["pull_requests"] += int(p.value)
        elif p.metric == ACTIVE_TIME:
            row["active_seconds"] += Decimal(p.value)
        elif p.metric == EDIT_DECISIONS and p.decision in ("accept", "reject"):
            field = "edits_accepted" if p.decision == "accept" else "edits_rejected"
            row[field] += int(p.value)
            tool = row["edit_decisions"].setdefault(p.tool_name or "unknown", {})
            tool[p.decision] = tool.get(p.decision, 0) + int(p.value)
    ProductivityDaily.objects.filter(machine=machine, day__in=days).delete()
    projects = {name: project_named(team, name).pk for _, name in rows}
    ProductivityDaily.objects.bulk_create(
        ProductivityDaily(
            team=team,
            member_id=machine.owner_id,
            machine=machine,
            project_id=projects[name],
            day=day,
            batch=batch,
            **values,
        )
        for (day, name), values in rows.items()
    )
    return len(rows)


def project_named(team, name: str) -> Project:
    """The team's project an OTLP `project.name` attribute names: one with that key or that
    display name (its canonical project), else a new project keyed by the name."""
    if not name:
        return no_project(team)
    project = (
        Project.objects.select_related("alias_of").filter(team=team, key=name).first()
        or Project.objects.select_related("alias_of")
        .filter(team=team, display_name__iexact=name)
        .order_by("pk")
        .first()
    )
    if project is None:
        project, _ = Project.objects.get_or_create(
            team=team, key=name, defaults={"display_name": name}
        )
    return project.canonical


def _empty() -> dict:
    return {
        "lines_added": 0,
        "lines_removed": 0,
        "commits": 0,
        "pull_requests": 0,
        "active_seconds": Decimal("0"),
        "edits_accepted": 0,
        "edits_rejected": 0,
        "edit_decisions": {},
    }
