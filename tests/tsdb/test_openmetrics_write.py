"""Tests of the OpenMetrics writer (`vigilops.tsdb.openmetrics_write`)."""

from __future__ import annotations

import io
import math
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigilops.tsdb import openmetrics_write
from vigilops.tsdb.api import SeriesData
from vigilops.tsdb.model import Labels
from vigilops.tsdb.openmetrics_parse import GO_NAN_BITS, parse_go_float, parse_openmetrics
from vigilops.tsdb.openmetrics_write import (
    format_timestamp,
    format_timestamps,
    format_value,
    format_values,
    series_text,
    write_openmetrics,
)


def bits(v: float) -> int:
    return int(struct.unpack("<Q", struct.pack("<d", v))[0])


def from_bits(b: int) -> float:
    return float(struct.unpack("<d", struct.pack("<Q", b))[0])


def sd(labels: dict[str, str], ts: list[int], values: list[float]) -> SeriesData:
    return SeriesData(Labels(labels), np.array(ts, np.int64), np.array(values, np.float64))


def written(series: list[SeriesData]) -> str:
    out = io.StringIO()
    write_openmetrics(series, out)
    return out.getvalue()


def reparsed(text: str) -> list[tuple[Labels, int, int]]:
    out = []
    for chunk in parse_openmetrics(io.BytesIO(text.encode()), 4096):
        for s, t, v in zip(chunk.series.tolist(), chunk.timestamps.tolist(), chunk.values.view(np.uint64).tolist()):
            out.append((chunk.labels[s], t, v))
    return out


# Expected strings are Go's strconv.FormatFloat(v, 'g', -1, 64) (as `promtool tsdb dump` and
# Prometheus's text exposition print), with Prometheus's spelling of the infinities.
GO_FORMAT = [
    (0.0, "0"), (-0.0, "-0"), (1.0, "1"), (-1.5, "-1.5"), (0.1, "0.1"), (1 / 3, "0.3333333333333333"),
    (100000.0, "100000"), (999999.0, "999999"), (999999.9999999999, "999999.9999999999"),
    (1e6, "1e+06"), (1234567.0, "1.234567e+06"), (-1234567.5, "-1.2345675e+06"),
    (123456789.0, "1.23456789e+08"), (1795309200.123, "1.795309200123e+09"), (1e15, "1e+15"),
    (2.0**53, "9.007199254740992e+15"), (1e21, "1e+21"), (1.5e300, "1.5e+300"),
    (1.7976931348623157e308, "1.7976931348623157e+308"),
    (0.0001, "0.0001"), (0.00012, "0.00012"), (9.999999999999999e-05, "9.999999999999999e-05"),
    (1e-5, "1e-05"), (1.5e-7, "1.5e-07"), (1.2e-6, "1.2e-06"), (-1.5e-10, "-1.5e-10"),
    (5e-324, "5e-324"), (2.2250738585072014e-308, "2.2250738585072014e-308"),
    (math.nan, "NaN"), (math.inf, "+Inf"), (-math.inf, "-Inf"),
]


@pytest.mark.parametrize(("value", "text"), GO_FORMAT)
def test_format_value(value: float, text: str) -> None:
    assert format_value(value) == text
    assert format_values(np.array([value])).to_pylist() == [text]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(st.floats(), st.integers(0, 2**64 - 1).map(from_bits)), max_size=50))
def test_format_values_is_format_value_and_round_trips(values: list[float]) -> None:
    arr = np.array(values, np.float64)
    texts = format_values(arr).to_pylist()
    assert texts == [format_value(v) for v in values]
    for v, text in zip(values, texts):
        back = parse_go_float(text)
        assert bits(back) == (GO_NAN_BITS if v != v else bits(v))


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "0"), (1, "0.001"), (999, "0.999"), (1000, "1"), (1001, "1.0015"), (1500, "1.5"),
        (1795309200000, "1795309200"), (1795309200123, "1795309200.123"),
        (1795309200100, "1795309200.1"), (-1, "-0.001"), (-1500, "-1.5"), (-1001, "-1.0015"),
    ],
)
def test_format_timestamp(ms: int, text: str) -> None:
    assert format_timestamp(ms) == text


