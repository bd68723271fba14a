"""Tests of the OpenMetrics backfill parser (`vigilops.tsdb.openmetrics_parse`).

Three references: hand-written tables, an independent slow reference parser written from
Prometheus 2.42's grammar (below), and promtool itself (the `peer` tests).
"""

from __future__ import annotations

import io
import math
import re
import struct
from collections.abc import Iterable

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from vigilops.tsdb.errors import InputParseError
from vigilops.tsdb.model import Labels
from vigilops.tsdb.openmetrics_parse import (
    GO_NAN_BITS,
    MetricMeta,
    ParsedChunk,
    metadata_of,
    parse_go_float,
    parse_openmetrics,
)


Sample = tuple[Labels, int, int]  # labels, ms timestamp, float64 bits


def bits(v: float) -> int:
    return int(struct.unpack("<Q", struct.pack("<d", v))[0])


def samples_of(chunks: Iterable[ParsedChunk]) -> list[Sample]:
    out: list[Sample] = []
    for chunk in chunks:
        assert len(chunk.series) == len(chunk.timestamps) == len(chunk.values)
        assert chunk.series.dtype == np.int64 and chunk.timestamps.dtype == np.int64
        assert chunk.values.dtype == np.float64
        # labels are distinct and listed in order of first appearance
        assert len(set(chunk.labels)) == len(chunk.labels)
        firsts = [int(np.argmax(chunk.series == i)) for i in range(len(chunk.labels))]
        assert firsts == sorted(firsts) and set(chunk.series.tolist()) == set(range(len(chunk.labels)))
        for s, t, v in zip(chunk.series.tolist(), chunk.timestamps.tolist(), chunk.values.view(np.uint64).tolist()):
            out.append((chunk.labels[s], t, v))
    return out


def parse(data: bytes, chunk_bytes: int = 64 << 20) -> list[Sample]:
    return samples_of(parse_openmetrics(io.BytesIO(data), chunk_bytes))


def parse_error(data: bytes, chunk_bytes: int = 64 << 20) -> InputParseError:
    with pytest.raises(InputParseError) as info:
        parse(data, chunk_bytes)
    return info.value


def L(**kv: str) -> Labels:
    return Labels(kv)


def go_ms(seconds: str) -> int:
    """Prometheus's conversion: int64(ParseFloat(seconds) * 1000), truncating."""
    return int(float(seconds) * 1000.0)


# ---- a valid file, every feature -------------------------------------------------------

FULL = (
    b"# HELP http_requests_total Requests \\\\ served\\n so far, \\\"quoted\\\"\n"
    b"# TYPE http_requests_total counter\n"
    b"# UNIT http_requests_total \n"
    b'http_requests_total{code="200",path="/a b\\\\c\\"d\\ne\\tf"} 1027 1795309200\n'
    b'http_requests_total{path="/",code="500"} 3 1795309200.5\n'
    b'http_requests_total{code="200",path="/a b\\\\c\\"d\\ne\\tf"} 1028.5 1795309201.001 # {trace_id="x y"} 1 1795309201\n'
    b"# TYPE temp_celsius gauge\n"
    b"# UNIT temp_celsius celsius\n"
    b'temp_celsius{room="k\xc3\xbcche",empty=""} -0 1795309200.123\n'
    b"temp_celsius{room=\"k\xc3\xbcche\"} NaN 1795309260\n"
    b'temp_celsius{room="k\xc3\xbcche"} +Inf 1795309320.0015\n'
    b"temp_celsius{} -Inf 1795309380\n"
    b"a:b:c 1e-400 .5\n"
    b"a:b:c 1.7976931348623157e308 +5\n"
    b"# EOF"
)

FULL_EXPECTED: list[Sample] = [
    (L(__name__="http_requests_total", code="200", path='/a b\\c"d\ne\\tf'), 1795309200000, bits(1027.0)),
    (L(__name__="http_requests_total", code="500", path="/"), 1795309200500, bits(3.0)),
    (L(__name__="http_requests_total", code="200", path='/a b\\c"d\ne\\tf'), go_ms("1795309201.001"), bits(1028.5)),
    (L(__name__="temp_celsius", room="küche"), 1795309200123, bits(-0.0)),
    (L(__name__="temp_celsius", room="küche"), 1795309260000, GO_NAN_BITS),
    (L(__name__="temp_celsius", room="küche"), go_ms("1795309320.0015"), bits(math.inf)),
    (L(__name__="temp_celsius"), 1795309380000, bits(-math.inf)),
    (L(__name__="a:b:c"), 500, bits(0.0)),
    (L(__name__="a:b:c"), 5000, bits(1.7976931348623157e308)),
]


