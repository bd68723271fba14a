"""WAL record types and their codecs.

A record is what the head needs to rebuild itself after a restart: new series with their
labels (`SeriesRecord`), batches of samples (`SamplesRecord`) and deletions
(`TombstonesRecord`). `encode_record` turns one into a complete, self-checking frame (see
`tsdb.wal.framing`); those bytes are what `WAL.log` and `WAL.checkpoint` take, and what
`decode_record` reads back.

Every column is encoded with whole-array numpy operations: integer columns are
delta-coded where that makes their numbers small (series references, per-sample
timestamps) and byte-shuffled (all first bytes, then all second bytes, …), and payloads of
`COMPRESS_MIN_BYTES` or more are zstd-compressed when that makes them smaller. Float64
values are stored as their plain bit patterns, so NaN payloads, ``-0.0`` and the staleness
marker come back bit-exactly. (Shuffling the values too was measured: it helps
integer-valued floats such as byte counters and hurts decimals such as CPU seconds by about
as much, so it is not worth its cost on the commit path.)

Encoding and decoding are thread-safe (each thread has its own zstd contexts).
"""

from __future__ import annotations

import operator
import struct
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import zstandard

from ..compiled import compile_loop
from ..errors import CorruptionError
from ..model import Labels
from .framing import (
    FLAG_ZSTD,
    FRAME_HEADER,
    KNOWN_FLAGS,
    MAX_PAYLOAD,
    RecordType,
    frame_header_valid,
    pack_frame,
    payload_crc,
)

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

#: Payloads shorter than this are stored raw: a zstd frame costs about a dozen bytes of
#: its own, which a record of a few samples cannot win back.
COMPRESS_MIN_BYTES = 64

#: zstd level for records, which are written on the commit path of every scrape: one of
#: zstd's fast negative levels. A node_exporter scrape's record (540 samples, 8,573 bytes
#: raw) takes 6.0 us to 1,755 bytes at -1, 9.7 us to 1,652 at 1, 10.7 us to 1,624 at 3.
#: Checkpoints are rewritten rarely but hold the same kind of data, so they use it too.
COMPRESS_LEVEL = -1

_U32 = struct.Struct("<I")
_SAMPLES_HEAD = struct.Struct("<IB")  # sample count, timestamp mode
_I64 = struct.Struct("<q")

_TS_SHARED = 0
_TS_PER_SAMPLE = 1


def _as_i64(a: object) -> I64:
    return np.ascontiguousarray(a, dtype=np.int64).reshape(-1)


def _as_f64(a: object) -> F64:
    return np.ascontiguousarray(a, dtype=np.float64).reshape(-1)


def _same_bits(a: npt.NDArray[np.generic], b: npt.NDArray[np.generic]) -> bool:
    return a.shape == b.shape and a.tobytes() == b.tobytes()


