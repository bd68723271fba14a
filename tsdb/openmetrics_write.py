"""OpenMetrics text writer for `vigilops tsdb dump`: the inverse of `openmetrics_parse`.

Each sample becomes one line ``name{label="value",…} value timestamp``, series in the
order given, then ``# EOF``. Values use Go's `strconv.FormatFloat(v, 'g', -1, 64)` (what
Prometheus's text formats print: shortest round-trip digits, exponent form below 1e-4 and
from 1e6 up, ``NaN``, ``+Inf``, ``-Inf``). Timestamps are seconds with millisecond digits,
chosen so that Prometheus's ``int64(seconds * 1000)`` gives back the exact millisecond:
usually ``1795309200.123`` or ``1795309200``, and one more digit where the float product
would truncate one millisecond low (``1.0015`` for 1001 ms, since ``1.001 * 1000`` is
``1000.9999999999999``). Re-importing the output with `parse_openmetrics` (or promtool)
gives the identical samples, bit for bit, except NaN payloads (every NaN reads back as
``GO_NAN_BITS``; staleness markers are not preserved).

Formatting is vectorised with pyarrow compute kernels over batches of samples; only the
series text is built in Python, once per series.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import TextIO

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from .api import SeriesData
from .model import METRIC_NAME, Labels, escape_label_value, valid_label_name

__all__ = [
    "format_timestamp",
    "format_timestamps",
    "format_value",
    "format_values",
    "series_text",
    "write_openmetrics",
]

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]

#: Samples formatted per batch: large enough to amortise kernel calls, small enough that
#: the batch's text (about 100 bytes a sample) stays around 100 MB.
_BATCH_SAMPLES = 1 << 20

# Text after the whole seconds for each millisecond 0..999, then the same with a trailing
# 5 (half a millisecond more) for timestamps whose plain form truncates low.
_FRACTION_TEXT = ["" if m == 0 else "." + f"{m:03d}".rstrip("0") for m in range(1000)] + [
    "." + f"{m:03d}5" for m in range(1000)
]
_FRACTIONS = pa.array(_FRACTION_TEXT)
_FRACTIONS_NL = pa.array([f + "\n" for f in _FRACTION_TEXT])
# Go's exponent suffix for decimal exponents -400..400: "e-07", "e+06", "e+100".
_EXP_MIN = -400
_EXPONENTS = pa.array([f"e{'-' if e < 0 else '+'}{abs(e):02d}" for e in range(_EXP_MIN, 401)])
_SIGNS = pa.array(["", "-"])
_METRIC_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def format_value(v: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'g', -1, 64)``, with ``+Inf`` for infinity."""
    if v != v:
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    r = repr(float(v))  # shortest round-trip digits, like Go's
    a = abs(v)
    if "e" in r:  # Python's exponent form below 1e-4 and from 1e16 is Go's layout
        return r
    if a < 1e6:
        return r[:-2] if r.endswith(".0") else r
    sign = "-" if v < 0 else ""
    ip, _, fp = r.lstrip("-").partition(".")
    digits = (ip + fp.rstrip("0")).rstrip("0")
    mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{mant}e+{len(ip) - 1:02d}"


