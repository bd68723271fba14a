"""Writing the ``values`` arrays of a matrix, ``[[<t>,"<v>"],…]``, in one compiled pass.

The value texts come from `promjson` (Arrow's shortest round-trip digits with Go's
notation fixed up); this pass formats the timestamps (`MarshalTimestamp`: whole seconds,
or seconds with three decimals) and lays out every point of every series, where joining
Arrow string arrays element-wise and per list took three more passes and allocations.
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


def _write_points_loop(
    ts: I64, val_offsets: I32, val_data: U8, lengths: I64, out: U8, ends: I64
) -> None:
    digits = np.empty(24, dtype=np.uint8)
    ten, hundred, ten_3 = np.uint64(10), np.uint64(100), np.uint64(1000)
    p = 0
    i = 0
    for s in range(len(lengths)):
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
        p += 1
        ends[s] = p


def _readonly(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    a.flags.writeable = False
    return a


_write_points = compile_loop(
    # Arrow's buffers are passed as read-only arrays (see `write_points`).
    _write_points_loop,
    lambda: (np.zeros(1, np.int64), _readonly(np.array([0, 1], np.int32)),
             _readonly(np.array([48], np.uint8)), np.ones(1, np.int64),
             np.zeros(64, np.uint8), np.zeros(1, np.int64)),
)


def write_points(ts: I64, value_texts: pa.StringArray, lengths: I64) -> list[bytes]:
    """Series ``j``'s ``values`` array as JSON text, for series laid out back to back
    (``lengths[j]`` points each; `ts` in milliseconds; `value_texts` one per point)."""
    if value_texts.null_count:
        raise ValueError("a point has no value text")
    buffers = value_texts.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int32)[
        value_texts.offset : value_texts.offset + len(value_texts) + 1
    ]
    data = np.frombuffer(buffers[2] if buffers[2] is not None else b"", dtype=np.uint8)
    offsets.flags.writeable = data.flags.writeable = False  # one compiled variant
    points = len(ts)
    size = points * (_MAX_TS_TEXT + 6) + int(offsets[-1] - offsets[0]) + 2 * len(lengths)
    out = np.empty(size, dtype=np.uint8)
    ends = np.empty(len(lengths), dtype=np.int64)
    _write_points(
        np.ascontiguousarray(ts, dtype=np.int64),
        np.ascontiguousarray(offsets),
        data,
        np.ascontiguousarray(lengths, dtype=np.int64),
        out,
        ends,
    )
    starts = np.concatenate(([0], ends[:-1])).tolist()
    body = out.data
    return [bytes(body[a:b]) for a, b in zip(starts, ends.tolist(), strict=True)]
