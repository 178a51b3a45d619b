"""Microsoft Teams Workflows webhooks ("When a Teams webhook request is received"): a Card as
an Adaptive Card in a message envelope.

Workflows accept Adaptive Cards only (not the retired connectors' MessageCard). The body is
`{"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
"contentUrl": null, "content": <card>}]}`; the card uses schema version 1.4 (Teams supports up
to 1.5) and the whole message must stay under Teams' 28 KB message size.
"""

import json

from budgets import chat
from budgets.chat import Card, clip

CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
VERSION = "1.4"
MAX_BYTES = 28 * 1024
TEXT_CHARS = 2000
FACT_TITLE_CHARS = 100
FACT_VALUE_CHARS = 500

COLOURS = {"info": "Accent", "warning": "Warning", "critical": "Attention"}


def _text(text: str, **style) -> dict:
    return {"type": "TextBlock", "text": clip(text, TEXT_CHARS), "wrap": True, **style}


def _card(card: Card, sections, facts, summary_chars: int = TEXT_CHARS) -> dict:
    body: list[dict] = [
        _text(
            card.title,
            size="Medium",
            weight="Bolder",
            style="heading",
            color=COLOURS.get(card.level, COLOURS["info"]),
        ),
        _text(clip(card.summary, summary_chars)),
    ]
    if facts:
        body.append(
            {
                "type": "FactSet",
                "facts": [
                    {
                        "title": clip(label, FACT_TITLE_CHARS),
                        "value": clip(value or "—", FACT_VALUE_CHARS),
                    }
                    for label, value in facts
                ],
            }
        )
    for section in sections:
        if section.lines:
            body.append(_text(section.title, weight="Bolder", spacing="Medium"))
            body.append(_text("\n".join(f"- {line}" for line in section.lines), spacing="Small"))
    body.append(_text(card.context, isSubtle=True, size="Small", spacing="Medium"))
    content: dict = {
        "$schema": SCHEMA,
        "type": "AdaptiveCard",
        "version": VERSION,
        "msteams": {"width": "Full"},
        "body": body,
    }
    if card.link:
        content["actions"] = [
            {"type": "Action.OpenUrl", "title": card.link_label, "url": card.link}
        ]
    return {
        "type": "message",
        "attachments": [{"contentType": CONTENT_TYPE, "contentUrl": None, "content": content}],
    }


def _size(message: dict) -> int:
    return len(json.dumps(message).encode())


def render(card: Card) -> dict:
    """The JSON body for a Teams Workflows webhook, under MAX_BYTES: when a long digest would
    pass it, the last sections go first, then the last facts, then the summary is shortened."""
    sections, facts = list(card.sections), list(card.facts)
    message = _card(card, sections, facts)
    while _size(message) > MAX_BYTES and sections:
        sections.pop()
        message = _card(card, sections, facts)
    while _size(message) > MAX_BYTES and facts:
        facts.pop()
        message = _card(card, sections, facts)
    if _size(message) > MAX_BYTES:
        message = _card(card, sections, facts, summary_chars=500)
    return message


def send(url: str, card: Card) -> None:
    """POST the card to a Teams Workflows webhook URL (raises webhooks.WebhookError)."""
    chat.post(url, json.dumps(render(card)).encode(), "Teams")
