"""Fetching `/metrics` over HTTP(S) the way Prometheus does: headers, auth, TLS, limits.

The scrape path's own HTTP/1.1 client (the wire layer is `scrape.http1`). A `ScrapeClients`
belongs to one scrape pool and holds what its targets share: the fixed request headers
(User-Agent, Accept, Accept-Encoding, auth), the TLS context, body size limit and redirect
policy. Each scrape loop gets a `TargetClient` from it, which owns the target's keep-alive
connection, the request bytes (built once) and the scrape timeout, and does one scrape per
`get()` call, sequentially.

Behaviour follows Prometheus 2.42's scraper (Go's ``net/http`` client under it):

* one keep-alive connection per target, reused across scrapes; when the server has closed
  it meanwhile (it is found closed, or ends without a byte of response to a request on a
  reused connection) the request is sent once more on a new connection;
* ``Accept-Encoding: gzip``; a gzip body is decompressed (several members too, as Go's
  reader does) and ``body_size_limit`` applies to the decompressed size: a body of the
  limit or more fails with ``body size limit exceeded``;
* redirects (301, 302, 303, 307, 308 with a Location, relative ones resolved) are followed
  up to 10 requests unless ``follow_redirects`` is off; the auth header goes with every
  request, also to another host, as Prometheus's round tripper adds it to each request;
* errors read as Prometheus shows them in ``lastError``: ``server returned HTTP status 404
  Not Found``, ``Get "<url>": context deadline exceeded``, ``Get "<url>": dial tcp
  127.0.0.1:1: connect: connection refused``;
* the timeout covers the whole scrape: connect, TLS handshake, redirects, full body.

Not supported: HTTP/2, proxies (``proxy_url``), cookies, a Referer on redirects, userinfo
in the target URL as credentials, and OAuth2.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import ssl
import urllib.parse
import weakref
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vigilops import __version__

from vigilops.tsdb.model import go_quote

from .http1 import BodyTooLarge, ConnectionDropped, ProtocolError, Response, ResponseReader
from .textparse import ACCEPT_HEADER

if TYPE_CHECKING:
    from .config import Authorization, BasicAuth, ScrapeConfig, TLSConfig

USER_AGENT = f"VigilOps/{__version__}"

#: Go's http.Client gives up on the 10th redirect response in a row.
MAX_REDIRECTS = 10
REDIRECT_STATUSES = frozenset((301, 302, 303, 307, 308))
DEFAULT_PORTS = {"http": 80, "https": 443}
#: Connections a target client keeps open: the target's own, plus ones to hosts its
#: redirects lead to. The least recently used one beyond this is closed.
MAX_CONNECTIONS_PER_TARGET = 4
#: How long `close` waits for a connection to finish closing (a TLS close_notify
#: exchange) before dropping it.
CLOSE_WAIT_S = 1.0
#: Bytes a request target may hold unescaped; anything else (space, non-ASCII) is
#: percent-encoded, as Go's url.URL.RequestURI does for a Location it follows.
_URL_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))

BODY_SIZE_LIMIT_EXCEEDED = "body size limit exceeded"


class ScrapeError(Exception):
    """A scrape failed; the message is what /api/v1/targets shows as lastError."""


def ssl_context(tls: TLSConfig | None) -> ssl.SSLContext | bool:
    """An SSL context for `tls`, or True (default verification) when there is none."""
    if tls is None:
        return True
    ctx = ssl.create_default_context(cafile=tls.ca_file or None)
    if tls.cert_file:
        ctx.load_cert_chain(tls.cert_file, tls.key_file or None)
    if tls.insecure_skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    versions = {
        "TLS10": ssl.TLSVersion.TLSv1,
        "TLS11": ssl.TLSVersion.TLSv1_1,
        "TLS12": ssl.TLSVersion.TLSv1_2,
        "TLS13": ssl.TLSVersion.TLSv1_3,
    }
    if tls.min_version:
        ctx.minimum_version = versions[tls.min_version]
    return ctx


def auth_header(basic: BasicAuth | None, authz: Authorization | None) -> dict[str, str]:
    """The Authorization header of a config's `basic_auth` or `authorization`, if any."""
    if basic is not None:
        token = base64.b64encode(f"{basic.username}:{basic.password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}
    if authz is not None and authz.credentials:
        return {"Authorization": f"{authz.type or 'Bearer'} {authz.credentials}"}
    return {}


def timeout_header_value(timeout_ms: int) -> str:
    """Seconds as Go's ``strconv.FormatFloat(s, 'f', -1, 64)`` writes them: ``10``, ``0.5``."""
    whole, frac = divmod(timeout_ms, 1000)
    return f"{whole}.{frac:03d}".rstrip("0") if frac else str(whole)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a connection goes: scheme, host (no brackets for IPv6) and port."""

    scheme: str
    host: str
    port: int

    def address(self) -> str:
        """``host:port``, IPv6 hosts bracketed, as Go prints a dial address."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class _RequestTarget:
    """A URL split into what a request needs."""

    endpoint: Endpoint
    host_header: str  # the URL's host[:port], IPv6 zone removed, non-ASCII names in IDNA
    path: str  # path and query, escaped, never empty

    @classmethod
    def parse(cls, url: str) -> _RequestTarget:
        """Raises ValueError with Go's text for URLs a request cannot be made to."""
        parts = urllib.parse.urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise ValueError(f"unsupported protocol scheme {go_quote(parts.scheme)}")
        host = parts.hostname or ""
        if not host:
            raise ValueError("http: no Host in request URL")
        port = parts.port or DEFAULT_PORTS[scheme]  # ValueError for a port out of range
        netloc = parts.netloc.rpartition("@")[2]
        if "%" in netloc and netloc.startswith("["):  # an IPv6 zone is not sent
            netloc = netloc[: netloc.index("%")] + netloc[netloc.index("]") :]
        if not netloc.isascii():
            netloc = netloc.encode("idna").decode("ascii")
        path = urllib.parse.quote(parts.path or "/", safe=_URL_SAFE)
        if parts.query:
            path += "?" + urllib.parse.quote(parts.query, safe=_URL_SAFE)
        return cls(Endpoint(scheme, host, port), netloc, path)


def _errno_text(exc: OSError) -> str:
    """Go's lower-case text of a socket error: ``connection refused``."""
    if exc.errno:
        text = os.strerror(exc.errno)
        return text[:1].lower() + text[1:]
    return str(exc)


def _connect_error_text(exc: OSError, ep: Endpoint) -> str:
    """How Go's dialer reports a failed connect or TLS handshake."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"tls: failed to verify certificate: {exc.verify_message or exc.reason}"
    if isinstance(exc, ssl.SSLError):
        return f"tls: {exc.reason or exc}"
    if isinstance(exc, socket.gaierror):
        reason = "no such host" if exc.errno in (socket.EAI_NONAME, socket.EAI_NODATA) else exc.strerror
        return f"dial tcp: lookup {ep.host}: {reason}"
    return f"dial tcp {ep.address()}: connect: {_errno_text(exc)}"


def gunzip(data: bytes, limit: int) -> bytes:
    """Decompress a gzip body (all its members, as Go's reader does).

    Raises ScrapeError with ``body size limit exceeded`` as soon as `limit` (0: none) bytes
    came out, and with Go's texts for a corrupt (``gzip: invalid header``) or truncated
    (``unexpected EOF``) stream. At most `limit` bytes are ever produced.
    """
    if not data:
        raise ScrapeError("EOF")  # Go's gzip.NewReader on an empty body
    out: list[bytes] = []
    total = 0
    rest = data
    while True:
        if rest[:2] != b"\x1f\x8b":
            raise ScrapeError("gzip: invalid header")
        d = zlib.decompressobj(31)
        try:
            chunk = d.decompress(rest, limit - total if limit > 0 else 0)
        except zlib.error as exc:
            raise ScrapeError(f"flate: corrupt input ({exc})") from None
        out.append(chunk)
        total += len(chunk)
        if limit > 0 and total >= limit:
            raise ScrapeError(BODY_SIZE_LIMIT_EXCEEDED)
        if not d.eof:
            raise ScrapeError("unexpected EOF")
        rest = d.unused_data
        if not rest:
            return out[0] if len(out) == 1 else b"".join(out)


class ScrapeClients:
    """The HTTP side of one scrape pool: settings shared by its targets' clients.

    `close` closes every connection of every client it made (on stop and config reload).
    """

    def __init__(self, cfg: ScrapeConfig) -> None:
        self.body_size_limit = max(cfg.body_size_limit, 0)
        self.follow_redirects = cfg.follow_redirects
        self._tls = cfg.tls_config
        self._ssl: ssl.SSLContext | None = None
        self._clients: weakref.WeakSet[TargetClient] = weakref.WeakSet()
        headers = {
            "User-Agent": USER_AGENT,
            "Accept": ACCEPT_HEADER,
            "Accept-Encoding": "gzip",
            **auth_header(cfg.basic_auth, cfg.authorization),
        }
        #: Go refuses to send a header value with a line break; so do we (no injection).
        self.header_error = next(
            (f"net/http: invalid header field value for {go_quote(k)}"
             for k, v in headers.items() if "\r" in v or "\n" in v or "\0" in v),
            "",
        )
        self._fixed_headers = "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode()

    def target(self, url: str, timeout_ms: int) -> TargetClient:
        """The client one scrape loop uses for `url` (its connection; no I/O yet)."""
        client = TargetClient(self, url, timeout_ms)
        self._clients.add(client)
        return client

    async def close(self) -> None:
        """Close all connections of all clients. Clients stay usable (they reconnect)."""
        await asyncio.gather(*(c.close() for c in list(self._clients)))

    def request_bytes(self, target: _RequestTarget, timeout_header: str) -> bytes:
        """A complete GET request for `target`, headers in Prometheus's set."""
        head = f"GET {target.path} HTTP/1.1\r\nHost: {target.host_header}\r\n".encode()
        tail = f"X-Prometheus-Scrape-Timeout-Seconds: {timeout_header}\r\n\r\n".encode()
        return head + self._fixed_headers + tail

    def ssl_for(self, ep: Endpoint) -> tuple[ssl.SSLContext, str] | None:
        """The TLS context and server name (SNI, certificate check) for an https endpoint;
        None for http. The context is made on first use and shared."""
        if ep.scheme != "https":
            return None
        if self._ssl is None:
            ctx = ssl_context(self._tls)
            self._ssl = ctx if isinstance(ctx, ssl.SSLContext) else ssl.create_default_context()
        name = self._tls.server_name if self._tls is not None and self._tls.server_name else ep.host
        return self._ssl, name


class TargetClient:
    """Scrapes one URL over a keep-alive connection; owned by one scrape loop.

    `get` is not reentrant: a loop scrapes its target sequentially. A timeout or
    cancellation in the middle of a scrape drops the connection (its state is unknown); the
    next scrape connects anew.
    """

    def __init__(self, clients: ScrapeClients, url: str, timeout_ms: int) -> None:
        self.url = url
        self._clients = clients
        self._timeout_s: float | None = timeout_ms / 1000 if timeout_ms > 0 else None
        self._timeout_header = timeout_header_value(timeout_ms)
        self._url_error = ""
        try:
            self._target: _RequestTarget | None = _RequestTarget.parse(url)
        except (ValueError, UnicodeError) as exc:
            self._target = None
            self._url_error = str(exc)
        self._request = b"" if self._target is None else clients.request_bytes(self._target, self._timeout_header)
        self._conns: dict[Endpoint, ResponseReader] = {}
        #: Aborted connections whose transports have not reported connection_lost yet.
        self._closing: set[asyncio.Future[None]] = set()
        #: The URL of the request in flight (the target's own or a redirect's): errors name it.
        self._hop_url = url

    async def get(self) -> tuple[bytes, str]:
        """One scrape: the body (decompressed) and the Content-Type of a 200 response.

        Raises ScrapeError, worded as Prometheus's lastError, for anything else.
        """
        if self._target is None:
            raise ScrapeError(f'Get "{self.url}": {self._url_error}')
        if self._clients.header_error:
            raise ScrapeError(f'Get "{self.url}": {self._clients.header_error}')
        self._hop_url = self.url
        try:
            async with asyncio.timeout(self._timeout_s):
                resp = await self._follow(self._target, self._request)
        except TimeoutError:
            raise ScrapeError(f'Get "{self._hop_url}": context deadline exceeded') from None
        if resp.status != 200:
            raise ScrapeError(f"server returned HTTP status {resp.status_text}")
        limit = self._clients.body_size_limit
        body = resp.body
        if resp.headers.get("content-encoding") == "gzip":
            body = gunzip(body, limit)
        elif limit and len(body) >= limit:
            raise ScrapeError(BODY_SIZE_LIMIT_EXCEEDED)
        return body, resp.headers.get("content-type", "")

    async def close(self) -> None:
        """Close this client's connections and wait until they are closed (a TLS
        connection gets `CLOSE_WAIT_S` for its close_notify exchange, then is dropped)."""
        conns = list(self._conns.values())
        self._conns.clear()
        for conn in conns:
            conn.close()
        waiting = [c.closed for c in conns if not c.closed.done()]
        if waiting:
            await asyncio.wait(waiting, timeout=CLOSE_WAIT_S)
            for conn in conns:
                if not conn.closed.done():
                    conn.abort()
                    self._closing.add(conn.closed)
        if self._closing:
            await asyncio.wait(list(self._closing), timeout=CLOSE_WAIT_S)

    # -- one scrape ----------------------------------------------------------------------
    async def _follow(self, target: _RequestTarget, request: bytes) -> Response:
        """Send the request and follow redirects like Go's http.Client."""
        clients = self._clients
        url = self.url
        for n in range(1, MAX_REDIRECTS + 1):
            resp = await self._exchange(target.endpoint, request)
            location = resp.headers.get("location")
            if resp.status not in REDIRECT_STATUSES or not location or not clients.follow_redirects:
                return resp
            if n == MAX_REDIRECTS:
                self._hop_url = location
                raise ScrapeError(f'Get "{location}": stopped after {MAX_REDIRECTS} redirects')
            try:
                url = urllib.parse.urljoin(url, location)
                target = _RequestTarget.parse(url)
            except (ValueError, UnicodeError) as exc:
                raise ScrapeError(f'Get "{location}": {exc}') from None
            self._hop_url = url
            request = clients.request_bytes(target, self._timeout_header)
        raise AssertionError("unreachable")

    async def _exchange(self, ep: Endpoint, request: bytes) -> Response:
        """One request and its response on the endpoint's connection, reconnecting once
        when a reused connection turns out to have been closed by the server."""
        conn = self._conns.get(ep)
        if conn is not None and not conn.usable():
            self._drop(ep)
            conn = None
        try:
            for attempt in (0, 1):
                if conn is None:
                    conn = await self._connect(ep)
                try:
                    resp = await conn.request(request, self._clients.body_size_limit)
                except ConnectionDropped as exc:
                    self._drop(ep)
                    if conn.requests > 1 and attempt == 0:
                        conn = None
                        continue  # the server closed an idle connection: send it again
                    raise ScrapeError(f'Get "{self._hop_url}": {exc}') from None
                if not resp.reusable:
                    self._drop(ep)
                return resp
        except BodyTooLarge:
            self._drop(ep)
            raise ScrapeError(BODY_SIZE_LIMIT_EXCEEDED) from None
        except ProtocolError as exc:
            self._drop(ep)
            raise ScrapeError(f'Get "{self._hop_url}": {exc}') from None
        except BaseException:  # timeout, cancellation: the response is half-read
            self._drop(ep)
            raise
        raise AssertionError("unreachable")

    async def _connect(self, ep: Endpoint) -> ResponseReader:
        try:
            tls = self._clients.ssl_for(ep)
        except (OSError, ValueError) as exc:
            raise ScrapeError(f'Get "{self._hop_url}": unable to load TLS configuration: {exc}') from None
        loop = asyncio.get_running_loop()
        try:
            if tls is None:
                _, conn = await loop.create_connection(ResponseReader, ep.host, ep.port)
            else:
                _, conn = await loop.create_connection(
                    ResponseReader, ep.host, ep.port, ssl=tls[0], server_hostname=tls[1]
                )
        except OSError as exc:
            raise ScrapeError(f'Get "{self._hop_url}": {_connect_error_text(exc, ep)}') from None
        if len(self._conns) >= MAX_CONNECTIONS_PER_TARGET:
            self._drop(next(iter(self._conns)))
        self._conns[ep] = conn
        return conn

    def _drop(self, ep: Endpoint) -> None:
        """Abort the endpoint's connection; `close` waits for it to be gone."""
        conn = self._conns.pop(ep, None)
        if conn is not None:
            conn.abort()
            if not conn.closed.done():
                self._closing.add(conn.closed)
                conn.closed.add_done_callback(self._closing.discard)

