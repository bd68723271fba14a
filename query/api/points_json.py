"""Writing a matrix's ``result`` array as JSON in one compiled pass.

The value texts come from `promjson` (Arrow's shortest round-trip digits with Go's
notation fixed up) and each series' ``metric`` object from orjson; this pass formats the
timestamps (`MarshalTimestamp`: whole seconds, or seconds with three decimals) and lays out
every series and point into one buffer, where joining Arrow string arrays element-wise and
per list, then one JSON fragment per series, took several more passes and copies.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from vigilops.tsdb.compiled import compile_loop

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
U8 = npt.NDArray[np.uint8]

#: Bytes of the longest timestamp text: "-9223372036854775.808".
_MAX_TS_TEXT = 21
_OPEN, _CLOSE, _COMMA, _QUOTE, _DOT, _MINUS, _ZERO = 91, 93, 44, 34, 46, 45, 48
_CLOSE_OBJECT = 125
_METRIC_KEY = np.frombuffer(b'{"metric":', dtype=np.uint8)
_VALUES_KEY = np.frombuffer(b',"values":', dtype=np.uint8)


def _write_matrix_loop(
    metric_offsets: I64,
    metric_data: U8,
    ts: I64,
    val_offsets: I32,
    val_data: U8,
    lengths: I64,
    out: U8,
    used: I64,
) -> None:
    digits = np.empty(24, dtype=np.uint8)
    ten, hundred, ten_3 = np.uint64(10), np.uint64(100), np.uint64(1000)
    p = 0
    i = 0
    out[p] = _OPEN
    p += 1
    for s in range(len(lengths)):
        if s:
            out[p] = _COMMA
            p += 1
        for b in range(len(_METRIC_KEY)):
            out[p + b] = _METRIC_KEY[b]
        p += len(_METRIC_KEY)
        for b in range(metric_offsets[s], metric_offsets[s + 1]):
            out[p] = metric_data[b]
            p += 1
        for b in range(len(_VALUES_KEY)):
            out[p + b] = _VALUES_KEY[b]
        p += len(_VALUES_KEY)
        out[p] = _OPEN
        p += 1
        for k in range(lengths[s]):
            if k:
                out[p] = _COMMA
                p += 1
            out[p] = _OPEN
            p += 1
            # The timestamp: seconds, then ".fff" when there are milliseconds.
            ms = ts[i]
            if ms < 0:
                out[p] = _MINUS
                p += 1
                ms = -ms
            # Unsigned division by constants compiles to multiplications.
            whole = np.uint64(ms) // ten_3
            frac = np.uint64(ms) % ten_3
            n = 0
            while True:
                digits[n] = _ZERO + whole % ten
                n += 1
                whole //= ten
                if whole == 0:
                    break
            while n:
                n -= 1
                out[p] = digits[n]
                p += 1
            if frac:
                out[p] = _DOT
                out[p + 1] = _ZERO + frac // hundred
                out[p + 2] = _ZERO + frac // ten % ten
                out[p + 3] = _ZERO + frac % ten
                p += 4
            out[p] = _COMMA
            out[p + 1] = _QUOTE
            p += 2
            for b in range(val_offsets[i], val_offsets[i + 1]):
                out[p] = val_data[b]
                p += 1
            out[p] = _QUOTE
            out[p + 1] = _CLOSE
            p += 2
            i += 1
        out[p] = _CLOSE
        out[p + 1] = _CLOSE_OBJECT
        p += 2
    out[p] = _CLOSE
    p += 1
    used[0] = p


def _readonly(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    a.flags.writeable = False
    return a


_write_matrix = compile_loop(
    # Arrow's buffers are passed as read-only arrays (see `write_matrix`).
    _write_matrix_loop,
    lambda: (np.array([0, 2], np.int64), _readonly(np.array([123, 125], np.uint8)),
             np.zeros(1, np.int64), _readonly(np.array([0, 1], np.int32)),
             _readonly(np.array([48], np.uint8)), np.ones(1, np.int64),
             np.zeros(64, np.uint8), np.zeros(1, np.int64)),
)


def _string_buffers(texts: pa.StringArray) -> tuple[I32, U8]:
    """The offsets (one per element, plus the end) and bytes of an Arrow string array."""
    if texts.null_count:
        raise ValueError("a point has no value text")
    buffers = texts.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int32)[texts.offset : texts.offset + len(texts) + 1]
    data = np.frombuffer(buffers[2] if buffers[2] is not None else b"", dtype=np.uint8)
    offsets.flags.writeable = data.flags.writeable = False  # one compiled variant
    return offsets, data


def write_matrix(metrics: list[bytes], ts: I64, value_texts: pa.StringArray, lengths: I64) -> bytes:
    """A matrix's ``result`` array, ``[{"metric":…,"values":[[<t>,"<v>"],…]},…]``, as JSON:
    series ``j`` has the JSON object `metrics[j]` and the next ``lengths[j]`` points
    (`ts` in milliseconds, `value_texts` one per point)."""
    val_offsets, val_data = _string_buffers(value_texts)
    metric_offsets = np.zeros(len(metrics) + 1, dtype=np.int64)
    np.cumsum([len(m) for m in metrics], out=metric_offsets[1:])
    metric_data = np.frombuffer(b"".join(metrics), dtype=np.uint8)
    size = (
        len(ts) * (_MAX_TS_TEXT + 6) + int(val_offsets[-1] - val_offsets[0])
        + int(metric_offsets[-1]) + len(metrics) * (len(_METRIC_KEY) + len(_VALUES_KEY) + 4) + 2
    )
    out = np.empty(size, dtype=np.uint8)
    used = np.zeros(1, dtype=np.int64)
    _write_matrix(
        metric_offsets, metric_data, np.ascontiguousarray(ts, dtype=np.int64),
        np.ascontiguousarray(val_offsets), val_data,
        np.ascontiguousarray(lengths, dtype=np.int64), out, used,
    )
    return out[: int(used[0])].tobytes()