@pytest.mark.parametrize("chunk_bytes", [1, 13, 100, 64 << 20])
def test_full_file(chunk_bytes: int) -> None:
    chunks = parse_openmetrics(io.BytesIO(FULL), chunk_bytes)
    assert samples_of(chunks) == FULL_EXPECTED
    assert metadata_of(chunks) == {
        "http_requests_total": MetricMeta("counter", 'Requests \\ served\n so far, "quoted"', ""),
        "temp_celsius": MetricMeta("gauge", "", "celsius"),
    }
    assert chunks.lines == FULL.count(b"\n") + 1
    assert chunks.samples == len(FULL_EXPECTED)


def test_chunk_lists_series_in_first_appearance_order() -> None:
    data = b"b 1 1\na 1 1\nb 2 2\nc_total 1 1 # {x=\"1\"} 1\na 2 2\n# EOF\n"
    (chunk,) = list(parse_openmetrics(io.BytesIO(data)))
    assert chunk.labels == [L(__name__="b"), L(__name__="a"), L(__name__="c_total")]
    assert chunk.series.tolist() == [0, 1, 0, 2, 1]


def test_same_series_spelled_differently_is_one_series() -> None:
    data = b'm{a="1",b="2"} 1 1\nm{b="2",a="1"} 2 2\nm{a="1",b="2",c=""} 3 3\n# EOF\n'
    (chunk,) = list(parse_openmetrics(io.BytesIO(data)))
    assert chunk.labels == [L(__name__="m", a="1", b="2")]
    assert chunk.series.tolist() == [0, 0, 0]


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("1795309200", 1795309200000),
        ("1795309200.123", 1795309200123),
        ("1.001", 1000),  # 1.001 * 1000 == 1000.9999999999999: Go truncates
        ("1.0015", 1001),
        ("0.29", 290),
        ("-1.0015", -1001),
        ("-0.0005", 0),
        ("1e3", 1000000),
        ("+5", 5000),
        (".5", 500),
        ("1.9999999", 1999),
        ("1e-400", 0),
        ("9223372036854774", go_ms("9223372036854774")),
        ("-9223372036854775.808", -(2**63)),
    ],
)
def test_timestamps_convert_like_prometheus(text: str, ms: int) -> None:
    assert parse(f"m 1 {text}\n# EOF\n".encode()) == [(L(__name__="m"), ms, bits(1.0))]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", 1.0), ("-1", -1.0), ("+1.5", 1.5), ("1.", 1.0), (".5", 0.5), ("007", 7.0),
        ("1e5", 1e5), ("1E+05", 1e5), ("+.5e-3", 0.0005), ("-0", -0.0), ("1e-400", 0.0),
        ("4.9e-324", 5e-324), ("2.4703282292062328e-324", 5e-324),
        ("1.7976931348623158e308", 1.7976931348623157e308),
        ("0.1234567890123456789012345678901234567890", 0.12345678901234568),
        ("9007199254740993", 9007199254740992.0),
        ("Inf", math.inf), ("+inf", math.inf), ("-Infinity", -math.inf), ("iNfInItY", math.inf),
    ],
)
def test_value_spellings(text: str, value: float) -> None:
    assert parse(f"m {text} 1\n# EOF\n".encode()) == [(L(__name__="m"), 1000, bits(value))]


@pytest.mark.parametrize("text", ["NaN", "nan", "NAN", "nAn"])
def test_nan_becomes_prometheus_normal_nan(text: str) -> None:
    assert parse(f"m {text} 1\n# EOF\n".encode()) == [(L(__name__="m"), 1000, GO_NAN_BITS)]


