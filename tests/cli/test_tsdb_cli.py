"""`vigilops tsdb import/dump/stats` end to end, and side by side with Debian's promtool."""

from __future__ import annotations

import math
import os
import re
import shutil
import struct
import subprocess
import sys

import pytest

VIGILOPS = [sys.executable, "-m", "vigilops.cli"]
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

START_S = 1_795_305_600  # an aligned 2 h boundary
Sample = tuple[tuple[tuple[str, str], ...], int, str]


def om_escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def make_dataset() -> str:
    """Counters with resets, gauges with NaN/±Inf, a histogram, a summary, awkward label
    values, millisecond timestamps, gaps and churn, spanning four 2 h block ranges."""
    lines: list[str] = []
    steps = range(0, 7 * 3600, 60)

    def family(name: str, typ: str, help_: str) -> None:
        lines.append(f"# HELP {name} {help_}")
        lines.append(f"# TYPE {name} {typ}")

    family("http_requests", "counter", "Requests served.")
    for code in ("200", "500"):
        value = 0
        for i, t in enumerate(steps):
            value = 0 if i == 150 else value + (i % 7) * (3 if code == "200" else 1)
            lines.append(f'http_requests_total{{code="{code}",path="/a b"}} {value} {START_S + t}')
    family("room_temperature_celsius", "gauge", "A gauge with special values.")
    for i, t in enumerate(steps):
        v = ["NaN", "+Inf", "-Inf"][i % 3] if i % 97 == 5 else repr(20 + (i % 13) * 0.25 - 0.1)
        lines.append(f'room_temperature_celsius{{room="lab \\"1\\"",note="a\\\\b\\nc"}} {v} {START_S + t}.250')
    family("latency_seconds", "histogram", "A classic histogram.")
    for le in ("0.1", "0.5", "+Inf"):
        for i, t in enumerate(steps[::5]):
            lines.append(f'latency_seconds_bucket{{le="{le}"}} {i * (1 + le.count("5"))} {START_S + t}')
    for i, t in enumerate(steps[::5]):
        lines.append(f"latency_seconds_sum {i * 0.125} {START_S + t}")
        lines.append(f"latency_seconds_count {i * 2} {START_S + t}")
    family("churn", "gauge", "Series that come and go.")
    for k in range(5):
        for t in steps[k * 60 : k * 60 + 90]:
            lines.append(f'churn{{pod="pod-{k}",note="cödé ünï"}} {k}.5e-3 {START_S + t}')
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _labels_tuple(body: str) -> tuple[tuple[str, str], ...]:
    pairs = re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', body)
    return tuple(sorted((n, bytes(v, "utf-8").decode("unicode_escape").encode("latin-1").decode("utf-8")) for n, v in pairs))


def _norm_value(text: str) -> str:
    v = float(text)
    return "NaN" if math.isnan(v) else struct.pack("<d", v).hex()


def parse_promtool_dump(text: str) -> set[Sample]:
    """`promtool tsdb dump` prints ``{labels} value timestamp_ms`` per sample."""
    out: set[Sample] = set()
    for line in text.splitlines():
        m = re.match(r"(\{.*\}) (\S+) (-?\d+)$", line)
        assert m, line
        out.add((_labels_tuple(m.group(1)), int(m.group(3)), _norm_value(m.group(2))))
    return out


def parse_om_dump(text: str) -> set[Sample]:
    """Our dump is OpenMetrics: ``name{labels} value timestamp_seconds``."""
    out: set[Sample] = set()
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+) (\S+)$", line)
        assert m, line
        labels = _labels_tuple(m.group(2) or "{}") + (("__name__", m.group(1)),)
        ts_ms = round(float(m.group(4)) * 1000)
        out.add((tuple(sorted(labels)), ts_ms, _norm_value(m.group(3))))
    return out


def run(args: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=300, **kw)  # type: ignore[call-overload, no-any-return]


@pytest.fixture
def dataset(tmp_path) -> str:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "data.om")
    with open(path, "w", encoding="utf-8") as f:
        f.write(make_dataset())
    return path


