"""Real receivers for alerts (an SMTP server and an HTTP server on loopback) and `spend`.

Channels, budgets, machines and projects come from tests.factories.
"""

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import time_machine
from aiosmtpd.controller import Controller

from budgets import evaluate
from tests.factories import project_for
from usage.models import DailyUsage, Machine, Project


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpServer:
    """aiosmtpd on a loopback port that can be stopped and started again (SMTP down, then up)."""

    def __init__(self, port: int):
        self.port = port
        self.messages: list[EmailMessage] = []
        self.recipients: list[list[str]] = []
        self._controller: Controller | None = None

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted"

    def start(self) -> None:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def subjects(self) -> list[str]:
        # Unfolding leaves the space that followed "Subject:" when Django folded the header.
        return [str(m["Subject"]).strip() for m in self.messages]


@pytest.fixture
def smtp_down(settings):
    """Django's SMTP backend pointed at a loopback port where nothing listens yet."""
    server = SmtpServer(free_port())
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = server.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_TIMEOUT = 5
    yield server
    server.stop()


@pytest.fixture
def smtp_server(smtp_down):
    smtp_down.start()
    return smtp_down


def verify_standard_webhook(secret: str, headers, body: bytes, tolerance: int = 300) -> bool:
    """The receiver's side of Standard Webhooks, written independently of the sender."""
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature", "")
    if not (msg_id and timestamp and signatures):
        return False
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = base64.b64encode(
        hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    ).decode()
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return True
    return False


@dataclass
class ReceivedHook:
    headers: dict
    body: bytes
    verified: bool

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1 that checks each request's signature."""

    secret: str = ""
    answers: deque = field(default_factory=deque)
    delay: float = 0.0
    # Seconds between bytes of an answer that never ends (a slow-drip receiver); 0: off.
    drip: float = 0.0
    requests: list[ReceivedHook] = field(default_factory=list)
    port: int = 0
    path: str = "/hooks/alerts"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def answer(self, *codes: int) -> None:
        """The next requests get these status codes, then 200."""
        self.answers.extend(codes)

    @property
    def accepted(self) -> list[ReceivedHook]:
        return [r for r in self.requests if r.verified]


@pytest.fixture
def receiver(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_IPS = True
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            headers = {k.lower(): v for k, v in self.headers.items()}
            verified = bool(state.secret) and verify_standard_webhook(state.secret, headers, body)
            if state.delay:
                time.sleep(state.delay)
            if state.drip:
                state.requests.append(ReceivedHook(headers, body, False))
                self._drip()
                return
            code = state.answers.popleft() if state.answers else 200
            state.requests.append(ReceivedHook(headers, body, verified and code < 300))
            if not verified:
                code = 401
            try:
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if code < 300 else b"receiver says no")
            except OSError:
                pass  # the sender gave up (timeout test)

        def _drip(self):
            answer = b"HTTP/1.1 200 OK\r\nX-Drip: " + b"." * 10_000
            try:
                for byte in answer:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(state.drip)
            except OSError:
                pass  # the sender hung up: what the deadline is for

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


# --- time and evaluation ------------------------------------------------------------------------

NOV_10 = datetime(2026, 11, 10, 18, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    """Time runs on from 10 November 2026, 18:00 UTC."""
    with time_machine.travel(NOV_10, tick=True) as traveller:
        yield traveller


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    """Evaluate a team's alerts and deliver what they send (on-commit callbacks run)."""

    def _run(team):
        with django_capture_on_commit_callbacks(execute=True):
            return evaluate.evaluate_team(team.pk)

    return _run


# --- usage ----------------------------------------------------------------------------------


def spend(machine: Machine, day: date, usd, project: Project | None = None, model="opus"):
    """Set one day's cost for a machine, the way ingest replaces a fact row."""
    project = project or project_for(machine.team, "")
    row, _ = DailyUsage.objects.update_or_create(
        machine=machine,
        source="claude-code",
        day=day,
        project=project,
        model=model,
        defaults={"cost_usd": Decimal(str(usd)), "total_tokens": int(Decimal(str(usd)) * 1000)},
    )
    return row


# --- chat services ------------------------------------------------------------------------------


@dataclass
class ChatReceiver:
    """A real HTTP server on 127.0.0.1 standing in for Slack, Discord or a Teams workflow: it
    records each JSON body and answers with the queued status codes, then with `ok_status`."""

    answers: deque = field(default_factory=deque)
    ok_status: int = 200
    bodies: list[dict] = field(default_factory=list)
    headers: list[dict] = field(default_factory=list)
    port: int = 0

    def url(self, path: str = "/services/T000/B000/XXXX") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, *codes: int) -> None:
        self.answers.extend(codes)


@pytest.fixture
def chat_receiver(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_IPS = True
    state = ChatReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.headers.append({k.lower(): v for k, v in self.headers.items()})
            state.bodies.append(json.loads(body))
            code = state.answers.popleft() if state.answers else state.ok_status
            try:
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if code < 300 else b"no_service")
            except OSError:
                pass

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
