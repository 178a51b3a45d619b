"""`claude-telemetry mcp`: the server's MCP tools over stdio, for Claude Code and Claude Desktop.

A local MCP server whose tools are the team server's own (its /mcp endpoint): the list and
every call are passed through with this agent's token, so the answers, visibility rules and
errors are the server's. Imported only by the `mcp` command: the MCP SDK is loaded there alone.
"""

from __future__ import annotations

import json
import logging
from typing import TypeVar

import anyio
import httpx2
import mcp_types as types
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server import Server
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError

from claude_telemetry import __version__

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 60
TOKEN_ENV = "CLAUDE_TELEMETRY_MCP_TOKEN"
E = TypeVar("E", bound=BaseException)


class Upstream:
    """The team server's /mcp endpoint, reached with a bearer token (one connection per call)."""

    def __init__(self, server_url: str, token: str):
        self.url = server_url.rstrip("/") + "/mcp"
        self.headers = {
            "Authorization": f"Bearer {token}",
            "User-Agent": f"claude-telemetry-agent/{__version__}",
        }

    def _client(self, http: httpx2.AsyncClient) -> Client:
        return Client(streamable_http_client(self.url, http_client=http))

    async def list_tools(self) -> types.ListToolsResult:
        async with (
            httpx2.AsyncClient(headers=self.headers, timeout=TIMEOUT_SECONDS) as http,
            self._client(http) as client,
        ):
            return await client.list_tools()

    async def call_tool(self, name: str, arguments: dict) -> types.CallToolResult:
        async with (
            httpx2.AsyncClient(headers=self.headers, timeout=TIMEOUT_SECONDS) as http,
            self._client(http) as client,
        ):
            return await client.call_tool(name, arguments)


def unreachable(url: str, exc: BaseException) -> str:
    """A readable reason the server did not answer: its own (refused token, missing scope),
    an HTTP status, or the network error."""
    refused = _find(exc, MCPError)
    if refused is not None:
        return f"{url}: {refused}"
    failed = _find(exc, httpx2.HTTPStatusError)
    if failed is not None:
        return f"{url} answered HTTP {failed.response.status_code}."
    inner = _find(exc, Exception) or exc
    return f"Cannot reach {url}: {type(inner).__name__}: {inner}"


def _find(exc: BaseException, kind: type[E]) -> E | None:
    """The first `kind` in `exc`, its exception groups or causes (the SDK nests them)."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := _find(inner, kind)) is not None:
                return found
        return None
    if isinstance(exc, kind):
        return exc
    return _find(exc.__cause__, kind) if exc.__cause__ is not None else None


def build(upstream: Upstream) -> Server:
    """The stdio-side Server: tools/list and tools/call forwarded to `upstream`."""

    async def list_tools(ctx, params) -> types.ListToolsResult:
        try:
            return await upstream.list_tools()
        except Exception as exc:
            log.warning("mcp: list_tools failed: %s", exc)
            raise MCPError(types.INTERNAL_ERROR, unreachable(upstream.url, exc)) from None

    async def call_tool(ctx, params) -> types.CallToolResult:
        try:
            return await upstream.call_tool(params.name, params.arguments or {})
        except MCPError:
            raise  # the server's own JSON-RPC error (e.g. an unknown tool): passed on as is
        except Exception as exc:
            log.warning("mcp: %s failed: %s", params.name, exc)
            reason = unreachable(upstream.url, exc)
            return types.CallToolResult(
                content=[types.TextContent(type="text", text=json.dumps({"error": reason}))],
                is_error=True,
            )

    return Server(
        "claude-telemetry",
        version=__version__,
        instructions="Your team's AI-coding usage from its claude-telemetry server.",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def serve(server_url: str, token: str) -> None:
    """Serve MCP on stdin/stdout until the client closes it."""
    app = build(Upstream(server_url, token))

    async def run() -> None:
        async with stdio_server() as (read, write):
            await app.run(read, write, app.create_initialization_options())

    anyio.run(run)