@dataclass(frozen=True, eq=False)
class SeriesRecord:
    """New series: series reference ``refs[i]`` has the label set ``labels[i]``.

    Equality is exact (same references, same label sets, same order).
    """

    refs: I64
    labels: list[Labels]

    def __post_init__(self) -> None:
        object.__setattr__(self, "refs", _as_i64(self.refs))
        if len(self.refs) != len(self.labels):
            raise ValueError(
                f"series record has {len(self.refs)} refs but {len(self.labels)} label sets"
            )

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, SeriesRecord)
            and _same_bits(self.refs, other.refs)
            and self.labels == other.labels
        )

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, eq=False)
class SamplesRecord:
    """A batch of samples: ``values[i]`` at ``timestamps[i]`` for series ``refs[i]``.

    `timestamps` has either ``len(refs)`` elements or exactly one, a timestamp shared by
    the whole batch (the common case of a scrape). Timestamps are int64 milliseconds.
    Equality compares values bit by bit, so records holding NaNs compare equal to
    themselves.
    """

    refs: I64
    timestamps: I64
    values: F64

    def __post_init__(self) -> None:
        object.__setattr__(self, "refs", _as_i64(self.refs))
        object.__setattr__(self, "timestamps", _as_i64(self.timestamps))
        object.__setattr__(self, "values", _as_f64(self.values))
        n = len(self.refs)
        if len(self.values) != n:
            raise ValueError(f"samples record has {n} refs but {len(self.values)} values")
        if len(self.timestamps) not in (n, 1):
            raise ValueError(
                f"samples record has {n} refs but {len(self.timestamps)} timestamps "
                "(expected as many, or one shared timestamp)"
            )

    @property
    def shared_timestamp(self) -> bool:
        """True if one timestamp applies to every sample (and there is not exactly one)."""
        return len(self.timestamps) == 1 and len(self.refs) != 1

    def timestamps_per_sample(self) -> I64:
        """The timestamps as one element per sample (broadcasting a shared one)."""
        if len(self.timestamps) == len(self.refs):
            return self.timestamps
        return np.full(len(self.refs), self.timestamps[0], dtype=np.int64)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, SamplesRecord)
            and _same_bits(self.refs, other.refs)
            and _same_bits(self.timestamps, other.timestamps)
            and _same_bits(self.values, other.values)
        )

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, eq=False)
class TombstonesRecord:
    """Deletions: the samples of series ``refs[i]`` in ``[mint[i], maxt[i]]`` (ms, inclusive)."""

    refs: I64
    mint: I64
    maxt: I64

    def __post_init__(self) -> None:
        object.__setattr__(self, "refs", _as_i64(self.refs))
        object.__setattr__(self, "mint", _as_i64(self.mint))
        object.__setattr__(self, "maxt", _as_i64(self.maxt))
        n = len(self.refs)
        if len(self.mint) != n or len(self.maxt) != n:
            raise ValueError(
                f"tombstones record has {n} refs, {len(self.mint)} mint, {len(self.maxt)} maxt"
            )

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, TombstonesRecord)
            and _same_bits(self.refs, other.refs)
            and _same_bits(self.mint, other.mint)
            and _same_bits(self.maxt, other.maxt)
        )

    __hash__ = None  # type: ignore[assignment]


Record = SeriesRecord | SamplesRecord | TombstonesRecord


class ChecksumError(CorruptionError):
    """A record's header or payload checksum does not match its bytes."""


class _Contexts(threading.local):
    """zstd contexts are not safe to share between threads: one set per thread."""

    def __init__(self) -> None:
        self.compressor = zstandard.ZstdCompressor(
            level=COMPRESS_LEVEL, write_checksum=False, write_content_size=True
        )
        self.decompressor = zstandard.ZstdDecompressor()


_ctx = _Contexts()


# --- columns -------------------------------------------------------------------------------


def _put_col(out: list[bytes], col: I64) -> None:
    """Append the n int64 elements of `col` as 8 planes of n bytes (little-endian)."""
    planes = col.astype("<i8", copy=False).view(np.uint8).reshape(-1, 8)
    out.append(planes.T.tobytes())


def _delta_planes_loop(col: I64, out: npt.NDArray[np.uint8]) -> None:
    n = len(col)
    prev = 0
    for i in range(n):
        d = col[i] - prev
        prev = col[i]
        for b in range(8):
            out[b * n + i] = (d >> (8 * b)) & 0xFF


_delta_planes = compile_loop(
    _delta_planes_loop, lambda: (np.array([5, -3], np.int64), np.empty(16, np.uint8))
)


def _put_delta(out: list[bytes], col: I64) -> None:
    """Append `col` delta-coded (first element as is; wrapping int64 arithmetic), as
    `_put_col` lays out columns; one compiled pass (on every commit's record)."""
    planes = np.empty(8 * len(col), dtype=np.uint8)
    _delta_planes(np.ascontiguousarray(col, dtype=np.int64), planes)
    out.append(planes.tobytes())


def _get_planes(buf: memoryview, pos: int, n: int) -> tuple[npt.NDArray[np.uint8], int]:
    size = 8 * n
    if pos + size > len(buf):
        raise ValueError(f"column of {n} elements at offset {pos} overruns the payload")
    planes = np.frombuffer(buf, dtype=np.uint8, count=size, offset=pos).reshape(8, n)
    # Always a copy: the columns returned are writable and do not pin the record's buffer.
    return planes.T.copy(), pos + size


def _get_i64(buf: memoryview, pos: int, n: int) -> tuple[I64, int]:
    raw, pos = _get_planes(buf, pos, n)
    return raw.view("<i8").reshape(n).astype(np.int64, copy=False), pos


def _get_delta(buf: memoryview, pos: int, n: int) -> tuple[I64, int]:
    col, pos = _get_i64(buf, pos, n)
    np.cumsum(col, out=col)
    return col, pos


