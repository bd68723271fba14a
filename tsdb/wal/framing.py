"""The byte framing shared by WAL segments and checkpoints: segment headers and record frames.

A segment file is a 12-byte segment header followed by record frames back to back. A frame
is one encoded record: a 14-byte header, then the payload. Both headers carry their own
CRC32, so a reader can trust a frame's length before it trusts its payload; that is what
lets it tell a file that simply ends inside a record (a torn write) from bytes that changed
on disk (corruption). ``tsdb/docs/format/wal.md`` is the byte-level specification.

All integers are little-endian. Checksums are CRC-32/ISO-HDLC (the polynomial of zlib,
gzip and PNG) as computed by `zlib.crc32`.
"""

from __future__ import annotations

import struct
import zlib
from enum import Enum, IntEnum

#: First four bytes of every segment file ("VigilOps WAL").
MAGIC = b"VWAL"

#: Version of the segment and record format described in ``docs/format/wal.md``.
FORMAT_VERSION = 1

#: magic, version, three reserved bytes (zero), CRC32 of the first eight bytes.
SEGMENT_HEADER = struct.Struct("<4sB3sI")

#: type, flags, payload length, CRC32 of the payload, CRC32 of the first ten bytes.
FRAME_HEADER = struct.Struct("<BBIII")

#: Bytes of the frame header covered by the header checksum.
_FRAME_HEADER_CHECKED = 10

#: Frame flag: the payload is one zstd frame (with its content size); else it is raw.
FLAG_ZSTD = 0x01
KNOWN_FLAGS = FLAG_ZSTD

#: The length field is a u32, so no payload (compressed or raw) may exceed this.
MAX_PAYLOAD = 2**32 - 1


class RecordType(IntEnum):
    """The type byte of a frame. Zero is never used, so zero-filled bytes are never a header."""

    SERIES = 1
    SAMPLES = 2
    TOMBSTONES = 3


class HeaderStatus(Enum):
    """What a segment header check found."""

    OK = "ok"
    #: The file is shorter than a segment header (a crash right after creating it).
    TORN = "torn"
    #: The header fails its checksum or does not start with the magic.
    CORRUPT = "corrupt"
    #: A well-formed header of a format version (or reserved bits) this code does not know.
    UNSUPPORTED = "unsupported"


def _crc(data: bytes | memoryview) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def segment_header(version: int = FORMAT_VERSION) -> bytes:
    """Return the 12 bytes that start every segment file of format `version`."""
    head = struct.pack("<4sB3s", MAGIC, version, b"\0\0\0")
    return head + struct.pack("<I", _crc(head))


def check_segment_header(data: bytes | memoryview) -> HeaderStatus:
    """Classify the first bytes of a segment file of at least one byte."""
    if len(data) < SEGMENT_HEADER.size:
        return HeaderStatus.TORN
    magic, version, reserved, crc = SEGMENT_HEADER.unpack_from(data)
    if _crc(memoryview(data)[:8]) != crc or magic != MAGIC:
        return HeaderStatus.CORRUPT
    if version != FORMAT_VERSION or reserved != b"\0\0\0":
        return HeaderStatus.UNSUPPORTED
    return HeaderStatus.OK


def pack_frame(rtype: int, flags: int, payload: bytes) -> bytes:
    """Return the frame of `payload` (already compressed if `flags` says so)."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"record payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    head = struct.pack("<BBII", rtype, flags, len(payload), _crc(payload))
    return b"".join((head, struct.pack("<I", _crc(head)), payload))


def frame_header_valid(buf: bytes | memoryview, pos: int = 0) -> bool:
    """True if the `FRAME_HEADER.size` bytes at `pos` pass the header checksum.

    The caller must make sure that many bytes exist. A valid header's length field can be
    trusted; its type and flags still need checking against what the reader knows.
    """
    mv = memoryview(buf)
    crc: int = struct.unpack_from("<I", mv, pos + _FRAME_HEADER_CHECKED)[0]
    return _crc(mv[pos : pos + _FRAME_HEADER_CHECKED]) == crc


def payload_crc(payload: bytes | memoryview) -> int:
    """The payload checksum as stored in a frame header."""
    return _crc(payload)


def check_frame(buf: bytes | memoryview) -> int:
    """Return the type of the complete frame `buf` if its header is valid, else raise.

    Raises `ValueError` if `buf` is not exactly one frame with a valid header. The payload
    checksum is not verified here (see `decode_record`); this is the cheap check the WAL
    applies to records handed to it.
    """
    if len(buf) < FRAME_HEADER.size or not frame_header_valid(buf):
        raise ValueError("not an encoded WAL record (bad or missing frame header)")
    rtype, flags, length, _, _ = FRAME_HEADER.unpack_from(buf)
    if FRAME_HEADER.size + length != len(buf):
        raise ValueError(
            f"encoded WAL record is {len(buf)} bytes, its header says "
            f"{FRAME_HEADER.size + length}"
        )
    if flags & ~KNOWN_FLAGS or rtype not in _RECORD_TYPES:
        raise ValueError(f"encoded WAL record has unknown type {rtype} or flags {flags:#x}")
    return int(rtype)


_RECORD_TYPES = frozenset(int(t) for t in RecordType)
