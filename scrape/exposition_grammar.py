"""The exact grammar of scraped payloads, token by token, as Prometheus 2.42 reads them.

This is the reference for `textparse`: its fast path handles the common shapes of a payload
in bulk and defers to the parsers here whenever anything looks unusual, so every accepted
payload means what Prometheus would make of it and every rejected one fails here with the
line and message of the first error. Nothing here is on the per-scrape fast path except the
per-line metadata parsers and `validate_key` (once per new series).

Text format 0.0.4 (Prometheus's ``promlex.l``/``promparse.go``):

- Spaces and tabs may separate any two tokens, and lead a line; blank lines are skipped.
  Leading whitespace before a metric name becomes part of the name, so such a sample fails
  (``invalid metric name``), exactly as in Prometheus's scrape loop.
- ``#`` followed by whitespace and ``HELP``/``TYPE`` plus whitespace starts metadata; any
  other ``#`` line is a comment. After the metric name, the rest of the line is the text,
  minus its first byte (normally the separating space; half a UTF-8 character makes the
  help text invalid), or empty if the rest is only whitespace.
- Label pairs may be separated by commas, whitespace or nothing, and a trailing comma is
  allowed. Label values may span lines (a raw newline inside the quotes is kept).
- The value is any run of characters other than ``{``, whitespace and newline, read with
  Go's float syntax; it may directly follow ``}``. The optional timestamp is a run of ASCII
  digits (integer milliseconds).
- A NUL byte where an entry would start ends the input (Prometheus's lexer reads it as end
  of input); NUL bytes inside label values, help text and comments are kept. Elsewhere a
  NUL is an error: Prometheus's lexer sometimes skips one (e.g. right after a label
  value's closing quote, leaving a mangled value), which we do not imitate.

OpenMetrics 1.0 (``openmetricslex.l``/``openmetricsparse.go``): one token per single space,
no blank lines, ``# HELP``/``# TYPE``/``# UNIT``/``# EOF`` only, no trailing comma, timestamps
are float seconds (kept as ``int(seconds * 1000)`` like Go's ``int64(ts * 1000)``), an
exemplar ``# {labels} value [timestamp]`` may follow ``*_total`` and ``*_bucket`` samples,
and the input must end with the ``# EOF`` line.

Both: duplicate label names (``__name__`` included) and label values or help text that are
not valid UTF-8 are errors. (One stricter choice: OpenMetrics input with anything after the
``# EOF`` line fails, even a lone NUL byte that Prometheus reads as the end.) Input is
decoded with ``surrogateescape``, so undecodable bytes appear as lone surrogates and are
reported where Prometheus would report them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from vigilops.tsdb.model import METRIC_NAME, Labels

from .gofloat import GoNumError, go_quote_bytes, parse_go_float, parse_go_int64

__all__ = [
    "OM_TYPES",
    "OUT_OF_RANGE_TIMESTAMP",
    "TEXT_TYPES",
    "CarefulParse",
    "MetadataBuilder",
    "MetricMetadata",
    "ScrapeParseError",
    "Syntax",
    "om_meta_line",
    "om_sample_line",
    "parse_key",
    "parse_om",
    "parse_text",
    "text_meta_line",
    "validate_key",
]

#: The types a text-format ``# TYPE`` line may name.
TEXT_TYPES = frozenset(("counter", "gauge", "histogram", "summary", "untyped"))
#: The types an OpenMetrics ``# TYPE`` line may name.
OM_TYPES = frozenset(
    ("counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset", "unknown")
)

#: Millisecond timestamp given to OpenMetrics samples whose ``seconds * 1000`` does not fit
#: in int64. Go's conversion yields the minimum int64 there (amd64), which Prometheus then
#: drops as out of bounds; the minimum itself means "no timestamp" to our callers, so the
#: next value up stands in for it (just as far out of bounds).
OUT_OF_RANGE_TIMESTAMP = -(2**63) + 1
_TWO63 = 9.223372036854775808e18

_MNAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LNAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# golex's "." excludes the newline: a backslash may escape anything but a newline.
_TEXT_LVALUE = re.compile(r'"((?:\\[^\n]|[^\\"])*)"')
_OM_LVALUE = re.compile(r'"((?:\\[^\n]|[^\\"\n])*)"')
# Prometheus's lexer skips NUL only inside sample label values, not exemplar ones.
_OM_EVALUE = re.compile(r'"((?:\\[^\n\x00]|[^\\"\n\x00])*)"')
_OM_FIELD = re.compile(r"[^ \n\x00]+")
_TEXT_VALUE = re.compile(r"[^{ \t\n\x00]+")
_DIGITS = re.compile(r"[0-9]+")
_BAD_UTF8 = re.compile("[\udc80-\udcff]")
_LVALUE_ESCAPE = re.compile(r'\\(["\\n])')
_HELP_ESCAPE = re.compile(r"\\([\\n])")
_UNESCAPE = {'"': '"', "\\": "\\", "n": "\n"}
_METRIC_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_:")
# A key in the common shape (no escapes, no whitespace outside values, commas between
# pairs): valid in both formats; anything else takes the general path.
_SIMPLE_KEY = re.compile(
    r'[a-zA-Z_:][a-zA-Z0-9_:]*(?:\{(?:[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n\x00\udc80-\udcff]*"'
    r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n\x00\udc80-\udcff]*")*)?\})?'
)
_SIMPLE_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"')


class ScrapeParseError(Exception):
    """A scraped payload (or series key) that Prometheus's parsers would refuse.

    `line` is 1-based; `message` uses Prometheus's wording where it has one (``expected
    label name``, ``strconv.ParseFloat: parsing "x": invalid syntax``, ``data does not end
    with # EOF``, …) and shows the offending text. ``str()`` is ``"line N: message"``.
    """

    def __init__(self, line: int, message: str) -> None:
        super().__init__(line, message)
        self.line = line
        self.message = message

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class MetricMetadata:
    """What ``# TYPE``, ``# HELP`` (unescaped) and ``# UNIT`` lines said about a family.

    Unset fields keep their defaults: type ``"untyped"`` (text format) or ``"unknown"``
    (OpenMetrics), empty help and unit. A repeated line overrides the earlier one.
    """

    type: str
    help: str = ""
    unit: str = ""


class Syntax(Exception):
    """A syntax error at index `pos` of the string being parsed (internal)."""

    def __init__(self, pos: int, message: str) -> None:
        super().__init__(pos, message)
        self.pos = pos
        self.message = message


@dataclass
class MetadataBuilder:
    """Collects metadata lines per family name; `build` freezes them."""

    default_type: str
    entries: dict[str, list[str]] = field(default_factory=dict)

    def set(self, kind: str, name: str, value: str) -> None:
        entry = self.entries.get(name)
        if entry is None:
            entry = self.entries[name] = [self.default_type, "", ""]
        entry[("TYPE", "HELP", "UNIT").index(kind)] = value

    def build(self) -> dict[str, MetricMetadata]:
        return {name: MetricMetadata(t, h, u) for name, (t, h, u) in self.entries.items()}


@dataclass
class CarefulParse:
    """The samples of a payload in order; ``timestamps[i]`` is None where absent (ms)."""

    keys: list[str]
    values: list[float]
    timestamps: list[int | None]
    metadata: dict[str, MetricMetadata]


# ---- shared pieces ----------------------------------------------------------------------


def _got(s: str, i: int) -> str:
    """Describe what was found at `s[i]` for an error message."""
    if i >= len(s):
        return "end of input"
    if s[i] == "\n":
        return "end of line"
    end = s.find("\n", i)
    if end < 0:
        end = len(s)
    frag = s[i : min(end, i + 24)]
    return go_quote_bytes(frag) + ("…" if end > i + 24 else "")


def _line_of(s: str, pos: int) -> int:
    return s.count("\n", 0, min(pos, len(s))) + 1


def _skip_ws(s: str, i: int) -> int:
    n = len(s)
    while i < n and (s[i] == " " or s[i] == "\t"):
        i += 1
    return i


def _unescape_lvalue(raw: str) -> str:
    if "\\" not in raw:
        return raw
    return _LVALUE_ESCAPE.sub(lambda m: _UNESCAPE[m.group(1)], raw)


def _check_unique(pairs: list[tuple[str, str]], pos: int) -> None:
    """Duplicate label names (``__name__`` included) are an error, as in Prometheus's head."""
    seen = {METRIC_NAME}
    for lname, _ in pairs:
        if lname in seen:
            raise Syntax(pos, f'label name "{lname}" is not unique')
        seen.add(lname)


