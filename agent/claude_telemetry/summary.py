"""What a sync tells a person: the days, tokens and cost it sent, what changed on the server,
and where to look. The raw per-report counts stay available with `sync --verbose` / `--json`.
"""

from __future__ import annotations

from typing import Any

# Server count keys -> what they are, singular and plural.
_FACTS = {
    "claude_daily_instances": ("daily Claude Code figure", "daily Claude Code figures"),
    "daily_by_agent": ("daily figure of another agent", "daily figures of other agents"),
    "claude_session": ("session", "sessions"),
    "blocks_hourly": ("hourly figure", "hourly figures"),
    "statusline": ("rate-limit reading", "rate-limit readings"),
}


def tokens_text(count: float) -> str:
    """12,345 -> '12.3k'; 3,081,701 -> '3.08M' (tokens, for one line of text)."""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(count) >= size:
            value = count / size
            return f"{value:.3g}{suffix}" if value < 100 else f"{value:,.0f}{suffix}"
    return f"{count:,.0f}"


def sent_usage(envelope: dict[str, Any]) -> dict[str, Any]:
    """{days, first_day, last_day, tokens, cost_usd, agents: {name: (tokens, cost_usd)}} of the
    usage in `envelope`: Claude Code's from its per-project daily report, every other agent's
    from ccusage's unified daily report, as the server reads them. (The unified report may be
    a copy kept from an earlier sync when only Claude's logs changed since: its Claude figures
    are then older, and are used only when there is no per-project report.)"""
    reports = envelope.get("reports") or {}
    days: set[str] = set()
    agents: dict[str, list[float]] = {}
    claude = reports.get("claude_daily_instances")
    if isinstance(claude, dict):
        total = agents.setdefault("claude", [0, 0.0])
        for rows in (claude.get("projects") or {}).values():
            for row in rows:
                days.add(str(row.get("date")))
                total[0] += row.get("totalTokens") or 0
                total[1] += row.get("totalCost") or 0.0
    unified = reports.get("daily_by_agent")
    if isinstance(unified, dict):
        for row in unified.get("daily") or []:
            if not isinstance(row, dict):
                continue
            parts = [
                a
                for a in row.get("agents") or []
                if isinstance(a, dict)
                and not (isinstance(claude, dict) and a.get("agent") == "claude")
            ]
            day = row.get("period") or row.get("date")  # v20 says period; v18 said date
            if any(a.get("totalTokens") for a in parts) and day:
                days.add(str(day))
            for part in parts:
                total = agents.setdefault(str(part.get("agent") or "?"), [0, 0.0])
                total[0] += part.get("totalTokens") or 0
                total[1] += part.get("totalCost") or 0.0
    agents = {name: t for name, t in agents.items() if t[0]}
    return {
        "days": len(days),
        "first_day": min(days) if days else None,
        "last_day": max(days) if days else None,
        "tokens": sum(t[0] for t in agents.values()),
        "cost_usd": round(sum(t[1] for t in agents.values()), 2),
        "agents": {name: (t[0], round(t[1], 2)) for name, t in sorted(agents.items())},
    }


def changes_text(counts: Any) -> str:
    """The server's counts in words: 'It stored 3 new and 5 updated sessions, …' or that
    nothing changed."""
    if not isinstance(counts, dict):
        return "The server stored it."
    parts = []
    kept = replaced = 0
    for c in counts.values():
        if isinstance(c, dict):
            kept += int(c.get("kept") or 0)
            replaced += int(c.get("removed") or 0)
    for kind, (one, many) in _FACTS.items():
        c = counts.get(kind)
        if not isinstance(c, dict):
            continue
        created, updated = int(c.get("created") or 0), int(c.get("updated") or 0)
        if created and updated:
            parts.append(f"{created:,} new and {updated:,} updated {many}")
        elif created:
            parts.append(f"{created:,} new {one if created == 1 else many}")
        elif updated:
            parts.append(f"{updated:,} updated {one if updated == 1 else many}")
    if replaced:
        parts.append(f"replaced {replaced:,} rows regrouped by another timezone or project naming")
    if kept:
        parts.append(f"kept {kept:,} stored rows the logs no longer hold")
    if not parts:
        return "Nothing changed on the server: it already had all of it."
    return "Changed on the server: " + "; ".join(parts) + "."


def human_lines(envelope: dict[str, Any], ack_data: dict[str, Any], server_url: str) -> list[str]:
    """The lines a person reads after a sync (see the module docstring)."""
    usage = sent_usage(envelope)
    window = "the whole history" if envelope.get("full") else f"days since {envelope.get('since')}"
    if usage["days"]:
        span = (
            usage["first_day"]
            if usage["first_day"] == usage["last_day"]
            else f"{usage['first_day']} to {usage['last_day']}"
        )
        lines = [
            f"Sent {window}: {usage['days']} day{'s' if usage['days'] != 1 else ''} of usage "
            f"({span}), {tokens_text(usage['tokens'])} tokens, ${usage['cost_usd']:,.2f}."
        ]
        if len(usage["agents"]) > 1:
            lines.append(
                "  "
                + ", ".join(
                    f"{name} {tokens_text(t)} tokens ${c:,.2f}"
                    for name, (t, c) in usage["agents"].items()
                )
            )
    else:
        lines = [f"Sent {window}: no usage in it; the server knows this machine is alive."]
    state = ack_data.get("status")
    if state == "received":
        # A big report answered 202: stored, and processed by the server's worker.
        lines.append("The server stored it and is still processing it (a big report).")
    elif state == "failed":
        lines.append(f"The server stored it but could not process it: {ack_data.get('detail')}")
    else:
        lines.append(changes_text(ack_data.get("counts")))
    lines.append(f"Dashboard: {server_url.rstrip('/')}/")
    return lines
