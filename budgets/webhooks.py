"""Outgoing webhooks: Standard Webhooks signing and a careful HTTP POST.

Careful means: one deadline for the whole delivery (connect, send, every byte of the answer:
a receiver that drips bytes cannot hold a worker past it), no redirects, no proxies from the
environment, and the host is resolved once, vetted (no private, loopback, link-local or
reserved address, in any IPv6 spelling, unless the operator sets WEBHOOK_ALLOW_PRIVATE_IPS) and
then connected to by that vetted IP, so a DNS answer that changes between the check and the
connection (DNS rebinding) cannot reach an internal service.
"""

import base64
import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx
from django.conf import settings

from budgets.models import SECRET_PREFIX

log = logging.getLogger(__name__)

USER_AGENT = "claude-telemetry-webhooks/1"
# Enough of a response body to explain a failure; the rest is never read.
MAX_ERROR_BODY = 300


class WebhookError(Exception):
    """A failed send. `permanent` failures are not retried; `gone` disables the channel."""

    permanent = False
    gone = False

    def __init__(self, message: str = "", *, status_code: int | None = None) -> None:
        super().__init__(message)
        # The receiver's HTTP status, when it answered at all.
        self.status_code = status_code


class UnsafeURL(WebhookError):
    permanent = True


class WebhookGone(WebhookError):
    permanent = True
    gone = True


def secret_bytes(secret: str) -> bytes:
    """The HMAC key: the base64-decoded part after `whsec_`."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("A webhook secret starts with 'whsec_'.")
    return base64.b64decode(secret[len(SECRET_PREFIX) :])


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value: `v1,` then base64 HMAC-SHA256 of id.timestamp.body."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def allow_private() -> bool:
    """Whether the operator allows receivers on private addresses (WEBHOOK_ALLOW_PRIVATE_IPS)."""
    return bool(getattr(settings, "WEBHOOK_ALLOW_PRIVATE_IPS", False))


# IPv6 prefixes whose last 32 bits are an IPv4 address a packet may end up at: IPv4-compatible
# (::a.b.c.d, deprecated by RFC 4291), NAT64's well-known prefix (RFC 6052) and SIIT's
# IPv4-translated form (RFC 2765). IPv4-mapped, 6to4 and Teredo have accessors in ipaddress.
IPV4_IN_LAST_32_BITS = (
    ipaddress.IPv6Network("::/96"),
    ipaddress.IPv6Network("64:ff9b::/96"),
    ipaddress.IPv6Network("::ffff:0:0:0/96"),
)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, compatible, NAT64, SIIT, 6to4, Teredo
    server and client); empty for a plain IPv6 address."""
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if any(ip in network for network in IPV4_IN_LAST_32_BITS):
        found.append(ipaddress.IPv4Address(ip.packed[-4:]))
    return found


def is_public_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for a global unicast address that carries no private IPv4 address in any form
    (`::127.0.0.1`, `::ffff:10.0.0.1`, `64:ff9b::a00:1`, `2002:a00:1::` are all refused)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in IPV4_IN_LAST_32_BITS[0]:
            return False  # IPv4-compatible: deprecated, never routed, only ever a trick
        carried = embedded_ipv4(ip)
        if carried:
            return all(is_public_address(v4) for v4 in carried)
        # ::/8 holds the unspecified, loopback and IPv4-compatible forms: nothing public.
        if ip in ipaddress.IPv6Network("::/8"):
            return False
    return ip.is_global and not ip.is_multicast


def check_url_shape(url: str) -> str | None:
    """Reasons a webhook URL is refused without a DNS lookup (for forms); None when fine."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return "the URL must start with http:// or https://"
    host = parts.hostname
    if not host:
        return "the URL has no host"
    if port == 0:
        return "port 0 is not allowed"
    if allow_private():
        return None
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return f"{host} is a local name; private addresses are not allowed"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if not is_public_address(ip):
        return f"{ip} is a private, loopback or reserved address"
    return None


def resolve(url: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The address to connect to, after vetting every address the host resolves to."""
    problem = check_url_shape(url)
    if problem:
        raise UnsafeURL(f"Refused webhook URL: {problem}.")
    parts = urlsplit(url)
    host = parts.hostname
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        # DNS may come back; this one is retried.
        raise WebhookError(f"Could not resolve {host}: {exc}") from exc
    addresses = []
    for info in infos:
        # An IPv6 address may carry a zone ("fe80::1%eth0"); the address is the part before.
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise WebhookError(f"{host} resolved to no address.")
    if not allow_private():
        # One bad address is enough to refuse: a resolver may hand out any of them.
        bad = [str(ip) for ip in addresses if not is_public_address(ip)]
        if bad:
            raise UnsafeURL(
                f"Refused webhook URL: {host} resolves to a private, loopback or reserved "
                f"address ({', '.join(bad)}). The operator can allow this with "
                "WEBHOOK_ALLOW_PRIVATE_IPS=1."
            )
    return addresses[0]