def _make_labels(name: str, pairs: list[tuple[str, str]], pos: int) -> Labels:
    """The label set of a sample (`pairs` is consumed)."""
    _check_unique(pairs, pos)
    pairs.append((METRIC_NAME, name))
    return Labels(pairs)


def _text_labels(s: str, i: int) -> tuple[list[tuple[str, str]], int]:
    """Text-format label pairs after the ``{`` at ``i - 1``; returns the index after ``}``."""
    pairs: list[tuple[str, str]] = []
    i = _skip_ws(s, i)
    while True:
        if s.startswith("}", i):
            return pairs, i + 1
        m = _LNAME.match(s, i)
        if m is None:
            raise Syntax(i, f"expected label name, got {_got(s, i)}")
        name = m.group()
        i = _skip_ws(s, m.end())
        if not s.startswith("=", i):
            raise Syntax(i, f"expected equal, got {_got(s, i)}")
        i = _skip_ws(s, i + 1)
        m = _TEXT_LVALUE.match(s, i)
        if m is None:
            raise Syntax(i, f"expected label value, got {_got(s, i)}")
        raw = m.group(1)
        if _BAD_UTF8.search(raw) is not None:
            raise Syntax(i, f"invalid UTF-8 label value: {go_quote_bytes(m.group())}")
        pairs.append((name, _unescape_lvalue(raw)))
        i = _skip_ws(s, m.end())
        if s.startswith(",", i):
            i = _skip_ws(s, i + 1)