def test_import_dump_round_trip_and_stats(tmp_path, dataset: str) -> None:  # type: ignore[no-untyped-def]
    data = str(tmp_path / "tsdb")
    imp = run([*VIGILOPS, "tsdb", "import", "openmetrics", dataset, data])
    assert imp.returncode == 0, imp.stderr
    blocks = [n for n in os.listdir(data) if len(n) == 26]
    assert len(blocks) == 4  # 7 h of data in aligned 2 h ranges
    dump = run([*VIGILOPS, "tsdb", "dump", data])
    assert dump.returncode == 0, dump.stderr
    assert dump.stdout.rstrip().endswith("# EOF")
    # The dump re-imports to the same samples.
    again_file = str(tmp_path / "again.om")
    with open(again_file, "w", encoding="utf-8") as f:
        f.write(dump.stdout)
    again = str(tmp_path / "again")
    assert run([*VIGILOPS, "tsdb", "import", "openmetrics", again_file, again]).returncode == 0
    dump2 = run([*VIGILOPS, "tsdb", "dump", again])
    assert parse_om_dump(dump2.stdout) == parse_om_dump(dump.stdout)

    stats = run([*VIGILOPS, "tsdb", "stats", data])
    assert stats.returncode == 0, stats.stderr
    total_series = len({s[0] for s in parse_om_dump(dump.stdout)})
    assert re.search(rf"^series:\s+{total_series} ", stats.stdout, re.M)
    assert re.search(r"^bytes per sample: \d+\.\d+", stats.stdout, re.M)
    assert "latency_seconds_bucket" in stats.stdout

    only = run([*VIGILOPS, "tsdb", "dump", data, "--match", 'http_requests_total{code="500"}',
                "--min-time", str(START_S + 3600), "--max-time", str(START_S + 7200)])
    samples = parse_om_dump(only.stdout)
    assert samples and all(dict(s[0])["code"] == "500" for s in samples)
    assert min(s[1] for s in samples) == (START_S + 3600) * 1000
    assert max(s[1] for s in samples) == (START_S + 7200) * 1000


@pytest.mark.peer
def test_import_and_dump_match_promtool(tmp_path, dataset: str) -> None:  # type: ignore[no-untyped-def]
    ours = str(tmp_path / "ours")
    theirs = str(tmp_path / "theirs")
    assert run([*VIGILOPS, "tsdb", "import", "openmetrics", dataset, ours]).returncode == 0
    prom = run([PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", dataset, theirs])
    assert prom.returncode == 0, prom.stderr
    os.makedirs(os.path.join(theirs, "wal"), exist_ok=True)  # promtool dump opens a whole DB
    our_samples = parse_om_dump(run([*VIGILOPS, "tsdb", "dump", ours]).stdout)
    their_samples = parse_promtool_dump(run([PROMTOOL, "tsdb", "dump", theirs]).stdout)
    assert len(their_samples) > 2000
    assert our_samples == their_samples
    # Same block layout as promtool: one block per aligned 2 h range.
    our_blocks = sorted(n for n in os.listdir(ours) if len(n) == 26)
    their_blocks = sorted(n for n in os.listdir(theirs) if len(n) == 26)
    assert len(our_blocks) == len(their_blocks)


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("a 1 1\n", 2, "EOF"),
        ("# TYPE a gauge\na 1\n# EOF\n", 2, "timestamp"),
        ("a{b=\"c} 1 1\n# EOF\n", 1, ""),
        ("a 1 1\na zz 2\n# EOF\n", 2, ""),
    ],
)
def test_import_rejects_malformed_input_with_line_numbers(tmp_path, text: str, line: int, message: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.om"
    path.write_text(text)
    data = str(tmp_path / "tsdb")
    out = run([*VIGILOPS, "tsdb", "import", "openmetrics", str(path), data])
    assert out.returncode == 1
    assert f"bad.om:{line}:" in out.stderr
    assert message in out.stderr
    assert not os.path.exists(data) or not [n for n in os.listdir(data) if len(n) == 26]


def test_import_with_compact_writes_what_compaction_would(tmp_path, dataset: str) -> None:  # type: ignore[no-untyped-def]
    direct = str(tmp_path / "direct")
    stepwise = str(tmp_path / "stepwise")
    assert run([*VIGILOPS, "tsdb", "import", "openmetrics", dataset, direct, "--compact"]).returncode == 0
    assert run([*VIGILOPS, "tsdb", "import", "openmetrics", dataset, stepwise]).returncode == 0
    assert run([*VIGILOPS, "tsdb", "compact", stepwise]).returncode == 0

    def layout(path: str) -> list[tuple[int, int, int]]:
        import json

        out = []
        for name in os.listdir(path):
            if len(name) == 26:
                with open(os.path.join(path, name, "meta.json")) as f:
                    m = json.load(f)
                out.append((m["minTime"], m["maxTime"], m["compaction"]["level"]))
        return sorted(out)

    assert layout(direct) == layout(stepwise)
    assert any(level > 1 for _, _, level in layout(direct))
    assert run([*VIGILOPS, "tsdb", "dump", direct]).stdout == run([*VIGILOPS, "tsdb", "dump", stepwise]).stdout
