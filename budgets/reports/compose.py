"""A report as people read it: email (HTML and text, the chargeback CSV attached, a one-click
unsubscribe link) and a chat card (budgets.chat), from the figures stored on the Report.

`visible_part(data, user)` is the one place that trims a report for a member who may not see
others' figures (accounts.access.sees_other_members): they keep the team totals and their own
rows. Channels are the team's own places and get the whole report.
"""

import io
from datetime import date, datetime

from django.template.loader import render_to_string

from accounts.access import sees_other_members
from budgets.chat import Card, Section
from budgets.messages import Message, page_url
from budgets.models import Delivery, Report, ReportKind
from budgets.reports import unsubscribe
from telemetry_site.formatting import (
    SafeCsvWriter,
    compact,
    model_name,
    pct,
    usd,
    window_adjective,
)

DASH = "\N{EN DASH}"
CSV_HEADER = ["period_start", "period_end", "project", "member", "email", "cost_usd", "tokens"]


def _day(iso: str) -> str:
    day = date.fromisoformat(iso)
    return f"{day:%a} {day:%b} {day.day}"


def _span(start: str, end: str) -> str:
    first, last = date.fromisoformat(start), date.fromisoformat(end)
    if first.month == last.month:
        return f"{first:%b} {first.day}{DASH}{last.day}, {last.year}"
    return f"{first:%b} {first.day} {DASH} {last:%b} {last.day}, {last.year}"


def visible_part(data: dict, user=None) -> dict:
    """The report `user` may read: all of it for admins, channels (None) and members who see
    each other; otherwise others' names and rows are left out."""
    if user is None or sees_other_members(user):
        return data
    mine = user.email

    def own(rows, key):
        return [r for r in rows if r.get(key) == mine]

    trimmed = dict(data)
    for key, field in (("top_members", "email"), ("members", "email"), ("rows", "email")):
        if key in trimmed:
            trimmed[key] = own(trimmed[key], field)
    if "budgets" in trimmed:
        trimmed["budgets"] = [b for b in trimmed["budgets"] if b["member_email"] in (None, mine)]
    for key in ("quotas", "quiet_machines"):
        if key in trimmed:
            trimmed[key] = own(trimmed[key], "owner_email")
    trimmed["trimmed"] = True
    return trimmed


def _when(iso: str | None, zone) -> str:
    if not iso:
        return "—"
    moment = datetime.fromisoformat(iso).astimezone(zone)
    return f"{moment:%a} {moment:%b} {moment.day}, {moment:%H:%M}"


def digest_context(team, data: dict) -> dict:
    """Template-ready digest: every figure worded once (telemetry_site.formatting)."""
    change = data.get("change_percent")
    if change is None:
        change_text = "no spend the week before" if data["previous_usd"] == "0.00" else "—"
    else:
        change_text = f"{'+' if change > 0 else ''}{change:.1f}% vs the week before"
    return {
        "team": team.name,
        "period": _span(data["period_start"], data["period_end"]),
        "spent": usd(data["spent_usd"]),
        "previous": usd(data["previous_usd"]),
        "change": change_text,
        "change_up": change is not None and change > 0,
        "tokens": compact(data["tokens"]),
        "previous_tokens": compact(data["previous_tokens"]),
        "top_members": [
            (m["name"], usd(m["spent_usd"]), compact(m["tokens"])) for m in data["top_members"]
        ],
        "top_projects": [
            (p["name"], usd(p["spent_usd"]), compact(p["tokens"])) for p in data["top_projects"]
        ],
        "top_models": [
            (model_name(m["name"]), usd(m["spent_usd"]), compact(m["tokens"]))
            for m in data["top_models"]
        ],
        "budgets": [
            (
                b["name"],
                b["scope"],
                f"{usd(b['spent_usd'])} of {usd(b['amount_usd'])}",
                pct(b["percent"]),
                b["level"],
            )
            for b in data["budgets"]
        ],
        "quotas": [
            (
                q["subscription"],
                q["owner"],
                window_adjective(q["window"]),
                pct(q["used_percent"]),
                pct(max(0.0, 100 - q["used_percent"])),
                _when(q["resets_at"], team.zone),
            )
            for q in data["quotas"]
        ],
        "unusual_days": [
            (_day(d["day"]), usd(d["spent_usd"]), usd(d["typical_usd"]))
            for d in data["unusual_days"]
        ],
        "quiet_machines": [
            (m["name"], m["owner"], _when(m["last_seen_at"], team.zone))
            for m in data["quiet_machines"]
        ],
        "trimmed": data.get("trimmed", False),
        "link": page_url("overview", "budgets"),
    }


def chargeback_context(team, data: dict) -> dict:
    return {
        "team": team.name,
        "period": _span(data["period_start"], data["period_end"]),
        "month": date.fromisoformat(data["period_start"]).strftime("%B %Y"),
        "total": usd(data["total_usd"]),
        "tokens": compact(data["tokens"]),
        "rows": [
            (r["project"], r["member"], usd(r["spent_usd"]), compact(r["tokens"]))
            for r in data["rows"]
        ],
        "projects": [(p["name"], usd(p["spent_usd"])) for p in data["projects"]],
        "members": [(m["name"], usd(m["spent_usd"])) for m in data["members"]],
        "trimmed": data.get("trimmed", False),
        "link": page_url("reports", "budgets"),
    }