def test_parse_go_float() -> None:
    assert parse_go_float("1.5") == 1.5
    assert bits(parse_go_float("NaN")) == GO_NAN_BITS
    for bad in ["+NaN", "-nan", "1e400", "0x1p3", "0x10", "1_000", "", ".", "1e", "infin", " 1", "١"]:
        with pytest.raises(ValueError):
            parse_go_float(bad)


# ---- rejections, with line numbers -----------------------------------------------------

MALFORMED = [
    # (input, line, fragment of the message)
    (b"", 1, "last line must be '# EOF'"),
    (b"m 1 1\n", 2, "last line must be '# EOF'"),
    (b"m 1 1\n# EOF\n\n", 3, "unexpected data after # EOF"),
    (b"m 1 1\n# EOF\nm 2 2\n# EOF\n", 3, "unexpected data after # EOF"),
    (b"# EOF\n# EOF\n", 2, "unexpected data after # EOF"),
    (b"# EOF \n", 1, "unexpected data after # EOF"),
    (b"# EOF\r\n", 1, "unexpected data after # EOF"),
    (b"m 1\n# EOF\n", 1, "no timestamp"),
    (b'm_total 1 # {a="b"} 1\n# EOF\n', 1, "no timestamp"),
    (b"m 1 1\n\nm 2 2\n# EOF\n", 2, "expected a metric name"),
    (b"m 1 1\n# a comment\n# EOF\n", 2, "expected HELP, TYPE, UNIT or EOF"),
    (b"#HELP m x\n# EOF\n", 1, "expected a space after '#'"),
    (b"# HELP m\n# EOF\n", 1, "expected a space and the help text"),
    (b"# HELP 1m x\n# EOF\n", 1, "expected a metric name after '# HELP '"),
    (b"# HELP m \xff\n# EOF\n", 1, "not valid UTF-8"),
    (b"# TYPE m bogus\n# EOF\n", 1, "invalid metric type 'bogus'"),
    (b"# TYPE m untyped\n# EOF\n", 1, "invalid metric type"),
    (b"# TYPE m  gauge\n# EOF\n", 1, "invalid metric type ' gauge'"),
    (b"# UNIT m seconds\n# EOF\n", 1, "not a suffix"),
    (b"# UNIT seconds seconds\n# EOF\n", 1, "not a suffix"),
    (b"1m 1 1\n# EOF\n", 1, "expected a metric name"),
    (b'{a="b"} 1 1\n# EOF\n', 1, "expected a metric name"),
    (b'm{a="b",} 1 1\n# EOF\n', 1, "expected a label name"),
    (b'm{,a="b"} 1 1\n# EOF\n', 1, "expected a label name"),
    (b'm{a="b" ,c="d"} 1 1\n# EOF\n', 1, "expected ',' or '}'"),
    (b'm{a="b", c="d"} 1 1\n# EOF\n', 1, "expected a label name"),
    (b'm{a:b="1"} 1 1\n# EOF\n', 1, "expected '='"),
    (b'm{"a"="1"} 1 1\n# EOF\n', 1, "expected a label name"),
    (b"m{a=b} 1 1\n# EOF\n", 1, "double-quoted value"),
    (b'm{a="b\\"} 1 1\n# EOF\n', 1, "double-quoted value"),
    (b'm{a="\xff"} 1 1\n# EOF\n', 1, "not valid UTF-8"),
    (b'm{a="1",a="2"} 1 1\n# EOF\n', 1, 'label name "a" is not unique'),
    (b'm{__name__="n"} 1 1\n# EOF\n', 1, 'label name "__name__" is not unique'),
    (b"m  1 1\n# EOF\n", 1, "expected value"),
    (b"m 1  1\n# EOF\n", 1, "expected timestamp"),
    (b"m 1 1 \n# EOF\n", 1, "expected end of line or an exemplar"),
    (b"m 1 1 1\n# EOF\n", 1, "expected end of line or an exemplar"),
    (b"m\t1 1\n# EOF\n", 1, "expected a space and the value"),
    (b"m 1 1\r\n# EOF\n", 1, "invalid timestamp"),
    (b"m +NaN 1\n# EOF\n", 1, "invalid value"),
    (b"m -nan 1\n# EOF\n", 1, "invalid value"),
    (b"m 1e400 1\n# EOF\n", 1, "out of range"),
    (b"m -1e400 1\n# EOF\n", 1, "out of range"),
    (b"m 0x1p3 1\n# EOF\n", 1, "invalid value"),
    (b"m 1_0 1\n# EOF\n", 1, "invalid value"),
    (b"m 1,5 1\n# EOF\n", 1, "invalid value"),
    (b"m \xd9\xa1 1\n# EOF\n", 1, "invalid value"),
    (b"m 1 NaN\n# EOF\n", 1, "invalid timestamp"),
    (b"m 1 +Inf\n# EOF\n", 1, "invalid timestamp"),
    (b"m 1 1e20\n# EOF\n", 1, "out of range"),
    (b"m 1 9223372036854775\n# EOF\n", 1, "out of range"),  # * 1000 rounds to 2**63
    (b"m 1 1x\n# EOF\n", 1, "invalid timestamp"),
    (b'm 1 1 # {a="b"} 1\n# EOF\n', 1, "does not support exemplars"),
    (b'm_total 1 1 # {a="b",} 1\n# EOF\n', 1, "expected a label name"),
    (b'm_total 1 1 # {a="b"}\n# EOF\n', 1, "exemplar value"),
    (b'm_total 1 1 # {a="b"} x\n# EOF\n', 1, "invalid exemplar value"),
    (b'm_total 1 1 # {a="b"} 1 NaN\n# EOF\n', 1, "invalid exemplar timestamp"),
    (b'm_total 1 1 # {a="b"} 1 1 1\n# EOF\n', 1, "expected end of line after the exemplar"),
    (b'm_total 1 1 # {a="\x00"} 1\n# EOF\n', 1, "NUL byte"),
    (b"m_total 1 1 #  {} 1\n# EOF\n", 1, "expected end of line or an exemplar"),
    (b"m_total 1 1 # x\n# EOF\n", 1, "expected end of line or an exemplar"),
]


