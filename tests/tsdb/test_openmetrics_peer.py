"""OpenMetrics parser and writer side by side with promtool (Prometheus 2.42, Debian package).

Each test writes a file, runs ``promtool tsdb create-blocks-from openmetrics`` and
``promtool tsdb dump`` on the blocks, and compares the sample sets (labels, millisecond
timestamp, float bits; NaN compared as NaN since dump prints only "NaN") with what our
parser returns; files promtool rejects must raise `InputParseError` here too. promtool
must be installed (CI installs it): a missing binary fails the tests instead of skipping.
"""

from __future__ import annotations

import io
import math
import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from vigilops.tsdb.api import SeriesData
from vigilops.tsdb.errors import InputParseError
from vigilops.tsdb.model import Labels
from vigilops.tsdb.openmetrics_parse import GO_NAN_BITS, parse_openmetrics
from vigilops.tsdb.openmetrics_write import format_value, write_openmetrics

pytestmark = pytest.mark.peer

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

Sample = tuple[Labels, int, int]  # labels, ms timestamp, float64 bits (NaN as GO_NAN_BITS)

_GO_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"'}
_GO_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)", re.S)
_DUMP_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:, |$)', re.S)


def bits(v: float) -> int:
    return GO_NAN_BITS if v != v else int(struct.unpack("<Q", struct.pack("<d", v))[0])


def go_unquote(body: str) -> str:
    """Invert Go's strconv.Quote (without the quotes), which dump prints label values with."""

    def one(m: re.Match[str]) -> str:
        s = m.group(1)
        return chr(int(s[1:], 16)) if len(s) > 1 else _GO_ESCAPES[s]

    return _GO_ESCAPE.sub(one, body)