def go_ms(text: str) -> int:
    return int(parse_go_float(text) * 1000.0)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.integers(-(2**52), 2**52), st.integers(1795309200000, 1795399200000)), max_size=50))
def test_format_timestamps_read_back_exactly(stamps: list[int]) -> None:
    texts = format_timestamps(np.array(stamps, np.int64)).to_pylist()
    assert [go_ms(t) for t in texts] == stamps


def test_format_timestamp_extremes() -> None:
    for ms in (2**53, -(2**62), -(2**63), 2**62 + 2048):
        assert go_ms(format_timestamp(ms)) == ms
    with pytest.raises(ValueError):
        format_timestamp(2**53 + 1)  # no float64 times 1000 truncates to it


def test_write_small_example() -> None:
    text = written(
        [
            sd({"__name__": "up", "job": "node", "instance": 'a"b\\c\nd'}, [1795309200000, 1795309215001], [1, 0]),
            sd({"__name__": "empty"}, [], []),
            sd({"__name__": "temp"}, [1795309200123], [math.nan]),
            sd({"__name__": "big"}, [1001], [12345678.0]),
        ]
    )
    assert text == (
        'up{instance="a\\"b\\\\c\\nd",job="node"} 1 1795309200\n'
        'up{instance="a\\"b\\\\c\\nd",job="node"} 0 1795309215.001\n'
        "temp NaN 1795309200.123\n"
        "big 1.2345678e+07 1.0015\n"
        "# EOF\n"
    )


def test_write_nothing() -> None:
    assert written([]) == "# EOF\n"


def test_series_text_rejects_what_openmetrics_cannot_express() -> None:
    assert series_text(Labels({"__name__": "a:b", "_x": "1"})) == 'a:b{_x="1"}'
    for labels in ({"job": "x"}, {"__name__": "1a"}, {"__name__": "a-b"}, {"__name__": "a", "b:c": "1"}):
        with pytest.raises(ValueError):
            series_text(Labels(labels))
    with pytest.raises(ValueError):
        written([sd({"job": "x"}, [1], [1.0])])


def test_write_batches_many_series(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openmetrics_write, "_BATCH_SAMPLES", 500)
    series = [sd({"__name__": f"m{i % 3}", "i": str(i)}, list(range(0, 1000 * i, 1000)), [float(i)] * i) for i in range(200)]
    expected = [(s.labels, int(t), bits(float(v))) for s in series for t, v in zip(s.timestamps, s.values)]
    assert reparsed(written(series)) == expected


label_values = st.text(st.characters(codec="utf-8"), max_size=10)
floats_any = st.one_of(st.floats(), st.integers(0, 2**64 - 1).map(from_bits), st.sampled_from([0.0, -0.0, 5e-324]))


@st.composite
def series_sets(draw: st.DrawFn) -> list[SeriesData]:
    out = []
    for _ in range(draw(st.integers(0, 5))):
        name = draw(st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,8}", fullmatch=True))
        names = draw(st.lists(st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,6}", fullmatch=True), max_size=3, unique=True))
        labels = {"__name__": name} | {n: draw(label_values) for n in names if n != "__name__"}
        stamps = draw(st.lists(st.integers(-(2**50), 2**50), max_size=8, unique=True))
        values = [draw(floats_any) for _ in stamps]
        out.append(sd(labels, sorted(stamps), values))
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(series_sets())
def test_write_then_parse_round_trips(series: list[SeriesData]) -> None:
    expected = [
        (s.labels, t, GO_NAN_BITS if v != v else bits(v))
        for s in series
        for t, v in zip(s.timestamps.tolist(), s.values.tolist())
    ]
    assert reparsed(written(series)) == expected
