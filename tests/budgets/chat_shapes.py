"""Each chat service's documented message shape and limits, written from the services' docs
(not from our transports), so a test fails when a body would be refused.

Slack: Block Kit reference (blocks, section, header, context, actions, button).
Discord: "Execute Webhook" and "Embed Limits".
Microsoft Teams: Workflows webhook ("When a Teams webhook request is received") with an
Adaptive Card attachment; the card schema at adaptivecards.io; Teams' 28 KB message size.
"""

import json
from datetime import datetime

SLACK_BLOCK_TYPES = {"header", "section", "context", "actions", "divider"}


def slack_problems(body: dict) -> list[str]:
    problems = []
    if not isinstance(body.get("text"), str) or not body["text"]:
        problems.append("text: the fallback for notifications is missing")
    blocks = body.get("blocks", [])
    if not 1 <= len(blocks) <= 50:
        problems.append(f"blocks: {len(blocks)}, at most 50")
    for i, block in enumerate(blocks):
        kind = block.get("type")
        where = f"blocks[{i}] ({kind})"
        if kind not in SLACK_BLOCK_TYPES:
            problems.append(f"{where}: unknown type")
        if kind == "header":
            text = block["text"]
            if text["type"] != "plain_text" or not 1 <= len(text["text"]) <= 150:
                problems.append(f"{where}: plain_text of 1 to 150 characters")
        if kind == "section":
            if "text" not in block and not block.get("fields"):
                problems.append(f"{where}: needs text or fields")
            if "text" in block and not 1 <= len(block["text"]["text"]) <= 3000:
                problems.append(f"{where}: text of 1 to 3000 characters")
            fields = block.get("fields", [])
            if len(fields) > 10:
                problems.append(f"{where}: {len(fields)} fields, at most 10")
            for item in fields:
                if not 1 <= len(item["text"]) <= 2000 or item["type"] not in (
                    "mrkdwn",
                    "plain_text",
                ):
                    problems.append(f"{where}: a field of 1 to 2000 characters")
        if kind == "context":
            elements = block.get("elements", [])
            if not 1 <= len(elements) <= 10:
                problems.append(f"{where}: 1 to 10 elements")
        if kind == "actions":
            elements = block.get("elements", [])
            if not 1 <= len(elements) <= 25:
                problems.append(f"{where}: 1 to 25 elements")
            for element in elements:
                if element["type"] != "button":
                    continue
                if (
                    element["text"]["type"] != "plain_text"
                    or not 1 <= len(element["text"]["text"]) <= 75
                ):
                    problems.append(f"{where}: button text of 1 to 75 characters")
                if len(element.get("url", "")) > 3000:
                    problems.append(f"{where}: button url over 3000 characters")
    return problems


DISCORD_KEYS = {
    "content",
    "username",
    "avatar_url",
    "tts",
    "embeds",
    "allowed_mentions",
    "components",
    "flags",
    "thread_name",
    "applied_tags",
    "poll",
}


def discord_embed_chars(embed: dict) -> int:
    total = len(embed.get("title", "")) + len(embed.get("description", ""))
    total += len(embed.get("footer", {}).get("text", "")) + len(
        embed.get("author", {}).get("name", "")
    )
    return total + sum(len(f["name"]) + len(f["value"]) for f in embed.get("fields", []))


def discord_problems(body: dict) -> list[str]:
    problems = [f"unknown parameter {key}" for key in body if key not in DISCORD_KEYS]
    if not body.get("content") and not body.get("embeds"):
        problems.append("needs content or embeds")
    if len(body.get("content", "")) > 2000:
        problems.append("content over 2000 characters")
    embeds = body.get("embeds", [])
    if len(embeds) > 10:
        problems.append("more than 10 embeds")
    for i, embed in enumerate(embeds):
        where = f"embeds[{i}]"
        if len(embed.get("title", "")) > 256:
            problems.append(f"{where}.title over 256")
        if len(embed.get("description", "")) > 4096:
            problems.append(f"{where}.description over 4096")
        fields = embed.get("fields", [])
        if len(fields) > 25:
            problems.append(f"{where}: {len(fields)} fields, at most 25")
        for item in fields:
            if not 1 <= len(item["name"]) <= 256 or not 1 <= len(item["value"]) <= 1024:
                problems.append(f"{where}: field name 1-256 and value 1-1024 characters")
            if not isinstance(item.get("inline", False), bool):
                problems.append(f"{where}: inline is a boolean")
        if len(embed.get("footer", {}).get("text", "")) > 2048:
            problems.append(f"{where}.footer over 2048")
        if not 0 <= embed.get("color", 0) <= 0xFFFFFF:
            problems.append(f"{where}.color is not an RGB integer")
        if "timestamp" in embed:
            datetime.fromisoformat(embed["timestamp"])
        if discord_embed_chars(embed) > 6000:
            problems.append(f"{where}: {discord_embed_chars(embed)} characters, at most 6000")
    return problems


ADAPTIVE_ELEMENTS = {"TextBlock", "FactSet", "ColumnSet", "Container", "Image", "RichTextBlock"}


def teams_problems(body: dict) -> list[str]:
    problems = []
    size = len(json.dumps(body).encode())
    if size > 28 * 1024:
        problems.append(f"{size} bytes, Teams takes at most 28 KB")
    if body.get("type") != "message":
        problems.append('type must be "message"')
    attachments = body.get("attachments", [])
    if len(attachments) != 1:
        return [*problems, "one attachment expected"]
    attachment = attachments[0]
    if attachment.get("contentType") != "application/vnd.microsoft.card.adaptive":
        problems.append("contentType must be application/vnd.microsoft.card.adaptive")
    card = attachment.get("content", {})
    if card.get("type") != "AdaptiveCard":
        problems.append('content.type must be "AdaptiveCard"')
    if card.get("version") not in {"1.0", "1.1", "1.2", "1.3", "1.4", "1.5"}:
        problems.append(f"version {card.get('version')} is not one Teams renders (up to 1.5)")
    for i, element in enumerate(card.get("body", [])):
        if element.get("type") not in ADAPTIVE_ELEMENTS:
            problems.append(f"body[{i}]: unknown element {element.get('type')}")
        if element.get("type") == "TextBlock" and not element.get("text"):
            problems.append(f"body[{i}]: a TextBlock needs text")
        if element.get("type") == "FactSet":
            for fact in element.get("facts", []):
                if not isinstance(fact.get("title"), str) or not isinstance(fact.get("value"), str):
                    problems.append(f"body[{i}]: a fact has a string title and value")
    for action in card.get("actions", []):
        if (
            action.get("type") != "Action.OpenUrl"
            or not action.get("url")
            or not action.get("title")
        ):
            problems.append("an Action.OpenUrl needs a title and a url")
    return problems


PROBLEMS = {"slack": slack_problems, "discord": discord_problems, "teams": teams_problems}


def all_text(body) -> str:
    """Every string in a JSON body, joined: what a person could read in the message."""
    if isinstance(body, dict):
        return " ".join(all_text(v) for v in body.values())
    if isinstance(body, list):
        return " ".join(all_text(v) for v in body)
    return body if isinstance(body, str) else ""