def chargeback_csv(data: dict) -> str:
    """The project-by-member table as CSV (names, not ids), formula-safe (SafeCsvWriter)."""
    out = io.StringIO()
    writer = SafeCsvWriter(out)
    writer.writerow(CSV_HEADER)
    for row in data["rows"]:
        writer.writerow(
            [
                data["period_start"],
                data["period_end"],
                row["project"],
                row["member"],
                row["email"],
                row["spent_usd"],
                row["tokens"],
            ]
        )
    return out.getvalue()


def csv_filename(team, data: dict) -> str:
    return f"chargeback-{team.slug}-{data['period_start'][:7]}.csv"


def subject_of(report: Report, context: dict) -> str:
    if report.kind == ReportKind.WEEKLY_DIGEST:
        return f"{context['team']} weekly digest, {context['period']}: {context['spent']}"
    return f"{context['team']} chargeback report, {context['month']}: {context['total']}"


def card_of(report: Report, context: dict) -> Card:
    """The report as a chat card: the headline figures and the top lists."""
    if report.kind == ReportKind.WEEKLY_DIGEST:
        facts = [
            ("Spent", context["spent"]),
            ("Change", context["change"]),
            ("Tokens", context["tokens"]),
            ("Week before", context["previous"]),
        ]
        sections = [
            Section("Top members", [f"{n}: {c}" for n, c, _ in context["top_members"]]),
            Section("Top projects", [f"{n}: {c}" for n, c, _ in context["top_projects"]]),
            Section("Top models", [f"{n}: {c}" for n, c, _ in context["top_models"]]),
            Section("Budgets", [f"{n} ({s}): {sp}, {p}" for n, s, sp, p, _ in context["budgets"]]),
            Section(
                "Quota headroom",
                [f"{s} ({o}), {w}: {left} left" for s, o, w, _, left, _ in context["quotas"]],
            ),
            Section(
                "Unusual days",
                [f"{d}: {s} (a typical day: {t})" for d, s, t in context["unusual_days"]],
            ),
            Section(
                "Machines that went quiet",
                [f"{n} ({o}), last sync {w}" for n, o, w in context["quiet_machines"]],
            ),
        ]
        summary = f"{context['team']} spent {context['spent']} ({context['change']})."
        label = "Open the overview"
    else:
        facts = [("Total", context["total"]), ("Tokens", context["tokens"])]
        sections = [
            Section("By project", [f"{n}: {c}" for n, c in context["projects"][:10]]),
            Section("By member", [f"{n}: {c}" for n, c in context["members"][:10]]),
        ]
        summary = (
            f"{context['team']} spent {context['total']} in {context['month']}. "
            "The project-by-member table is attached to the email and on the reports page."
        )
        label = "Open reports"
    return Card(
        title=subject_of(report, context),
        summary=summary,
        link=context["link"],
        link_label=label,
        context=f"claude-telemetry · {context['team']} · {context['period']}",
        timestamp=report.created_at,
        level="info",
        facts=facts,
        sections=sections,
    )


def render(report: Report, user=None, unsubscribe_link: str = "") -> tuple[str, str, str, dict]:
    """(subject, text, html, context) of `report` as `user` may read it (None: a channel)."""
    data = visible_part(report.data, user)
    if report.kind == ReportKind.WEEKLY_DIGEST:
        context = digest_context(report.team, data)
        name = "digest"
    else:
        context = chargeback_context(report.team, data)
        name = "chargeback"
    context["unsubscribe"] = unsubscribe_link
    context["settings_link"] = page_url("budgets")
    subject = subject_of(report, context)
    context["subject"] = subject
    text = render_to_string(f"budgets/email/{name}.txt", context)
    html = render_to_string(f"budgets/email/{name}.html", context)
    return subject, text, html, context


def compose_delivery(delivery: Delivery) -> Message:
    """The message of one report delivery: personal (trimmed, with its own unsubscribe link)
    for a member, the whole report for a channel."""
    report = Report.objects.select_related("team").get(alert__pk=delivery.alert_id)
    user = delivery.recipient
    link = unsubscribe.link(user.pk, report.kind) if user is not None else ""
    subject, text, html, context = render(report, user, link)
    headers = {}
    if link:
        headers = {
            "List-Unsubscribe": f"<{link}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }
    attachments = []
    if report.kind == ReportKind.MONTHLY_CHARGEBACK:
        data = visible_part(report.data, user)
        attachments.append((csv_filename(report.team, data), chargeback_csv(data), "text/csv"))
    card = card_of(report, context)
    payload = {
        "type": f"report.{report.kind}",
        "timestamp": report.created_at.isoformat(),
        "text": f"{subject}\n{context['link']}",
        "data": {"report_id": str(report.public_id), "team": report.team.slug, **report.data},
    }
    return Message(
        event_type=f"report.{report.kind}",
        subject=subject,
        lines=[card.summary],
        link=context["link"],
        text=text,
        html=html,
        payload=payload,
        card=card,
        attachments=attachments,
        headers=headers,
    )