def promtool_samples(tmp_path: Path, data: bytes) -> list[tuple[Sample, str]]:
    """What promtool stores for `data`, with each value as dump prints it (Go's %g)."""
    assert Path(PROMTOOL).exists(), f"promtool not found at {PROMTOOL}; install Debian's prometheus"
    source = tmp_path / "in.om"
    source.write_bytes(data)
    db = tmp_path / "blocks"
    created = subprocess.run(
        [PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", str(source), str(db)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert created.returncode == 0, created.stderr
    (db / "wal").mkdir(parents=True, exist_ok=True)  # dump opens a DB, which wants a WAL dir
    dumped = subprocess.run([PROMTOOL, "tsdb", "dump", str(db)], capture_output=True, timeout=120, check=True)
    out = []
    for line in dumped.stdout.decode("utf-8").split("\n"):
        if line:
            head, value, ms = line.rsplit(" ", 2)
            pairs = [(n, go_unquote(q)) for n, q in _DUMP_LABEL.findall(head[1:-1])]
            out.append(((Labels(pairs), int(ms), bits(float(value))), value))
    return sorted(out)


def promtool_rejects(tmp_path: Path, data: bytes) -> bool:
    assert Path(PROMTOOL).exists(), f"promtool not found at {PROMTOOL}; install Debian's prometheus"
    source = tmp_path / "in.om"
    source.write_bytes(data)
    result = subprocess.run(
        [PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", str(source), str(tmp_path / "blocks")],
        capture_output=True, timeout=120, check=False,
    )
    return result.returncode != 0


def ours(data: bytes) -> list[Sample]:
    out = []
    for chunk in parse_openmetrics(io.BytesIO(data), 256):
        for s, t, v in zip(chunk.series.tolist(), chunk.timestamps.tolist(), chunk.values.view(np.uint64).tolist()):
            out.append((chunk.labels[s], t, v))
    return sorted(out)


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


# Quirks on purpose: escapes (and an unknown one, kept as written), control bytes and NUL in
# label values, an empty label value, {} labels, NaN/Inf spellings, "1." ".5" "+1.5" "007",
# underflow, decimal timestamps that truncate (1.001 s is 1000 ms), exemplars, UNIT, and no
# newline after "# EOF". Per series, timestamps increase (promtool rejects out-of-order).
ACCEPTED = (
    b"# HELP m_total Help with \\\\ and \\n and \\\" and \\t.\n"
    b"# TYPE m_total counter\n"
    b'm_total{a="x\\\\y\\"z\\nw\\tq",b="",c="\xc3\xa9\xe2\x98\x83\x00\r\t\x01"} 1.5 1795309200.123\n'
    b"m_total 2 1795309201\n"
    b'm_total NaN 1795309202 # {x="1"} 3 4\n'
    b'm_total{a="1"} 1. 1795309200.001 # {} 1\n'
    b'm_total{a="1"} .5 1795309200.0025\n'
    b'm_total{a="1"} +1.5 1795309200.29\n'
    b'm_total{a="1"} 1e-400 1795309200.9999\n'
    b'm_total{a="1"} 007 1795309201.001\n'
    b'm_bucket{le="+Inf"} INF 1795309200\n'
    b'm_bucket{le="+Inf"} -infinity 1795309201.5\n'
    b'm_bucket{le="+Inf"} -0 1795309202.25\n'
    b'm_bucket{le="+Inf"} 4.9e-324 1795309203.125\n'
    b'm_bucket{le="+Inf"} 1.7976931348623157e308 1795309204\n'
    b"a:b 0.1 +1795309200\n"
    b"a:b{} 1e5 1.7953093e9\n"
    b"# UNIT x_seconds seconds\n"
    b"x_seconds 1 1795309200\n"
    b"# EOF"
)

REJECTED = [
    b"m 1 1795309200\n",  # no # EOF
    b"m 1\n# EOF\n",  # no timestamp
    b"m 1 1795309200\n# EOF\nm 2 1795309201\n",  # data after # EOF
    b"m 1 1795309200\n\n# EOF\n",  # blank line
    b"# a comment\nm 1 1795309200\n# EOF\n",
    b'm{a="b",} 1 1795309200\n# EOF\n',  # trailing comma
    b'm{a="b", c="d"} 1 1795309200\n# EOF\n',
    b"m +NaN 1795309200\n# EOF\n",
    b"m 1e400 1795309200\n# EOF\n",
    b"m 0x10 1795309200\n# EOF\n",
    b"m 1 NaN\n# EOF\n",
    b'm{a="1",a="2"} 1 1795309200\n# EOF\n',  # promtool's block writer rejects this one
    b'm 1 1795309200 # {a="b"} 1\n# EOF\n',  # exemplar on a name without _total/_bucket
    b'm_total 1 1795309200 # {a="\x00"} 1\n# EOF\n',
    b"# TYPE m untyped\nm 1 1795309200\n# EOF\n",
    b"# UNIT m seconds\nm 1 1795309200\n# EOF\n",
    b'm{a="\xff"} 1 1795309200\n# EOF\n',
    b"m 1 1795309200 \n# EOF\n",
]


def test_quirky_file_reads_like_promtool(tmp_path: Path) -> None:
    assert ours(ACCEPTED) == [s for s, _ in promtool_samples(tmp_path, ACCEPTED)]


def test_timestamps_truncate_like_promtool(tmp_path: Path) -> None:
    # 1.001 * 1000 == 1000.9999999999999 and 4.0015 * 1000 == 4001.4999999999995.
    data = b"t 1 1.001\nt 2 1.0025\nt 3 2.29\nt 4 3.9999\nt 5 4.0015\nt 6 5\n# EOF\n"
    assert [ms for _, ms, _ in ours(data)] == [1000, 1002, 2290, 3999, 4001, 5000]
    assert ours(data) == [s for s, _ in promtool_samples(tmp_path, data)]


def test_random_file_reads_like_promtool(tmp_path: Path) -> None:
    rng = np.random.default_rng(42)
    lines = []
    for s in range(40):
        labels = f'm_{s % 3}{{i="{s}",v="{escape(chr(0x20 + s * 37 % 3000))}\\\\n"}}'
        t = 1795309200.0 + int(rng.integers(0, 1000)) / 1000
        for _ in range(30):
            t += int(rng.integers(2, 20_000)) / 1000
            if rng.random() < 0.5:
                v = float(rng.integers(0, 2**63, dtype=np.int64).view(np.float64))
            else:
                v = float(rng.normal() * 10.0 ** int(rng.integers(-8, 12)))
            if math.isinf(v):
                continue
            lines.append(f"{labels} {'NaN' if v != v else repr(v)} {t:.4f}")
    data = ("\n".join(lines) + "\n# EOF\n").encode()
    assert ours(data) == [s for s, _ in promtool_samples(tmp_path, data)]


@pytest.mark.parametrize("data", REJECTED)
def test_promtool_and_we_reject(tmp_path: Path, data: bytes) -> None:
    assert promtool_rejects(tmp_path, data)
    with pytest.raises(InputParseError):
        ours(data)


def test_written_file_reads_back_in_promtool_with_go_value_text(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    series = []
    for s in range(30):
        n = 50
        stamps = 1795309200000 + np.cumsum(rng.integers(1, 5000, n))
        raw = rng.integers(0, 2**64, n, dtype=np.uint64).view(np.float64)
        scaled = rng.normal(size=n) * 10.0 ** rng.integers(-12, 25, n)
        values = np.where(rng.random(n) < 0.5, raw, scaled)
        values[rng.random(n) < 0.05] = np.inf * rng.choice([-1, 1])
        labels = Labels({"__name__": f"w_{s % 4}", "s": str(s), "odd": 'q"\\\n\t\x00é' * (s % 2)})
        series.append(SeriesData(labels, stamps.astype(np.int64), values))
    out = io.StringIO()
    write_openmetrics(series, out)
    data = out.getvalue().encode()
    expected = sorted(
        (s.labels, t, bits(v)) for s in series for t, v in zip(s.timestamps.tolist(), s.values.tolist())
    )
    theirs = promtool_samples(tmp_path, data)
    assert [s for s, _ in theirs] == expected
    assert ours(data) == expected
    for (_, _, b), text in theirs:  # dump prints Go's %g, which format_value imitates
        assert format_value(struct.unpack("<d", struct.pack("<Q", b))[0]) == text