def _om_labels(s: str, i: int, exemplar: bool = False) -> tuple[list[tuple[str, str]], int]:
    """OpenMetrics label pairs after the ``{`` at ``i - 1``; returns the index after ``}``."""
    pairs: list[tuple[str, str]] = []
    value_re = _OM_EVALUE if exemplar else _OM_LVALUE
    first = True
    while True:
        if s.startswith("}", i):
            return pairs, i + 1
        if s.startswith(",", i):
            if first:
                raise Syntax(i, f"expected label name or left brace, got {_got(s, i)}")
            i += 1
            m = _LNAME.match(s, i)
            if m is None:
                raise Syntax(i, f"expected label name, got {_got(s, i)}")
        else:
            m = _LNAME.match(s, i)
            if m is None:
                what = "expected label name or left brace" if first else "expected comma or left brace"
                raise Syntax(i, f"{what}, got {_got(s, i)}")
            if not first:
                raise Syntax(i, f"expected comma, got {_got(s, i)}")
        first = False
        name = m.group()
        i = m.end()
        if not s.startswith("=", i):
            raise Syntax(i, f"expected equal, got {_got(s, i)}")
        i += 1
        m = value_re.match(s, i)
        if m is None:
            raise Syntax(i, f"expected label value, got {_got(s, i)}")
        raw = m.group(1)
        if _BAD_UTF8.search(raw) is not None:
            raise Syntax(i, f"invalid UTF-8 label value: {go_quote_bytes(m.group())}")
        pairs.append((name, _unescape_lvalue(raw)))
        i = m.end()


def _float_at(s: str, i: int, end: int) -> float:
    try:
        return parse_go_float(s[i:end])
    except GoNumError as exc:
        raise Syntax(i, str(exc)) from None


# ---- series keys ----------------------------------------------------------------------


def parse_key(key: str) -> Labels:
    """The label set of a series text in either format (the text format's grammar, which
    accepts every OpenMetrics series text too); raises `Syntax`."""
    m = _SIMPLE_KEY.fullmatch(key)
    if m is not None:
        name_end = key.find("{")
        if name_end < 0:
            return Labels.from_flat((METRIC_NAME, key))
        return _make_labels(key[:name_end], _SIMPLE_PAIR.findall(key, name_end), 0)
    m = _MNAME.match(key)
    if m is None:
        raise Syntax(0, f"expected a metric name, got {_got(key, 0)}")
    i = _skip_ws(key, m.end())
    pairs: list[tuple[str, str]] = []
    if key.startswith("{", i):
        pairs, end = _text_labels(key, i + 1)
    else:
        end = m.end()
    if end != len(key):
        raise Syntax(end, f"unexpected text after the series: {_got(key, end)}")
    return _make_labels(m.group(), pairs, 0)


