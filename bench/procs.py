"""Running and measuring other programs: one-shot commands and long-running servers.

CPU and peak memory of a one-shot command come from the kernel's accounting of that very
child (`os.wait4`), so nothing run earlier in the same benchmark (promtool peaks at
several GiB) leaks into a later figure, as it would with ``RUSAGE_CHILDREN``'s maximum.
Servers are measured with psutil for per-phase CPU deltas and with ``VmHWM`` for their
peak resident set. Every server started here is stopped when its ``with`` block exits,
also on errors and interrupts.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import BinaryIO

import psutil


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Usage:
    """What one finished command cost."""

    cpu_s: float  # user + system, all threads, including children it waited for
    user_s: float
    sys_s: float
    wall_s: float
    peak_rss_bytes: int  # the kernel's high-water mark of the resident set
    returncode: int


def run_measured(
    cmd: Sequence[str],
    log_path: str,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> Usage:
    """Run `cmd` to completion with stdout and stderr appended to `log_path`.

    Raises `RuntimeError` (quoting the log's tail) if it exits non-zero.
    """
    with open(log_path, "ab") as log:
        log.write(f"$ {' '.join(cmd)}\n".encode())
        log.flush()
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd), stdout=log, stderr=subprocess.STDOUT, env=dict(env) if env else None, cwd=cwd
        )
        try:
            while True:
                try:
                    _, status, ru = os.wait4(proc.pid, 0)
                    break
                except InterruptedError:
                    continue
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    usage = Usage(
        cpu_s=ru.ru_utime + ru.ru_stime,
        user_s=ru.ru_utime,
        sys_s=ru.ru_stime,
        wall_s=wall,
        peak_rss_bytes=ru.ru_maxrss * 1024,  # Linux reports KiB
        returncode=proc.returncode,
    )
    if usage.returncode != 0:
        raise RuntimeError(
            f"{cmd[0]} exited with status {usage.returncode}; last output:\n{tail(log_path)}"
        )
    return usage


def tail(path: str, max_bytes: int = 4000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            return f.read().decode(errors="replace")
    except OSError:
        return "(no log)"


def http_get(url: str, timeout: float = 30.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        data: bytes = resp.read()
        return data


class Server:
    """A long-running program, started on entry and stopped (SIGTERM, then SIGKILL) on exit.

    `cpu_s()` and `peak_rss_bytes()` read the live process; after exit, `final_usage`
    holds the kernel's totals for its whole life.
    """

    def __init__(self, name: str, cmd: Sequence[str], log_path: str, stop_timeout_s: float = 120.0) -> None:
        self.name = name
        self.cmd = list(cmd)
        self.log_path = log_path
        self.stop_timeout_s = stop_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None
        self._ps: psutil.Process | None = None
        self._log: BinaryIO | None = None
        self.final_usage: Usage | None = None
        self._t0 = 0.0

    def __enter__(self) -> Server:
        self._log = open(self.log_path, "ab")
        self._log.write(f"$ {' '.join(self.cmd)}\n".encode())
        self._log.flush()
        self._t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.cmd, stdout=self._log, stderr=subprocess.STDOUT)
        self._ps = psutil.Process(self.proc.pid)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            raise RuntimeError(f"{self.name} exited unexpectedly; last output:\n{tail(self.log_path)}")

    def cpu_s(self) -> float:
        assert self._ps is not None
        t = self._ps.cpu_times()
        return float(t.user + t.system)

    def peak_rss_bytes(self) -> int:
        """VmHWM: the largest resident set the process has had so far."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return 0

    def rss_bytes(self) -> int:
        assert self._ps is not None
        return int(self._ps.memory_info().rss)

    def wait_http(self, url: str, timeout_s: float = 120.0) -> None:
        """Poll `url` until it answers 200."""
        deadline = time.monotonic() + timeout_s
        last: Exception | None = None
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                http_get(url, timeout=5)
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                last = exc
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer {url} within {timeout_s:.0f} s ({last})")

    def stop(self) -> None:
        """Ask politely, wait, then kill; record the kernel's totals. Idempotent."""
        proc = self.proc
        if proc is None:
            return
        self.proc = None
        try:
            if proc.returncode is None:
                try:
                    os.kill(proc.pid, signal.SIGTERM)  # not send_signal: it may reap the child
                except ProcessLookupError:
                    pass
                deadline = time.monotonic() + self.stop_timeout_s
                status = ru = None
                while time.monotonic() < deadline:
                    pid, st, r = os.wait4(proc.pid, os.WNOHANG)
                    if pid:
                        status, ru = st, r
                        break
                    time.sleep(0.1)
                if status is None:
                    proc.kill()
                    _, status, ru = os.wait4(proc.pid, 0)
                proc.returncode = os.waitstatus_to_exitcode(status)
                assert ru is not None
                self.final_usage = Usage(
                    cpu_s=ru.ru_utime + ru.ru_stime,
                    user_s=ru.ru_utime,
                    sys_s=ru.ru_stime,
                    wall_s=time.perf_counter() - self._t0,
                    peak_rss_bytes=ru.ru_maxrss * 1024,
                    returncode=proc.returncode,
                )
        except ChildProcessError:
            pass
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None