@pytest.mark.parametrize(("data", "line", "fragment"), MALFORMED)
def test_malformed(data: bytes, line: int, fragment: str) -> None:
    for chunk_bytes in (3, 64 << 20):
        err = parse_error(data, chunk_bytes)
        assert err.line == line, err
        assert fragment in err.message, err


def test_error_line_counts_across_chunks() -> None:
    good = b"".join(b'm{i="%d"} %d %d\n' % (i % 7, i, i) for i in range(5000))
    data = good + b"# HELP m x\n" + good + b"m{i=1} 1 1\n" + good + b"# EOF\n"
    for chunk_bytes in (1000, 4096, 64 << 20):
        err = parse_error(data, chunk_bytes)
        assert err.line == 10002 and "double-quoted" in err.message


def test_chunks_before_the_error_are_yielded() -> None:
    data = b"".join(b"m %d %d\n" % (i, i) for i in range(1000)) + b"broken\n# EOF\n"
    chunks = parse_openmetrics(io.BytesIO(data), 1000)
    seen = 0
    with pytest.raises(InputParseError) as info:
        for chunk in chunks:
            seen += len(chunk)
    assert info.value.line == 1001
    assert 0 < seen < 1000


def test_empty_label_values_are_dropped() -> None:
    assert parse(b'm{a="",b="x"} 1 1\n# EOF\n') == [(L(__name__="m", b="x"), 1000, bits(1.0))]


def test_nul_bytes_allowed_in_label_values_and_help() -> None:
    data = b'# HELP m a\x00b\nm{a="x\x00y"} 1 1\n# EOF\n'
    chunks = parse_openmetrics(io.BytesIO(data))
    assert samples_of(chunks) == [(L(__name__="m", a="x\x00y"), 1000, bits(1.0))]
    assert metadata_of(chunks)["m"].help == "a\x00b"


def test_line_longer_than_chunk() -> None:
    value = "v" * 100_000
    data = f'm{{a="{value}"}} 1 1\nm 2 2\n# EOF\n'.encode()
    assert parse(data, 1000) == [(L(__name__="m", a=value), 1000, bits(1.0)), (L(__name__="m"), 2000, bits(2.0))]


