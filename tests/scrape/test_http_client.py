"""The scrape HTTP client against real servers on loopback: framing, gzip, limits, redirects,
errors, keep-alive and reconnects, TLS, auth."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aioserve import served

from vigilops.scrape.config import Authorization, BasicAuth, ScrapeConfig, TLSConfig, parse_config
from vigilops.scrape.http_client import ScrapeClients, ScrapeError, TargetClient, gunzip, timeout_header_value
from vigilops.scrape.manager import ScrapeManager
from vigilops.scrape.metrics import ScrapeMetrics
from vigilops.scrape.textparse import ACCEPT_HEADER
from vigilops.tsdb.db import DB

PAYLOAD = b"# TYPE up gauge\nup 1\n" + b"".join(b"metric_%d %d\n" % (i, i) for i in range(2000))
TEXT = "text/plain; version=0.0.4"


def config(**kw: object) -> ScrapeConfig:
    return ScrapeConfig(job_name="t", scrape_interval_ms=15_000, scrape_timeout_ms=10_000, **kw)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def clients(**kw: object) -> AsyncIterator[ScrapeClients]:
    pool = ScrapeClients(config(**kw))
    try:
        yield pool
    finally:
        await pool.close()


def ok(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    """A Content-Length framed response."""
    head = [f"HTTP/1.1 {status}", f"Content-Type: {TEXT}", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def chunked(body: bytes, size: int = 1000, *headers: str) -> bytes:
    pieces = [b"%x;ext=1\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size]) for i in range(0, len(body), size)]
    head = ["HTTP/1.1 200 OK", f"Content-Type: {TEXT}", "Transfer-Encoding: chunked", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + b"".join(pieces) + b"0\r\nX-Trailer: 1\r\n\r\n"


Respond = Callable[[bytes], Awaitable[bytes | None]]


class RawServer:
    """A loopback server answering each request head with bytes the test chooses.

    `respond` returns the bytes to write, or None to close the connection without a byte.
    With `close_after`, the connection is closed after each response; `split` writes a
    response in pieces that far apart (seconds), to exercise partial reads.
    """

    def __init__(self, respond: Respond, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> None:
        self.respond = respond
        self.tls = tls
        self.host = host
        self.close_after = False
        self.split = 0.0
        self.connections = 0
        self.requests: list[bytes] = []
        self.release = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> RawServer:
        self._server = await asyncio.start_server(self._handle, self.host, 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def url(self, path: str = "/metrics") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}{path}"

    async def stall(self) -> None:
        """Wait until the server stops (for handlers that never answer)."""
        await self.release.wait()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
                    break
                self.requests.append(head)
                out = await self.respond(head)
                if out is None:
                    break
                if self.split:
                    for i in range(0, len(out), 700):
                        writer.write(out[i : i + 700])
                        await asyncio.sleep(self.split)
                else:
                    writer.write(out)
                await writer.drain()
                if self.close_after:
                    break
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._writers.discard(writer)
            self._tasks.discard(task)

    async def stop(self) -> None:
        self.release.set()
        for w in list(self._writers):
            w.close()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)


@contextlib.asynccontextmanager
async def raw_server(respond: Respond, **kw: object) -> AsyncIterator[RawServer]:
    srv = await RawServer(respond, **kw).start()  # type: ignore[arg-type]
    try:
        yield srv
    finally:
        await srv.stop()


def always(response: bytes) -> Respond:
    async def respond(head: bytes) -> bytes | None:
        return response

    return respond


def header(head: bytes, name: str) -> str | None:
    for line in head.decode("latin-1").split("\r\n")[1:]:
        k, _, v = line.partition(":")
        if k.lower() == name.lower():
            return v.strip()
    return None


async def scrape_error(client: TargetClient) -> str:
    with pytest.raises(ScrapeError) as err:
        await client.get()
    return str(err.value)


# -- framing -------------------------------------------------------------------------------


async def test_content_length_body_request_headers_and_one_keep_alive_connection() -> None:
    async with raw_server(always(ok(PAYLOAD))) as srv, clients() as pool:
        client = pool.target(srv.url("/metrics?a=1&b=x%20y"), 500)
        for _ in range(3):
            assert await client.get() == (PAYLOAD, TEXT)
    assert srv.connections == 1 and len(srv.requests) == 3
    first = srv.requests[0].decode()
    assert first.startswith("GET /metrics?a=1&b=x%20y HTTP/1.1\r\n")
    assert header(srv.requests[0], "Host") == f"127.0.0.1:{srv.port}"
    assert (header(srv.requests[0], "User-Agent") or "").startswith("VigilOps/")
    assert header(srv.requests[0], "Accept") == ACCEPT_HEADER
    assert header(srv.requests[0], "Accept-Encoding") == "gzip"
    assert header(srv.requests[0], "X-Prometheus-Scrape-Timeout-Seconds") == "0.5"
    assert header(srv.requests[0], "Authorization") is None


def test_timeout_header_is_written_like_go() -> None:
    assert [timeout_header_value(ms) for ms in (10_000, 500, 1_250, 86_400_001, 1)] == [
        "10", "0.5", "1.25", "86400.001", "0.001",
    ]


async def test_body_arriving_in_pieces_with_content_length_and_chunked() -> None:
    for response in (ok(PAYLOAD), chunked(PAYLOAD, 333)):
        async with raw_server(always(response)) as srv, clients() as pool:
            srv.split = 0.001
            client = pool.target(srv.url(), 5_000)
            assert await client.get() == (PAYLOAD, TEXT)
            assert await client.get() == (PAYLOAD, TEXT)
        assert srv.connections == 1


async def test_chunked_body_from_aiohttp_and_gzip_from_aiohttp() -> None:
    async def streamed(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": TEXT})
        if request.query.get("gzip"):
            resp.enable_compression()
        await resp.prepare(request)
        for i in range(0, len(PAYLOAD), 4096):
            await resp.write(PAYLOAD[i : i + 4096])
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_get("/metrics", streamed)
    async with served(app) as port, clients() as pool:
        assert await pool.target(f"http://127.0.0.1:{port}/metrics", 5_000).get() == (PAYLOAD, TEXT)
        gz = pool.target(f"http://127.0.0.1:{port}/metrics?gzip=1", 5_000)
        assert await gz.get() == (PAYLOAD, TEXT)
        assert await gz.get() == (PAYLOAD, TEXT)


async def test_gzip_body_is_decompressed_including_several_members() -> None:
    one = gzip.compress(PAYLOAD)
    two = gzip.compress(PAYLOAD[:1000]) + gzip.compress(PAYLOAD[1000:])
    for body in (one, two):
        async with raw_server(always(ok(body, "Content-Encoding: gzip"))) as srv, clients() as pool:
            assert await pool.target(srv.url(), 5_000).get() == (PAYLOAD, TEXT)
    # A gzipped chunked body too.
    async with raw_server(always(chunked(one, 100, "Content-Encoding: gzip"))) as srv, clients() as pool:
        assert await pool.target(srv.url(), 5_000).get() == (PAYLOAD, TEXT)


async def _fetch_twice(response: bytes, close_after: bool = False) -> int:
    """Serve `response` to every request, scrape it twice (both must return the payload)
    and return how many connections the server saw."""
    async with raw_server(always(response)) as srv, clients() as pool:
        srv.close_after = close_after
        client = pool.target(srv.url(), 5_000)
        assert await client.get() == (PAYLOAD, TEXT)
        assert await client.get() == (PAYLOAD, TEXT)
    return srv.connections


async def test_close_delimited_and_http10_bodies() -> None:
    close_delimited = f"HTTP/1.1 200 OK\r\nContent-Type: {TEXT}\r\n\r\n".encode() + PAYLOAD
    http10 = f"HTTP/1.0 200 OK\r\nContent-Type: {TEXT}\r\nContent-Length: {len(PAYLOAD)}\r\n\r\n".encode() + PAYLOAD
    for response in (close_delimited, http10):
        assert await _fetch_twice(response, close_after=True) == 2


async def test_a_head_with_bare_lf_line_ends_is_accepted_like_go() -> None:
    response = f"HTTP/1.1 200 OK\nContent-Type: {TEXT}\nContent-Length: {len(PAYLOAD)}\n\n".encode() + PAYLOAD
    assert await _fetch_twice(response) == 1


async def test_interim_responses_are_skipped_and_connection_close_is_obeyed() -> None:
    response = b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n" + ok(PAYLOAD, "Connection: close")
    assert await _fetch_twice(response, close_after=True) == 2


# -- limits --------------------------------------------------------------------------------


async def test_body_size_limit_like_prometheus_a_body_of_the_limit_fails() -> None:
    n = len(PAYLOAD)
    for response in (ok(PAYLOAD), chunked(PAYLOAD, 500)):
        async with raw_server(always(response)) as srv:
            async with clients(body_size_limit=n) as pool:
                client = pool.target(srv.url(), 5_000)
                assert await scrape_error(client) == "body size limit exceeded"
                assert await scrape_error(client) == "body size limit exceeded"
            async with clients(body_size_limit=n + 1) as pool:
                assert await pool.target(srv.url(), 5_000).get() == (PAYLOAD, TEXT)


async def test_body_size_limit_applies_to_the_decompressed_size() -> None:
    body = gzip.compress(PAYLOAD)
    assert len(body) * 2 < len(PAYLOAD)
    async with raw_server(always(ok(body, "Content-Encoding: gzip"))) as srv:
        async with clients(body_size_limit=len(body) * 2) as pool:
            assert await scrape_error(pool.target(srv.url(), 5_000)) == "body size limit exceeded"
        async with clients(body_size_limit=len(PAYLOAD)) as pool:
            assert await scrape_error(pool.target(srv.url(), 5_000)) == "body size limit exceeded"
        async with clients(body_size_limit=len(PAYLOAD) + 1) as pool:
            assert await pool.target(srv.url(), 5_000).get() == (PAYLOAD, TEXT)


def test_gunzip_never_produces_more_than_the_limit_and_reports_bad_streams() -> None:
    bomb = gzip.compress(b"\0" * (50 << 20))
    with pytest.raises(ScrapeError, match="^body size limit exceeded$"):
        gunzip(bomb, 1 << 20)
    with pytest.raises(ScrapeError, match="^gzip: invalid header$"):
        gunzip(b"plain text", 0)
    with pytest.raises(ScrapeError, match="^unexpected EOF$"):
        gunzip(gzip.compress(PAYLOAD)[:-20], 0)
    with pytest.raises(ScrapeError, match="^gzip: invalid header$"):
        gunzip(gzip.compress(PAYLOAD) + b"junk", 0)
    with pytest.raises(ScrapeError, match="^flate: corrupt input"):
        gunzip(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + b"\xff" * 30, 0)


# -- redirects -----------------------------------------------------------------------------


async def test_redirects_relative_and_absolute_across_servers() -> None:
    async with raw_server(always(ok(PAYLOAD))) as final:
        async def respond(head: bytes) -> bytes | None:
            path = head.split(b" ")[1]
            if path == b"/metrics":
                return b"HTTP/1.1 301 Moved Permanently\r\nLocation: next?x=1\r\nContent-Length: 0\r\n\r\n"
            if path == b"/next?x=1":
                return b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /third\r\nContent-Length: 5\r\n\r\nhello"
            return f"HTTP/1.1 302 Found\r\nLocation: {final.url('/final')}\r\nContent-Length: 0\r\n\r\n".encode()

        async with raw_server(respond) as first, clients() as pool:
            client = pool.target(first.url(), 5_000)
            assert await client.get() == (PAYLOAD, TEXT)
            assert await client.get() == (PAYLOAD, TEXT)
        assert [r.split(b" ")[1] for r in first.requests] == [b"/metrics", b"/next?x=1", b"/third"] * 2
        assert first.connections == 1 and final.connections == 1
        assert header(final.requests[0], "Host") == f"127.0.0.1:{final.port}"


async def test_ten_redirects_are_too_many_and_follow_redirects_false_stops_at_the_first() -> None:
    async def respond(head: bytes) -> bytes | None:
        n = int(head.split(b" ")[1].rsplit(b"/", 1)[1])
        if n == 0:
            return ok(PAYLOAD)
        return f"HTTP/1.1 302 Found\r\nLocation: /r/{n - 1}\r\nContent-Length: 0\r\n\r\n".encode()

    async with raw_server(respond) as srv, clients() as pool:
        assert await pool.target(srv.url("/r/9"), 5_000).get() == (PAYLOAD, TEXT)
        assert await scrape_error(pool.target(srv.url("/r/10"), 5_000)) == 'Get "/r/0": stopped after 10 redirects'
    async with raw_server(respond) as srv, clients(follow_redirects=False) as pool:
        assert await scrape_error(pool.target(srv.url("/r/1"), 5_000)) == "server returned HTTP status 302 Found"


# -- errors --------------------------------------------------------------------------------


async def test_non_200_statuses_read_as_prometheus_shows_them() -> None:
    async def respond(head: bytes) -> bytes | None:
        path = head.split(b" ")[1]
        if path == b"/404":
            return ok(b"not found\n", status="404 Not Found")
        if path == b"/500":
            return b"HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nerror\r\n0\r\n\r\n"
        if path == b"/418":
            return b"HTTP/1.1 418\r\nContent-Length: 0\r\n\r\n"
        return ok(PAYLOAD)

    async with raw_server(respond) as srv, clients() as pool:
        assert await scrape_error(pool.target(srv.url("/404"), 5_000)) == "server returned HTTP status 404 Not Found"
        assert await scrape_error(pool.target(srv.url("/500"), 5_000)) == (
            "server returned HTTP status 500 Internal Server Error"
        )
        assert await scrape_error(pool.target(srv.url("/418"), 5_000)) == "server returned HTTP status 418"
        # A small error body is read, so the connection serves the next scrape.
        client = pool.target(srv.url("/404"), 5_000)
        await scrape_error(client)
        before = srv.connections
        await scrape_error(client)
        assert srv.connections == before


async def test_timeout_covers_a_stalled_head_and_a_stalled_body() -> None:
    async def respond(head: bytes) -> bytes | None:
        if head.startswith(b"GET /body"):
            return ok(PAYLOAD)[:-100]  # ... and the rest never comes
        await srv.stall()
        return None

    async with raw_server(respond) as srv, clients() as pool:
        for path in ("/head", "/body"):
            client = pool.target(srv.url(path), 200)
            t0 = time.monotonic()
            assert await scrape_error(client) == f'Get "{srv.url(path)}": context deadline exceeded'
            assert 0.15 < time.monotonic() - t0 < 2


async def test_connect_timeout_against_a_full_listen_backlog_is_a_deadline() -> None:
    # A server that accepts nothing: the handshake may still complete (backlog) but nothing
    # answers; either way the scrape ends at its deadline.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(0)
        url = f"http://127.0.0.1:{s.getsockname()[1]}/metrics"
        async with clients() as pool:
            assert await scrape_error(pool.target(url, 200)) == f'Get "{url}": context deadline exceeded'


async def test_connection_refused_and_unknown_host_texts() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/metrics"
    async with clients() as pool:
        assert await scrape_error(pool.target(url, 5_000)) == (
            f'Get "{url}": dial tcp 127.0.0.1:{port}: connect: connection refused'
        )
        bad = "http://no-such-host.invalid:9100/metrics"
        assert (await scrape_error(pool.target(bad, 5_000))).startswith(
            f'Get "{bad}": dial tcp: lookup no-such-host.invalid'
        )
        assert await scrape_error(pool.target("ftp://x/metrics", 5_000)) == (
            'Get "ftp://x/metrics": unsupported protocol scheme "ftp"'
        )


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (b"garbage\r\n\r\n", 'malformed HTTP response "garbage"'),
        (b"SPDY/3 200 OK\r\n\r\n", 'malformed HTTP version "SPDY/3"'),
        (b"HTTP/1.1 2000 OK\r\n\r\n", 'malformed HTTP status code "2000"'),
        (b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", 'malformed MIME header line: "no colon"'),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\n", 'bad Content-Length "12x"'),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n", "message cannot contain multiple Content-Length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 'unsupported transfer encoding: "gzip"'),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "invalid byte in chunk length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", "empty hex number for chunk length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", "malformed chunked encoding"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1" * 5000, "chunk length line too long"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", "unexpected EOF"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", "unexpected EOF"),
        (b"HTTP/1.1 200", "unexpected EOF"),
    ],
)
async def test_malformed_responses_are_scrape_errors(response: bytes, error: str) -> None:
    async with raw_server(always(response)) as srv, clients() as pool:
        srv.close_after = True
        client = pool.target(srv.url(), 5_000)
        assert (await scrape_error(client)).startswith(f'Get "{srv.url()}": {error}')
        assert (await scrape_error(client)).startswith(f'Get "{srv.url()}": {error}')


async def test_gzip_errors_and_an_oversized_head() -> None:
    responses = {
        b"/gz": ok(b"not gzip", "Content-Encoding: gzip"),
        b"/head": b"HTTP/1.1 200 OK\r\n" + b"X: " + b"y" * (2 << 20),
    }

    async def respond(head: bytes) -> bytes | None:
        return responses[head.split(b" ")[1]]

    async with raw_server(respond) as srv, clients() as pool:
        assert await scrape_error(pool.target(srv.url("/gz"), 5_000)) == "gzip: invalid header"
        assert (await scrape_error(pool.target(srv.url("/head"), 5_000))).endswith(
            "server response headers exceeded 1048576 bytes; aborted"
        )


# -- keep-alive ----------------------------------------------------------------------------


async def test_server_closing_an_idle_keep_alive_connection_is_reconnected() -> None:
    async with raw_server(always(ok(PAYLOAD))) as srv, clients() as pool:
        srv.close_after = True  # closes after each response, without saying so
        client = pool.target(srv.url(), 5_000)
        for _ in range(3):
            assert await client.get() == (PAYLOAD, TEXT)
            await asyncio.sleep(0.05)  # the close arrives while idle
    assert srv.connections == 3


async def test_request_on_a_connection_the_server_just_closed_is_sent_once_more() -> None:
    # The race: the server takes the next request on the kept-alive connection, then closes
    # it without a byte (as when its idle timeout fires just then). The request is retried
    # once on a new connection.
    served: dict[int, int] = {}

    async def respond(head: bytes) -> bytes | None:
        conn = srv.connections
        served[conn] = served.get(conn, 0) + 1
        return ok(PAYLOAD) if served[conn] == 1 else None

    async with raw_server(respond) as srv, clients() as pool:
        client = pool.target(srv.url(), 5_000)
        for _ in range(3):
            assert await client.get() == (PAYLOAD, TEXT)
    assert srv.connections == 3 and len(srv.requests) == 5


async def test_a_new_connection_closed_without_a_response_is_not_retried() -> None:
    async def respond(head: bytes) -> bytes | None:
        return None

    async with raw_server(respond) as srv, clients() as pool:
        assert await scrape_error(pool.target(srv.url(), 5_000)) == f'Get "{srv.url()}": EOF'
    assert srv.connections == 1


async def test_closing_the_pool_closes_connections_and_clients_reconnect_after() -> None:
    async with raw_server(always(ok(PAYLOAD))) as srv:
        pool = ScrapeClients(config())
        a, b = pool.target(srv.url("/a"), 5_000), pool.target(srv.url("/b"), 5_000)
        await a.get()
        await b.get()
        await pool.close()
        await asyncio.sleep(0.05)
        assert srv.connections == 2 and not srv._writers  # the server saw both close
        await a.get()
        await a.close()
    assert srv.connections == 3


# -- auth, TLS, IPv6 ------------------------------------------------------------------------


async def test_basic_auth_and_authorization_headers() -> None:
    async with raw_server(always(ok(PAYLOAD))) as srv:
        async with clients(basic_auth=BasicAuth("user", "pa:ss")) as pool:
            await pool.target(srv.url(), 5_000).get()
        async with clients(authorization=Authorization("Bearer", "tok")) as pool:
            await pool.target(srv.url(), 5_000).get()
        async with clients(authorization=Authorization("Bearer", "tok\r\nX-Evil: 1")) as pool:
            assert await scrape_error(pool.target(srv.url(), 5_000)) == (
                f'Get "{srv.url()}": net/http: invalid header field value for "Authorization"'
            )
    assert [header(r, "Authorization") for r in srv.requests] == ["Basic dXNlcjpwYTpzcw==", "Bearer tok"]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for localhost and 127.0.0.1."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not installed")
    d: Path = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-days", "2", "-nodes", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return str(cert), str(key)


async def test_tls_verification_server_name_and_insecure_skip_verify(certificate: tuple[str, str]) -> None:
    cert, key = certificate
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    async with raw_server(always(ok(PAYLOAD)), tls=server_ctx) as srv:
        url = srv.url()
        async with clients() as pool:
            assert (await scrape_error(pool.target(url, 5_000))).startswith(
                f'Get "{url}": tls: failed to verify certificate: self-signed certificate'
            )
        async with clients(tls_config=TLSConfig(ca_file=cert)) as pool:
            client = pool.target(url, 5_000)
            assert await client.get() == (PAYLOAD, TEXT)
            assert await client.get() == (PAYLOAD, TEXT)
        async with clients(tls_config=TLSConfig(ca_file=cert, server_name="localhost")) as pool:
            assert await pool.target(url, 5_000).get() == (PAYLOAD, TEXT)
        async with clients(tls_config=TLSConfig(ca_file=cert, server_name="other.example")) as pool:
            assert "certificate" in await scrape_error(pool.target(url, 5_000))
        async with clients(tls_config=TLSConfig(insecure_skip_verify=True)) as pool:
            assert await pool.target(url, 5_000).get() == (PAYLOAD, TEXT)
    # One connection per client that got through the handshake and served two scrapes.
    assert len(srv.requests) == 4


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback")
async def test_ipv6_literal_host() -> None:
    async with raw_server(always(ok(PAYLOAD)), host="::1") as srv, clients() as pool:
        assert await pool.target(srv.url(), 5_000).get() == (PAYLOAD, TEXT)
    assert header(srv.requests[0], "Host") == f"[::1]:{srv.port}"


# -- the scrape manager's use -----------------------------------------------------------------


async def test_manager_scrapes_over_one_connection_and_closes_it_on_reload_and_stop(tmp_path: Path) -> None:
    def cfg(interval: str) -> str:
        return (f"scrape_configs:\n  - job_name: j\n    scrape_interval: {interval}\n    scrape_timeout: 100ms\n"
                f"    static_configs: [{{targets: ['127.0.0.1:{srv.port}']}}]\n")

    async def until(cond: Callable[[], bool]) -> None:
        for _ in range(200):
            if cond():
                return
            await asyncio.sleep(0.02)
        raise AssertionError("condition not reached")

    async with raw_server(always(ok(PAYLOAD))) as srv:
        with DB.open(str(tmp_path / "data")) as db:
            manager = ScrapeManager(db, ScrapeMetrics(None))
            try:
                await manager.apply_config(parse_config(cfg("100ms")))
                await until(lambda: len(srv.requests) >= 3)
                (loop,) = manager.active()
                assert loop.status.health == "up", loop.status.last_error
                assert srv.connections == 1
                # A changed job restarts its loops: the old connection is closed.
                await manager.apply_config(parse_config(cfg("150ms")))
                await until(lambda: srv.connections == 2 and len(srv._writers) == 1)
            finally:
                await manager.stop()
            await until(lambda: not srv._writers)
