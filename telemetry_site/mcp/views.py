"""/mcp: the MCP Streamable HTTP endpoint, served by the SDK's transport inside a Django view.

The site runs under WSGI (runserver, gunicorn), so the view hands the request to the SDK's
ASGI session manager on an event loop of its own (asgiref's async_to_sync) and returns what
it sent. Stateless mode with JSON responses: every POST is answered in full, no session
outlives its request, so any worker can take the next one.
"""

from collections.abc import MutableMapping
from typing import Any

import anyio
from asgiref.sync import async_to_sync
from django.http import HttpResponse
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp_types import INVALID_REQUEST
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.auth import BearerTokenAuthentication
from telemetry_site.api.permissions import TokenHasScope
from telemetry_site.mcp import server

# Hop-by-hop or recomputed by Django: not copied from the SDK's response.
SKIPPED_HEADERS = {"content-length", "connection", "transfer-encoding"}


def asgi_scope(request: Request) -> dict:
    """The ASGI HTTP scope of a Django request (headers lower-cased, as ASGI wants)."""
    host = request.get_host().rsplit(":", 1)[0]
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": request.scheme,
        "path": request.path,
        "raw_path": request.path.encode(),
        "root_path": "",
        "query_string": request.META.get("QUERY_STRING", "").encode("latin-1"),
        "headers": [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in request.headers.items()
        ],
        "server": (host, int(request.get_port())),
        "client": (request.META.get("REMOTE_ADDR", ""), 0),
    }


async def exchange(app, scope: dict, body: bytes) -> tuple[int, list, bytes]:
    """Run one request through a stateless, JSON-answering session manager for `app`.

    Returns the status, the headers and the body the SDK sent.
    """
    manager = StreamableHTTPSessionManager(app=app, json_response=True, stateless=True)
    status, headers, chunks = 500, [], []
    delivered = False

    async def receive() -> dict:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        # The whole body is in; the client stays connected until the answer is sent.
        await anyio.sleep_forever()
        return {"type": "http.disconnect"}  # never reached

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status, headers = message["status"], message.get("headers", [])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    async with manager.run():
        await manager.handle_request(scope, receive, send)
    return status, headers, b"".join(chunks)


class McpView(APIView):
    """POST JSON-RPC messages (MCP Streamable HTTP) with `Authorization: Bearer cct_…` (read).

    Tokens are checked by BearerTokenAuthentication: unknown, revoked or expired tokens, and
    tokens of deactivated or no longer admitted owners, get a 401; a token without the `read`
    scope a 403. Browser sessions are not accepted (MCP clients send tokens).
    """

    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [TokenHasScope]
    required_scope = "read"
    # JSON-RPC, not REST: the MCP protocol describes it (tools/list), not the OpenAPI schema.
    schema = None

    def handle_exception(self, exc: Exception) -> Response:
        """Refusals (401, 403, 429) as JSON-RPC errors, so MCP clients show the reason."""
        response = super().handle_exception(exc)
        detail = (response.data or {}).get("detail", "Refused.")
        response.data = {
            "jsonrpc": "2.0",
            "id": None,
            "error": {"code": INVALID_REQUEST, "message": str(detail)},
        }
        return response

    def _serve(self, request: Request) -> HttpResponse:
        status, headers, body = async_to_sync(exchange)(
            server.build(request._request), asgi_scope(request), request.body
        )
        response = HttpResponse(body, status=status)
        for name, value in headers:
            if name.decode("latin-1").lower() not in SKIPPED_HEADERS:
                response[name.decode("latin-1")] = value.decode("latin-1")
        return response

    def post(self, request: Request) -> HttpResponse:
        return self._serve(request)

    def get(self, request: Request) -> HttpResponse:
        return self._serve(request)

    def delete(self, request: Request) -> HttpResponse:
        return self._serve(request)