def test_source_without_readinto() -> None:
    class ReadOnly:
        def __init__(self, data: bytes) -> None:
            self.f = io.BytesIO(data)

        def read(self, n: int = -1) -> bytes:
            return self.f.read(min(n, 7))  # short reads, too

    chunks = parse_openmetrics(ReadOnly(FULL), 50)  # type: ignore[arg-type]
    assert samples_of(chunks) == FULL_EXPECTED


def test_metadata_of_needs_our_iterator() -> None:
    with pytest.raises(TypeError):
        metadata_of(iter([]))


def test_repeated_metadata_last_wins() -> None:
    data = b"# HELP m one\n# HELP m two\n# TYPE m gauge\n# TYPE m counter\n# EOF\n"
    chunks = parse_openmetrics(io.BytesIO(data))
    assert list(chunks) == []
    assert metadata_of(chunks) == {"m": MetricMeta("counter", "two", "")}


def test_big_series_major_file_uses_few_distinct_keys() -> None:
    # Many samples, a few series, several chunks: exercises run detection and the key cache.
    lines = [b"# HELP node_x x\n# TYPE node_x gauge\n"]
    expected: list[Sample] = []
    for s in range(30):
        for t in range(700):
            v = s * 1000 + t * 0.25
            lines.append(b'node_x{cpu="%d",mode="idle"} %r %d.%03d\n' % (s, v, 1795309200 + t, t))
            expected.append((L(__name__="node_x", cpu=str(s), mode="idle"), (1795309200 + t) * 1000 + t, bits(v)))
    lines.append(b"# EOF\n")
    data = b"".join(lines)
    assert parse(data, 100_000) == expected


# ---- an independent reference parser (Prometheus 2.42's grammar, written as regexes) ---

_R_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_R_LNAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
_R_LVALUE = r'"(?:[^"\\\n]|\\[^\n])*"'
_R_LABELS = rf"\{{(?:{_R_LNAME}={_R_LVALUE}(?:,{_R_LNAME}={_R_LVALUE})*)?\}}"
_R_SAMPLE = re.compile(
    rf"({_R_NAME})({_R_LABELS})? ([^ ]+)(?: ([^ ]+))?(?: # ({_R_LABELS}) ([^ ]+)(?: ([^ ]+))?)?", re.S
)
_R_PAIR = re.compile(rf"({_R_LNAME})=({_R_LVALUE})", re.S)
_R_META = re.compile(rf"# (HELP|TYPE|UNIT) ({_R_NAME}) (.*)", re.S)
_TYPES = {"counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset", "unknown"}


class RefError(Exception):
    pass


def ref_go_float(s: str) -> float:
    """Go's strconv.ParseFloat minus hex and underscores, following its readFloat."""
    if any(c in s for c in "pP_"):
        raise RefError(s)
    body = s[1:] if s[:1] in ("+", "-") else s
    if body.lower() in ("inf", "infinity"):
        return -math.inf if s[0] == "-" else math.inf
    if body.lower() == "nan" and body == s:
        return math.nan
    i, digits, dot = 0, False, False
    while i < len(body):
        c = body[i]
        if c == "." and not dot:
            dot = True
        elif "0" <= c <= "9":
            digits = True
        else:
            break
        i += 1
    if not digits:
        raise RefError(s)
    if i < len(body) and body[i] in "eE":
        i += 1
        if i < len(body) and body[i] in "+-":
            i += 1
        if not (i < len(body) and "0" <= body[i] <= "9"):
            raise RefError(s)
        while i < len(body) and "0" <= body[i] <= "9":
            i += 1
    if i != len(body):
        raise RefError(s)
    v = float(s)
    if math.isinf(v):
        raise RefError("range")
    return v


def _ref_labels(text: str, exemplar: bool) -> list[tuple[str, str]]:
    pairs = []
    for name, quoted in _R_PAIR.findall(text):
        raw = quoted[1:-1]
        if re.search("[\udc80-\udcff]", raw) or (exemplar and "\x00" in raw):
            raise RefError("label value")
        pairs.append((name, re.sub(r"\\(.)", lambda m: {"n": "\n", "\\": "\\", '"': '"'}.get(m[1], m[0]), raw, flags=re.S)))
    return pairs


