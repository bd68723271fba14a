"""The wire layer of the scrape client: one HTTP/1.1 connection as an `asyncio.Protocol`.

`ResponseReader.request` writes a request that the caller built (the whole byte string,
ready to send) and returns a future of its `Response`. Incoming data is appended to one
bytearray; the response head (status line and headers) is parsed once, when its blank line
has arrived; the body is then framed by ``Content-Length`` (the common case, where each
`data_received` only compares the buffer length with the expected end), by the ``chunked``
transfer coding, or by the server closing the connection. Nothing is decoded here but the
transfer coding: a ``Content-Encoding`` such as gzip is the caller's to undo.

Scope: responses to GET requests sent one at a time (no pipelining); ``1xx`` interim
responses are skipped; ``HTTP/1.0`` and ``HTTP/1.1`` servers. Failures surface as
`ProtocolError` (a malformed or truncated response; messages in the words of Go's
``net/http``, which Prometheus users see) or `ConnectionDropped` (the connection ended
before a single byte of the response: the request may never have reached the server, so
the caller may retry it on a new connection).

Not thread-safe; one request at a time per connection.
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass
from typing import cast

from vigilops.tsdb.model import go_quote

#: A response head longer than this is refused (Go's default is 1 MiB too:
#: ``http.DefaultMaxHeaderBytes``), so a server cannot make us buffer without end.
MAX_HEAD_BYTES = 1 << 20
#: Longest chunk-size line accepted (size, extensions, line end), like Go's 4 KiB.
MAX_CHUNK_LINE_BYTES = 4096
#: A non-200 response whose body is framed by a Content-Length up to this size is read to
#: its end, so that its connection can carry the next request (e.g. a redirect to the same
#: host). Larger or otherwise framed bodies of such responses are not read: the response is
#: complete with its head and the connection is not reused.
MAX_DRAINED_BODY_BYTES = 64 << 10

_IDLE, _HEAD, _LENGTH, _CHUNKED, _UNTIL_CLOSE = range(5)
_HEX_SIZE = re.compile(rb"[0-9a-fA-F]{1,16}")
_DIGITS = re.compile(r"[0-9]+")
_VERSION = re.compile(r"HTTP/[0-9]\.[0-9]")


class ProtocolError(Exception):
    """The server sent something that is not a valid HTTP/1.x response, or the connection
    broke in the middle of one. The message is Go's wording where Go has one."""


class BodyTooLarge(Exception):
    """An identity-coded 200 response body reached the size limit (`ResponseReader.request`)."""


class ConnectionDropped(Exception):
    """The connection ended (EOF or reset) before any byte of the response arrived, or was
    already closed when the request was to be sent. The message is Go's: ``EOF`` or the
    socket error."""


@dataclass(slots=True)
class Response:
    """One complete response.

    `status_text` is the status line after the version, as the server wrote it (Go's
    ``Response.Status``, e.g. ``404 Not Found``). Header names are lower-cased; repeated
    headers are joined with ``", "``. `body` has the transfer coding removed and the
    content coding kept; it is empty for a non-200 response whose body was not read.
    `reusable` says whether the connection may carry another request.
    """

    status: int
    status_text: str
    headers: dict[str, str]
    body: bytes
    reusable: bool


def _socket_error_text(exc: BaseException) -> str:
    """Go's text for a read error: ``read: connection reset by peer``."""
    if isinstance(exc, OSError) and exc.errno:
        text = os.strerror(exc.errno)
        return "read: " + text[:1].lower() + text[1:]
    return str(exc) or type(exc).__name__


def _parse_head(block: bytes) -> tuple[int, str, dict[str, str], bool]:
    """(status code, status text, headers, HTTP/1.0) of a response head without its blank
    line. Accepts bare ``\\n`` line ends and folded header lines, like Go."""
    lines = block.split(b"\n")
    status_line = lines[0].rstrip(b"\r").decode("latin-1")
    version, sep, status = status_line.partition(" ")
    if not sep:
        raise ProtocolError(f"malformed HTTP response {go_quote(status_line)}")
    if not _VERSION.fullmatch(version):
        raise ProtocolError(f"malformed HTTP version {go_quote(version)}")
    status = status.lstrip(" ")
    code = status.partition(" ")[0]
    if len(code) != 3 or not code.isdigit():
        raise ProtocolError(f"malformed HTTP status code {go_quote(code)}")
    headers: dict[str, str] = {}
    name = ""
    for raw in lines[1:]:
        line = raw.rstrip(b"\r").decode("latin-1")
        if line[:1] in (" ", "\t"):  # obsolete line folding: part of the previous value
            if not name:
                raise ProtocolError(f"malformed MIME header initial line: {go_quote(line)}")
            headers[name] = f"{headers[name]} {line.strip()}"
            continue
        key, colon, value = line.partition(":")
        if not colon or not key or key != key.strip():
            raise ProtocolError(f"malformed MIME header line: {go_quote(line)}")
        name = key.lower()
        value = value.strip(" \t")
        old = headers.get(name)
        headers[name] = value if old is None else f"{old}, {value}"
    return int(code), status, headers, version == "HTTP/1.0"


