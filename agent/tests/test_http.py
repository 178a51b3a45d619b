"""The agent's HTTP client (claude_telemetry.http) against real local servers: plain http, https
with a certificate from a CA made for the test, and a forwarding proxy."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import http.client
import ipaddress
import select
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from claude_telemetry import http as web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def no_proxy_from_the_machine(monkeypatch):
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@dataclass
class Seen:
    """One request as the server read it."""

    line: str
    headers: dict[str, str]
    body: bytes
    peer: tuple[str, int]


@dataclass
class Server:
    url: str = ""
    seen: list[Seen] = field(default_factory=list)
    # The answer to each request: (status, headers, body); None: 200 with {"ok": true}.
    answer: Callable[[Seen], tuple[int, dict[str, str], bytes]] | None = None
    # Close the connection after the answer without saying so, as a server does with a
    # kept-alive connection after its idle timeout.
    drop_after_answer: bool = False
    # Answers wait for this (set when the test ends).
    release: threading.Event = field(default_factory=threading.Event)
    delay: float = 0.0

    @property
    def connections(self) -> int:
        return len({s.peer for s in self.seen})


def _handler(state: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            seen = Seen(
                self.requestline,
                {k.lower(): v for k, v in self.headers.items()},
                self.rfile.read(length),
                self.client_address,
            )
            state.seen.append(seen)
            if state.delay:
                state.release.wait(state.delay)
            status, headers, body = (
                state.answer(seen) if state.answer else (200, {}, b'{"ok": true}')
            )
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            if state.drop_after_answer:
                self.close_connection = True

        do_GET = do_POST = _answer

    return Handler


@contextmanager
def serving(state: Server, context: ssl.SSLContext | None = None) -> Iterator[Server]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    scheme = "http"
    if context is not None:
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        scheme = "https"
    state.url = f"{scheme}://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    with serving(Server()) as state:
        yield state


# --- plain http ------------------------------------------------------------------------------


def test_a_redirect_is_returned_as_it_is_never_followed(server):
    server.answer = lambda seen: (
        (302, {"Location": server.url + "/elsewhere/"}, b"")
        if seen.line.startswith("GET /start/")
        else (200, {}, b"{}")
    )
    with web.Session(server.url, {"Authorization": "Bearer cct_secret"}) as session:
        response = session.get("/start/")
    assert response.status_code == 302
    assert response.headers.get("location") == server.url + "/elsewhere/"
    assert [s.line for s in server.seen] == ["GET /start/ HTTP/1.1"]
    with pytest.raises(web.StatusError) as raised:
        response.raise_for_status()
    assert raised.value.response is response


def test_each_request_to_a_plain_http_server_has_its_own_connection(server):
    with web.Session(server.url, {"User-Agent": "agent/1"}) as session:
        for _ in range(3):
            assert session.get(server.url + "/api/").json() == {"ok": True}
    assert server.connections == 3
    for seen in server.seen:
        assert seen.headers["user-agent"] == "agent/1"
        assert seen.headers["host"] == server.url.removeprefix("http://")


def test_over_plain_http_the_client_hangs_up_first_once_it_has_the_answer():
    # So the TIME_WAIT is the client's: a server restarted at once can bind its port again.
    heard = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]

        def answer_and_listen() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(5)
                heard.append(conn.recv(65536))
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                heard.append(conn.recv(65536))  # b"": the client has closed

        thread = threading.Thread(target=answer_and_listen, daemon=True)
        thread.start()
        with web.Session(f"http://127.0.0.1:{port}") as session:
            assert session.get("/").json() == {}
            thread.join(5)
    request, after = heard
    assert request.startswith(b"GET / HTTP/1.1\r\n") and b"connection:" not in request.lower()
    assert after == b""


def test_json_params_and_headers_are_sent_as_given(server):
    server.answer = lambda seen: (201, {"Retry-After": "7"}, seen.body)
    with web.Session(server.url, {"Authorization": "Bearer a"}) as session:
        response = session.post(
            "/refusals/", json={"name": "café", "n": 1}, headers={"authorization": "Bearer b"}
        )
        session.get("/plan/", params={"machine": "a b&c"})
    assert response.status_code == 201 and response.headers.get("retry-after") == "7"
    assert response.json() == {"name": "café", "n": 1}
    posted, got = server.seen
    assert posted.body == '{"name":"café","n":1}'.encode()
    assert posted.headers["content-type"] == "application/json"
    assert posted.headers["authorization"] == "Bearer b"  # the request's own wins
    assert got.line == "GET /plan/?machine=a+b%26c HTTP/1.1"
    assert got.headers["authorization"] == "Bearer a"


def test_a_gzip_answer_is_read_unzipped(server):
    server.answer = lambda seen: (200, {"Content-Encoding": "gzip"}, gzip.compress(b'{"a": 1}'))
    with web.Session(server.url) as session:
        response = session.get("/")
    assert response.json() == {"a": 1}
    assert "gzip" in server.seen[0].headers["accept-encoding"]


def test_raise_for_status_passes_2xx_and_raises_with_the_answer_otherwise(server):
    server.answer = lambda seen: (
        (503, {}, b'{"detail": "later"}') if "/down/" in seen.line else (204, {}, b"")
    )
    with web.Session(server.url) as session:
        ok = session.get("/up/")
        assert ok.raise_for_status() is ok and ok.content == b""
        down = session.get("/down/")
    with pytest.raises(web.StatusError, match="503") as raised:
        down.raise_for_status()
    assert raised.value.response.json() == {"detail": "later"}
    assert isinstance(raised.value, web.HTTPError)


def test_an_answer_slower_than_the_timeout_raises_timeout(server):
    server.delay = 30
    started = time.monotonic()
    with web.Session(server.url, timeout=0.3) as session, pytest.raises(web.Timeout):
        session.get("/")
    assert time.monotonic() - started < 5
    # A request's own timeout replaces the session's.
    started = time.monotonic()
    with web.Session(server.url, timeout=60) as session, pytest.raises(web.Timeout):
        session.post("/", content=b"x", timeout=0.3)
    assert time.monotonic() - started < 5


def test_connecting_has_its_own_timeout():
    # A listening socket that never accepts: once its backlog is full, connecting hangs.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        filler = socket.create_connection(("127.0.0.1", port), timeout=1)
        try:
            started = time.monotonic()
            session = web.Session(f"http://127.0.0.1:{port}", timeout=60, connect_timeout=0.3)
            with session, pytest.raises(web.Timeout):
                session.get("/")
            assert time.monotonic() - started < 5
        finally:
            filler.close()


def test_a_refused_connection_is_a_transport_error_and_not_retried():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    session = web.Session(f"http://127.0.0.1:{port}", keep_alive=True)
    with session, pytest.raises(web.TransportError) as raised:
        session.get("/")
    assert not isinstance(raised.value, web.Timeout)


def test_a_server_that_hangs_up_without_answering_is_a_transport_error():
    # A fresh connection that breaks is no stale keep-alive: it is not sent again.
    accepted = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]

        def hang_up() -> None:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                accepted.append(conn)
                conn.recv(65536)
                conn.close()

        threading.Thread(target=hang_up, daemon=True).start()
        session = web.Session(f"http://127.0.0.1:{port}", keep_alive=True)
        with session, pytest.raises(web.TransportError):
            session.post("/", content=b"report")
        assert len(accepted) == 1


def test_unsupported_urls_are_transport_errors(server):
    with web.Session(server.url) as session:
        for url in ("ftp://127.0.0.1/", "http://127.0.0.1:port/"):
            with pytest.raises(web.TransportError):
                session.get(url)


# --- keep-alive ------------------------------------------------------------------------------


def test_a_kept_alive_connection_serves_every_request(server):
    with web.Session(server.url, keep_alive=True) as session:
        for _ in range(3):
            session.post("/", content=b"x")
    assert server.connections == 1
    assert all("connection" not in s.headers for s in server.seen)


@pytest.mark.parametrize("checked", [True, False], ids=["seen-before-sending", "found-sending"])
def test_a_kept_alive_connection_the_server_closed_is_replaced_or_retried_once(
    server, monkeypatch, checked
):
    if not checked:
        # As when the hang-up arrives after the check: the request fails on the old one.
        monkeypatch.setattr(web, "_closed_by_peer", lambda sock: False)
    server.drop_after_answer = True
    with web.Session(server.url, keep_alive=True) as session:
        first = session.post("/", content=b"one")
        time.sleep(0.1)  # the server has closed it by now; the client has not read that
        second = session.post("/", content=b"two")
    assert first.status_code == second.status_code == 200
    assert [s.body for s in server.seen] == [b"one", b"two"]
    assert server.connections == 2


def test_a_kept_alive_https_connection_the_server_closed_is_retried_once(
    tls_server, pki, monkeypatch
):
    # Over TLS a hang-up mostly surfaces as an EOF without close_notify (ssl.SSLEOFError).
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca_file))
    monkeypatch.setattr(web, "_closed_by_peer", lambda sock: False)
    tls_server.drop_after_answer = True
    with web.Session(tls_server.url) as session:
        for body in (b"one", b"two", b"x" * 4_000_000):
            time.sleep(0.1)
            assert session.post("/", content=body).status_code == 200
    assert [len(s.body) for s in tls_server.seen] == [3, 3, 4_000_000]


def test_an_interim_answer_alone_is_an_error_and_never_the_next_requests_answer():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]

        def early_hints_then_answer() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(
                    b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
                    b'HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{"first":1}'
                )
                time.sleep(0.5)

        threading.Thread(target=early_hints_then_answer, daemon=True).start()
        with web.Session(f"http://127.0.0.1:{port}", keep_alive=True) as session:
            with pytest.raises(web.TransportError, match="interim answer"):
                session.get("/first")
            assert session._kept is None  # the rest of that answer is never read as another's


def test_an_answer_sent_before_the_body_was_read_is_returned():
    # A server refusing a body by its Content-Length (413) answers and closes mid-upload.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]

        def refuse_early() -> None:
            conn, _ = listener.accept()
            conn.recv(1024)
            conn.sendall(
                b"HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\n"
                b"Content-Length: 22\r\nConnection: close\r\n\r\n"
                b'{"detail": "too big."}'
            )
            conn.shutdown(socket.SHUT_WR)
            time.sleep(0.2)
            # Closing with unread data resets the connection, as such a server does.
            conn.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            conn.close()

        threading.Thread(target=refuse_early, daemon=True).start()
        with web.Session(f"http://127.0.0.1:{port}") as session:
            answer = session.post("/", content=b"x" * 32_000_000)
    assert answer.status_code == 413 and answer.json() == {"detail": "too big."}


def test_a_closed_session_sends_nothing(server):
    session = web.Session(server.url)
    session.close()
    assert session.closed
    with pytest.raises(web.TransportError):
        session.get("/")
    assert server.seen == []


def test_a_plain_http_session_makes_no_tls_context(server, tls_contexts):
    made = tls_contexts
    with web.Session(server.url) as session:
        session.get("/")
    assert made == []


# --- https -----------------------------------------------------------------------------------


@dataclass
class Pki:
    ca_file: Path
    server_context: ssl.SSLContext


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    """A CA made for the test, and a server certificate for 127.0.0.1 signed by it."""
    folder = tmp_path_factory.mktemp("pki")
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("test CA"))
        .issuer_name(_name("test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = folder / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    chain = folder / "server.pem"
    chain.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain)
    return Pki(ca_file, context)


@pytest.fixture
def tls_server(pki) -> Iterator[Server]:
    with serving(Server(), pki.server_context) as state:
        yield state


def test_ssl_cert_file_is_the_ca_bundle_when_set(pki, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca_file))
    monkeypatch.setenv("SSL_CERT_DIR", str(pki.ca_file.parent))
    context = web.tls_context()
    assert context.cert_store_stats()["x509_ca"] == 1
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_without_ssl_cert_file_or_dir_the_bundle_is_certifis(monkeypatch):
    import certifi

    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    expected = ssl.create_default_context(cafile=certifi.where()).cert_store_stats()["x509_ca"]
    assert web.tls_context().cert_store_stats()["x509_ca"] == expected > 100


def test_https_verifies_the_server_and_keeps_one_connection(tls_server, pki, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca_file))
    with web.Session(tls_server.url) as session:
        assert session.keep_alive
        for _ in range(3):
            assert session.get("/status/").json() == {"ok": True}
    assert tls_server.connections == 1
    assert all("connection" not in s.headers for s in tls_server.seen)


def test_https_refuses_a_certificate_no_trusted_ca_signed(tls_server, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with web.Session(tls_server.url) as session, pytest.raises(web.TransportError) as raised:
        session.get("/")
    assert "CERTIFICATE_VERIFY_FAILED" in str(raised.value)
    assert tls_server.seen == []


def test_an_unreadable_ca_bundle_fails_the_request_not_the_session(
    tls_server, tmp_path, monkeypatch
):
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    with web.Session(tls_server.url) as session, pytest.raises(web.TransportError, match="CA"):
        session.get("/")


# --- proxies ---------------------------------------------------------------------------------


@dataclass
class Proxy:
    url: str = ""
    lines: list[str] = field(default_factory=list)
    auth: list[str | None] = field(default_factory=list)


def _pipe(a: socket.socket, b: socket.socket) -> None:
    sockets = [a, b]
    while True:
        readable, _, _ = select.select(sockets, [], [], 10)
        if not readable:
            return
        for sock in readable:
            data = sock.recv(65536)
            if not data:
                return
            (b if sock is a else a).sendall(data)


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    """A small forwarding proxy: absolute-URI requests for http, CONNECT tunnels for https."""
    state = Proxy()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def _record(self) -> None:
            state.lines.append(self.requestline)
            state.auth.append(self.headers.get("Proxy-Authorization"))

        def _forward(self) -> None:
            self._record()
            target = urllib.parse.urlsplit(self.path)
            upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
            length = int(self.headers.get("Content-Length") or 0)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "proxy-authorization"}
            upstream.request(self.command, self.path, body=self.rfile.read(length), headers=headers)
            answer = upstream.getresponse()
            body = answer.read()
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in ("connection", "content-length", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            upstream.close()

        do_GET = do_POST = _forward

        def do_CONNECT(self) -> None:
            self._record()
            host, _, port = self.path.rpartition(":")
            upstream = socket.create_connection((host, int(port)), timeout=10)
            self.send_response(200, "Connection established")
            self.end_headers()
            self.wfile.flush()
            _pipe(self.connection, upstream)
            upstream.close()
            self.close_connection = True

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    yield state
    httpd.shutdown()
    httpd.server_close()


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_http_goes_through_the_http_proxy_with_the_absolute_url(server, proxy, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", proxy.url.replace("http://", "http://agent:p%40ss@"))
    with web.Session(server.url) as session:
        response = session.post("/api/v1/ingest/?x=1", content=b"report")
    assert response.json() == {"ok": True}
    assert proxy.lines == [f"POST {server.url}/api/v1/ingest/?x=1 HTTP/1.1"]
    assert proxy.auth == [_basic("agent", "p@ss")]
    assert [s.body for s in server.seen] == [b"report"]
    # The server never sees the proxy's credentials.
    assert "proxy-authorization" not in server.seen[0].headers


def test_all_proxy_serves_when_the_schemes_own_is_unset(server, proxy, monkeypatch):
    monkeypatch.setenv("ALL_PROXY", proxy.url.removeprefix("http://"))  # no scheme: http
    with web.Session(server.url) as session:
        session.get("/")
    assert proxy.lines == [f"GET {server.url}/ HTTP/1.1"] and proxy.auth == [None]


def test_no_proxy_sends_straight_to_the_server(server, proxy, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    with web.Session(server.url) as session:
        session.get("/")
    assert proxy.lines == [] and len(server.seen) == 1


def test_https_goes_through_a_connect_tunnel(tls_server, pki, proxy, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca_file))
    monkeypatch.setenv("HTTPS_PROXY", proxy.url.replace("http://", "http://agent:secret@"))
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # not this one: the URL is https
    with web.Session(tls_server.url) as session:
        for _ in range(2):
            assert session.get("/status/").json() == {"ok": True}
    hostport = tls_server.url.removeprefix("https://")
    assert proxy.lines == [f"CONNECT {hostport} HTTP/1.0"]  # one tunnel, kept alive
    assert proxy.auth == [_basic("agent", "secret")]
    assert [s.line for s in tls_server.seen] == ["GET /status/ HTTP/1.1"] * 2


@pytest.mark.parametrize(
    "value", ["http://agent:secret@proxy.test:port", "http://agent:secret@[::1:3128"]
)
def test_a_malformed_proxy_variable_is_a_transport_error_without_its_password(
    server, monkeypatch, value
):
    monkeypatch.setenv("HTTP_PROXY", value)
    with web.Session(server.url) as session, pytest.raises(web.TransportError) as raised:
        session.get("/")
    assert "proxy" in str(raised.value) and "secret" not in str(raised.value)
    assert server.seen == []


def test_an_unreachable_proxy_is_named_in_the_error(server, monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HTTP_PROXY", f"http://agent:secret@127.0.0.1:{port}")
    with web.Session(server.url) as session, pytest.raises(web.TransportError) as raised:
        session.get("/")
    message = str(raised.value)
    assert f"through the proxy http://127.0.0.1:{port}" in message and "secret" not in message


def test_a_proxy_that_is_not_http_is_refused_clearly(server, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "socks5://127.0.0.1:1080")
    with web.Session(server.url) as session, pytest.raises(web.TransportError, match="proxy"):
        session.get("/")
    assert server.seen == []
