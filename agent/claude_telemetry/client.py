"""HTTP to the server: one gzip POST to /api/v1/ingest/, with every answer sorted into
acknowledged, keep-and-retry-later, or rejected.

A big report is answered 202: the server has stored it and processes it in the background.
That is an acknowledgement (the report may leave the spool); the client then asks for the
batch's state for a little while, so the answer usually carries what was stored, and
otherwise goes on without it.

The HTTP session (claude_telemetry.http: http.client, ~15 ms to import, and for an https
server the CA bundle, 20-120 ms) is made by the first Client, not with this module: a sync
makes its client in a thread while ccusage runs (sync.py), so its start does not wait for it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from claude_telemetry import __version__

if TYPE_CHECKING:
    from claude_telemetry.http import Response

INGEST_PATH = "/api/v1/ingest/"
# How long to follow a report answered 202 before going on without its counts (seconds).
FOLLOW_SECONDS = 20.0


class SendError(Exception):
    """The envelope was not acknowledged. `keep` says whether to keep it and retry later."""

    def __init__(
        self,
        message: str,
        *,
        keep: bool,
        status: int | None = None,
        retry_after: float | None = None,
        errors: Any = None,
        fatal: bool = False,
    ):
        super().__init__(message)
        self.keep = keep
        # Retrying cannot help until a person acts (a revoked token): kept, but not "will retry".
        self.fatal = fatal
        self.status = status
        self.retry_after = retry_after
        self.errors = errors


@dataclass
class Ack:
    status: int
    data: dict[str, Any]


def _detail(response: Response) -> tuple[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return "", None
    if not isinstance(data, dict):
        return "", None
    detail = data.get("detail")
    return (str(detail) if detail else ""), data.get("errors")


def _retry_after(response: Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    import email.utils

    parsed = email.utils.parsedate_to_datetime(value) if value else None
    if parsed is None:
        return None
    return max(0.0, (parsed - datetime.now(parsed.tzinfo)).total_seconds())


class Client:
    def __init__(
        self,
        server_url: str,
        token: str,
        timeout: float = 120.0,
        follow_seconds: float = FOLLOW_SECONDS,
    ):
        self.server_url = server_url.rstrip("/")
        self.token = token
        self.follow_seconds = follow_seconds
        from claude_telemetry.http import Session

        # Never follows a redirect, which would re-send the token somewhere nobody chose;
        # keeps a connection alive for https only (see Session).
        self.http = Session(
            self.server_url,
            # Every request goes to this server with this token (the limits refresh after a
            # sync reuses this session).
            headers={
                "User-Agent": f"claude-telemetry-agent/{__version__}",
                "Authorization": f"Bearer {token}",
            },
            timeout=timeout,
            connect_timeout=10.0,
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def ingest(self, body_gzip: bytes, include: tuple[str, ...] = ()) -> Ack:
        """POST one gzip envelope. `include` names what else the answer should carry
        (`agent_status`: the member's limits status, as GET /api/v1/agent/status/ gives it);
        a server that does not know a name leaves it out. Raises SendError."""
        from claude_telemetry.http import Timeout, TransportError

        url = self.server_url + INGEST_PATH
        if include:
            url += "?include=" + ",".join(include)
        try:
            response = self.http.post(
                url,
                content=body_gzip,
                headers={
                    "Authorization": f"Bearer {self.token}",
                    "Content-Type": "application/json",
                    "Content-Encoding": "gzip",
                },
            )
        except Timeout:
            raise SendError(
                f"The server at {self.server_url} did not answer in time.", keep=True
            ) from None
        except TransportError as exc:
            raise SendError(f"Cannot reach {self.server_url}: {_reason(exc)}.", keep=True) from None
        if (
            include
            and response.status_code == 400
            and set(_detail(response)[1] or ()) == {"include"}
        ):
            # A server that knows no such include refuses the query, not the report (it
            # stores nothing before checking it): the report goes again without it.
            return self.ingest(body_gzip)
        ack = self._ack(response)
        if ack.status == 202:
            return self._follow(ack)
        return ack

    def _follow(self, accepted: Ack) -> Ack:
        """After a 202, ask for the batch's state every few seconds for `follow_seconds`.

        Returns its state once processed (status "processed" with counts, or "failed" with the
        reason), else the 202 answer: either way the server holds the report. Errors while
        asking are no reason to send it again, so they end the wait quietly.
        """
        from claude_telemetry.http import HTTPError

        path = accepted.data.get("status_url")
        if not isinstance(path, str) or not path.startswith(INGEST_PATH):
            return accepted
        deadline = time.monotonic() + self.follow_seconds
        delay = 0.5
        while time.monotonic() + delay <= deadline:
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
            try:
                response = self.http.get(
                    self.server_url + path, headers={"Authorization": f"Bearer {self.token}"}
                )
                data = response.json() if response.status_code == 200 else None
            except (HTTPError, ValueError):
                return accepted
            if not isinstance(data, dict):
                return accepted
            if data.get("status") in ("processed", "failed"):
                return Ack(accepted.status, {**accepted.data, **data})
        return accepted

    def _ack(self, response: Response) -> Ack:
        status = response.status_code
        detail, errors = _detail(response)
        suffix = f": {detail.rstrip('.')}" if detail else ""
        if 200 <= status < 300:
            try:
                data = response.json()
            except ValueError:
                data = None
            if not isinstance(data, dict):
                raise SendError(
                    f"The server answered {status} without JSON; is {self.server_url} a "
                    "claude-telemetry server?",
                    keep=True,
                    status=status,
                )
            return Ack(status, data)
        if status == 429:
            raise SendError(
                f"The server asks to slow down (429){suffix}.",
                keep=True,
                status=status,
                retry_after=_retry_after(response),
            )
        if status >= 500:
            raise SendError(
                f"The server had an error ({status}); will retry.",
                keep=True,
                status=status,
                retry_after=_retry_after(response),
            )
        if 300 <= status < 400:
            where = response.headers.get("Location", "?")
            raise SendError(
                f"The server redirects to {where}; run setup with that URL.",
                keep=True,
                status=status,
            )
        # The data is fine in these cases; the set-up is not. Keep it for after the fix.
        if status == 401:
            why = suffix or ": it was revoked, removed or never valid"
            raise SendError(
                f"The server rejected the API token (401){why}. "
                f"Make a new token on the tokens page ({self.server_url}/settings/tokens/) "
                "and run `claude-telemetry setup --token …` with it.",
                keep=True,
                status=status,
                fatal=True,
            )
        if status == 403:
            raise SendError(
                f"The server refused this token (403){suffix or ': it needs the ingest scope'}.",
                keep=True,
                status=status,
            )
        if status in (404, 405):
            raise SendError(
                f"No ingest API at {self.server_url} ({status}); check the server URL.",
                keep=True,
                status=status,
            )
        if not 400 <= status < 500:
            # Nothing the agent asks for answers so (an interim 1xx, a 6xx): no verdict on
            # this report, so it is kept.
            raise SendError(
                f"The server gave an unexpected answer ({status}){suffix}; will retry.",
                keep=True,
                status=status,
            )
        # 400, 413, 422…: this envelope itself is refused; sending it again would not help.
        raise SendError(
            f"The server refused this report ({status}){suffix}.",
            keep=False,
            status=status,
            errors=errors,
        )

    def server_date(self) -> tuple[datetime | None, int]:
        """The server's clock (Date header) and status of GET /healthz, for doctor."""
        from claude_telemetry.http import TransportError

        try:
            response = self.http.get(self.server_url + "/healthz")
        except TransportError as exc:
            raise SendError(f"Cannot reach {self.server_url}: {_reason(exc)}.", keep=True) from None
        import email.utils

        date_header = response.headers.get("Date")
        parsed = email.utils.parsedate_to_datetime(date_header) if date_header else None
        return parsed, response.status_code


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]