def _keep_alive(headers: dict[str, str], http10: bool) -> bool:
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    return "keep-alive" in tokens if http10 else "close" not in tokens


def _content_length(headers: dict[str, str]) -> int:
    """The Content-Length (-1: none). Repeated equal values are one value, as in Go."""
    raw = headers.get("content-length")
    if raw is None:
        return -1
    values = {v.strip() for v in raw.split(",")}
    if len(values) != 1:
        raise ProtocolError(f'message cannot contain multiple Content-Length headers; got "{raw}"')
    (value,) = values
    if not _DIGITS.fullmatch(value):
        raise ProtocolError(f'bad Content-Length "{value}"')
    return int(value)


class ResponseReader(asyncio.Protocol):
    """One client connection: send a request, read its response; repeat while reusable.

    `closed` resolves when the connection is gone (`connection_lost`); `requests` counts the
    requests written to it, so a caller can tell a fresh connection from a reused one.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.requests = 0
        self._buf = bytearray()
        self._mode = _IDLE
        self._waiter: asyncio.Future[Response] | None = None
        self._body_limit = 0
        self._received = False
        # The response being read.
        self._status = 0
        self._status_text = ""
        self._headers: dict[str, str] = {}
        self._keep_alive = False
        self._pos = 0  # start of the body (length, close) or of the next chunk line
        self._end = 0  # end of a Content-Length body in the buffer
        self._limit = 0  # identity body size limit for this response (0: none)
        self._discard = False  # the body is read only to keep the connection
        self._parts: list[bytes] = []
        self._size = 0
        self._trailer = False

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        mode = self._mode
        if mode == _LENGTH:  # the usual case: wait until the whole body is here
            if len(buf) >= self._end:
                self._finish_length()
            return
        if mode == _IDLE:  # unsolicited bytes: the connection's state is unknown
            self.abort()
            return
        self._received = True
        try:
            self._advance()
        except (ProtocolError, BodyTooLarge) as exc:
            self._fail(exc)

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost finishes or fails the response

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self.closed.done():
            self.closed.set_result(None)
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._mode == _UNTIL_CLOSE:
            self._complete(bytes(memoryview(self._buf)[self._pos :]), reusable=False)
        elif self._mode == _HEAD and not self._received:
            waiter.set_exception(ConnectionDropped("EOF" if exc is None else _socket_error_text(exc)))
        else:
            waiter.set_exception(ProtocolError("unexpected EOF" if exc is None else _socket_error_text(exc)))
        self._mode = _IDLE

    # -- the caller's side ---------------------------------------------------------------
    def usable(self) -> bool:
        """Open, and idle: no response in progress or left half-read."""
        t = self.transport
        return t is not None and not t.is_closing() and self._mode == _IDLE

    def request(self, data: bytes, body_limit: int = 0) -> asyncio.Future[Response]:
        """Write `data` (a complete request) and return the future of its response.

        `body_limit` (0: none) applies to the body of a 200 response that has no
        ``Content-Encoding``: once it is known to be at least that long, the future fails
        with `BodyTooLarge` and the connection is left unusable. Raises `ConnectionDropped`
        when the connection is already closed (nothing was sent).
        """
        transport = self.transport
        if transport is None or transport.is_closing():
            raise ConnectionDropped("EOF")
        if self._mode != _IDLE:
            raise RuntimeError("a request is already in progress on this connection")
        waiter: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        self._body_limit = body_limit
        self._received = False
        self._mode = _HEAD
        self.requests += 1
        transport.write(data)
        return waiter

    def close(self) -> None:
        """Close the connection (gracefully; TLS sends its close_notify)."""
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Drop the connection at once, e.g. after a timeout in the middle of a response."""
        self._mode = _IDLE
        if self.transport is not None:
            self.transport.abort()

    # -- parsing -------------------------------------------------------------------------
    def _advance(self) -> None:
        buf = self._buf
        while self._mode == _HEAD:
            end = buf.find(b"\r\n\r\n")
            skip = 4
            # A head with bare LF line ends (Go accepts them) ends at the first "\n\n";
            # look for one only before the CRLF end, not through the whole body.
            bare = buf.find(b"\n\n", 0, end if end >= 0 else len(buf))
            if bare >= 0:
                end, skip = bare, 2
            if end < 0:
                if len(buf) > MAX_HEAD_BYTES:
                    raise ProtocolError(f"server response headers exceeded {MAX_HEAD_BYTES} bytes; aborted")
                return
            status, text, headers, http10 = _parse_head(bytes(buf[:end]))
            head_end = end + skip
            if 100 <= status < 200 and status != 101:  # interim response: the real one follows
                del buf[:head_end]
                continue
            self._start_body(status, text, headers, http10, head_end)
        if self._mode == _CHUNKED:
            self._read_chunks()
        elif self._mode == _UNTIL_CLOSE:
            if self._limit and len(buf) - self._pos >= self._limit:
                raise BodyTooLarge()

    def _start_body(self, status: int, text: str, headers: dict[str, str], http10: bool, head_end: int) -> None:
        self._status, self._status_text, self._headers = status, text, headers
        self._keep_alive = _keep_alive(headers, http10)
        self._pos = head_end
        ok = status == 200
        self._discard = not ok
        self._limit = self._body_limit if ok and "content-encoding" not in headers else 0
        if status in (204, 304):
            self._finish_empty()
            return
        if status == 101:  # the connection now speaks another protocol
            self._finish_empty(reusable=False)
            return
        te = headers.get("transfer-encoding")
        if te is not None:
            if te.strip().lower() != "chunked":
                raise ProtocolError(f'unsupported transfer encoding: "{te}"')
            if not ok:
                self._finish_empty(reusable=False)
                return
            self._mode = _CHUNKED
            self._parts = []
            self._size = 0
            self._trailer = False
            return
        length = _content_length(headers)
        if length < 0:
            if not ok:
                self._finish_empty(reusable=False)
                return
            self._mode = _UNTIL_CLOSE
            return
        if not ok and length > MAX_DRAINED_BODY_BYTES:
            self._finish_empty(reusable=False)
            return
        if self._limit and length >= self._limit:
            raise BodyTooLarge()
        self._end = head_end + length
        self._mode = _LENGTH
        if len(self._buf) >= self._end:
            self._finish_length()

    def _read_chunks(self) -> None:
        buf = self._buf
        pos = self._pos
        while True:
            nl = buf.find(b"\n", pos)
            if nl < 0:
                if len(buf) - pos > MAX_CHUNK_LINE_BYTES:
                    raise ProtocolError("header line too long" if self._trailer else "chunk length line too long")
                self._pos = pos
                return
            line = bytes(buf[pos:nl]).rstrip(b"\r")
            if self._trailer:  # trailer fields until the blank line; ignored
                pos = nl + 1
                if not line:
                    body = b"".join(self._parts)
                    self._pos = pos
                    self._complete(b"" if self._discard else body, reusable=self._keep_alive and len(buf) == pos)
                    return
                continue
            digits = line.partition(b";")[0].rstrip(b" \t")
            if not _HEX_SIZE.fullmatch(digits):
                raise ProtocolError("invalid byte in chunk length" if digits else "empty hex number for chunk length")
            size = int(digits, 16)
            if size == 0:
                self._trailer = True
                pos = nl + 1
                continue
            start = nl + 1
            end = start + size
            if len(buf) < end + 2:
                self._pos = pos
                return
            if buf[end : end + 2] != b"\r\n":
                raise ProtocolError("malformed chunked encoding")
            self._parts.append(bytes(memoryview(buf)[start:end]))
            self._size += size
            if self._limit and self._size >= self._limit:
                raise BodyTooLarge()
            pos = end + 2

    # -- completion ----------------------------------------------------------------------
    def _finish_length(self) -> None:
        buf, end = self._buf, self._end
        body = b"" if self._discard else bytes(memoryview(buf)[self._pos : end])
        self._complete(body, reusable=self._keep_alive and len(buf) == end)

    def _finish_empty(self, reusable: bool = True) -> None:
        self._complete(b"", reusable=reusable and self._keep_alive and len(self._buf) == self._pos)

    def _complete(self, body: bytes, reusable: bool) -> None:
        self._mode = _IDLE
        self._buf = bytearray()
        self._parts = []
        waiter = self._waiter
        self._waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_result(Response(self._status, self._status_text, self._headers, body, reusable))

    def _fail(self, exc: Exception) -> None:
        waiter = self._waiter
        self._waiter = None
        self.abort()
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
