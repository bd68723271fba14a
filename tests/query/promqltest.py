"""Prometheus's scripted PromQL test language: parser, runner and result checker.

A script (``tests/query/testdata/*.test``) is a sequence of commands separated by blank lines,
in the format of Prometheus's ``promql/promqltest`` (see its README.md)::

    # comment (a comment line also ends the command it interrupts)
    load 1m
        http_requests{job="api"} 0+10x10 _ stale 1 _x3 NaN Inf 0x1F

    eval instant at 5m sum(http_requests)
        {} 50

    eval range from 0 to 2m step 1m http_requests
        http_requests{job="api"} 0 10 20

    eval_fail instant at 0m foo + on() group_left bar
        expected_fail_message many-to-many matching not allowed: …

    clear

What is supported:

* ``load <step>``: sample ``i`` of a series is at ``i * step`` ms from 0. Values use the
  expanding notation of ``promtool test rules``: ``a+bxn`` / ``a-bxn`` (``n + 1`` values, the
  increment added repeatedly as Prometheus does), ``axn`` (``n + 1`` copies), ``_`` (no sample),
  ``_xn`` (``n`` missing samples), ``stale`` (a staleness marker); numbers are Go's
  (``ParseInt(s, 0, 64)`` then ``ParseFloat``: hex ``0x1F``, octal ``017``, ``NaN``, ``Inf``).
* ``clear`` drops all data.
* ``eval instant at <time> <expr>`` (and ``eval_ordered``, ``eval_fail``) followed by the
  expected series, one a line (``metric{l="v"} value`` / ``{l="v"} value``), or one bare
  number for a scalar result, or one quoted string for a string result. No lines: an empty
  vector. An instant eval is also run as a range query from ``t - 1m`` to ``t + 1m`` step 1m
  and its middle step checked against the same expectations, as Prometheus 2.42 does
  (skipped for ordered and string results and for expressions using ``start()``/``end()``,
  whose meaning depends on the range).
* ``eval range from <start> to <end> step <step> <expr>`` followed by the expected series
  with one value per step in the expanding notation (``_``: no point at that step).
* Newer upstream ``expect`` lines: ``expect fail``, ``expect fail msg: …``, ``expect fail
  regex: …``, ``expect ordered``, ``expect warn``, ``expect no_warn``; and the older
  ``expected_fail_message …`` / ``expected_fail_regexp …`` lines after ``eval_fail``.

Checks are upstream's: values equal within a relative error of 1e-6 (NaN equals NaN, infinities
must match exactly); the result's series are compared as a set of label sets unless ordered;
every expected series must be present and nothing else; instant-vector samples must carry
the evaluation time; range results must be sorted by labels. Failures say what was expected
and what came back, with the script's file and line.

A `Target` is whatever evaluates the queries: `EngineTarget` runs our engine on a real
`vigilops.tsdb.db.DB`; the peer test implements one for a real Prometheus. `ScriptSession`
replays a script's loads and clears up to any eval, so each eval can be its own pytest item.
"""

from __future__ import annotations

import math
import re
import shutil
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeAlias

#: Label sets as sorted ``(name, value)`` pairs: hashable, ordered like Prometheus's
#: ``labels.Compare``.
LabelKey: TypeAlias = tuple[tuple[str, str], ...]

TESTDATA = Path(__file__).resolve().parent / "testdata"
STALE_NAN: float = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
EPSILON = 1e-6  # relative error allowed between an expected and a returned value
MIN_NORMAL: float = struct.unpack("<d", struct.pack("<Q", 0x0010000000000000))[0]
RANGE_MODE_STEP_MS = 60_000
METRIC_NAME = "__name__"


# ---- errors -------------------------------------------------------------------------------
class ScriptError(ValueError):
    """A script that does not follow the format; the message starts with ``file:line:``."""