def validate_key(key: str, openmetrics: bool) -> Labels:
    """Check that `key` is a complete series text of the given format; its labels."""
    if not openmetrics or _SIMPLE_KEY.fullmatch(key) is not None:
        return parse_key(key)
    m = _MNAME.match(key)
    if m is None:
        raise Syntax(0, f"expected a metric name, got {_got(key, 0)}")
    pairs: list[tuple[str, str]] = []
    end = m.end()
    if key.startswith("{", end):
        pairs, end = _om_labels(key, end + 1)
    if end != len(key):
        raise Syntax(end, f"unexpected text after the series: {_got(key, end)}")
    return _make_labels(m.group(), pairs, 0)


# ---- metadata lines -------------------------------------------------------------------


def text_meta_line(line: str) -> tuple[str, str, str] | None:
    """Parse a text-format line that starts with ``#`` (and has no newline).

    Returns ``(kind, name, value)`` for ``HELP``/``TYPE`` lines (help unescaped), None for
    comments; raises `Syntax` (index into `line`).
    """
    n = len(line)
    j = 1
    while j < n and (line[j] == " " or line[j] == "\t"):
        j += 1
    if j == 1:
        return None
    kind = line[j : j + 4]
    if kind not in ("HELP", "TYPE") or j + 4 >= n or line[j + 4] not in " \t":
        return None
    k = _skip_ws(line, j + 4)
    m = _MNAME.match(line, k)
    if m is None:
        raise Syntax(k, f"expected metric name after {kind}, got {_got(line + chr(10), k)}")
    raw = line[m.end() :]
    if raw.startswith("\x00"):
        raise Syntax(m.end(), "linebreak expected after metadata, got end of input (NUL byte)")
    # The lexer reads the rest as one token (its first byte dropped) unless it is all
    # whitespace, which it skips, leaving empty text. Dropping one byte of a multi-byte
    # character leaves invalid UTF-8, as in Prometheus.
    if not raw.strip(" \t"):
        value = ""
    elif raw[0] < "\x80":
        value = raw[1:]
    else:
        value = raw.encode("utf-8", "surrogateescape")[1:].decode("utf-8", "surrogateescape")
    if kind == "TYPE":
        if value not in TEXT_TYPES:
            raise Syntax(m.end(), f"invalid metric type {go_quote_bytes(value)}")
    else:
        if _BAD_UTF8.search(value) is not None:
            raise Syntax(m.end(), f"help text {go_quote_bytes(value)} is not a valid utf8 string")
        if "\\" in value:
            value = _HELP_ESCAPE.sub(lambda mm: _UNESCAPE[mm.group(1)], value)
    return kind, m.group(), value


def om_meta_line(line: str, has_newline: bool) -> tuple[str, str, str] | None:
    """Parse an OpenMetrics line that starts with ``#``; None for ``# EOF`` (whatever follows
    ``EOF`` on the line is the caller's to reject). `has_newline`: the line is terminated.

    Returns ``(kind, name, value)`` for ``HELP``/``TYPE``/``UNIT`` (help unescaped).
    """
    shown = line + "\n" if has_newline else line
    if not line.startswith("# "):
        raise Syntax(0, f"{_got(shown, 0)} is not a valid start token (expected '# HELP', "
                     "'# TYPE', '# UNIT' or '# EOF')")
    if line.startswith("EOF", 2):
        return None
    kind = line[2:6]
    if kind not in ("HELP", "TYPE", "UNIT") or not line.startswith(" ", 6):
        raise Syntax(2, f"{_got(shown, 2)} is not a valid start token (OpenMetrics allows only "
                     "'# HELP', '# TYPE', '# UNIT' and '# EOF' comments)")
    m = _MNAME.match(line, 7)
    if m is None:
        raise Syntax(7, f"expected metric name after {kind}, got {_got(shown, 7)}")
    name = m.group()
    e = m.end()
    if not line.startswith(" ", e) or not has_newline:
        raise Syntax(e, f"expected text in {kind}, got {_got(shown, e)}")
    value = line[e + 1 :]
    if kind == "TYPE":
        if value not in OM_TYPES:
            raise Syntax(e + 1, f"invalid metric type {go_quote_bytes(value)}")
    elif kind == "HELP":
        if _BAD_UTF8.search(value) is not None:
            raise Syntax(e + 1, "help text is not a valid utf8 string")
        value = _unescape_lvalue(value)
    elif value and not name.endswith("_" + value):
        raise Syntax(e + 1, f'unit not a suffix of metric "{name}"')
    return kind, name, value