def format_values(values: Float64Array) -> pa.Array:
    """`format_value` of every element, as an arrow string array."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    text = pc.cast(pa.array(values), pa.string())  # arrow: shortest digits, fixed for 1e-6..1e10
    a = np.abs(values)
    with np.errstate(invalid="ignore"):
        expo = (a >= 1e6) | ((a < 1e-4) & (a > 0))
    special = ~np.isfinite(values)
    expo &= ~special
    if expo.any():
        at = expo.nonzero()[0]
        go_text = _exponent_form(values[at], text.take(pa.array(at)))
        text = pc.replace_with_mask(text, pa.array(expo), go_text)
    if special.any():
        at = special.nonzero()[0]
        names = np.where(np.isnan(values[at]), "NaN", np.where(values[at] > 0, "+Inf", "-Inf"))
        text = pc.replace_with_mask(text, pa.array(special), pa.array(names.tolist(), pa.string()))
    return text


def _exponent_form(values: Float64Array, arrow_text: pa.Array) -> pa.Array:
    """Go's ``d.ddde±XX`` text of finite, non-zero `values`, given arrow's text of them."""
    text = pc.utf8_ltrim(arrow_text, "-")
    has_e = pc.match_substring(text, "e").to_numpy(zero_copy_only=False)
    n = len(values)
    digits: list[pa.Array] = []
    exps = np.empty(n, np.int64)
    order = np.concatenate([has_e.nonzero()[0], (~has_e).nonzero()[0]])
    if has_e.any():  # arrow wrote "d.ddde±x": the mantissa is already normalised
        parts = pc.split_pattern(text.filter(pa.array(has_e)), "e", max_splits=1)
        digits.append(pc.replace_substring(pc.list_element(parts, 0), ".", ""))
        exponent = pc.utf8_ltrim(pc.list_element(parts, 1), "+")  # int cast refuses "+"
        exps[has_e] = pc.cast(exponent, pa.int64()).to_numpy()
    if not has_e.all():  # fixed: "1234567.5" or "0.0000123"
        fixed = text.filter(pa.array(~has_e))
        dot = pc.find_substring(fixed, ".").to_numpy()
        int_len = np.where(dot < 0, pc.binary_length(fixed).to_numpy(), dot)
        joined = pc.replace_substring(fixed, ".", "")
        stripped = pc.utf8_ltrim(joined, "0")
        zeros = pc.binary_length(joined).to_numpy() - pc.binary_length(stripped).to_numpy()
        digits.append(pc.utf8_rtrim(stripped, "0"))
        exps[~has_e] = int_len - 1 - zeros
    digit_text = pa.concat_arrays(digits).take(pa.array(np.argsort(order, kind="stable")))
    first = pc.utf8_slice_codeunits(digit_text, 0, 1)
    rest = pc.utf8_slice_codeunits(digit_text, 1)
    has_rest = pc.greater(pc.binary_length(rest), 0)
    dotted = pc.if_else(has_rest, pc.binary_join_element_wise(".", rest, ""), "")
    sign = _SIGNS.take(pa.array((values < 0).astype(np.int8)))
    exp_text = _EXPONENTS.take(pa.array(exps - _EXP_MIN))
    return pc.binary_join_element_wise(sign, first, dotted, exp_text, "")


def format_timestamp(ms: int) -> str:
    """Seconds text for `ms` that Prometheus's ``int64(float(text) * 1000)`` maps back to
    `ms` (the vectorised `format_timestamps` agrees). Raises ValueError if none exists,
    which only happens beyond about ±2**53 ms."""
    text: str = format_timestamps(np.array([ms], np.int64))[0].as_py()
    return text


def format_timestamps(ms: Int64Array, newline: bool = False) -> pa.Array:
    """`format_timestamp` of every element, as an arrow string array; with `newline`, each
    text ends with "\\n"."""
    ms = np.ascontiguousarray(ms, dtype=np.int64)
    neg = ms < 0
    a = np.abs(ms)  # -2**63 stays negative and is caught below
    exact = a.astype(np.float64)
    plain = np.trunc(a / 1000.0 * 1000.0) == exact
    half = np.trunc((exact + 0.5) / 1000.0 * 1000.0) == exact
    slow = (~plain & ~half) | (a >= 1 << 52) | (a < 0)
    frac = (a % 1000) + np.where(plain, 0, 1000)
    text = pc.binary_join_element_wise(
        _SIGNS.take(pa.array(neg.astype(np.int8))),
        pc.cast(pa.array(a // 1000), pa.string()),
        (_FRACTIONS_NL if newline else _FRACTIONS).take(pa.array(frac)),
        "",
    )
    if slow.any():
        at = slow.nonzero()[0]
        end = "\n" if newline else ""
        fixes = [_timestamp_by_search(int(t)) + end for t in ms[at].tolist()]
        text = pc.replace_with_mask(text, pa.array(slow), pa.array(fixes, pa.string()))
    return text


def _timestamp_by_search(ms: int) -> str:
    """Try the doubles next to ms/1000 for one whose product with 1000 truncates to `ms`."""
    center = ms / 1000
    for candidate in (center, math.nextafter(center, math.inf), math.nextafter(center, -math.inf)):
        for _ in range(4):
            product = candidate * 1000.0
            if math.isfinite(product) and -(2.0**63) <= product < 2.0**63 and int(product) == ms:
                return repr(candidate)
            candidate = math.nextafter(candidate, math.inf if candidate > center else -math.inf)
    raise ValueError(f"timestamp {ms} ms cannot be written as seconds that read back exactly")


def series_text(labels: Labels) -> str:
    """``name{a="1",b="2"}`` (or just ``name``) as OpenMetrics writes it.

    Raises ValueError for label sets OpenMetrics 1.0 cannot express: no metric name, or a
    metric or label name outside its character set.
    """
    name = labels.name
    if not name or _METRIC_NAME_RE.fullmatch(name) is None:
        raise ValueError(f"series {labels!r}: metric name {name!r} cannot be written as OpenMetrics")
    parts = []
    for label, value in labels.pairs():
        if label == METRIC_NAME:
            continue
        if not valid_label_name(label):
            raise ValueError(
                f"series {labels!r}: label name {label!r} cannot be written as OpenMetrics"
            )
        parts.append(f'{label}="{escape_label_value(value)}"')
    return f"{name}{{{','.join(parts)}}}" if parts else name


def write_openmetrics(series: Iterable[SeriesData], out: TextIO) -> None:
    """Write every sample of `series`, in the order given, then ``# EOF``.

    Series without samples are skipped. No ``# TYPE``/``# HELP`` lines are written.
    Raises ValueError (before writing the batch it is in) for a series OpenMetrics cannot
    express, see `series_text`.
    """
    prefixes: list[str] = []
    lengths: list[int] = []
    stamps: list[Int64Array] = []
    values: list[Float64Array] = []
    pending = 0
    for data in series:
        count = len(data.timestamps)
        if count == 0:
            continue
        if len(data.values) != count:
            raise ValueError(
                f"series {data.labels!r}: {count} timestamps but {len(data.values)} values"
            )
        prefixes.append(series_text(data.labels))
        lengths.append(count)
        stamps.append(data.timestamps)
        values.append(data.values)
        pending += count
        if pending >= _BATCH_SAMPLES:
            _write_batch(out, prefixes, lengths, stamps, values)
            prefixes, lengths, stamps, values, pending = [], [], [], [], 0
    if pending:
        _write_batch(out, prefixes, lengths, stamps, values)
    out.write("# EOF\n")


def _write_batch(
    out: TextIO,
    prefixes: list[str],
    lengths: list[int],
    stamps: list[Int64Array],
    values: list[Float64Array],
) -> None:
    which = np.repeat(np.arange(len(prefixes)), lengths)
    lines = pc.binary_join_element_wise(
        pa.array(prefixes, pa.string()).take(pa.array(which)),
        format_values(np.concatenate(values)),
        format_timestamps(np.concatenate(stamps), newline=True),
        " ",
    )
    offsets = np.frombuffer(lines.buffers()[1], np.int32, len(lines) + 1, lines.offset * 4)
    text = lines.buffers()[2].to_pybytes()[offsets[0] : offsets[-1]]
    out.write(text.decode("utf-8"))
