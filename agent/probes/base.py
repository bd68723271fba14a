"""What a probe returns, and the deadline every probe runs under.

A probe's `timeout` covers the whole probe (resolution, connect, TLS, redirects, body), as in
blackbox_exporter. Every blocking socket call gets the time that is left; on top of that a
watchdog shuts the socket down at the deadline, so a server that trickles bytes cannot hold a
probe past its timeout either. Name resolution runs in a helper thread that is written off if
it is late (getaddrinfo cannot be interrupted).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any


class ProbeError(Exception):
    """A probe failed for a reason worth logging (the message says why)."""


@dataclass(frozen=True)
class ProbeResult:
    success: bool
    duration: float  # seconds
    timestamp: float  # unix seconds at which the probe finished
    status_code: int = 0  # http: final status, 0 without a response
    redirects: int = 0  # http: redirects followed
    ssl: bool = False  # http: the final request used TLS
    ssl_earliest_cert_expiry: float | None = None  # unix seconds, https only
    failed_due_to_regex: bool = False  # http: the body did not match `body_regex`
    error: str | None = None


class Deadline:
    """`with Deadline(t) as d:` — `d.remaining()` for each call, `d.watch(sock)` for the watchdog."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.at = time.monotonic() + timeout
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._expired = False
        self._timer = threading.Timer(timeout, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        self._timer.start()
        return self

    def __exit__(self, typ: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._timer.cancel()
        with self._lock:
            self._expired = True  # from here on the watchdog touches nothing
            self._socks.clear()

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.at

    def remaining(self) -> float:
        left = self.at - time.monotonic()
        if left <= 0:
            raise ProbeError(f"timeout after {self.timeout:g}s")
        return left

    def watch(self, sock: socket.socket) -> socket.socket:
        """Give `sock` the time left; the watchdog shuts it down at the deadline."""
        sock.settimeout(self.remaining())
        with self._lock:
            if not self._expired:
                self._socks.append(sock)
        return sock

    def close(self, sock: socket.socket | None) -> None:
        """Close `sock` (never while the watchdog is shutting it down)."""
        if sock is None:
            return
        with self._lock:
            if sock in self._socks:
                self._socks.remove(sock)
            sock.close()

    def _expire(self) -> None:
        with self._lock:
            if self._expired:
                return
            self._expired = True
            for sock in self._socks:
                try:  # the plain socket's shutdown: wakes a blocked recv, TLS or not
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)
                except OSError:
                    pass
            self._socks.clear()


def resolve(host: str, port: int, deadline: Deadline) -> list[tuple[Any, ...]]:
    """getaddrinfo within the deadline (IP literals need no lookup)."""
    try:
        ipaddress.ip_address(host)
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except ValueError:
        pass
    out: list[list[tuple[Any, ...]]] = []
    errors: list[OSError] = []

    def lookup() -> None:
        try:
            out.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as exc:
            errors.append(exc)

    thread = threading.Thread(target=lookup, name="probe-resolve", daemon=True)
    thread.start()
    thread.join(deadline.remaining())
    if errors:
        raise ProbeError(f"cannot resolve {host}: {errors[0]}")
    if not out:
        raise ProbeError(f"resolving {host} timed out after {deadline.timeout:g}s")
    return out[0]


def connect(host: str, port: int, deadline: Deadline) -> socket.socket:
    """A connected TCP socket to the first address of `host` that answers, under the deadline."""
    last: OSError | None = None
    for family, kind, proto, _, addr in resolve(host, port, deadline):
        sock = socket.socket(family, kind, proto)
        try:
            deadline.watch(sock)
            sock.connect(addr)
            return sock
        except OSError as exc:
            deadline.close(sock)
            last = exc
        except BaseException:
            deadline.close(sock)
            raise
    raise ProbeError(f"connect to {host}:{port}: {last or 'no address'}")
