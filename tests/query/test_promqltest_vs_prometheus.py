"""The scripts' expectations hold for the real Prometheus 2.42: every eval of every script in
``tests/query/testdata`` runs against ``/usr/bin/prometheus`` and is checked by the same
checker as our engine's run (test_promqltest.py).

Data gets in through Prometheus's remote-write receiver rather than ``promtool tsdb
create-blocks-from openmetrics``: a remote-write sample carries any float64 bit pattern, so the
scripts' ``stale`` markers arrive as real staleness markers and no eval has to be skipped
(OpenMetrics has no way to write one). Times stay as the scripts write them (near 0 ms).
Each script section between ``clear``s gets a fresh Prometheus (it starts in well under a
second), reused by all of the section's evals.

One limit of the head appender, not of PromQL: within one Prometheus, a later ``load`` may
not add samples older than an hour before the newest sample already loaded (out of bounds);
a load that is rejected fails with Prometheus's message. The scripts avoid that pattern.
"""

from __future__ import annotations

import json
import struct
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from peerprocs import binary, fetch, free_port, process, wait_for
from tests.query.promqltest import (
    EvalCase,
    EvalFailure,
    EvalMismatch,
    LoadCmd,
    Outcome,
    ResultSeries,
    ScriptSession,
    collect_cases,
    load_script,
)

pytestmark = pytest.mark.peer

CASES = collect_cases()


# ---- remote write: protobuf and snappy, just enough of each ------------------------------
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _timeseries(labels: tuple[tuple[str, str], ...], ts: tuple[int, ...], vs: tuple[float, ...]) -> bytes:
    """``prometheus.TimeSeries{labels=1, samples=2}``; ``Sample{value=1 double, timestamp=2}``."""
    out = b"".join(_field(1, _field(1, k.encode()) + _field(2, v.encode())) for k, v in labels)
    for t, v in zip(ts, vs):
        sample = b"\x09" + struct.pack("<d", v) + b"\x10" + _varint(t & 0xFFFF_FFFF_FFFF_FFFF)
        out += _field(2, sample)
    return out


def _snappy_uncompressed(data: bytes) -> bytes:
    """A valid snappy block made of literals only (no compression needed for loopback)."""
    out = bytearray(_varint(len(data)))
    for i in range(0, len(data), 65536):
        chunk = data[i : i + 65536]
        n = len(chunk) - 1
        if n < 60:
            out.append(n << 2)
        elif n < 256:
            out += bytes([60 << 2, n])
        else:
            out += bytes([61 << 2]) + struct.pack("<H", n)
        out += chunk
    return bytes(out)


def write_request(cmd: LoadCmd) -> bytes:
    """The load as one snappy-compressed ``WriteRequest``. Series are ordered by their first
    sample so the head's first append (which sets its time bounds) is the earliest sample."""
    series = sorted((s for s in cmd.series if s.timestamps), key=lambda s: s.timestamps[0])
    body = b"".join(_field(1, _timeseries(s.labels, s.timestamps, s.values)) for s in series)
    return _snappy_uncompressed(body)


# ---- Prometheus as a target --------------------------------------------------------------
def _seconds(ms: int) -> str:
    return f"{ms / 1000:.3f}"


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def outcome_from_json(data: dict[str, Any], warnings: list[str]) -> Outcome:
    kind, result = data["resultType"], data["result"]
    if kind == "vector":
        series = [
            ResultSeries(tuple(sorted(r["metric"].items())), [_ms(r["value"][0])], [float(r["value"][1])])
            for r in result
        ]
        return Outcome("vector", series, warnings=warnings)
    if kind == "matrix":
        series = [
            ResultSeries(
                tuple(sorted(r["metric"].items())),
                [_ms(p[0]) for p in r["values"]],
                [float(p[1]) for p in r["values"]],
            )
            for r in result
        ]
        return Outcome("matrix", series, warnings=warnings)
    if kind == "scalar":
        return Outcome("scalar", [ResultSeries((), [_ms(result[0])], [float(result[1])])], warnings=warnings)
    if kind == "string":
        return Outcome("string", [ResultSeries((), [_ms(result[0])], [float("nan")])], result[1], warnings)
    raise AssertionError(f"unknown resultType {kind!r}")


