"""What an alert says: the subject, plain text and HTML email bodies, the webhook payload and
the chat card (budgets.chat).

Everything is built from the figures stored on the Alert (`with_top_spenders` adds the budget's
top spenders to them once, before the first delivery), so a retried delivery, and every channel,
says the same thing as the first attempt.
"""

import zoneinfo
from dataclasses import dataclass, field
from datetime import date, datetime

from django.conf import settings
from django.db.models import Sum
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse

from accounts.models import User
from budgets.chat import Card, Section
from budgets.models import Alert, AlertKind, ScopeKind
from telemetry_site.formatting import pct, usd, window_adjective
from usage.models import DailyUsage

TOP_SPENDERS = 3


@dataclass(frozen=True)
class Message:
    event_type: str
    subject: str
    lines: list[str]
    link: str
    text: str
    html: str
    payload: dict
    card: Card | None = None
    attachments: list[tuple[str, str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)


def page_url(name: str, fallback: str = "budgets") -> str:
    """An absolute link for a message; another area's page may not exist in every deployment."""
    try:
        path = reverse(name)
    except NoReverseMatch:
        path = reverse(fallback)
    return settings.SITE_URL + path


def _when(iso: str, zone: zoneinfo.ZoneInfo) -> str:
    moment = datetime.fromisoformat(iso).astimezone(zone)
    return f"{moment:%b} {moment.day}, {moment:%H:%M} {moment.tzname()}"


def _day(iso: str) -> str:
    day = date.fromisoformat(iso)
    return f"{day:%A}, {day:%b} {day.day}"


def summary(alert: Alert) -> tuple[str, list[str], str]:
    """The subject, the sentences of the body and the link, for emails and the pages."""
    data = alert.data
    zone = alert.team.zone
    if alert.kind == AlertKind.THRESHOLD:
        subject = (
            f"Budget '{data['budget']}' at {pct(data['percent'])} — "
            f"{usd(data['spent_usd'])} of {usd(data['amount_usd'])}"
        )
        lines = [
            f"{data['scope']} has spent {usd(data['spent_usd'])} of its "
            f"{usd(data['amount_usd'])} {data['period']} budget "
            f"({data['period_start']} to {data['period_end']}).",
            f"It crossed the {data['threshold']}% threshold.",
        ]
        link = page_url("budgets")
    elif alert.kind == AlertKind.FORECAST:
        subject = (
            f"Budget '{data['budget']}' on pace to pass {usd(data['amount_usd'])} "
            f"on {_day(data['projected_day'])}"
        )
        lines = [
            f"{data['scope']} has spent {usd(data['spent_usd'])} of its "
            f"{usd(data['amount_usd'])} {data['period']} budget so far "
            f"({data['period_start']} to {data['period_end']}).",
            f"At the current pace it will pass the budget on {_day(data['projected_day'])}, "
            f"before the period ends on {data['period_end']}.",
        ]
        link = page_url("budgets")
    elif alert.kind == AlertKind.QUOTA:
        label = window_adjective(data["window"])
        subject = (
            f"Claude account '{data['subscription']}' at {pct(data['used_percent'])} "
            f"of its {label} limit"
        )
        lines = [
            f"The {label} quota of '{data['subscription']}' is {pct(data['used_percent'])} "
            f"used (you asked to hear at {data['threshold']}%).",
            f"It resets {_when(data['resets_at'], zone)}.",
        ]
        link = page_url("subscriptions")
    elif alert.kind == AlertKind.STALE_AGENT:
        subject = f"Machine '{data['machine']}' has not synced for {data['silent_hours']} hours"
        lines = [
            f"The agent on '{data['machine']}' last synced {_when(data['last_seen_at'], zone)}.",
            "Check that the machine is on and that `claude-telemetry status` shows no error; "
            "you will hear about it again only after it has synced once more.",
        ]
        link = page_url("machines")
    else:
        subject = f"Test message from claude-telemetry channel '{data.get('channel', '')}'"
        lines = ["This channel works: alerts for budgets and quotas will arrive here."]
        link = page_url("channels")
    return subject, lines, link


def with_top_spenders(alert: Alert) -> Alert:
    """Add the members who spent most in the budget's period to a budget alert's data (once:
    the first delivery stores them, later deliveries and retries read the stored list).

    `data["top_spenders"]` is a list of {"name", "spent_usd"} (USD strings), at most
    TOP_SPENDERS, biggest first. Member budgets have one spender, named in the scope already.
    """
    data = alert.data
    if alert.kind not in (AlertKind.THRESHOLD, AlertKind.FORECAST) or "top_spenders" in data:
        return alert
    budget = alert.budget
    if budget is None or budget.scope == ScopeKind.MEMBER:
        return alert
    rows = list(
        DailyUsage.objects.filter(
            budget.usage_filter(), day__gte=data["period_start"], day__lte=data["period_end"]
        )
        .values("machine__owner")
        .annotate(spent=Sum("cost_usd"))
        .order_by("-spent")[:TOP_SPENDERS]
    )
    people = User.objects.in_bulk([row["machine__owner"] for row in rows])
    spenders = [
        {
            "name": people[row["machine__owner"]].display_name,
            "spent_usd": str(row["spent"]),
        }
        for row in rows
        if row["spent"] and row["machine__owner"] in people
    ]
    alert.data = {**data, "top_spenders": spenders}
    # Only the first writer's list counts: a concurrent delivery that computed its own keeps
    # what is stored once it reloads, so channels agree.
    Alert.objects.filter(pk=alert.pk).exclude(data__has_key="top_spenders").update(data=alert.data)
    alert.refresh_from_db(fields=["data"])
    return alert


LEVELS: dict[str, str] = {
    AlertKind.THRESHOLD: "warning",
    AlertKind.FORECAST: "warning",
    AlertKind.QUOTA: "warning",
    AlertKind.STALE_AGENT: "info",
}


def facts_of(alert: Alert) -> list[tuple[str, str]]:
    """The alert's figures as (label, value) pairs for chat cards: what, how much, by whom."""
    data = alert.data
    if alert.kind in (AlertKind.THRESHOLD, AlertKind.FORECAST):
        facts = [
            ("Budget", data["budget"]),
            ("For", data["scope"]),
            ("Spent", f"{usd(data['spent_usd'])} of {usd(data['amount_usd'])}"),
            ("Used", pct(data["percent"])),
            ("Period", f"{data['period_start']} to {data['period_end']}"),
        ]
        if alert.kind == AlertKind.THRESHOLD:
            facts.insert(3, ("Threshold crossed", f"{data['threshold']}%"))
        else:
            facts.insert(3, ("Passes the amount", _day(data["projected_day"])))
        return facts
    if alert.kind == AlertKind.QUOTA:
        return [
            ("Account", data["subscription"]),
            ("Owner", data["owner"]),
            ("Window", window_adjective(data["window"])),
            ("Used", pct(data["used_percent"])),
            ("Resets", _when(data["resets_at"], alert.team.zone)),
        ]
    if alert.kind == AlertKind.STALE_AGENT:
        return [
            ("Machine", data["machine"]),
            ("Owner", data["owner"]),
            ("Last sync", _when(data["last_seen_at"], alert.team.zone)),
            ("Silent for", f"{data['silent_hours']} hours"),
        ]
    return [("Channel", data.get("channel", "")), ("Asked by", data.get("requested_by", ""))]


def card_of(alert: Alert, subject: str, lines: list[str], link: str) -> Card:
    sections = []
    spenders = alert.data.get("top_spenders") or []
    if spenders:
        sections.append(
            Section(
                "Top spenders this period",
                [f"{s['name']}: {usd(s['spent_usd'])}" for s in spenders],
            )
        )
    labels: dict[str, str] = {
        AlertKind.QUOTA: "Open subscriptions",
        AlertKind.STALE_AGENT: "Open machines",
        AlertKind.TEST: "Open channels",
    }
    label = labels.get(alert.kind, "Open budgets")
    when = alert.created_at.astimezone(alert.team.zone)
    return Card(
        title=subject,
        summary=" ".join(lines),
        link=link,
        link_label=label,
        context=f"claude-telemetry · {alert.team.name} · {when:%Y-%m-%d %H:%M} {when.tzname()}",
        timestamp=alert.created_at,
        level=LEVELS.get(alert.kind, "info"),
        facts=[(label_, value) for label_, value in facts_of(alert) if value],
        sections=sections,
    )


def compose(alert: Alert) -> Message:
    subject, lines, link = summary(alert)
    data = alert.data
    event_types: dict[str, str] = {
        AlertKind.THRESHOLD: "budget.threshold",
        AlertKind.FORECAST: "budget.forecast",
        AlertKind.QUOTA: "quota.threshold",
        AlertKind.STALE_AGENT: "agent.stale",
    }
    event_type = event_types.get(alert.kind, "test")
    spenders = alert.data.get("top_spenders") or []
    mail_lines = list(lines)
    if spenders:
        names = ", ".join(f"{s['name']} {usd(s['spent_usd'])}" for s in spenders)
        mail_lines.append(f"Top spenders this period: {names}.")
    context = {"subject": subject, "lines": mail_lines, "link": link, "team": alert.team.name}
    text = render_to_string("budgets/email/alert.txt", context)
    html = render_to_string("budgets/email/alert.html", context)
    payload = {
        "type": event_type,
        "timestamp": alert.created_at.isoformat(),
        # Slack and compatible chat tools show this field as the message.
        "text": f"{subject}\n{link}",
        "data": {
            "alert_id": str(alert.public_id),
            "team": alert.team.slug,
            "url": link,
            **data,
        },
    }
    card = card_of(alert, subject, lines, link)
    return Message(event_type, subject, lines, link, text, html, payload, card=card)