class EvalFailure(Exception):
    """What a `Target` raises when the query itself fails: the error text and the HTTP API's
    ``errorType`` (``bad_data``, ``execution``, …)."""

    def __init__(self, message: str, error_type: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.message = message
        self.error_type = error_type


class EvalMismatch(AssertionError):
    """An eval whose outcome differs from the script's expectations."""


# ---- durations, numbers, strings ----------------------------------------------------------
_DURATION_RE = re.compile(
    r"(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?"
)
_DURATION_UNITS_MS = (
    365 * 24 * 3_600_000, 7 * 24 * 3_600_000, 24 * 3_600_000, 3_600_000, 60_000, 1000, 1,
)


def parse_duration(text: str) -> int:
    """Prometheus's ``model.ParseDuration`` (``1h30m``, ``5m``, ``0``) in milliseconds; a bare
    number is also read as seconds (``10``, ``1.5``)."""
    if re.fullmatch(r"\d+(?:\.\d+)?", text) and text != "0":
        return round(float(text) * 1000)
    m = _DURATION_RE.fullmatch(text)
    if text == "0":
        return 0
    if not text or m is None:
        raise ValueError(f"not a valid duration string: {text!r}")
    return sum(int(g) * unit for g, unit in zip(m.groups(), _DURATION_UNITS_MS) if g)


def format_ms(ms: int) -> str:
    """A time or duration in ms the way scripts write it (``90000`` → ``1m30s``)."""
    if ms == 0:
        return "0s"
    sign, ms = ("-", -ms) if ms < 0 else ("", ms)
    out = []
    for unit, name in ((3_600_000, "h"), (60_000, "m"), (1000, "s"), (1, "ms")):
        if ms >= unit:
            out.append(f"{ms // unit}{name}")
            ms %= unit
    return sign + "".join(out)


_GO_INT_RE = re.compile(r"([+-]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)")
_GO_FLOAT_RE = re.compile(
    r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity|nan"
    r"|0x(?:[0-9a-f]+\.?[0-9a-f]*|\.[0-9a-f]+)p[+-]?\d+)",
    re.IGNORECASE,
)


def parse_number(text: str) -> float:
    """Go's ``strconv.ParseInt(s, 0, 64)``, falling back to ``ParseFloat(s, 64)``, as
    Prometheus's test scripts read numbers. Raises ValueError."""
    m = _GO_INT_RE.fullmatch(text)
    if m:
        sign, digits = m.groups()
        low = digits.lower()
        if low.startswith(("0x", "0o", "0b")):
            n = int(digits[2:], {"x": 16, "o": 8, "b": 2}[low[1]])
        elif len(digits) > 1 and digits[0] == "0":
            n = int(digits, 8)
        else:
            n = int(digits)
        n = -n if sign == "-" else n
        if -(2**63) <= n < 2**63:
            return float(n)
    if not _GO_FLOAT_RE.fullmatch(text):
        raise ValueError(f"not a number: {text!r}")
    if "p" in text.lower() and "x" in text.lower():
        return float.fromhex(text)
    return float(text)


def format_value(v: float) -> str:
    """A float as Prometheus prints it (``NaN``, ``+Inf``, ``3`` rather than ``3.0``)."""
    if math.isnan(v):
        return "stale" if struct.pack("<d", v) == struct.pack("<d", STALE_NAN) else "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


def almost_equal(a: float, b: float) -> bool:
    """Upstream's comparison: exact for equal values and for NaN against NaN, otherwise a
    relative error below `EPSILON` (an absolute one near zero)."""
    if math.isnan(a) and math.isnan(b):
        return True
    if a == b:
        return True
    diff = abs(a - b)
    if a == 0 or b == 0 or diff < MIN_NORMAL:
        return diff < EPSILON * MIN_NORMAL
    return diff / (abs(a) + abs(b)) < EPSILON


def _unquote(text: str) -> str:
    """A PromQL string literal (``"…"``, ``'…'`` or raw backticks) with Go escapes."""
    from vigilops.tsdb.model import parse_selector

    try:
        matchers = parse_selector(f"x{{a={text}}}")
    except ValueError as exc:
        raise ValueError(f"not a quoted string: {text} ({exc})") from None
    return str(matchers[1].value)


def format_labels(labels: LabelKey) -> str:
    """``name{a="b", c="d"}`` (``{}`` for the empty set), as Prometheus prints a metric."""
    from vigilops.tsdb.model import go_quote

    name = ""
    rest = []
    for k, v in labels:
        if k == METRIC_NAME and _METRIC_RE.fullmatch(v):
            name = v
        else:
            rest.append(f"{k}={go_quote(v)}")
    if name and not rest:
        return name
    return name + "{" + ", ".join(rest) + "}"


# ---- series descriptions ------------------------------------------------------------------
_METRIC_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_BLANK_RE = re.compile(r"_(?:x(\d+))?")
_TIMES_RE = re.compile(r"(.+)x(\d+)")


def _split_label_part(line: str) -> tuple[str, str]:
    """Split ``metric{a="b c"} 1 2`` into the metric text and the values text."""
    pos = 0
    m = _METRIC_RE.match(line)
    if m:
        pos = m.end()
    rest = line[pos:].lstrip()
    if not rest.startswith("{"):
        if not m:
            raise ValueError(f"expected a metric name or '{{' at the start of {line!r}")
        return line[:pos], line[pos:]
    i = len(line) - len(rest) + 1
    quote = ""
    while i < len(line):
        c = line[i]
        if quote:
            if c == "\\" and quote != "`":
                i += 1
            elif c == quote:
                quote = ""
        elif c in "\"'`":
            quote = c
        elif c == "}":
            return line[: i + 1], line[i + 1 :]
        i += 1
    raise ValueError(f"unterminated label set in {line!r}")


def parse_labels(text: str) -> LabelKey:
    """``metric{a="b"}``, ``{a="b"}``, ``metric`` or ``{}`` as a label set. Empty values are
    dropped (they mean "no such label"), as Prometheus's series descriptions do."""
    from vigilops.tsdb.model import MatchType, parse_selector

    text = text.strip()
    if re.fullmatch(r"\{\s*\}", text):
        return ()
    try:
        matchers = parse_selector(text)
    except ValueError as exc:
        if "rejects empty values" in str(exc):  # only empty values: the empty label set
            return ()
        raise
    out: dict[str, str] = {}
    for m in matchers:
        if m.type is not MatchType.EQUAL:
            raise ValueError(f"a series description takes '=' only, not {m!r}")
        if m.name in out:
            raise ValueError(f"label {m.name!r} set twice in {text!r}")
        if m.value != "":
            out[m.name] = m.value
    return tuple(sorted(out.items()))


def expand_values(text: str) -> list[float | None]:
    """The expanding notation: one entry per step, None where there is no sample."""
    out: list[float | None] = []
    for tok in text.split():
        if m := _BLANK_RE.fullmatch(tok):
            out.extend([None] * (int(m.group(1)) if m.group(1) else 1))
            continue
        if tok == "stale":
            out.append(STALE_NAN)
            continue
        try:
            out.append(parse_number(tok))
            continue
        except ValueError:
            pass
        m = _TIMES_RE.fullmatch(tok)
        if m is None:
            raise ValueError(f"invalid series value {tok!r}")
        head, times = m.group(1), int(m.group(2))
        start, step = _split_increment(head, tok)
        v = start
        for _ in range(times + 1):
            out.append(v)
            v += step
    return out


def _split_increment(head: str, tok: str) -> tuple[float, float]:
    """``-2+4`` → (-2, 4); ``5`` → (5, 0): the start and increment of ``a+bxn``."""
    try:
        return parse_number(head), 0.0
    except ValueError:
        pass
    for i in range(1, len(head)):
        if head[i] in "+-":
            try:
                return parse_number(head[:i]), parse_number(head[i:])
            except ValueError:
                continue
    raise ValueError(f"invalid series value {tok!r}")


def parse_series_line(line: str) -> tuple[LabelKey, list[float | None]]:
    """A ``<series> <values>`` line of a load or an eval."""
    label_text, values_text = _split_label_part(line)
    return parse_labels(label_text), expand_values(values_text)


# ---- commands -----------------------------------------------------------------------------
@dataclass(frozen=True)
class LoadedSeries:
    """One series of a ``load``: its samples, staleness markers included."""

    labels: LabelKey
    timestamps: tuple[int, ...]
    values: tuple[float, ...]

    @property
    def has_stale(self) -> bool:
        return any(is_stale(v) for v in self.values)


@dataclass(frozen=True)
class LoadCmd:
    line: int
    step_ms: int
    series: tuple[LoadedSeries, ...]


@dataclass(frozen=True)
class ClearCmd:
    line: int


@dataclass(frozen=True)
class ExpectedSeries:
    labels: LabelKey
    values: tuple[float | None, ...]
    line: int


@dataclass
class EvalCmd:
    """One ``eval``: the query, its times, and what it must return."""

    file: str
    line: int
    text: str
    expr: str
    instant: bool
    start: int
    end: int
    step: int
    fail: bool = False
    fail_message: str | None = None
    fail_regex: str | None = None
    ordered: bool = False
    expect_warn: bool | None = None
    expected: list[ExpectedSeries] = field(default_factory=list)
    expected_scalar: float | None = None
    expected_string: str | None = None

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def steps(self) -> list[int]:
        if self.instant:
            return [self.start]
        return list(range(self.start, self.end + 1, self.step))

    @property
    def range_mode_applies(self) -> bool:
        """Whether the instant eval is also checked as a range query (see module doc)."""
        return (
            self.instant
            and not self.fail
            and self.expected_string is None
            and not re.search(r"\b(?:start|end)\s*\(\s*\)", self.expr)
        )


Command: TypeAlias = LoadCmd | ClearCmd | EvalCmd


@dataclass
class Script:
    path: Path
    commands: list[Command]

    @property
    def name(self) -> str:
        return self.path.name

    def evals(self) -> Iterator[tuple[int, EvalCmd]]:
        for i, cmd in enumerate(self.commands):
            if isinstance(cmd, EvalCmd):
                yield i, cmd


def is_stale(v: float) -> bool:
    return struct.pack("<d", v) == struct.pack("<d", STALE_NAN)


_LOAD_RE = re.compile(r"load\s+(\S+)")
_EVAL_INSTANT_RE = re.compile(r"eval(?:_(fail|ordered|warn))?\s+instant\s+at\s+(\S+)\s+(.+)")
_EVAL_RANGE_RE = re.compile(
    r"eval(?:_(fail|ordered|warn))?\s+range\s+from\s+(\S+)\s+to\s+(\S+)\s+step\s+(\S+)\s+(.+)"
)
_EXPECT_RE = re.compile(r"expect\s+(\w+)(?:\s+(msg|regex)\s*:\s*(.*))?")


def parse_script(text: str, path: Path | str = "<script>") -> Script:
    """Parse a whole script. Raises `ScriptError` naming the file and line."""
    path = Path(path)
    lines = [ln.strip() for ln in text.split("\n")]
    lines = ["" if ln.startswith("#") else ln for ln in lines]
    commands: list[Command] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line:
            i += 1
            continue
        block_end = i + 1
        while block_end < len(lines) and lines[block_end]:
            block_end += 1
        body = list(enumerate(lines[i + 1 : block_end], start=i + 2))
        word = line.split(None, 1)[0].lower()
        try:
            if word == "clear":
                if body or line != "clear":
                    raise ValueError("'clear' takes no arguments and no lines")
                commands.append(ClearCmd(i + 1))
            elif word == "load":
                commands.append(_parse_load(line, i + 1, body))
            elif word.startswith("eval"):
                commands.append(_parse_eval(line, i + 1, body, path.name))
            else:
                raise ValueError(f"invalid command {line!r}")
        except ScriptError:
            raise
        except ValueError as exc:
            raise ScriptError(f"{path.name}:{i + 1}: {exc}") from None
        i = block_end
    return Script(path, commands)


def load_script(path: Path) -> Script:
    return parse_script(path.read_text(encoding="utf-8"), path)


def _parse_load(line: str, lineno: int, body: list[tuple[int, str]]) -> LoadCmd:
    m = _LOAD_RE.fullmatch(line)
    if not m:
        raise ValueError("invalid load command (load <step:duration>)")
    step = parse_duration(m.group(1))
    seen: set[LabelKey] = set()
    series = []
    for n, text in body:
        try:
            labels, values = parse_series_line(text)
        except ValueError as exc:
            raise ValueError(f"line {n}: {exc}") from None
        if labels in seen:
            raise ValueError(f"line {n}: series {format_labels(labels)} loaded twice")
        seen.add(labels)
        ts = tuple(k * step for k, v in enumerate(values) if v is not None)
        vs = tuple(v for v in values if v is not None)
        series.append(LoadedSeries(labels, ts, vs))
    return LoadCmd(lineno, step, tuple(series))


def _parse_eval(line: str, lineno: int, body: list[tuple[int, str]], file: str) -> EvalCmd:
    if m := _EVAL_INSTANT_RE.fullmatch(line):
        mod, at, expr = m.groups()
        t = parse_duration(at)
        cmd = EvalCmd(file, lineno, line, expr.strip(), True, t, t, 0)
    elif m := _EVAL_RANGE_RE.fullmatch(line):
        mod, start, end, step, expr = m.groups()
        cmd = EvalCmd(
            file, lineno, line, expr.strip(), False,
            parse_duration(start), parse_duration(end), parse_duration(step),
        )
        if cmd.step <= 0 or cmd.end < cmd.start:
            raise ValueError("a range eval needs step > 0 and end >= start")
    else:
        raise ValueError(
            "invalid eval command (eval[_fail|_ordered] instant at <time> <query> or "
            "eval[_fail] range from <start> to <end> step <step> <query>)"
        )
    cmd.fail = mod == "fail"
    cmd.ordered = mod == "ordered"
    if mod == "warn":
        cmd.expect_warn = True
    seen: set[LabelKey] = set()
    for n, text in body:
        try:
            _parse_eval_line(cmd, text, seen, n)
        except ValueError as exc:
            raise ValueError(f"line {n}: {exc}") from None
    if cmd.ordered and not cmd.instant:
        raise ValueError("ordered results are only defined for instant evals")
    if cmd.fail and (cmd.expected or cmd.expected_scalar is not None or cmd.expected_string):
        raise ValueError("an eval that must fail takes no expected results")
    return cmd


def _parse_eval_line(cmd: EvalCmd, text: str, seen: set[LabelKey], lineno: int) -> None:
    done = cmd.expected_scalar is not None or cmd.expected_string is not None
    if m := _EXPECT_RE.fullmatch(text):
        kind, match_type, arg = m.groups()
        if kind == "fail":
            cmd.fail = True
            if match_type == "msg":
                cmd.fail_message = _strip_quotes(arg)
            elif match_type == "regex":
                cmd.fail_regex = _strip_quotes(arg)
        elif kind == "ordered" and not match_type:
            cmd.ordered = True
        elif kind in ("warn", "no_warn"):
            cmd.expect_warn = kind == "warn"
        else:
            raise ValueError(f"unsupported expectation {text!r} (Prometheus 2.42 has no info)")
        return
    for prefix in ("expected_fail_message ", "expected_fail_regexp "):
        if text.startswith(prefix):
            if not cmd.fail:
                raise ValueError(f"{prefix.strip()} needs eval_fail")
            arg = text[len(prefix) :].strip()
            if prefix.startswith("expected_fail_message"):
                cmd.fail_message = arg
            else:
                cmd.fail_regex = arg
            return
    if done:
        raise ValueError("nothing may follow an expected scalar or string")
    if text[0] in "\"'`":
        if cmd.expected:
            raise ValueError("a string result cannot follow expected series")
        cmd.expected_string = _unquote(text)
        return
    try:
        number = parse_number(text)
    except ValueError:
        pass
    else:
        if cmd.expected:
            raise ValueError("a scalar result cannot follow expected series")
        if not cmd.instant:
            raise ValueError("a range eval expects series (a scalar is the series {})")
        cmd.expected_scalar = number
        return
    labels, values = parse_series_line(text)
    if labels in seen:
        raise ValueError(f"series {format_labels(labels)} expected twice")
    seen.add(labels)
    if cmd.instant and len(values) != 1:
        raise ValueError("an instant eval expects exactly one value per series")
    if not cmd.instant and len(values) > len(cmd.steps):
        raise ValueError(f"{len(values)} values for a range of {len(cmd.steps)} steps")
    cmd.expected.append(ExpectedSeries(labels, tuple(values), lineno))


def _strip_quotes(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


# ---- outcomes -----------------------------------------------------------------------------
@dataclass
class ResultSeries:
    labels: LabelKey
    timestamps: list[int]
    values: list[float]


@dataclass
class Outcome:
    """A query's result, whoever computed it: ``vector`` (one point per series), ``matrix``,
    ``scalar`` (one series without labels and one point) or ``string`` (`text`)."""

    result_type: str
    series: list[ResultSeries]
    text: str = ""
    warnings: list[str] = field(default_factory=list)

    def describe(self, limit: int = 40) -> list[str]:
        if self.result_type == "string":
            return [f"string {self.text!r}"]
        if self.result_type == "scalar":
            s = self.series[0]
            return [f"scalar {format_value(s.values[0])} @{format_ms(s.timestamps[0])}"]
        out = [f"{self.result_type} of {len(self.series)} series:"]
        for s in self.series[:limit]:
            points = " ".join(
                f"{format_value(v)}@{format_ms(t)}" for t, v in zip(s.timestamps, s.values)
            )
            out.append(f"  {format_labels(s.labels)} {points}")
        if len(self.series) > limit:
            out.append(f"  … {len(self.series) - limit} more")
        return out


def describe_expected(cmd: EvalCmd) -> list[str]:
    if cmd.fail:
        if cmd.fail_message is not None:
            return [f"an error with message {cmd.fail_message!r}"]
        if cmd.fail_regex is not None:
            return [f"an error matching {cmd.fail_regex!r}"]
        return ["an error"]
    if cmd.expected_string is not None:
        return [f"string {cmd.expected_string!r}"]
    if cmd.expected_scalar is not None:
        return [f"scalar {format_value(cmd.expected_scalar)}"]
    kind = "vector" if cmd.instant else "matrix"
    out = [f"{kind} of {len(cmd.expected)} series:"]
    for e in cmd.expected:
        out.append(f"  {format_labels(e.labels)} {_format_expected_values(e.values)}")
    return out


def _format_expected_values(values: Sequence[float | None]) -> str:
    return " ".join("_" if v is None else format_value(v) for v in values)


# ---- checking -----------------------------------------------------------------------------
def check_outcome(cmd: EvalCmd, got: Outcome) -> list[str]:
    """Everything wrong with `got` as an answer to `cmd` (empty when it is right)."""
    problems: list[str] = []
    if cmd.expect_warn is True and not got.warnings:
        problems.append("expected warnings, got none")
    if cmd.expect_warn is False and got.warnings:
        problems.append(f"expected no warnings, got {got.warnings}")
    if cmd.expected_string is not None:
        if got.result_type != "string":
            return problems + [f"expected a string, got a {got.result_type}"]
        if got.text != cmd.expected_string:
            problems.append(f"expected string {cmd.expected_string!r}, got {got.text!r}")
        return problems + _check_time(cmd, got)
    if cmd.expected_scalar is not None:
        if got.result_type != "scalar":
            return problems + [f"expected a scalar, got a {got.result_type}"]
        v = got.series[0].values[0]
        if not almost_equal(cmd.expected_scalar, v):
            problems.append(f"expected scalar {format_value(cmd.expected_scalar)}, got {format_value(v)}")
        return problems + _check_time(cmd, got)
    want = "vector" if cmd.instant else "matrix"
    if got.result_type != want:
        return problems + [f"expected a {want}, got a {got.result_type}"]
    if cmd.instant:
        problems += _check_time(cmd, got)
    else:
        problems += _check_sorted(got)
    return problems + _check_series(cmd, got)


def _check_time(cmd: EvalCmd, got: Outcome) -> list[str]:
    bad = [s for s in got.series if any(t != cmd.start for t in s.timestamps)]
    if not bad:
        return []
    s = bad[0]
    return [
        f"{format_labels(s.labels)}: sample at {format_ms(s.timestamps[0])}, expected the "
        f"evaluation time {format_ms(cmd.start)} ({len(bad)} series affected)"
    ]


def _check_sorted(got: Outcome) -> list[str]:
    keys = [s.labels for s in got.series]
    for a, b in zip(keys, keys[1:]):
        if not a < b:
            return [f"range result not sorted by labels: {format_labels(a)} before {format_labels(b)}"]
    return []


def _check_series(cmd: EvalCmd, got: Outcome) -> list[str]:
    problems: list[str] = []
    expected = {e.labels: e for e in cmd.expected}
    got_by_labels: dict[LabelKey, ResultSeries] = {}
    for s in got.series:
        if s.labels in got_by_labels:
            problems.append(f"series {format_labels(s.labels)} returned twice")
        got_by_labels[s.labels] = s
    for labels, exp in expected.items():
        if labels not in got_by_labels:
            problems.append(f"missing: {format_labels(labels)} {_format_expected_values(exp.values)}")
    for s in got.series:
        e = expected.get(s.labels)
        if e is None:
            pts = " ".join(f"{format_value(v)}@{format_ms(t)}" for t, v in zip(s.timestamps, s.values))
            problems.append(f"unexpected: {format_labels(s.labels)} {pts}")
            continue
        problems += _compare_points(cmd, e, s)
    if cmd.ordered and not problems:
        want = [e.labels for e in cmd.expected]
        have = [s.labels for s in got.series]
        if want != have:
            problems.append(
                "wrong order: got "
                + ", ".join(format_labels(k) for k in have)
                + "; expected "
                + ", ".join(format_labels(k) for k in want)
            )
    return problems


def _compare_points(cmd: EvalCmd, e: ExpectedSeries, s: ResultSeries) -> list[str]:
    name = format_labels(s.labels)
    if cmd.instant:
        want_v = e.values[0]
        assert want_v is not None
        if len(s.values) != 1:
            return [f"{name}: {len(s.values)} samples in an instant vector"]
        if not almost_equal(want_v, s.values[0]):
            return [f"{name}: expected {format_value(want_v)}, got {format_value(s.values[0])}"]
        return []
    want = {cmd.start + i * cmd.step: v for i, v in enumerate(e.values) if v is not None}
    have = dict(zip(s.timestamps, s.values))
    diffs = []
    for t in sorted(set(want) | set(have)):
        w, h = want.get(t), have.get(t)
        if w is None and h is not None:
            diffs.append(f"@{format_ms(t)}: expected no point, got {format_value(h)}")
        elif h is None and w is not None:
            diffs.append(f"@{format_ms(t)}: expected {format_value(w)}, got no point")
        elif w is not None and h is not None and not almost_equal(w, h):
            diffs.append(f"@{format_ms(t)}: expected {format_value(w)}, got {format_value(h)}")
    if not diffs:
        return []
    got_vals = " ".join(
        format_value(have[t]) if t in have else "_" for t in cmd.steps
    )
    return [
        f"{name}: " + "; ".join(diffs[:6]) + (f"; … {len(diffs) - 6} more" if len(diffs) > 6 else "")
        + f"\n      expected {_format_expected_values(e.values)}\n      got      {got_vals}"
    ]


def check_failure(cmd: EvalCmd, failure: EvalFailure) -> list[str]:
    if cmd.fail_message is not None and failure.message != cmd.fail_message:
        return [f"expected error message {cmd.fail_message!r}, got {failure.message!r}"]
    if cmd.fail_regex is not None and not re.search(cmd.fail_regex, failure.message):
        return [f"expected an error matching {cmd.fail_regex!r}, got {failure.message!r}"]
    return []


def middle_step(outcome: Outcome, t: int, scalar: bool) -> Outcome:
    """The samples at `t` of a range-mode result, shaped like the instant result."""
    series = []
    for s in outcome.series:
        for ts, v in zip(s.timestamps, s.values):
            if ts == t:
                series.append(ResultSeries(s.labels, [t], [v]))
                break
    if scalar:
        if len(series) != 1 or series[0].labels != ():
            return Outcome("matrix", series, warnings=outcome.warnings)
        return Outcome("scalar", series, warnings=outcome.warnings)
    return Outcome("vector", series, warnings=outcome.warnings)


# ---- targets ------------------------------------------------------------------------------
class Target(Protocol):
    """Something that stores loaded series and answers queries (our engine, a Prometheus)."""

    def load(self, cmd: LoadCmd) -> None: ...

    def clear(self) -> None: ...

    def instant(self, expr: str, t: int) -> Outcome:
        """Raises `EvalFailure` when the query fails."""
        ...

    def range(self, expr: str, start: int, end: int, step: int) -> Outcome: ...

    def close(self) -> None: ...


def run_eval(target: Target, cmd: EvalCmd) -> None:
    """Run one eval against `target`; raise `EvalMismatch` with a full report if it is not
    what the script expects."""
    try:
        if cmd.instant:
            got = target.instant(cmd.expr, cmd.start)
        else:
            got = target.range(cmd.expr, cmd.start, cmd.end, cmd.step)
    except EvalFailure as failure:
        if cmd.fail:
            problems = check_failure(cmd, failure)
        else:
            problems = [f"query failed: {failure}"]
        if problems:
            raise EvalMismatch(_report(cmd, problems, [f"error {failure}"])) from None
        return
    except Exception as exc:  # a crash, not a query error: say which eval caused it
        exc.add_note(f"while evaluating {cmd.where}: {cmd.text}")
        raise
    if cmd.fail:
        raise EvalMismatch(_report(cmd, ["expected the query to fail, it succeeded"], got.describe()))
    problems = check_outcome(cmd, got)
    if problems:
        raise EvalMismatch(_report(cmd, problems, got.describe()))
    if cmd.range_mode_applies:
        _check_range_mode(target, cmd)


def _check_range_mode(target: Target, cmd: EvalCmd) -> None:
    t = cmd.start
    mode = f"range mode (from {format_ms(t - RANGE_MODE_STEP_MS)} to {format_ms(t + RANGE_MODE_STEP_MS)} step 1m)"
    try:
        got = target.range(cmd.expr, t - RANGE_MODE_STEP_MS, t + RANGE_MODE_STEP_MS, RANGE_MODE_STEP_MS)
    except EvalFailure as failure:
        raise EvalMismatch(_report(cmd, [f"{mode}: query failed: {failure}"], [])) from None
    except Exception as exc:
        exc.add_note(f"while evaluating {cmd.where} in {mode}: {cmd.text}")
        raise
    if cmd.ordered:
        return
    problems = _check_sorted(got) if got.result_type == "matrix" else [
        f"a range query returned a {got.result_type}"
    ]
    mid = middle_step(got, t, cmd.expected_scalar is not None)
    problems += check_outcome(cmd, mid)
    if problems:
        raise EvalMismatch(_report(cmd, [f"{mode}: {p}" for p in problems], got.describe()))


def _report(cmd: EvalCmd, problems: list[str], got: list[str]) -> str:
    lines = [f"{cmd.where}: {cmd.text}"]
    lines += [f"  {p}" for p in problems]
    lines.append("  expected " + "\n  ".join(describe_expected(cmd)))
    if got:
        lines.append("  got " + "\n  ".join(got))
    return "\n".join(lines)


class ScriptSession:
    """Runs the evals of one script against a target made by `make_target`, replaying the
    loads and clears before each eval. Evals run in file order reuse the state; going back
    starts over with a fresh target."""

    def __init__(self, script: Script, make_target: Callable[[], Target]) -> None:
        self.script = script
        self._make_target = make_target
        self._target: Target | None = None
        self._pos = 0  # index of the next command whose effect is not applied yet

    def run(self, index: int) -> None:
        cmd = self.script.commands[index]
        assert isinstance(cmd, EvalCmd), f"command {index} of {self.script.name} is no eval"
        target = self._advance(index)
        run_eval(target, cmd)

    def _advance(self, index: int) -> Target:
        if self._target is None or self._pos > index:
            self.close()
            self._target = self._make_target()
            self._pos = 0
        for cmd in self.script.commands[self._pos : index]:
            if isinstance(cmd, LoadCmd):
                self._target.load(cmd)
            elif isinstance(cmd, ClearCmd):
                self._target.clear()
        self._pos = index
        return self._target

    def close(self) -> None:
        if self._target is not None:
            self._target.close()
            self._target = None


# ---- our engine as a target ---------------------------------------------------------------
def outcome_from_result(result: Any) -> Outcome:
    """Our engine's `QueryResult` as an `Outcome`."""
    from vigilops.query.values import InstantVector, Matrix, ScalarResult, StringResult

    value = result.value
    warnings = list(result.warnings)
    if isinstance(value, InstantVector):
        series = [
            ResultSeries(tuple(ls.pairs()), [value.t], [float(v)])
            for ls, v in zip(value.labels, value.values)
        ]
        return Outcome("vector", series, warnings=warnings)
    if isinstance(value, Matrix):
        series = [
            ResultSeries(tuple(ls.pairs()), [int(t) for t in ts], [float(v) for v in vs])
            for ls, ts, vs in zip(value.labels, value.timestamps, value.values)
        ]
        return Outcome("matrix", series, warnings=warnings)
    if isinstance(value, ScalarResult):
        return Outcome("scalar", [ResultSeries((), [value.t], [value.value])], warnings=warnings)
    if isinstance(value, StringResult):
        return Outcome("string", [ResultSeries((), [value.t], [math.nan])], value.value, warnings)
    raise TypeError(f"unknown result value {value!r}")


class EngineTarget:
    """Our engine over a real `DB` in a directory under `base_dir` (a fresh one per clear)."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self._generation = 0
        self._db: Any = None
        self._engine: Any = None

    def _ensure(self) -> tuple[Any, Any]:
        if self._db is None:
            from vigilops.query.engine import Engine, EngineOptions
            from vigilops.tsdb.db import DB, DBOptions
            from vigilops.tsdb.wal.wal import SyncPolicy

            path = self.base_dir / f"db{self._generation}"
            self._db = DB.open(str(path), DBOptions(wal_sync=SyncPolicy.NEVER, retention_ms=0))
            self._engine = Engine(self._db, EngineOptions())
        return self._db, self._engine

    def load(self, cmd: LoadCmd) -> None:
        import numpy as np

        from vigilops.tsdb.model import Labels

        db, _ = self._ensure()
        series = [s for s in cmd.series if s.timestamps]
        if not series:
            return
        app = db.appender()
        refs = app.refs([Labels(dict(s.labels)) for s in series])
        counts = [len(s.timestamps) for s in series]
        all_refs = np.repeat(np.asarray(refs, dtype=np.int64), counts)
        ts = np.array([t for s in series for t in s.timestamps], dtype=np.int64)
        vs = np.array([v for s in series for v in s.values], dtype=np.float64)
        res = app.append(all_refs, ts, vs)
        res.merge(app.commit())
        if res.rejected_total:
            raise AssertionError(f"load at line {cmd.line}: samples rejected: {res.rejected}")

    def clear(self) -> None:
        self.close()
        self._generation += 1

    def _query(self, fn: Callable[[Any], Any]) -> Outcome:
        from vigilops.query.parser import ParseError
        from vigilops.query.values import QueryError

        _, engine = self._ensure()
        try:
            return outcome_from_result(fn(engine))
        except ParseError as exc:
            raise EvalFailure(str(exc), "bad_data") from None
        except QueryError as exc:
            raise EvalFailure(str(exc), exc.kind) from None

    def instant(self, expr: str, t: int) -> Outcome:
        return self._query(lambda e: e.instant_query(expr, t))

    def range(self, expr: str, start: int, end: int, step: int) -> Outcome:
        return self._query(lambda e: e.range_query(expr, start, end, step))

    def close(self) -> None:
        if self._db is not None:
            db, self._db, self._engine = self._db, None, None
            db.close()
            shutil.rmtree(self.base_dir / f"db{self._generation}", ignore_errors=True)


# ---- pytest helpers -----------------------------------------------------------------------
def script_paths() -> list[Path]:
    return sorted(TESTDATA.glob("*.test"))


@dataclass(frozen=True)
class EvalCase:
    """One pytest item: an eval of a script (or, with `index` -1, a script that does not
    parse, whose item reports the error)."""

    path: Path
    index: int
    line: int
    error: str = ""

    @property
    def id(self) -> str:
        return f"{self.path.stem}:{self.line}" if self.index >= 0 else f"{self.path.stem}:parse"


def collect_cases(paths: Sequence[Path] | None = None) -> list[EvalCase]:
    cases: list[EvalCase] = []
    for path in paths if paths is not None else script_paths():
        try:
            script = load_script(path)
        except ScriptError as exc:
            cases.append(EvalCase(path, -1, 0, str(exc)))
            continue
        cases += [EvalCase(path, i, cmd.line) for i, cmd in script.evals()]
    return cases
