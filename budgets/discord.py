"""Discord webhooks: a Card as one embed.

Limits (Discord's "Embed Limits"): title at most 256 characters, description 4,096, at most 25
fields with names of at most 256 and values of at most 1,024, footer 2,048, and at most 6,000
characters over all of these together. `allowed_mentions` is empty, so a name containing
`@everyone` or a role mention never pings anyone.
"""

import json

from budgets import chat
from budgets.chat import Card, clip

TITLE_CHARS = 256
DESCRIPTION_CHARS = 4096
MAX_FIELDS = 25
FIELD_NAME_CHARS = 256
FIELD_VALUE_CHARS = 1024
FOOTER_CHARS = 2048
TOTAL_CHARS = 6000
USERNAME = "claude-telemetry"

COLOURS = {"info": 0x2F6FEB, "warning": 0xD29922, "critical": 0xCF222E}


def embed_chars(embed: dict) -> int:
    """Characters Discord counts towards the 6,000 limit of one embed."""
    total = len(embed.get("title", "")) + len(embed.get("description", ""))
    total += len(embed.get("footer", {}).get("text", ""))
    total += len(embed.get("author", {}).get("name", ""))
    for item in embed.get("fields", []):
        total += len(item["name"]) + len(item["value"])
    return total


def render(card: Card) -> dict:
    """The JSON body for a Discord "Execute Webhook" request."""
    fields = [
        {
            "name": clip(label, FIELD_NAME_CHARS),
            "value": clip(value or "—", FIELD_VALUE_CHARS),
            "inline": True,
        }
        for label, value in card.facts
    ]
    for section in card.sections:
        if section.lines:
            fields.append(
                {
                    "name": clip(section.title, FIELD_NAME_CHARS),
                    "value": clip(
                        "\n".join(f"• {line}" for line in section.lines), FIELD_VALUE_CHARS
                    ),
                    "inline": False,
                }
            )
    embed: dict = {
        "title": clip(card.title, TITLE_CHARS),
        "description": clip(card.summary, DESCRIPTION_CHARS),
        "color": COLOURS.get(card.level, COLOURS["info"]),
        "fields": fields[:MAX_FIELDS],
        "footer": {"text": clip(card.context, FOOTER_CHARS)},
        "timestamp": card.timestamp.isoformat(),
    }
    if card.link:
        embed["url"] = card.link
    # Over the total: drop the last fields first, then shorten the description.
    while embed_chars(embed) > TOTAL_CHARS and embed["fields"]:
        embed["fields"].pop()
    excess = embed_chars(embed) - TOTAL_CHARS
    if excess > 0:
        embed["description"] = clip(embed["description"], len(embed["description"]) - excess)
    return {"username": USERNAME, "embeds": [embed], "allowed_mentions": {"parse": []}}


def send(url: str, card: Card) -> None:
    """POST the card to a Discord webhook URL (raises webhooks.WebhookError)."""
    chat.post(url, json.dumps(render(card)).encode(), "Discord")