# ---- OpenMetrics ----------------------------------------------------------------------


def _om_ms(ts: float) -> int:
    ms = ts * 1000.0
    if -_TWO63 < ms < _TWO63:
        return int(ms)
    return OUT_OF_RANGE_TIMESTAMP


def om_sample_line(line: str, has_newline: bool) -> tuple[str, Labels, float, int | None]:
    """Parse one OpenMetrics sample line (no newline; `has_newline` says whether one
    followed): ``(key, labels, value, timestamp ms or None)``; the exemplar is checked and
    dropped. Raises `Syntax` (index into `line`)."""
    shown = line + "\n" if has_newline else line
    m = _MNAME.match(line)
    if m is None:
        raise Syntax(0, f"{_got(shown, 0)} is not a valid start token")
    name = m.group()
    i = m.end()
    pairs: list[tuple[str, str]] = []
    if line.startswith("{", i):
        pairs, i = _om_labels(shown, i + 1)
    key = line[:i]
    f = _OM_FIELD.match(line, i + 1) if line.startswith(" ", i) else None
    if f is None:
        raise Syntax(i, f"expected value after metric, got {_got(shown, i)}")
    value = _float_at(line, i + 1, f.end())
    i = f.end()
    ts: int | None = None
    if i == len(line):
        if not has_newline:
            raise Syntax(i, "data does not end with # EOF")
    elif line.startswith(" # {", i):
        _om_exemplar(line, i, name, has_newline)
    else:
        f = _OM_FIELD.match(line, i + 1) if line.startswith(" ", i) else None
        if f is None:
            raise Syntax(i, f"expected timestamp or # symbol, got {_got(shown, i)}")
        ts_s = _float_at(line, i + 1, f.end())
        if ts_s != ts_s or ts_s in (float("inf"), float("-inf")):
            raise Syntax(i + 1, f"invalid timestamp {line[i + 1:f.end()]}")
        ts = _om_ms(ts_s)
        i = f.end()
        if line.startswith(" # {", i):
            _om_exemplar(line, i, name, has_newline)
        elif i != len(line) or not has_newline:
            raise Syntax(i, f"expected next entry after timestamp, got {_got(shown, i)}")
    return key, _make_labels(name, pairs, 0), value, ts


def _om_exemplar(line: str, i: int, name: str, has_newline: bool) -> None:
    """Check the exemplar whose `` # {`` is at `i`."""
    shown = line + "\n" if has_newline else line
    if not (name.endswith("_total") or name.endswith("_bucket")):
        raise Syntax(i + 1, f"metric name {name} does not support exemplars")
    _, i = _om_labels(shown, i + 4, exemplar=True)
    f = _OM_FIELD.match(line, i + 1) if line.startswith(" ", i) else None
    if f is None:
        raise Syntax(i, f"expected value after exemplar labels, got {_got(shown, i)}")
    _float_at(line, i + 1, f.end())
    i = f.end()
    if i == len(line):
        if not has_newline:
            raise Syntax(i, "data does not end with # EOF")
        return
    f = _OM_FIELD.match(line, i + 1) if line.startswith(" ", i) else None
    if f is None:
        raise Syntax(i, f"expected timestamp or comment, got {_got(shown, i)}")
    ts = _float_at(line, i + 1, f.end())
    if ts != ts or ts in (float("inf"), float("-inf")):
        raise Syntax(i + 1, f"invalid exemplar timestamp {line[i + 1:f.end()]}")
    i = f.end()
    if i != len(line) or not has_newline:
        raise Syntax(i, f"expected next entry after exemplar timestamp, got {_got(shown, i)}")


