"""Productivity figures (Claude Code's OTLP metrics: lines, commits, pull requests, active
time, edit decisions) summed for whoever asks, with the Claude Code cost of the same group, so
cost per commit and per pull request can be read next to them."""

from datetime import date
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import F, Sum
from django.db.models.functions import Coalesce

from accounts.access import sees_other_members
from usage import queries
from usage.figures import COST_PLACES
from usage.models import ProductivityDaily, Source

GROUP_BY = ("day", "member", "machine", "project")
COUNT_FIELDS = (
    "lines_added",
    "lines_removed",
    "commits",
    "pull_requests",
    "edits_accepted",
    "edits_rejected",
)


def _groupings(group_by: str) -> dict[str, Any]:
    groupings: dict[str, dict[str, Any]] = {
        "day": {"k": F("day")},
        "member": {"k": F("member__public_id"), "l": F("member__name"), "e": F("member__email")},
        "machine": {"k": F("machine__uuid"), "l": F("machine__name")},
        "project": {
            "k": Coalesce("project__alias_of__public_id", "project__public_id"),
            "l": Coalesce("project__alias_of__display_name", "project__display_name"),
        },
    }
    return groupings[group_by]


def _label(group_by: str, row: dict) -> tuple[str, str]:
    key = row["k"]
    if group_by == "day":
        return key.isoformat(), key.isoformat()
    if group_by == "member":
        return str(key), row["l"] or row["e"].split("@")[0]
    return str(key), row["l"]


def empty_figures() -> dict:
    return {
        **{name: 0 for name in COUNT_FIELDS},
        "active_seconds": 0,
        "cost_usd": Decimal("0").quantize(COST_PLACES),
    }


def derived(figures: dict) -> dict:
    """Adds the rates to summed figures: `accept_rate` (accepted / decided edits, 0 to 1, None
    without decisions), `cost_per_commit` and `cost_per_pull_request` (USD, None without any)."""
    decided = figures["edits_accepted"] + figures["edits_rejected"]
    figures["accept_rate"] = figures["edits_accepted"] / decided if decided else None
    cost = figures["cost_usd"]
    figures["cost_per_commit"] = cost / figures["commits"] if figures["commits"] else None
    figures["cost_per_pull_request"] = (
        cost / figures["pull_requests"] if figures["pull_requests"] else None
    )
    return figures


def aggregate_productivity(
    viewer,
    *,
    group_by: str = "day",
    since: date | None = None,
    until: date | None = None,
    scope: str = "me",
    machine=None,
    member=None,
    project=None,
    cost_without_rows: bool = True,
) -> dict:
    """Productivity sums grouped one way, with each group's Claude Code cost.

    Returns {"results": [{"key", "label", lines_added, lines_removed, commits,
    pull_requests, edits_accepted, edits_rejected, active_seconds (whole seconds),
    cost_usd (USD), accept_rate, cost_per_commit, cost_per_pull_request}], "totals": {…}}.
    Days are the team's reporting days, inclusive. Whose figures: as the usage API
    (usage.queries.machine_scope); grouping by member or machine needs the right to see other
    members unless a member or machine is chosen. The cost is all Claude Code usage of the
    group (every machine, agent or OTLP), so on a team where some machines send no OTLP
    metrics the cost per commit is an upper bound. `cost_without_rows=False` skips the cost
    query when the selection has no productivity rows (then "results" is empty and the
    totals are all zero): a card that shows nothing without metrics need not sum a
    1,000-member team's cost. Raises queries.QueryError (a bad parameter),
    PermissionDenied, Http404.
    """
    if group_by not in GROUP_BY:
        raise queries.QueryError("group_by", f"choose one of {', '.join(GROUP_BY)}")
    since, until = queries.day_range(since, until)
    if group_by == "member" and not sees_other_members(viewer) and member in (None, ""):
        raise PermissionDenied("Only team admins see figures broken down by member.")
    rows = ProductivityDaily.objects.filter(
        queries.machine_scope(
            viewer,
            scope=scope,
            machine=machine,
            member=member,
            individual=group_by in ("machine", "member"),
        )
    )
    if since:
        rows = rows.filter(day__gte=since)
    if until:
        rows = rows.filter(day__lte=until)
    if project not in (None, ""):
        rows = rows.filter(queries.project_filter(queries.resolve_project(viewer, project)))
    sums = (
        rows.order_by()
        .values(**_groupings(group_by))
        .annotate(**{name: Sum(name) for name in COUNT_FIELDS}, active=Sum("active_seconds"))
    )
    if not cost_without_rows and not sums.exists():
        return {"results": [], "totals": derived(empty_figures())}
    usage = queries.aggregate_usage(
        viewer,
        group_by=group_by,
        since=since,
        until=until,
        scope=scope,
        machine=machine,
        member=member,
        project=project,
        source=Source.CLAUDE_CODE,
    )
    cost = {row["key"]: row["cost_usd"] for row in usage["results"]}
    results = []
    totals = empty_figures()
    for row in sums:
        key, label = _label(group_by, row)
        item: dict[str, Any] = {"key": key, "label": label}
        for name in COUNT_FIELDS:
            item[name] = int(row[name] or 0)
            totals[name] += item[name]
        item["active_seconds"] = round(row["active"] or 0)
        totals["active_seconds"] += item["active_seconds"]
        item["cost_usd"] = cost.get(key, Decimal("0").quantize(COST_PLACES))
        results.append(derived(item))
    # The totals' cost is the whole selection's, including groups with no productivity rows.
    totals["cost_usd"] = usage["totals"]["cost_usd"]
    if group_by == "day":
        results.sort(key=lambda item: item["key"])
    else:
        results.sort(key=lambda item: (-item["commits"], -item["lines_added"], item["label"]))
    return {"results": results, "totals": derived(totals)}
