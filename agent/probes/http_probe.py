"""HTTP(S) probe: status code, body regex, redirects, TLS certificate expiry, under one timeout.

Stdlib only (http.client, ssl, socket): the agent stays small. Redirects (301, 302, 303, 307,
308 with a Location) are followed by hand so they can be counted, at most ten as in Go's
client; `follow_redirects: false` makes the 3xx the final answer. The body is read up to
`BODY_LIMIT` bytes and matched as UTF-8 text.
"""

from __future__ import annotations

import http.client
import logging
import re
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from ..config import ProbeConfig
from .base import Deadline, ProbeError, ProbeResult, connect
from .tls import client_context, earliest_expiry, handshake, unverified_expiry

log = logging.getLogger("vigilops.agent")

MAX_REDIRECTS = 10
BODY_LIMIT = 1 << 20
USER_AGENT = "VigilOps-Probe/1.0"
_REDIRECTS = frozenset((301, 302, 303, 307, 308))


@dataclass
class _State:
    status_code: int = 0
    redirects: int = 0
    ssl: bool = False
    expiry: float | None = None
    regex_failed: bool = False


class HTTPProbe:
    def __init__(self, config: ProbeConfig) -> None:
        self.config = config
        self.regex = re.compile(config.body_regex) if config.body_regex is not None else None
        self._ctx: ssl.SSLContext | None = None

    def _context(self) -> ssl.SSLContext:
        if self._ctx is None:  # loads the trust store once, on the first https request
            self._ctx = client_context(self.config)
        return self._ctx

    def run(self) -> ProbeResult:
        start = time.monotonic()
        state = _State()
        error: str | None = None
        with Deadline(self.config.timeout) as deadline:
            try:
                error = self._probe(state, deadline)
            except (ProbeError, OSError, http.client.HTTPException, ValueError) as exc:
                error = (f"timeout after {self.config.timeout:g}s" if deadline.expired
                         else str(exc) if isinstance(exc, ProbeError)
                         else f"{type(exc).__name__}: {exc}")
        if error is not None:
            log.debug("probe %s failed: %s", self.config.name, error)
        return ProbeResult(error is None, time.monotonic() - start, time.time(),
                           status_code=state.status_code, redirects=state.redirects,
                           ssl=state.ssl, ssl_earliest_cert_expiry=state.expiry,
                           failed_due_to_regex=state.regex_failed, error=error)

    def _probe(self, state: _State, deadline: Deadline) -> str | None:
        """None on success, else why the probe failed; raises on transport errors."""
        url = self.config.target
        while True:
            status, location, body = self._request(url, state, deadline)
            state.status_code = status
            if self.config.follow_redirects and status in _REDIRECTS and location:
                state.redirects += 1
                if state.redirects > MAX_REDIRECTS:
                    return f"stopped after {MAX_REDIRECTS} redirects"
                url = urljoin(url, location)
                if urlsplit(url).scheme not in ("http", "https"):
                    return f"redirect to unsupported URL {url!r}"
                continue
            break
        codes = self.config.valid_status_codes
        if not (status in codes if codes else 200 <= status < 300):
            return f"unexpected status code {status}"
        if self.regex is not None and not self.regex.search(body.decode("utf-8", "replace")):
            state.regex_failed = True
            return f"body does not match {self.regex.pattern!r}"
        return None

    def _request(self, url: str, state: _State,
                 deadline: Deadline) -> tuple[int, str | None, bytes]:
        parts = urlsplit(url)
        https = parts.scheme == "https"
        host = parts.hostname or ""
        port = parts.port or (443 if https else 80)
        state.ssl = https
        sock: socket.socket = connect(host, port, deadline)
        if https:
            try:
                sock = handshake(sock, host, self._context(), deadline)
            except ssl.SSLCertVerificationError:
                state.expiry = unverified_expiry(host, port, deadline)
                raise
            state.expiry = earliest_expiry(sock)
        conn = http.client.HTTPConnection(host, port)
        conn.sock = sock
        resp: http.client.HTTPResponse | None = None
        try:
            path = parts.path or "/"
            conn.putrequest(self.config.method, f"{path}?{parts.query}" if parts.query else path,
                            skip_host=True, skip_accept_encoding=True)
            netloc = parts.netloc.rpartition("@")[2]
            conn.putheader("Host", netloc)
            conn.putheader("User-Agent", USER_AGENT)
            conn.putheader("Accept", "*/*")
            conn.putheader("Connection", "close")
            conn.endheaders()
            sock.settimeout(deadline.remaining())  # each read; the watchdog bounds the total
            resp = conn.getresponse()
            location = resp.getheader("Location")
            body = b""
            if self.config.method != "HEAD" and not (
                    self.config.follow_redirects and resp.status in _REDIRECTS and location):
                chunks: list[bytes] = []
                size = 0
                while size < BODY_LIMIT:
                    deadline.remaining()  # raises past the deadline; the watchdog ends a read
                    chunk = resp.read(min(65536, BODY_LIMIT - size))
                    if not chunk:
                        break
                    chunks.append(chunk)
                    size += len(chunk)
                body = b"".join(chunks)
            return resp.status, location, body
        finally:
            if resp is not None:
                resp.close()
            conn.close()
            deadline.close(sock)