def _get_f64(buf: memoryview, pos: int, n: int) -> tuple[F64, int]:
    size = 8 * n
    if pos + size > len(buf):
        raise ValueError(f"{n} values at offset {pos} overrun the payload")
    col = np.frombuffer(buf, dtype="<f8", count=n, offset=pos).astype(np.float64, copy=True)
    return col, pos + size


def _get_u32s(buf: memoryview, pos: int, n: int) -> tuple[npt.NDArray[np.int64], int]:
    size = 4 * n
    if pos + size > len(buf):
        raise ValueError(f"{n} lengths at offset {pos} overrun the payload")
    arr = np.frombuffer(buf, dtype="<u4", count=n, offset=pos).astype(np.int64)
    return arr, pos + size


# --- payloads ------------------------------------------------------------------------------


def _series_payload(rec: SeriesRecord) -> list[bytes]:
    n = len(rec.refs)
    strings = [s.encode("utf-8") for labels in rec.labels for s in labels]
    out = [_U32.pack(n)]
    _put_delta(out, rec.refs)
    out.append(np.fromiter(map(len, rec.labels), dtype="<u4", count=n).tobytes())
    out.append(np.fromiter(map(len, strings), dtype="<u4", count=len(strings)).tobytes())
    out.extend(strings)
    return out


def _decode_series(buf: memoryview) -> SeriesRecord:
    (n,) = _U32.unpack_from(buf)
    refs, pos = _get_delta(buf, _U32.size, n)
    counts, pos = _get_u32s(buf, pos, n)
    if (counts & 1).any():
        raise ValueError("a label set has an odd number of strings")
    total = int(counts.sum())
    lengths, pos = _get_u32s(buf, pos, total)
    ends = np.cumsum(lengths)
    if pos + (int(ends[-1]) if total else 0) != len(buf):
        raise ValueError(
            f"label strings take {int(ends[-1]) if total else 0} bytes, "
            f"{len(buf) - pos} remain in the payload"
        )
    blob = bytes(buf[pos:])
    starts = (ends - lengths).tolist()
    stops = ends.tolist()
    text = blob.decode("utf-8")
    if len(text) == len(blob):  # pure ASCII: byte offsets are character offsets
        strings = [text[a:b] for a, b in zip(starts, stops)]
    else:
        strings = [blob[a:b].decode("utf-8") for a, b in zip(starts, stops)]
    # Intern every string once, then build each `Labels` as the plain tuple it is: this is
    # what `Labels.from_flat` does, without a Python-level generator per label set, which
    # matters when a replay rebuilds a million series.
    strings = list(map(sys.intern, strings))
    labels: list[Labels] = []
    at = 0
    for c in counts.tolist():
        flat = strings[at : at + c]
        names = flat[0::2]
        if not all(map(operator.lt, names, names[1:])):
            raise ValueError(f"label names {names!r} are not sorted and unique")
        labels.append(tuple.__new__(Labels, flat))
        at += c
    return SeriesRecord(refs=refs, labels=labels)


def _samples_payload(rec: SamplesRecord) -> list[bytes]:
    n = len(rec.refs)
    if len(rec.timestamps) == n:
        out = [_SAMPLES_HEAD.pack(n, _TS_PER_SAMPLE)]
        _put_delta(out, rec.timestamps)
    else:
        out = [_SAMPLES_HEAD.pack(n, _TS_SHARED), _I64.pack(int(rec.timestamps[0]))]
    _put_delta(out, rec.refs)
    out.append(rec.values.astype("<f8", copy=False).tobytes())
    return out


def _decode_samples(buf: memoryview) -> SamplesRecord:
    n, mode = _SAMPLES_HEAD.unpack_from(buf)
    pos = _SAMPLES_HEAD.size
    if mode == _TS_PER_SAMPLE:
        ts, pos = _get_delta(buf, pos, n)
    elif mode == _TS_SHARED:
        ts = np.array(_I64.unpack_from(buf, pos), dtype=np.int64)
        pos += _I64.size
    else:
        raise ValueError(f"unknown timestamp mode {mode}")
    refs, pos = _get_delta(buf, pos, n)
    values, pos = _get_f64(buf, pos, n)
    if pos != len(buf):
        raise ValueError(f"{len(buf) - pos} unexpected bytes after the samples")
    return SamplesRecord(refs=refs, timestamps=ts, values=values)