class PrometheusTarget:
    """A real Prometheus per section of a script; started on the first query after a clear."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self._generation = 0
        self._stack: ExitStack | None = None
        self._url = ""
        self._pending: list[LoadCmd] = []

    def _ensure(self) -> str:
        if self._stack is None:
            d = self.base_dir / f"prom{self._generation}"
            d.mkdir(parents=True)
            config = d / "prometheus.yml"
            config.write_text("")
            port = free_port()
            args = [
                binary("prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={d / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--web.enable-remote-write-receiver",
                "--storage.tsdb.retention.time=100y",
                "--log.level=warn",
            ]
            stack = ExitStack()
            proc: subprocess.Popen[bytes] = stack.enter_context(process(args, str(d / "prometheus.log")))
            self._stack = stack
            self._url = f"http://127.0.0.1:{port}"
            wait_for(lambda: self._ready(), "prometheus ready", timeout=30, proc=proc)
            pending, self._pending = self._pending, []
            for cmd in pending:
                self._push(cmd)
        return self._url

    def _ready(self) -> bool:
        return fetch(self._url + "/-/ready", timeout=2)[0] == 200

    def _push(self, cmd: LoadCmd) -> None:
        req = urllib.request.Request(
            self._url + "/api/v1/write",
            data=write_request(cmd),
            headers={
                "Content-Encoding": "snappy",
                "Content-Type": "application/x-protobuf",
                "X-Prometheus-Remote-Write-Version": "0.1.0",
            },
        )
        status, _, answer = fetch(req)
        if status != 204:
            raise AssertionError(f"Prometheus rejected the load at line {cmd.line}: {status} {answer.decode()!r}")

    def load(self, cmd: LoadCmd) -> None:
        if self._stack is None:
            self._pending.append(cmd)
        else:
            self._push(cmd)

    def clear(self) -> None:
        self.close()
        self._generation += 1

    def _api(self, path: str, params: dict[str, str]) -> Outcome:
        url = self._ensure() + path
        body = urllib.parse.urlencode(params).encode()
        status, _, answer = fetch(url, body, timeout=60)
        doc = json.loads(answer)
        if status >= 400:
            message = str(doc.get("error", ""))
            # The API prefixes parse errors with the parameter's name; the engine does not.
            message = message.removeprefix('invalid parameter "query": ')
            raise EvalFailure(message, str(doc.get("errorType", ""))) from None
        return outcome_from_json(doc["data"], list(doc.get("warnings", [])))

    def instant(self, expr: str, t: int) -> Outcome:
        return self._api("/api/v1/query", {"query": expr, "time": _seconds(t)})

    def range(self, expr: str, start: int, end: int, step: int) -> Outcome:
        return self._api(
            "/api/v1/query_range",
            {"query": expr, "start": _seconds(start), "end": _seconds(end), "step": _seconds(step)},
        )

    def close(self) -> None:
        self._pending = []
        if self._stack is not None:
            stack, self._stack = self._stack, None
            stack.close()


@pytest.fixture(scope="module")
def sessions() -> Iterator[dict[Path, ScriptSession]]:
    open_sessions: dict[Path, ScriptSession] = {}
    yield open_sessions
    for session in open_sessions.values():
        session.close()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_script_eval_on_prometheus(
    case: EvalCase, sessions: dict[Path, ScriptSession], tmp_path_factory: pytest.TempPathFactory
) -> None:
    if case.index < 0:
        pytest.fail(case.error, pytrace=False)
    session = sessions.get(case.path)
    if session is None:
        for other in sessions.values():
            other.close()
        base = tmp_path_factory.mktemp(f"prom-{case.path.stem}")
        session = ScriptSession(load_script(case.path), lambda: PrometheusTarget(base))
        sessions[case.path] = session
    failure = ""
    try:
        session.run(case.index)
    except EvalMismatch as exc:
        failure = str(exc)
    if failure:  # reported outside the except block: no chained traceback
        pytest.fail(failure, pytrace=False)


def test_write_request_encoding() -> None:
    """The hand-made protobuf and snappy framing, byte for byte on a tiny request."""
    from tests.query.promqltest import LoadedSeries

    cmd = LoadCmd(1, 60_000, (LoadedSeries((("__name__", "a"),), (0,), (1.0,)),))
    raw = _field(1, _field(1, _field(1, b"__name__") + _field(2, b"a"))
                 + _field(2, b"\x09" + struct.pack("<d", 1.0) + b"\x10\x00"))
    assert write_request(cmd) == _varint(len(raw)) + bytes([(len(raw) - 1) << 2]) + raw
    assert _varint(300) == b"\xac\x02"
    assert _varint(-1 & 0xFFFF_FFFF_FFFF_FFFF) == b"\xff" * 9 + b"\x01"