def ref_parse(data: bytes) -> tuple[list[Sample], int | None]:
    """Samples in order, and the 1-based line of the first error (None if valid)."""
    out: list[Sample] = []
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    for no, raw in enumerate(lines, 1):
        text = raw.decode("utf-8", "surrogateescape")
        try:
            if text == "# EOF":
                return out, (None if no == len(lines) else no + 1)
            if text.startswith("#"):
                m = _R_META.fullmatch(text)
                if not m:
                    raise RefError(text)
                kind, name, value = m.groups()
                if kind == "TYPE" and value not in _TYPES:
                    raise RefError(text)
                if kind == "UNIT" and value and not name.endswith("_" + value):
                    raise RefError(text)
                if kind == "HELP" and re.search("[\udc80-\udcff]", value):
                    raise RefError(text)
                continue
            m = _R_SAMPLE.fullmatch(text)
            if not m:
                raise RefError(text)
            name, labels, value, ts, ex_labels, ex_value, ex_ts = m.groups()
            v = ref_go_float(value)
            if ex_labels is not None:
                if not name.endswith(("_total", "_bucket")):
                    raise RefError("exemplar")
                _ref_labels(ex_labels, True)
                ref_go_float(ex_value)
                if ex_ts is not None and not math.isfinite(ref_go_float(ex_ts)):
                    raise RefError("exemplar ts")
            if ts is None:
                raise RefError("no ts")
            ms = ref_go_float(ts) * 1000.0
            if not (-(2.0**63) <= ms < 2.0**63):
                raise RefError("ts range")
            pairs = [("__name__", name)] + _ref_labels(labels or "", False)
            if len({n for n, _ in pairs}) != len(pairs):
                raise RefError("duplicate")
            out.append((Labels(pairs), int(ms), GO_NAN_BITS if v != v else bits(v)))
        except (RefError, ValueError):
            return out, no
    return out, len(lines) + 1


def ours(data: bytes, chunk_bytes: int) -> tuple[list[Sample], int | None]:
    """Like `ref_parse`, but samples only for a valid input (chunks before an error are
    yielded, so what arrives before it depends on the chunk size)."""
    try:
        return parse(data, chunk_bytes), None
    except InputParseError as err:
        return [], err.line


def outcome(result: tuple[list[Sample], int | None]) -> tuple[list[Sample], int | None]:
    return ([], result[1]) if result[1] is not None else result


def test_reference_parser_agrees_on_the_tables() -> None:
    assert ref_parse(FULL) == (FULL_EXPECTED, None)
    for data, line, _ in MALFORMED:
        assert ref_parse(data)[1] == line, data


# ---- property tests --------------------------------------------------------------------

label_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,8}", fullmatch=True).filter(lambda s: s != "__name__")
metric_names = st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,10}", fullmatch=True)
awkward_text = st.lists(
    st.one_of(
        st.sampled_from(list(' \\"\n\t\r{}=,#\x00é☃') + ["\\n", "\\t", '\\"', " # {"]),
        st.characters(codec="utf-8"),
    ),
    max_size=8,
).map("".join)
floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**18), 10**18).map(float),
    st.sampled_from([0.0, -0.0, 5e-324, 1e-5, 1e6, 1.7976931348623157e308]),
)


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def spellings(v: float) -> st.SearchStrategy[str]:
    if v != v:
        return st.sampled_from(["NaN", "nan", "NAN"])
    if math.isinf(v):
        return st.sampled_from(["+Inf", "Inf", "inf", "+infinity"] if v > 0 else ["-Inf", "-inf", "-Infinity"])
    options = [repr(v), f"{v:.17g}", f"{v:.17e}", f"{v:.25g}"]
    if math.copysign(1.0, v) > 0:
        options.append("+" + repr(v))
    if v == int(v) and abs(v) < 1e15 and (v != 0 or math.copysign(1.0, v) > 0):
        options.append(str(int(v)))
    return st.sampled_from(options)


