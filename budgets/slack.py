"""Slack incoming webhooks: a Card as Block Kit blocks with a plain-text fallback.

Limits (Slack's Block Kit reference): at most 50 blocks; a header's plain text at most 150
characters; a section's text at most 3,000; at most 10 section fields of at most 2,000 each;
a button's text at most 75 and its URL at most 3,000; at most 10 context elements. The top-level
`text` is the notification and screen-reader fallback. `&`, `<` and `>` are escaped in mrkdwn,
so a project or member name cannot mention `<!channel>` or forge a link.
"""

import json

from budgets import chat
from budgets.chat import Card, clip

MAX_BLOCKS = 50
HEADER_CHARS = 150
SECTION_CHARS = 3000
FIELD_CHARS = 2000
MAX_FIELDS = 10
BUTTON_CHARS = 75
URL_CHARS = 3000
FALLBACK_CHARS = 3000

EMOJI = {"info": ":bar_chart:", "warning": ":warning:", "critical": ":rotating_light:"}


def escape(text: str) -> str:
    """Slack's three control characters in mrkdwn text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _mrkdwn(text: str, limit: int) -> dict:
    return {"type": "mrkdwn", "text": clip(text, limit)}


def render(card: Card) -> dict:
    """The JSON body for a Slack incoming webhook."""
    blocks: list[dict] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": clip(card.title, HEADER_CHARS),
                "emoji": False,
            },
        },
        {"type": "section", "text": _mrkdwn(escape(card.summary), SECTION_CHARS)},
    ]
    if card.facts:
        blocks.append(
            {
                "type": "section",
                "fields": [
                    _mrkdwn(f"*{escape(label)}*\n{escape(value)}", FIELD_CHARS)
                    for label, value in card.facts[:MAX_FIELDS]
                ],
            }
        )
    for section in card.sections:
        if not section.lines:
            continue
        lines = "\n".join(f"• {escape(line)}" for line in section.lines)
        blocks.append(
            {
                "type": "section",
                "text": _mrkdwn(f"*{escape(section.title)}*\n{lines}", SECTION_CHARS),
            }
        )
    tail: list[dict] = []
    if card.link and len(card.link) <= URL_CHARS:
        tail.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": clip(card.link_label, BUTTON_CHARS)},
                        "url": card.link,
                    }
                ],
            }
        )
    tail.append({"type": "context", "elements": [_mrkdwn(escape(card.context), SECTION_CHARS)]})
    blocks = blocks[: MAX_BLOCKS - len(tail)] + tail
    emoji = EMOJI.get(card.level, EMOJI["info"])
    fallback = f"{emoji} {card.title}: {card.summary}"
    return {"text": clip(escape(fallback), FALLBACK_CHARS), "blocks": blocks}


def send(url: str, card: Card) -> None:
    """POST the card to a Slack incoming webhook URL (raises webhooks.WebhookError)."""
    chat.post(url, json.dumps(render(card)).encode(), "Slack")
