"""The MCP server for one HTTP request: the SDK's low-level Server over the tools in tools.py.

A fresh Server per request closes over the Django request, so each tool runs as that token's
owner. Tool bodies are Django code: they run back in the request's own thread (asgiref's
thread-sensitive mode), where its database connection lives.
"""

import json
import logging

import mcp_types as types
from asgiref.sync import sync_to_async
from django.http import HttpRequest
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError
from rest_framework.utils.encoders import JSONEncoder

from telemetry_site.mcp.tools import TOOLS, TOOLS_BY_NAME, ApiRefusal

log = logging.getLogger(__name__)

NAME = "claude-telemetry"
INSTRUCTIONS = (
    "Your team's AI-coding usage from claude-telemetry: tokens and cost (USD) by day, project, "
    "model, machine and member; 5-hour blocks merged across machines; official quota readings; "
    "pace, budgets and machines. Days are the team's reporting days in the timezone each "
    "result names. You see what the REST API shows your token: admins see the whole team."
)


def tool_list() -> list[types.Tool]:
    """The tools with their JSON-schema inputs (from the pydantic input models)."""
    return [
        types.Tool(
            name=spec.name,
            title=spec.title,
            description=spec.description,
            input_schema=spec.input.model_json_schema(),
            annotations=types.ToolAnnotations(read_only_hint=True, open_world_hint=False),
        )
        for spec in TOOLS
    ]


def _error(detail: str, **extra) -> types.CallToolResult:
    body = {"error": detail, **extra}
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=json.dumps(body))],
        structured_content=body,
        is_error=True,
    )


def run_tool(request: HttpRequest, name: str, arguments: dict) -> types.CallToolResult:
    """Validate `arguments` and run the tool as the request's user (sync, Django code).

    Bad arguments and API refusals (400, 403, 404, 429) become tool errors whose JSON names
    the reason and, for bad input, each field; an unknown tool is a JSON-RPC invalid-params
    error.
    """
    spec = TOOLS_BY_NAME.get(name)
    if spec is None:
        raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {name!r}.")
    try:
        args = spec.input.model_validate(arguments)
    except ValidationError as exc:
        errors = {
            ".".join(str(p) for p in err["loc"]) or "arguments": [err["msg"]]
            for err in exc.errors(include_url=False)
        }
        return _error("Invalid arguments.", errors=errors)
    try:
        data = spec.run(request, args)
    except ApiRefusal as refusal:
        body = refusal.body if isinstance(refusal.body, dict) else {}
        extra = {"errors": body["errors"]} if "errors" in body else {}
        return _error(str(body.get("detail", "Refused.")), status=refusal.status, **extra)
    # DRF's encoder: the same dates, decimals and UUIDs as the API's own JSON.
    text = json.dumps(data, cls=JSONEncoder)
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)],
        structured_content=json.loads(text),
    )


def build(request: HttpRequest) -> Server:
    """A Server whose tools answer as `request.user` (authenticated by the view)."""

    async def list_tools(ctx: ServerRequestContext, params) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tool_list())

    async def call_tool(ctx: ServerRequestContext, params) -> types.CallToolResult:
        return await sync_to_async(run_tool, thread_sensitive=True)(
            request, params.name, params.arguments or {}
        )

    return Server(NAME, instructions=INSTRUCTIONS, on_list_tools=list_tools, on_call_tool=call_tool)