class Deadline:
    """Ends a delivery after `seconds` in all: httpx's timeouts count per socket operation, so
    this shuts the connection's socket down from a timer, which wakes any blocked read.

    Pass `trace` as httpx's "trace" extension (it sees the socket once connected); use as a
    context manager around the request.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def trace(self, event_name: str, info: dict) -> None:
        if event_name != "connection.connect_tcp.complete":
            return
        sock = info["return_value"].get_extra_info("socket")
        if sock is None:
            return
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)

    def __enter__(self) -> "Deadline":
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # closed already
        sock.shutdown(socket.SHUT_RDWR)


@dataclass(frozen=True)
class WebhookResult:
    status_code: int
    elapsed_ms: int


def post(
    url: str, secret: str, msg_id: str, payload: dict, *, timeout: float | None = None
) -> WebhookResult:
    """POST a signed JSON payload; raise WebhookError unless the receiver answers 2xx within
    `timeout` seconds in all (default settings.WEBHOOK_TIMEOUT_SECONDS), answer included."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = int(time.time())
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }
    return post_json(url, body, headers=headers, timeout=timeout)


def post_json(
    url: str, body: bytes, *, headers: dict | None = None, timeout: float | None = None
) -> WebhookResult:
    """POST `body` (JSON bytes) through the SSRF guard with one deadline for the whole exchange.

    Used by the signed webhook above and by the chat transports (budgets.slack, .discord,
    .teams). Raises UnsafeURL (permanent) for a private address, WebhookGone for 410,
    WebhookError (with `status_code` when the receiver answered) otherwise; returns the status
    and the time taken in ms on a 2xx answer.
    """
    ip = resolve(url)
    parts = urlsplit(url)
    ip_host = f"[{ip}]" if ip.version == 6 else str(ip)
    netloc = ip_host if parts.port is None else f"{ip_host}:{parts.port}"
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    hostname = parts.hostname
    if not hostname:  # resolve() has refused such a URL already
        raise UnsafeURL("Refused webhook URL: the URL has no host.")
    name = f"[{hostname}]" if ":" in hostname else hostname
    host_header = name if parts.port is None else f"{name}:{parts.port}"
    all_headers = {
        "Host": host_header,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **(headers or {}),
    }
    auth = (parts.username, parts.password or "") if parts.username else None
    # TLS checks the certificate against the real host name, not the IP connected to.
    extensions: dict = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    seconds = timeout if timeout is not None else settings.WEBHOOK_TIMEOUT_SECONDS
    deadline = Deadline(seconds)
    extensions["trace"] = deadline.trace
    started = time.monotonic()
    try:
        with (
            deadline,
            httpx.Client(timeout=seconds, follow_redirects=False, trust_env=False) as client,
            client.stream(
                "POST", pinned, content=body, headers=all_headers, auth=auth, extensions=extensions
            ) as response,
        ):
            snippet = _read_snippet(response) if not response.is_success else ""
    except httpx.TimeoutException as exc:
        raise WebhookError(f"Timed out after {seconds:g} s ({type(exc).__name__}).") from exc
    except httpx.HTTPError as exc:
        if deadline.expired:
            raise WebhookError(f"Timed out after {seconds:g} s (the whole delivery).") from exc
        raise WebhookError(
            f"Could not reach {parts.hostname}: {exc or type(exc).__name__}"
        ) from exc
    elapsed_ms = int((time.monotonic() - started) * 1000)
    code = response.status_code
    if code == 410:
        raise WebhookGone(
            f"The receiver answered 410 Gone: it no longer wants these messages. {snippet}".strip(),
            status_code=code,
        )
    if response.is_redirect:
        location = response.headers.get("location", "")
        raise WebhookError(
            f"The receiver answered {code} (redirects are not followed): {location}",
            status_code=code,
        )
    if not response.is_success:
        raise WebhookError(
            f"The receiver answered {code}: {snippet}".rstrip(": "), status_code=code
        )
    log.info("webhook sent", extra={"host": parts.hostname, "status": code, "ms": elapsed_ms})
    return WebhookResult(status_code=code, elapsed_ms=elapsed_ms)


def _read_snippet(response: httpx.Response) -> str:
    data = b""
    for chunk in response.iter_bytes():
        data += chunk
        if len(data) >= MAX_ERROR_BODY:
            break
    return data[:MAX_ERROR_BODY].decode("utf-8", "replace").strip()