@st.composite
def expositions(draw: st.DrawFn) -> tuple[bytes, list[Sample], dict[str, MetricMeta]]:
    n_series = draw(st.integers(1, 6))
    series = []
    for _ in range(n_series):
        name = draw(metric_names)
        names = draw(st.lists(label_names, max_size=4, unique=True))
        pairs = [(n, draw(awkward_text)) for n in names]
        order = draw(st.permutations(pairs))
        braces: bool = bool(order) or draw(st.booleans())
        text = name + ("{" + ",".join(f'{n}="{escape(v)}"' for n, v in order) + "}" if braces else "")
        series.append((text, Labels([("__name__", name)] + pairs), name))
    lines: list[str] = []
    expected: list[Sample] = []
    meta: dict[str, MetricMeta] = {}
    for _ in range(draw(st.integers(0, 25))):
        if draw(st.integers(0, 9)) == 0:
            name = draw(st.sampled_from([s[2] for s in series]))
            kind = draw(st.sampled_from(["HELP", "TYPE"]))
            if kind == "TYPE":
                value = draw(st.sampled_from(sorted(_TYPES)))
                lines.append(f"# TYPE {name} {value}")
                meta.setdefault(name, MetricMeta()).type = value
            else:
                value = draw(awkward_text)
                lines.append(f"# HELP {name} {escape(value)}")
                meta.setdefault(name, MetricMeta()).help = value
            continue
        text, labels, name = draw(st.sampled_from(series))
        v = draw(floats)
        if draw(st.booleans()):
            sec = draw(st.integers(-(10**12), 10**12))
            ts_text, ms = str(sec), sec * 1000
        else:
            ts_text = f"{draw(st.integers(0, 10**10))}.{draw(st.integers(0, 10**6)):0{draw(st.integers(1, 7))}d}"
            ms = int(float(ts_text) * 1000.0)
        line = f"{text} {draw(spellings(v))} {ts_text}"
        if name.endswith(("_total", "_bucket")) and draw(st.booleans()):
            line += f' # {{trace_id="{escape(draw(awkward_text))}"}} {draw(spellings(draw(floats)))}'
        lines.append(line)
        expected.append((labels, ms, GO_NAN_BITS if v != v else bits(v)))
    lines.append("# EOF")
    return ("\n".join(lines) + draw(st.sampled_from(["", "\n"]))).encode(), expected, meta


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expositions(), st.sampled_from([1, 16, 200, 64 << 20]))
def test_generated_expositions_parse_to_what_was_generated(
    exposition: tuple[bytes, list[Sample], dict[str, MetricMeta]], chunk_bytes: int
) -> None:
    data, expected, meta = exposition
    chunks = parse_openmetrics(io.BytesIO(data), chunk_bytes)
    assert samples_of(chunks) == expected
    assert metadata_of(chunks) == meta
    assert ref_parse(data) == (expected, None)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([1, 7, 64 << 20]))
def test_arbitrary_bytes_parse_or_raise_input_parse_error(data: bytes, chunk_bytes: int) -> None:
    assert ours(data, chunk_bytes) == outcome(ref_parse(data))


_PIECES = [b" ", b"\n", b"#", b"{", b"}", b'"', b"\\", b",", b"=", b"_total", b"1", b".", b"e", b"-", b"+",
           b"NaN", b"Inf", b"\x00", b"\xff", b"\t", b"# EOF", b" # {", b"a"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expositions(), st.lists(st.tuples(st.floats(0, 1), st.integers(0, 3), st.sampled_from(_PIECES)), max_size=4),
       st.sampled_from([1, 32, 64 << 20]))
def test_mutated_expositions_agree_with_reference(
    exposition: tuple[bytes, list[Sample], dict[str, MetricMeta]],
    edits: list[tuple[float, int, bytes]],
    chunk_bytes: int,
) -> None:
    data = exposition[0]
    for where, drop, piece in edits:
        at = int(where * len(data))
        data = data[:at] + piece + data[at + drop :]
    assert ours(data, chunk_bytes) == outcome(ref_parse(data))


@settings(max_examples=400, deadline=None)
@given(st.text(st.sampled_from("0123456789.eE+-_pxinfatyINFATY "), max_size=10))
def test_value_syntax_matches_go(text: str) -> None:
    assume(" " not in text and text)
    data = f"m {text} 1\n# EOF\n".encode()
    try:
        expected = ref_go_float(text)
    except RefError:
        assert ours(data, 64 << 20) == ([], 1)
        return
    want = GO_NAN_BITS if expected != expected else bits(expected)
    assert ours(data, 64 << 20) == ([(L(__name__="m"), 1000, want)], None)
