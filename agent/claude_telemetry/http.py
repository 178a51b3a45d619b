"""A small HTTP client on the standard library for the agent's calls to its own server.

It replaces httpx, whose import cost 40-130 ms of CPU on every sync. It never follows a
redirect, verifies https like httpx did (certifi, or SSL_CERT_FILE / SSL_CERT_DIR), makes no
TLS context for a plain-http server, and takes proxies from the environment (HTTP_PROXY,
HTTPS_PROXY, ALL_PROXY, NO_PROXY, or the system's settings on macOS and Windows).
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json as jsonlib
import os
import sys
import threading
import urllib.parse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ssl
    from collections.abc import Mapping
    from email.message import Message

DEFAULT_PORTS = {"http": 80, "https": 443}


def _stale(exc: BaseException) -> bool:
    """Whether `exc` is how a kept-alive connection the server closed meanwhile fails on its
    next request: a hang-up, a reset, a broken pipe, an aborted connection (Windows), or over
    TLS an EOF without close_notify (what OpenSSL 3 reports for most of them)."""
    if isinstance(exc, http.client.RemoteDisconnected | ConnectionError):
        return True
    ssl = sys.modules.get("ssl")
    return ssl is not None and isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError)


def _closed_by_peer(sock: Any) -> bool:
    """Whether an idle kept-alive socket has something to read: the server's hang-up (or
    bytes nobody asked for), so it must not carry another request."""
    import select

    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def _redacted(url: str) -> str:
    """`url` without the credentials in it (a proxy's user and password); by hand, as the
    URL may be one urllib cannot parse."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    netloc, slash, tail = rest.partition("/")
    return f"{scheme}{sep}{netloc.rpartition('@')[2]}{slash}{tail}"


class HTTPError(Exception):
    """Any failure of a request: no answer (TransportError) or an answer refused by
    Response.raise_for_status (StatusError)."""


class TransportError(HTTPError):
    """No answer: the server cannot be reached (DNS, refused, reset, TLS, proxy) or broke
    off its answer."""


class Timeout(TransportError):
    """Connecting, or a read or write on the connection, took longer than its timeout."""


class StatusError(HTTPError):
    """An answer that is not 2xx, from Response.raise_for_status; `response` is that answer."""

    def __init__(self, message: str, response: Response):
        super().__init__(message)
        self.response = response


class Response:
    """A whole answer: `status_code`, `headers` (case-insensitive `.get`), `content` (the
    body, gzip already undone)."""

    def __init__(
        self, status_code: int, reason: str, headers: Message, content: bytes, url: str
    ) -> None:
        self.status_code = status_code
        self.reason = reason
        self.headers = headers
        self.content = content
        self.url = url

    def __repr__(self) -> str:
        return f"<Response [{self.status_code}]>"

    @property
    def text(self) -> str:
        charset = self.headers.get_content_charset() or "utf-8"
        try:
            return self.content.decode(charset, errors="replace")
        except LookupError:  # a charset Python does not know
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not."""
        return jsonlib.loads(self.content)

    def raise_for_status(self) -> Response:
        """This response when it is 2xx, else StatusError (a 3xx too: redirects are not
        followed)."""
        if 200 <= self.status_code < 300:
            return self
        raise StatusError(f"{self.status_code} {self.reason} for {self.url}", self)


class _Connection(http.client.HTTPConnection):
    """A connection whose set-up (TCP, the proxy's CONNECT, the TLS handshake) has a timeout
    of its own; reads and writes after it have `timeout`."""

    def __init__(
        self,
        host: str,
        port: int,
        timeout: float,
        connect_timeout: float,
        context: ssl.SSLContext | None,
        tls_host: str,
    ) -> None:
        super().__init__(host, port, timeout=timeout)
        self.connect_timeout = connect_timeout
        self.context = context
        self.tls_host = tls_host
        # Set for a plain-http request through an http proxy: the request line then carries
        # the absolute URL, and each request the proxy's credentials.
        self.absolute = False
        self.proxy_headers: dict[str, str] = {}
        # The proxy it goes through, without credentials, for error messages.
        self.proxy = ""

    def connect(self) -> None:
        read_timeout = self.timeout
        self.timeout = self.connect_timeout
        try:
            super().connect()  # to the server, or to the proxy and then CONNECT through it
            if self.context is not None:
                self.sock = self.context.wrap_socket(self.sock, server_hostname=self.tls_host)
        finally:
            self.timeout = read_timeout
        self.sock.settimeout(read_timeout)


def tls_context() -> ssl.SSLContext:
    """The context that verifies an https server as httpx did: the file in SSL_CERT_FILE, else
    the folder in SSL_CERT_DIR, else certifi's bundle. Loading a bundle costs 20-120 ms."""
    import ssl

    if os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def environment_proxies() -> dict[str, str]:
    """urllib's proxies ({"http": url, "https": url, "all": url, "no": hosts}). On Linux they
    come from the environment only, so urllib.request (~10 ms to import) is imported only
    when a *_proxy variable is set."""
    if sys.platform not in ("darwin", "win32") and not any(
        name.lower().endswith("_proxy") for name in os.environ
    ):
        return {}
    import urllib.request

    return urllib.request.getproxies()


def proxy_for(scheme: str, netloc: str) -> str | None:
    """The proxy URL for a request to `netloc` ("host:port") over `scheme`, or None: the
    scheme's own proxy, else ALL_PROXY, unless NO_PROXY (or the system) bypasses the host."""
    proxies = environment_proxies()
    proxy = proxies.get(scheme) or proxies.get("all")
    if not proxy:
        return None
    import urllib.request

    if urllib.request.proxy_bypass(netloc):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


class Session:
    """Requests to one server with the same headers, timeouts, TLS context and proxy.

    `timeout` bounds every read and write (seconds), `connect_timeout` the connection's
    set-up. For an https server one connection is kept alive between requests (a new one
    costs a TLS handshake, and the proxy in front, nginx in docs/production.md, answers
    without Nagle delays). A plain-http server gets a new connection per request: it is
    usually Django's development server, which writes an answer in several pieces without
    TCP_NODELAY, so on a reused connection each answer waits ~40 ms for the client's delayed
    ACK, while a new local connection costs well under a millisecond. The client hangs up
    once it has the answer, as httpx did, and sends no "Connection: close": with it the
    server would close first and keep the port in TIME_WAIT, and a server restarted on it
    without SO_REUSEADDR (Django's test live server) could not bind it for a minute.
    `keep_alive` overrides that choice.

    A request on a kept-alive connection the server has closed meanwhile is sent once more
    on a new connection: the server may then see it twice, which the agent's requests allow
    (reports are deduplicated by their digest, refusals by their id). Safe to share between
    threads: requests wait for each other.
    """

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str] | None = None,
        timeout: float = 120.0,
        connect_timeout: float = 10.0,
        *,
        keep_alive: bool | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = {"Accept": "*/*", "Accept-Encoding": "gzip", **(headers or {})}
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        https = self.base_url.lower().startswith("https:")
        self.keep_alive = https if keep_alive is None else keep_alive
        self._context: ssl.SSLContext | None = None
        self._lock = threading.Lock()
        self._kept: tuple[tuple[str, str, int], _Connection] | None = None
        self.closed = False
        if https:
            # Made now, so a sync that makes its session in a thread (sync.py) loads the CA
            # bundle there; a plain-http server never needs one. A bundle that cannot be read
            # fails the first request instead.
            with contextlib.suppress(TransportError):
                self._tls()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self.closed = True
            self._drop()

    def get(
        self,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Response:
        return self.request("GET", url, params=params, headers=headers, timeout=timeout)

    def post(
        self,
        url: str,
        *,
        content: bytes | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Response:
        return self.request(
            "POST", url, content=content, json=json, headers=headers, timeout=timeout
        )

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Response:
        """Send one request and read the whole answer, whatever its status (a 3xx is
        returned, never followed). `url` is absolute or a path under base_url; `json` is
        sent as UTF-8 JSON; `timeout` replaces the session's for this request and caps its
        connect timeout. TransportError (Timeout) when no whole answer came."""
        if url.startswith("/"):
            url = self.base_url + url
        if params:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(params)
        try:
            parts = urllib.parse.urlsplit(url)
            scheme, host, port = parts.scheme.lower(), parts.hostname, parts.port
        except ValueError as exc:  # a port that is not a number
            raise TransportError(f"Invalid URL {url!r}: {exc}") from None
        if scheme not in DEFAULT_PORTS or not host:
            raise TransportError(f"Unsupported URL {url!r}: only http and https")
        port = port or DEFAULT_PORTS[scheme]
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        merged = {k.lower(): (k, v) for k, v in self.headers.items()}
        if json is not None:
            content = jsonlib.dumps(
                json, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode("utf-8")
            merged["content-type"] = ("Content-Type", "application/json")
        merged.update({k.lower(): (k, v) for k, v in (headers or {}).items()})
        sent = dict(merged.values())
        read_timeout = self.timeout if timeout is None else timeout
        connect_timeout = min(self.connect_timeout, read_timeout)
        hostport = parts.netloc.rpartition("@")[2]
        with self._lock:
            if self.closed:
                raise TransportError("The session is closed")
            answer, body = self._send(
                (scheme, host, port),
                hostport,
                method,
                path,
                content,
                sent,
                (read_timeout, connect_timeout),
            )
        if (answer.getheader("Content-Encoding") or "").lower() == "gzip":
            import gzip
            import zlib

            try:
                body = gzip.decompress(body)
            except (OSError, EOFError, zlib.error) as exc:
                raise TransportError(f"The answer's gzip is broken: {exc}") from None
        return Response(answer.status, answer.reason, answer.msg, body, url)

    def _send(
        self,
        origin: tuple[str, str, int],
        hostport: str,
        method: str,
        path: str,
        content: bytes | None,
        headers: dict[str, str],
        timeouts: tuple[float, float],
    ) -> tuple[http.client.HTTPResponse, bytes]:
        conn, reused = self._connection(origin, hostport)
        conn.timeout, conn.connect_timeout = timeouts
        if conn.sock is not None:
            conn.sock.settimeout(conn.timeout)
        # Through an http proxy the request line names the whole URL.
        target = f"http://{hostport}{path}" if conn.absolute else path
        via = f" (through the proxy {conn.proxy})" if conn.proxy else ""
        try:
            answer = self._exchange(conn, method, target, content, headers)
            if answer.status < 200:
                # http.client skips 100 Continue only; another interim answer (103 Early
                # Hints) would be taken for the answer, and the real one read as the next's.
                raise http.client.HTTPException(f"an interim answer ({answer.status}) alone")
            body = answer.read()
        except (OSError, http.client.HTTPException, ValueError) as exc:
            self._drop()
            conn.close()
            if isinstance(exc, TimeoutError):
                raise Timeout(f"No answer from {origin[1]} in time ({exc}){via}") from None
            if reused and _stale(exc):
                # Dropped above, so this try is on a new connection and is the last one.
                return self._send(origin, hostport, method, path, content, headers, timeouts)
            raise TransportError(_reason(exc) + via) from None
        if not self.keep_alive or answer.will_close:
            self._drop()
            conn.close()
        return answer, body

    @staticmethod
    def _exchange(
        conn: _Connection, method: str, target: str, content: bytes | None, headers: dict
    ) -> http.client.HTTPResponse:
        """Send the request and read the answer's head. A server that answers before it has
        read the whole body (413 from the Content-Length) and closes makes the upload fail:
        its answer is read all the same, and the upload's error raised only without one."""
        try:
            conn.request(method, target, body=content, headers={**headers, **conn.proxy_headers})
        except OSError as exc:
            if isinstance(exc, TimeoutError) or conn.sock is None:
                raise
            try:
                return conn.getresponse()
            except (OSError, http.client.HTTPException):
                raise exc from None
        return conn.getresponse()

    def _connection(self, origin: tuple[str, str, int], hostport: str) -> tuple[_Connection, bool]:
        """The kept-alive connection to `origin` (scheme, host, port) and True when it has
        been used before; else a new one (through the proxy for it, if any) and False. A
        kept one the server has hung up on is replaced before anything is sent on it."""
        if self._kept is not None and self._kept[0] == origin:
            conn = self._kept[1]
            if conn.sock is None or not _closed_by_peer(conn.sock):
                return conn, conn.sock is not None
        self._drop()
        scheme, host, port = origin
        context = self._tls() if scheme == "https" else None
        proxy = proxy_for(scheme, hostport)
        if proxy is None:
            conn = _Connection(host, port, self.timeout, self.connect_timeout, context, host)
        else:
            try:
                proxied = urllib.parse.urlsplit(proxy)
                proxy_host, proxy_port = proxied.hostname, proxied.port or 80
            except ValueError as exc:  # a port that is not a number, a broken IPv6 address
                raise TransportError(
                    f"The proxy in the environment is not a URL ({exc}): {_redacted(proxy)}"
                ) from None
            if proxied.scheme.lower() != "http" or not proxy_host:
                raise TransportError(
                    f"Unsupported proxy {_redacted(proxy)!r}: only http:// proxies"
                )
            conn = _Connection(
                proxy_host,
                proxy_port,
                self.timeout,
                self.connect_timeout,
                context,
                host,
            )
            auth = {}
            if proxied.username is not None:
                user = urllib.parse.unquote(proxied.username)
                password = urllib.parse.unquote(proxied.password or "")
                token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
                auth = {"Proxy-Authorization": f"Basic {token}"}
            conn.proxy = f"http://{proxy_host}:{proxy_port}"
            if scheme == "https":
                conn.set_tunnel(host, port, headers=auth)  # CONNECT, then TLS inside it
            else:
                conn.absolute, conn.proxy_headers = True, auth
        if self.keep_alive:
            self._kept = (origin, conn)
        return conn, False

    def _tls(self) -> ssl.SSLContext:
        if self._context is None:
            try:
                self._context = tls_context()
            except OSError as exc:  # a missing or broken SSL_CERT_FILE (ssl.SSLError too)
                where = next(
                    (f" ({n}={os.environ[n]})" for n in ("SSL_CERT_FILE", "SSL_CERT_DIR")
                     if os.environ.get(n)),
                    "",
                )  # fmt: skip
                raise TransportError(
                    f"Cannot load the CA certificates{where}: {_reason(exc)}"
                ) from None
        return self._context

    def _drop(self) -> None:
        if self._kept is not None:
            self._kept[1].close()
            self._kept = None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, http.client.BadStatusLine):
        return f"The server's answer is not HTTP: {str(exc)[:100]!r}"
    if isinstance(exc, http.client.IncompleteRead):
        return "The server broke off its answer"
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]