def parse_om(s: str) -> CarefulParse:
    """Parse a whole OpenMetrics payload; raises `ScrapeParseError` at the first error."""
    keys: list[str] = []
    values: list[float] = []
    stamps: list[int | None] = []
    meta = MetadataBuilder("unknown")
    n = len(s)
    pos = 0
    while True:
        if pos >= n:
            raise ScrapeParseError(_line_of(s, pos), "data does not end with # EOF")
        e = s.find("\n", pos)
        has_nl = e >= 0
        if not has_nl:
            e = n
        line = s[pos:e]
        try:
            if line.startswith("#"):
                parsed = om_meta_line(line, has_nl)
                if parsed is None:  # "# EOF": nothing may follow, not even a blank line
                    after = pos + 5
                    if s.startswith("\n", after):
                        after += 1
                    if after != n:
                        raise ScrapeParseError(_line_of(s, after), "unexpected data after # EOF")
                    break
                meta.set(*parsed)
            elif line[:1] in _METRIC_START:
                key, _, value, ts = om_sample_line(line, has_nl)
                keys.append(key)
                values.append(value)
                stamps.append(ts)
            else:
                shown = go_quote_bytes(chr(10)) if not line else _got(line, 0)
                raise Syntax(0, f"{shown} is not a valid start token")
        except Syntax as exc:
            raise ScrapeParseError(_line_of(s, pos), exc.message) from None
        pos = e + 1
    return CarefulParse(keys, values, stamps, meta.build())


# ---- text format ----------------------------------------------------------------------


def parse_text(s: str) -> CarefulParse:
    """Parse a whole text-format payload; raises `ScrapeParseError` at the first error."""
    keys: list[str] = []
    values: list[float] = []
    stamps: list[int | None] = []
    meta = MetadataBuilder("untyped")
    n = len(s)
    pos = 0
    try:
        while True:
            i = _skip_ws(s, pos)
            if i >= n or s[i] == "\x00":  # a NUL where an entry starts ends the input
                break
            c = s[i]
            if c == "\n":
                pos = i + 1
                continue
            if c == "#":
                e = s.find("\n", i)
                if e < 0:
                    e = n
                line = s[i:e]
                nul = line.find("\x00")
                if nul >= 0 and (line[1:2] not in (" ", "\t") or _skip_ws(line, 1) == nul):
                    break  # the lexer reads this comment's NUL as the end of the input
                try:
                    parsed = text_meta_line(line)
                except Syntax as exc:
                    raise Syntax(i + exc.pos, exc.message) from None
                if parsed is not None:
                    meta.set(*parsed)
                pos = e + 1
                continue
            if c not in _METRIC_START:
                raise Syntax(i, f"{_got(s, i)} is not a valid start token")
            pos = _text_sample(s, pos, i, keys, values, stamps)
    except Syntax as exc:
        raise ScrapeParseError(_line_of(s, exc.pos), exc.message) from None
    return CarefulParse(keys, values, stamps, meta.build())


def _text_sample(
    s: str, line_start: int, i: int, keys: list[str], values: list[float], stamps: list[int | None]
) -> int:
    """Parse the sample whose metric name starts at `i`; returns where the next entry starts."""
    n = len(s)
    m = _MNAME.match(s, i)
    assert m is not None
    name = m.group()
    key_end = m.end()
    j = _skip_ws(s, key_end)
    pairs: list[tuple[str, str]] = []
    if s.startswith("{", j):
        pairs, key_end = _text_labels(s, j + 1)
    j = _skip_ws(s, key_end)
    f = _TEXT_VALUE.match(s, j)
    if f is None:
        raise Syntax(j, f"expected value after metric, got {_got(s, j)}")
    value = _float_at(s, j, f.end())
    j = _skip_ws(s, f.end())
    ts: int | None = None
    if j < n and s[j] != "\n":
        d = _DIGITS.match(s, j)
        if d is None:
            raise Syntax(j, f"expected timestamp or new record, got {_got(s, j)}")
        try:
            ts = parse_go_int64(d.group())
        except GoNumError as exc:
            raise Syntax(j, str(exc)) from None
        j = _skip_ws(s, d.end())
        if j < n and s[j] != "\n":
            raise Syntax(j, f"expected next entry after timestamp, got {_got(s, j)}")
    if i != line_start:
        raise Syntax(
            i, f"invalid metric name {go_quote_bytes(s[line_start:i] + name)} "
            "(whitespace before a metric name becomes part of it)"
        )
    _check_unique(pairs, i)
    keys.append(s[i:key_end])
    values.append(value)
    stamps.append(ts)
    return j + 1