def _tombstones_payload(rec: TombstonesRecord) -> list[bytes]:
    out = [_U32.pack(len(rec.refs))]
    _put_delta(out, rec.refs)
    _put_col(out, rec.mint)
    _put_col(out, rec.maxt)
    return out


def _decode_tombstones(buf: memoryview) -> TombstonesRecord:
    (n,) = _U32.unpack_from(buf)
    refs, pos = _get_delta(buf, _U32.size, n)
    mint, pos = _get_i64(buf, pos, n)
    maxt, pos = _get_i64(buf, pos, n)
    if pos != len(buf):
        raise ValueError(f"{len(buf) - pos} unexpected bytes after the tombstones")
    return TombstonesRecord(refs=refs, mint=mint, maxt=maxt)


# --- frames --------------------------------------------------------------------------------


def encode_record(rec: Record) -> bytes:
    """Encode `rec` as one complete frame: header, checksums and (maybe compressed) payload.

    The result is what `WAL.log` and `WAL.checkpoint` accept. Raises `ValueError` if the
    payload does not fit the format's 32-bit length field (about 4 GiB).
    """
    if isinstance(rec, SamplesRecord):
        rtype, parts = RecordType.SAMPLES, _samples_payload(rec)
    elif isinstance(rec, SeriesRecord):
        rtype, parts = RecordType.SERIES, _series_payload(rec)
    elif isinstance(rec, TombstonesRecord):
        rtype, parts = RecordType.TOMBSTONES, _tombstones_payload(rec)
    else:
        raise TypeError(f"not a WAL record: {type(rec).__name__}")
    raw = b"".join(parts)
    flags = 0
    payload = raw
    if len(raw) >= COMPRESS_MIN_BYTES:
        packed = _ctx.compressor.compress(raw)
        if len(packed) < len(raw):
            payload, flags = packed, FLAG_ZSTD
    return pack_frame(rtype, flags, payload)


_DECODERS: dict[RecordType, Callable[[memoryview], Record]] = {
    RecordType.SERIES: _decode_series,
    RecordType.SAMPLES: _decode_samples,
    RecordType.TOMBSTONES: _decode_tombstones,
}


def decode_record(data: bytes | memoryview, where: str = "wal record") -> Record:
    """Decode one complete frame as produced by `encode_record`.

    Raises `CorruptionError` (with `where` as its path) if `data` is not exactly one
    well-formed frame: short input, a bad header or payload checksum, unknown type or
    flags, an undecompressable payload or one that does not follow its type's layout. No
    other exception escapes. The returned arrays are new, writable and owned by the caller.
    """
    mv = memoryview(data)
    if mv.format != "B" or mv.ndim != 1:
        mv = mv.cast("B")
    if len(mv) < FRAME_HEADER.size:
        raise CorruptionError(where, f"record of {len(mv)} bytes is shorter than its header")
    if not frame_header_valid(mv):
        raise ChecksumError(where, "record header checksum mismatch")
    rtype, flags, length, crc, _ = FRAME_HEADER.unpack_from(mv)
    if FRAME_HEADER.size + length != len(mv):
        raise CorruptionError(
            where, f"record header says {length} payload bytes, {len(mv) - FRAME_HEADER.size} given"
        )
    if flags & ~KNOWN_FLAGS:
        raise CorruptionError(where, f"record has unknown flags {flags:#04x}")
    try:
        decoder = _DECODERS[RecordType(rtype)]
    except ValueError:
        raise CorruptionError(where, f"unknown record type {rtype}") from None
    payload = mv[FRAME_HEADER.size :]
    found = payload_crc(payload)
    if found != crc:
        raise ChecksumError(
            where, f"record payload checksum {found:#010x}, expected {crc:#010x}"
        )
    try:
        if flags & FLAG_ZSTD:
            size = zstandard.frame_content_size(payload)
            if size < 0 or size > MAX_PAYLOAD:
                raise ValueError(f"compressed payload declares content size {size}")
            body = memoryview(_ctx.decompressor.decompress(payload))
            if len(body) != size:
                raise ValueError(f"payload decompressed to {len(body)} bytes, not {size}")
        else:
            body = payload
        return decoder(body)
    except (ValueError, struct.error, zstandard.ZstdError, UnicodeDecodeError, IndexError) as exc:
        raise CorruptionError(
            where, f"undecodable {RecordType(rtype).name.lower()} record: {exc}"
        ) from None
