"""What a chat message says, independent of the service: a `Card`, and sending one.

An alert or a report becomes one Card (budgets.messages, budgets.reports); each transport
module lays it out in its service's native format (budgets.slack: Block Kit, budgets.discord:
embeds, budgets.teams: an Adaptive Card for a Workflows webhook) within that service's
documented limits, and posts it through the SSRF-guarded `webhooks.post_json`.
"""

from dataclasses import dataclass, field
from datetime import datetime

from budgets.webhooks import WebhookError, WebhookResult, post_json

# Answers that mean the webhook URL no longer works (deleted, revoked, channel archived):
# retrying cannot help, and the channel is disabled until someone edits it.
GONE_STATUSES = frozenset({401, 403, 404, 410})
# Answers that mean the service refused this body: retrying the same bytes cannot help.
REFUSED_STATUSES = frozenset({400, 413, 422})


@dataclass(frozen=True)
class Section:
    """A titled list, e.g. "Top members" with one line per member."""

    title: str
    lines: list[str]


@dataclass(frozen=True)
class Card:
    """One chat message.

    `level` is "info", "warning" or "critical" (the colour of the card); `facts` are
    (label, value) pairs shown side by side; `context` is the small print (team, time).
    """

    title: str
    summary: str
    link: str
    link_label: str
    context: str
    timestamp: datetime
    level: str = "info"
    facts: list[tuple[str, str]] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)


class ChatGone(WebhookError):
    """The service says the webhook does not exist or is not allowed any more."""

    permanent = True
    gone = True


class ChatRefused(WebhookError):
    """The service refused the message body (a bug on our side or a changed format)."""

    permanent = True


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending in "…" when cut."""
    text = text or ""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)] + "…"


def post(url: str, body: bytes, service: str) -> WebhookResult:
    """POST a chat payload; classify the service's refusals (see GONE_STATUSES)."""
    try:
        return post_json(url, body)
    except WebhookError as exc:
        code = exc.status_code
        if code in GONE_STATUSES and not isinstance(exc, ChatGone):
            raise ChatGone(
                f"{service} answered {code}: the webhook URL no longer works. {exc}",
                status_code=code,
            ) from exc
        if code in REFUSED_STATUSES:
            raise ChatRefused(f"{service} refused the message. {exc}", status_code=code) from exc
        raise
