"""OpenMetrics 1.0 text parser for backfill (`vigilops tsdb import openmetrics FILE DATA_DIR`).

Accepts what `promtool tsdb create-blocks-from openmetrics` (Prometheus 2.42) accepts and
rejects what it rejects, with an `InputParseError` naming the 1-based line:

- ``# HELP name text``, ``# TYPE name type``, ``# UNIT name unit`` and the mandatory final
  ``# EOF``; no other comments, no blank lines, nothing after ``# EOF``.
- Samples ``name{label="value",…} value timestamp`` with single spaces, no trailing comma,
  label values escaped with ``\\\\``, ``\\"``, ``\\n`` (other escapes stay as written) and
  valid UTF-8. Values and timestamps use Go's `strconv.ParseFloat` syntax without hex
  floats or underscores (``1``, ``-2.5e3``, ``.5``, ``NaN``, ``+Inf``, ``inf``, …);
  a value that overflows float64 is an error. Every sample needs a timestamp.
- Timestamps are seconds; they become int64 milliseconds exactly as Prometheus computes
  them, ``int64(float64(ts) * 1000)`` (truncation, so ``1.001`` is 1000 ms). Timestamps
  whose millisecond value does not fit in int64 are rejected (promtool loops forever).
- An exemplar (``… # {trace_id="…"} 1.5 1700000000``) is checked and dropped; as in
  Prometheus only ``*_total`` and ``*_bucket`` samples may carry one.
- Duplicate label names (including ``__name__`` inside the braces) are rejected, as
  Prometheus's head rejects them; labels with empty values are dropped, as it drops them.
- Every NaN sample value is stored as Prometheus's ``value.NormalNaN``
  (``0x7ff8000000000001``, also what Go's `strconv.ParseFloat("NaN")` returns).

Speed: the input is read in big chunks cut at a newline and parsed with numpy and pyarrow
compute kernels, with no Python work per line: line and field boundaries come from one
vectorised scan for bytes <= 0x20, values and timestamps from arrow's string -> float64
cast (correctly rounded, like Go), series from run detection plus a dictionary of the
distinct series texts, of which only the new ones are parsed in Python. Lines the
vectorised checks cannot vouch for (metadata, exemplars, anything malformed) go through a
careful line parser, which either accepts them or raises with the exact line and message;
so a file full of exemplars parses at Python speed. Peak memory is about six times
`chunk_bytes` (the read buffer, a byte mask, and per-line index arrays).

Not checked here: the order of samples, which is the block writer's business. (promtool
2.42 silently drops a sample whose timestamp is not after the newest one already appended
to its series in the same block range, duplicates included: the first one wins.)
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from .errors import InputParseError
from .model import METRIC_NAME, Labels

__all__ = [
    "GO_NAN_BITS",
    "METRIC_TYPES",
    "MetricMeta",
    "OpenMetricsParser",
    "ParsedChunk",
    "metadata_of",
    "parse_go_float",
    "parse_openmetrics",
]

#: Bits of the NaN Go's `strconv.ParseFloat` returns and Prometheus stores (value.NormalNaN).
GO_NAN_BITS = 0x7FF8000000000001
_GO_NAN = np.array([GO_NAN_BITS], dtype=np.uint64).view(np.float64)[0]

#: The metric types OpenMetrics 1.0 allows in ``# TYPE`` lines.
METRIC_TYPES = frozenset(
    ("counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset", "unknown")
)

#: Distinct series texts remembered across chunks; past this the cache starts over.
#: A million short texts is roughly 200 MB, far above a node-exporter fleet's cardinality.
_KEY_CACHE_LIMIT = 1 << 20

#: Initial read buffer; it grows by 4x steps up to `chunk_bytes` while input keeps coming.
_FIRST_BUFFER = 1 << 20

#: 2**63 as a float: millisecond timestamps must lie in [-2**63, 2**63).
_TWO63 = 9.223372036854775808e18

# Go's ParseFloat syntax minus hex floats and underscores (Prometheus rejects "pP_").
_GO_FLOAT_SRC = (
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)"
    r"|[nN][aA][nN]"
)
_GO_FLOAT = re.compile(_GO_FLOAT_SRC)
_GO_FLOAT_RE2 = f"^(?:{_GO_FLOAT_SRC})$"
_METRIC_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_LABEL_VALUE_RE = re.compile(r'"((?:[^"\\]|\\.)*)"', re.S)
_ESCAPE_RE = re.compile(r"\\(.)", re.S)
_UNESCAPES = {"\\": "\\", '"': '"', "n": "\n"}
# Bytes that `bytes.decode("utf-8", "surrogateescape")` could not decode.
_BAD_UTF8_RE = re.compile("[\udc80-\udcff]")

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass
class ParsedChunk:
    """The samples of one stretch of the input, in input order.

    `labels` lists the distinct series of the stretch in order of first appearance;
    ``series[i]`` indexes it for sample ``i``. Timestamps are int64 milliseconds, values
    float64 (NaN as `GO_NAN_BITS`). A series may appear in several chunks. The arrays are
    fresh and owned by the caller.
    """

    labels: list[Labels]
    series: Int64Array
    timestamps: Int64Array
    values: Float64Array

    def __len__(self) -> int:
        return len(self.series)


@dataclass
class MetricMeta:
    """What ``# TYPE``, ``# HELP`` and ``# UNIT`` said about one metric family.

    Fields a file never set stay at their defaults: type ``"unknown"``, empty help and
    unit. When a line is repeated the last one wins. `help` is unescaped.
    """

    type: str = "unknown"
    help: str = ""
    unit: str = ""


def parse_openmetrics(source: BinaryIO, chunk_bytes: int = 64 << 20) -> OpenMetricsParser:
    """Parse an OpenMetrics file for backfill, yielding one `ParsedChunk` per stretch.

    `source` is read sequentially in pieces of about `chunk_bytes` (a longer line grows
    the buffer), so memory stays bounded by a few times `chunk_bytes`. Chunks without
    samples are not yielded. Raises `InputParseError` at the first malformed line, when
    the input does not end with ``# EOF`` or when anything follows it; chunks before the
    error have already been yielded. The returned iterator also collects metadata, see
    `metadata_of`.
    """
    return OpenMetricsParser(source, chunk_bytes)


def metadata_of(chunks: Iterator[ParsedChunk]) -> dict[str, MetricMeta]:
    """The ``# TYPE``/``# HELP``/``# UNIT`` seen so far by a `parse_openmetrics` iterator,
    keyed by metric family name; complete once the iterator is exhausted."""
    if not isinstance(chunks, OpenMetricsParser):
        raise TypeError(f"metadata_of needs the iterator parse_openmetrics returned, not {chunks!r}")
    return chunks.metadata


class OpenMetricsParser(Iterator[ParsedChunk]):
    """The iterator `parse_openmetrics` returns; single use, not thread-safe.

    `metadata` fills while iterating; `lines` and `samples` count what was parsed so far.
    """

    def __init__(self, source: BinaryIO, chunk_bytes: int = 64 << 20) -> None:
        if chunk_bytes < 1:
            raise ValueError(f"chunk_bytes must be positive, got {chunk_bytes}")
        self.metadata: dict[str, MetricMeta] = {}
        self.lines = 0
        self.samples = 0
        self._source = source
        self._chunk_bytes = chunk_bytes
        self._eof_seen = False
        self._key_cache: dict[bytes, Labels | None] = {}
        self._chunk_labels: list[Labels] = []
        self._chunk_index: dict[Labels, int] = {}
        self._mask = np.empty(0, np.bool_)  # scratch, reused between chunks
        self._gen = self._run()

    def __iter__(self) -> OpenMetricsParser:
        return self

    def __next__(self) -> ParsedChunk:
        return next(self._gen)

    # -- reading -----------------------------------------------------------------------

    def _read_into(self, view: memoryview) -> int:
        readinto = getattr(self._source, "readinto", None)
        if readinto is not None:
            n = readinto(view)
            return int(n or 0)
        data = self._source.read(len(view))
        view[: len(data)] = data
        return len(data)

    def _run(self) -> Iterator[ParsedChunk]:
        # The buffer starts small (small inputs are common in tests and tools) and grows to
        # `chunk_bytes`, or beyond for a longer line. One spare byte lets a last line without
        # "\n" be given one.
        buf = bytearray(min(self._chunk_bytes, _FIRST_BUFFER) + 1)
        filled = 0
        at_eof = False
        while True:
            while not at_eof:
                if filled == len(buf) - 1:
                    if len(buf) - 1 >= self._chunk_bytes:
                        break
                    bigger = bytearray(min(4 * (len(buf) - 1), self._chunk_bytes) + 1)
                    bigger[:filled] = buf[:filled]
                    buf = bigger
                n = self._read_into(memoryview(buf)[filled : len(buf) - 1])
                if n == 0:
                    at_eof = True
                filled += n
            if at_eof and filled and buf[filled - 1] != 0x0A:
                buf[filled] = 0x0A
                filled += 1
            if filled == 0:
                break
            cut = buf.rfind(b"\n", 0, filled) + 1
            if cut == 0:  # one line longer than the buffer: grow it
                bigger = bytearray(2 * len(buf))
                bigger[:filled] = buf[:filled]
                buf = bigger
                continue
            chunk = self._parse_chunk(buf, cut)
            if chunk is not None:
                yield chunk
            buf[: filled - cut] = buf[cut:filled]
            filled -= cut
        if not self._eof_seen:
            raise InputParseError(
                self.lines + 1, "unexpected end of input: the last line must be '# EOF'"
            )

    # -- one chunk ---------------------------------------------------------------------

    def _parse_chunk(self, buf: bytearray, size: int) -> ParsedChunk | None:
        """Parse ``buf[:size]``, which ends with a newline."""
        arr = np.frombuffer(buf, np.uint8, size)
        if len(self._mask) < size:
            self._mask = np.empty(len(buf), np.bool_)
        mask = np.less_equal(arr, 0x20, out=self._mask[:size])
        pos = mask.nonzero()[0]  # every newline, space and control byte
        cls = arr[pos]
        j = (cls == 0x0A).nonzero()[0]  # index in `pos` of each line's newline
        n = len(j)
        nl = pos[j]
        starts = np.empty(n, np.int64)
        starts[0] = 0
        starts[1:] = nl[:-1] + 1
        base = self.lines
        self.lines += n
        if self._eof_seen:
            raise InputParseError(base + 1, "unexpected data after # EOF")

        # A plain sample line is "KEY VALUE TS\n": its last two bytes <= 0x20 are the spaces
        # around VALUE. Other lines (metadata, exemplars, malformed ones) take the slow path.
        j1 = j - 1
        j2 = j - 2
        j1[:2] = np.maximum(j1[:2], 0)  # j[k] >= k, so only the first two can be negative
        j2[:2] = np.maximum(j2[:2], 0)
        s1 = pos[j1]
        s2 = pos[j2]
        ok = cls[j1] == 0x20
        ok &= cls[j2] == 0x20
        ok[1:] &= j2[1:] > j[:-1]  # both spaces on this line
        ok[0] &= j[0] >= 2
        ok &= arr[starts] != 0x23  # "#": metadata
        # Fields of slow lines become empty strings at their newline (keeps offsets sorted).
        bad = (~ok).nonzero()[0]
        at_nl = nl[bad]
        value_begin = s2 + 1
        value_begin[bad] = at_nl
        value_end = s1.copy()
        value_end[bad] = at_nl
        ts_begin = s1 + 1
        ts_begin[bad] = at_nl

        dbuf = pa.py_buffer(buf)
        values = _cast_floats(dbuf, value_begin, value_end, ok)
        ts_sec = _cast_floats(dbuf, ts_begin, nl, ok)
        # NaN and Inf need a second look: arrow also takes "-nan" and "1e999".
        odd = ok & ~np.isfinite(values)
        if odd.any():
            at = odd.nonzero()[0]
            first = arr[value_begin[at]]
            second = arr[np.minimum(value_begin[at] + 1, size - 1)]
            signed = (first == 0x2B) | (first == 0x2D)
            letter = np.where(signed, second, first) | 0x20  # ASCII lower case
            isnan = np.isnan(values[at])
            good = np.where(isnan, (letter == ord("n")) & ~signed, letter == ord("i"))
            ok[at[~good]] = False
            values[at[isnan & good]] = _GO_NAN
        with np.errstate(over="ignore", invalid="ignore"):  # slow lines hold garbage here
            ms_f = ts_sec * 1000.0
            ok &= ms_f >= -_TWO63  # false for NaN too
            ok &= ms_f < _TWO63
            timestamps = ms_f.astype(np.int64)  # truncates toward zero, like Go

        key_end = s2
        key_end[bad] = starts[bad]
        self._chunk_labels = []
        self._chunk_index = {}
        series = self._series_of_keys(dbuf, starts, key_end, ok)

        sample = ok.copy()
        slow_samples = False
        for i in (~ok).nonzero()[0].tolist():
            lineno = base + i + 1
            line = bytes(buf[starts[i] : nl[i]])
            if self._eof_seen:
                raise InputParseError(lineno, "unexpected data after # EOF")
            parsed = self._parse_slow_line(line, lineno)
            if self._eof_seen and i != n - 1:
                raise InputParseError(lineno + 1, "unexpected data after # EOF")
            if parsed is None:
                continue
            labels, value, ts = parsed
            series[i] = self._index_of(labels)
            values[i] = value
            timestamps[i] = ts
            sample[i] = True
            slow_samples = True

        count = int(np.count_nonzero(sample))
        if count == 0:
            return None
        self.samples += count
        if count < n:
            keep = sample.nonzero()[0]
            series, timestamps, values = series[keep], timestamps[keep], values[keep]
        labels_list = self._chunk_labels
        if slow_samples:
            series, labels_list = _first_appearance_order(series, labels_list)
        return ParsedChunk(labels_list, series, timestamps, values)

    def _series_of_keys(
        self, dbuf: pa.Buffer, begin: Int64Array, end: Int64Array, ok: BoolArray
    ) -> Int64Array:
        """Index into this chunk's labels of the series text ``buf[begin[i]:end[i]]`` of each
        `ok` line. Lines whose text is not a valid series are taken out of `ok` (in place);
        the result for lines not in `ok` is unspecified."""
        n = len(begin)
        if not ok.any():
            return np.zeros(n, np.int64)
        offsets = np.empty(2 * n, np.int64)
        offsets[0::2] = begin
        offsets[1::2] = end
        keys = pa.Array.from_buffers(pa.large_binary(), 2 * n - 1, [None, pa.py_buffer(offsets), dbuf])
        # Runs of equal keys (the usual series-major layout) need one dictionary entry each.
        head = ok.copy()
        if n > 1:
            same = pc.equal(keys[2:], keys[:-2]).to_numpy(zero_copy_only=False)[0::2]
            head[1:] &= ~(same & ok[:-1])
        heads = head.nonzero()[0]
        run = np.cumsum(head, dtype=np.int32)
        run -= 1
        run[: heads[0]] = 0
        encoded = pc.dictionary_encode(keys.take(pa.array(2 * heads)))
        key_series = np.fromiter(
            (self._key_index(k) for k in encoded.dictionary.to_pylist()),
            np.int64,
            len(encoded.dictionary),
        )
        indices: npt.NDArray[np.int32] = encoded.indices.to_numpy(zero_copy_only=False)
        series = key_series[indices][run]
        ok &= series >= 0
        return series

    def _key_index(self, key: bytes) -> int:
        if key in self._key_cache:
            labels = self._key_cache[key]
        else:
            try:
                labels = _parse_series_key(key)
            except _Syntax:
                labels = None
            if len(self._key_cache) >= _KEY_CACHE_LIMIT:
                self._key_cache.clear()
            self._key_cache[key] = labels
        return -1 if labels is None else self._index_of(labels)

    def _index_of(self, labels: Labels) -> int:
        idx = self._chunk_index.get(labels)
        if idx is None:
            idx = self._chunk_index[labels] = len(self._chunk_labels)
            self._chunk_labels.append(labels)
        return idx

    # -- the careful path --------------------------------------------------------------

    def _parse_slow_line(self, line: bytes, lineno: int) -> tuple[Labels, float, int] | None:
        """Parse one line (without its newline); a sample, or None for metadata."""
        text = line.decode("utf-8", "surrogateescape")
        try:
            if text.startswith("#"):
                self._parse_meta_line(text)
                return None
            return _parse_sample_line(text)
        except _Syntax as exc:
            raise InputParseError(lineno, f"{exc.message} (column {exc.column + 1})") from None

    def _parse_meta_line(self, text: str) -> None:
        if text == "# EOF":
            self._eof_seen = True
            return
        if text.startswith("# EOF"):
            raise _Syntax(5, "unexpected data after # EOF")
        if not text.startswith("# "):
            raise _Syntax(1, f"expected a space after '#', got {_show(text, 1)}")
        kind = text[2:6]
        if kind not in ("HELP", "TYPE", "UNIT") or text[6:7] != " ":
            raise _Syntax(
                2,
                "expected HELP, TYPE, UNIT or EOF after '# ' (OpenMetrics has no other "
                f"comments), got {_show(text, 2)}",
            )
        m = _METRIC_NAME_RE.match(text, 7)
        if m is None:
            raise _Syntax(7, f"expected a metric name after '# {kind} ', got {_show(text, 7)}")
        name = m.group()
        if text[m.end() : m.end() + 1] != " ":
            raise _Syntax(
                m.end(), f"expected a space and the {kind.lower()} text after the metric name, "
                f"got {_show(text, m.end())}"
            )
        value = text[m.end() + 1 :]
        meta = self.metadata.get(name)
        if meta is None:
            meta = self.metadata[name] = MetricMeta()
        if kind == "TYPE":
            if value not in METRIC_TYPES:
                raise _Syntax(
                    m.end() + 1,
                    f"invalid metric type {_quote(value)} (expected one of "
                    f"{', '.join(sorted(METRIC_TYPES))})",
                )
            meta.type = value
        elif kind == "HELP":
            bad = _BAD_UTF8_RE.search(value)
            if bad is not None:
                raise _Syntax(m.end() + 1 + bad.start(), "help text is not valid UTF-8")
            meta.help = _unescape(value)
        else:
            if value and not name.endswith("_" + value):
                raise _Syntax(
                    m.end() + 1,
                    f"unit {_quote(value)} is not a suffix of metric name {name!r} "
                    f"(expected {name!r} to end with '_{value}')",
                )
            meta.unit = value


def _cast_floats(dbuf: pa.Buffer, begin: Int64Array, end: Int64Array, ok: BoolArray) -> Float64Array:
    """Parse the fields ``buf[begin[i]:end[i]]`` of the `ok` lines as float64.

    Lines whose field is not in Go's float syntax are taken out of `ok` (in place). The
    result for lines not in `ok` is unspecified. `begin` and `end` must interleave sorted.
    """
    n = len(begin)
    offsets = np.empty(2 * n, np.int64)
    offsets[0::2] = begin
    offsets[1::2] = end
    offsets_buf = pa.py_buffer(offsets)
    for attempt in range(3):
        valid = np.zeros(2 * n, np.bool_)
        valid[0::2] = ok
        strings = pa.Array.from_buffers(
            pa.large_string(),
            2 * n - 1,
            [pa.py_buffer(np.packbits(valid[:-1], bitorder="little")), offsets_buf, dbuf],
        )
        try:
            parsed = pc.cast(strings, pa.float64())
        except pa.ArrowInvalid:
            if attempt == 0:
                syntax = pc.fill_null(pc.match_substring_regex(strings, _GO_FLOAT_RE2), False)
                ok &= syntax.to_numpy(zero_copy_only=False)[0::2]
            else:  # arrow refused something Go accepts: let the slow path decide
                ok[:] = False
            continue
        data = np.frombuffer(parsed.buffers()[1], np.float64, 2 * n - 1, parsed.offset * 8)
        return data[0::2].copy()
    return np.zeros(n, np.float64)


def _first_appearance_order(
    series: Int64Array, labels: list[Labels]
) -> tuple[Int64Array, list[Labels]]:
    """Renumber `series` so that `labels` is in order of first appearance."""
    uniq, first = np.unique(series, return_index=True)
    order = uniq[np.argsort(first, kind="stable")]
    remap = np.empty(len(labels), np.int64)
    remap[order] = np.arange(len(order), dtype=np.int64)
    return remap[series], [labels[i] for i in order.tolist()]


# ---- line grammar (Prometheus 2.42's OpenMetrics lexer and parser, one line at a time) ----


class _Syntax(Exception):
    """A syntax error at character `column` (0-based) of the line being parsed."""

    def __init__(self, column: int, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


def _quote(text: str) -> str:
    """`repr` of `text`, with undecodable bytes shown as ``\\xff`` again."""
    return repr(text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"))


def _show(text: str, pos: int) -> str:
    if pos >= len(text):
        return "end of line"
    return _quote(text[pos : pos + 12] + ("…" if len(text) > pos + 12 else ""))


def _unescape(value: str) -> str:
    if "\\" not in value:
        return value
    return _ESCAPE_RE.sub(lambda m: _UNESCAPES.get(m.group(1), m.group(0)), value)


def parse_go_float(text: str) -> float:
    """Parse `text` as Prometheus's OpenMetrics parser does (Go's `strconv.ParseFloat`
    without hex floats or underscores). NaN comes back with `GO_NAN_BITS`.

    Raises ValueError for bad syntax and for finite spellings that overflow float64.
    """
    if _GO_FLOAT.fullmatch(text) is None:
        raise ValueError(f"{_quote(text)} is not a float (expected e.g. 1, -2.5e-3, NaN, +Inf)")
    value = float(text)
    if math.isinf(value) and text.lstrip("+-")[:1] not in ("i", "I"):
        raise ValueError(f"{_quote(text)} is out of range for float64")
    if value != value:
        return float(_GO_NAN)
    return value


def _field(text: str, pos: int) -> tuple[str, int]:
    """The run of non-space characters at `pos` and the position after it."""
    end = text.find(" ", pos)
    if end < 0:
        end = len(text)
    return text[pos:end], end


def _float_field(text: str, pos: int, what: str) -> tuple[float, int]:
    field, end = _field(text, pos)
    if not field:
        raise _Syntax(pos, f"expected {what} after a single space, got {_show(text, pos)}")
    try:
        return parse_go_float(field), end
    except ValueError as exc:
        raise _Syntax(pos, f"invalid {what}: {exc}") from None


def _parse_label_set(
    text: str, pos: int, exemplar: bool = False
) -> tuple[list[tuple[str, str]], int]:
    """Parse labels after the ``{`` at ``pos - 1`` up to and including the ``}``.

    Prometheus's lexer skips NUL bytes inside sample label values but not inside exemplar
    label values, so `exemplar` label values must not contain one.
    """
    pairs: list[tuple[str, str]] = []
    if text.startswith("}", pos):
        return pairs, pos + 1
    while True:
        m = _LABEL_NAME_RE.match(text, pos)
        if m is None:
            raise _Syntax(pos, f"expected a label name, got {_show(text, pos)}")
        name = m.group()
        pos = m.end()
        if not text.startswith("=", pos):
            raise _Syntax(pos, f"expected '=' after label name {name!r}, got {_show(text, pos)}")
        pos += 1
        m = _LABEL_VALUE_RE.match(text, pos)
        if m is None:
            raise _Syntax(
                pos, f"expected a double-quoted value for label {name!r}, got {_show(text, pos)}"
            )
        raw = m.group(1)
        bad = _BAD_UTF8_RE.search(raw)
        if bad is not None:
            raise _Syntax(pos + 1 + bad.start(), f"value of label {name!r} is not valid UTF-8")
        if exemplar and "\x00" in raw:
            raise _Syntax(pos + 1 + raw.index("\x00"), "NUL byte in an exemplar label value")
        pairs.append((name, _unescape(raw)))
        pos = m.end()
        if text.startswith("}", pos):
            return pairs, pos + 1
        if not text.startswith(",", pos):
            raise _Syntax(pos, f"expected ',' or '}}' after a label value, got {_show(text, pos)}")
        pos += 1


def _scan_series(text: str) -> tuple[Labels, int]:
    """Parse the metric name and labels at the start of `text`."""
    m = _METRIC_NAME_RE.match(text)
    if m is None:
        raise _Syntax(
            0, f"expected a metric name or '# ' at the start of the line, got {_show(text, 0)}"
        )
    pairs = [(METRIC_NAME, m.group())]
    pos = m.end()
    if text.startswith("{", pos):
        more, pos = _parse_label_set(text, pos + 1)
        seen = {METRIC_NAME}
        for name, _ in more:
            if name in seen:
                raise _Syntax(m.end(), f'label name "{name}" is not unique')
            seen.add(name)
        pairs.extend(more)
    return Labels(pairs), pos


def _parse_series_key(key: bytes) -> Labels:
    """Parse a whole series text such as ``up{job="node"}``; raises `_Syntax`."""
    text = key.decode("utf-8", "surrogateescape")
    labels, pos = _scan_series(text)
    if pos != len(text):
        raise _Syntax(pos, "trailing text after the series")
    return labels


def _parse_sample_line(text: str) -> tuple[Labels, float, int]:
    labels, pos = _scan_series(text)
    if not text.startswith(" ", pos):
        raise _Syntax(pos, f"expected a space and the value after the series, got {_show(text, pos)}")
    value, pos = _float_field(text, pos + 1, "value")
    if pos == len(text) or text.startswith(" # {", pos):
        if pos < len(text):
            _parse_exemplar(text, pos + 4, labels.name)
        raise _Syntax(
            pos,
            "sample has no timestamp; backfill needs one (expected a space and the "
            "timestamp in seconds after the value)",
        )
    if text.startswith(" # ", pos):  # "# " followed by something other than "{"
        raise _Syntax(pos + 3, f"expected '{{' to start an exemplar, got {_show(text, pos + 3)}")
    ts_at = pos + 1
    ts, pos = _float_field(text, ts_at, "timestamp")
    if not math.isfinite(ts):
        raise _Syntax(ts_at, f"invalid timestamp {_quote(text[ts_at:pos])}: must be finite")
    ms = ts * 1000.0
    if not -_TWO63 <= ms < _TWO63:
        raise _Syntax(
            ts_at,
            f"timestamp {_quote(text[ts_at:pos])} s is out of range "
            "(its milliseconds must fit in int64)",
        )
    if pos < len(text):
        if not text.startswith(" # {", pos):
            raise _Syntax(
                pos,
                "expected end of line or an exemplar (' # {') after the timestamp, "
                f"got {_show(text, pos)}",
            )
        _parse_exemplar(text, pos + 4, labels.name)
    return labels, value, int(ms)


def _parse_exemplar(text: str, pos: int, metric: str) -> None:
    """Check the exemplar whose labels start at `pos` (after ``# {``); it is not kept."""
    if not (metric.endswith("_total") or metric.endswith("_bucket")):
        raise _Syntax(
            pos - 3,
            f"metric name {metric} does not support exemplars (only *_total and *_bucket do)",
        )
    _, pos = _parse_label_set(text, pos, exemplar=True)
    if not text.startswith(" ", pos):
        raise _Syntax(pos, f"expected a space and the exemplar value, got {_show(text, pos)}")
    _, pos = _float_field(text, pos + 1, "exemplar value")
    if pos == len(text):
        return
    ts_at = pos + 1
    ts, pos = _float_field(text, ts_at, "exemplar timestamp")
    if not math.isfinite(ts):
        raise _Syntax(ts_at, f"invalid exemplar timestamp {_quote(text[ts_at:pos])}: must be finite")
    if pos < len(text):
        raise _Syntax(
            pos, f"expected end of line after the exemplar timestamp, got {_show(text, pos)}"
        )
