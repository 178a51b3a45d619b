"""Outgoing webhooks: Standard Webhooks signing and a careful HTTP POST.

Careful means: a timeout always, no redirects, no proxies from the environment, and the host is
resolved once, vetted (no private, loopback, link-local or reserved address unless the operator
sets WEBHOOK_ALLOW_PRIVATE_IPS) and then connected to by that vetted IP, so a DNS answer that
changes between the check and the connection (DNS rebinding) cannot reach an internal service.
"""

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
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


def _allow_private() -> bool:
    return bool(getattr(settings, "WEBHOOK_ALLOW_PRIVATE_IPS", False))


def is_public_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
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
    if _allow_private():
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
    if not _allow_private():
        # One bad address is enough to refuse: a resolver may hand out any of them.
        bad = [str(ip) for ip in addresses if not is_public_address(ip)]
        if bad:
            raise UnsafeURL(
                f"Refused webhook URL: {host} resolves to a private, loopback or reserved "
                f"address ({', '.join(bad)}). The operator can allow this with "
                "WEBHOOK_ALLOW_PRIVATE_IPS=1."
            )
    return addresses[0]


@dataclass(frozen=True)
class WebhookResult:
    status_code: int
    elapsed_ms: int


def post(
    url: str, secret: str, msg_id: str, payload: dict, *, timeout: float | None = None
) -> WebhookResult:
    """POST a signed JSON payload; raise WebhookError unless the receiver answers 2xx."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = int(time.time())
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
    headers = {
        "Host": host_header,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }
    auth = (parts.username, parts.password or "") if parts.username else None
    # TLS checks the certificate against the real host name, not the IP connected to.
    extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    seconds = timeout if timeout is not None else settings.WEBHOOK_TIMEOUT_SECONDS
    started = time.monotonic()
    try:
        with (
            httpx.Client(timeout=seconds, follow_redirects=False, trust_env=False) as client,
            client.stream(
                "POST", pinned, content=body, headers=headers, auth=auth, extensions=extensions
            ) as response,
        ):
            snippet = _read_snippet(response) if not response.is_success else ""
    except httpx.TimeoutException as exc:
        raise WebhookError(f"Timed out after {seconds:g} s ({type(exc).__name__}).") from exc
    except httpx.HTTPError as exc:
        raise WebhookError(
            f"Could not reach {parts.hostname}: {exc or type(exc).__name__}"
        ) from exc
    elapsed_ms = int((time.monotonic() - started) * 1000)
    code = response.status_code
    if code == 410:
        raise WebhookGone("The receiver answered 410 Gone: it no longer wants these messages.")
    if response.is_redirect:
        location = response.headers.get("location", "")
        raise WebhookError(f"The receiver answered {code} (redirects are not followed): {location}")
    if not response.is_success:
        raise WebhookError(f"The receiver answered {code}: {snippet}".rstrip(": "))
    log.info("webhook sent", extra={"host": parts.hostname, "status": code, "ms": elapsed_ms})
    return WebhookResult(status_code=code, elapsed_ms=elapsed_ms)


def _read_snippet(response: httpx.Response) -> str:
    data = b""
    for chunk in response.iter_bytes():
        data += chunk
        if len(data) >= MAX_ERROR_BODY:
            break
    return data[:MAX_ERROR_BODY].decode("utf-8", "replace").strip()
