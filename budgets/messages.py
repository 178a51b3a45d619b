"""What an alert says: the subject, plain text and HTML email bodies and the webhook payload.

Everything is built from the figures stored on the Alert when it fired, so a retried delivery
says the same thing as the first attempt.
"""

import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse

from budgets.models import Alert, AlertKind
from telemetry_site.formatting import pct, usd, window_adjective


@dataclass(frozen=True)
class Message:
    event_type: str
    subject: str
    lines: list[str]
    link: str
    text: str
    html: str
    payload: dict


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
    context = {"subject": subject, "lines": lines, "link": link, "team": alert.team.name}
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
    return Message(event_type, subject, lines, link, text, html, payload)
