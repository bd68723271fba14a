"""Block metadata (`meta.json`) and block identifiers (ULIDs)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

#: Version of the block format described in tsdb/docs/format/block.md.
BLOCK_FORMAT_VERSION = 1


def new_ulid(ms: int | None = None) -> str:
    """A ULID: 48-bit millisecond time and 80 random bits, 26 Crockford base32 characters.

    ULIDs sort by creation time, which keeps block directories in a sensible order.
    """
    t = int(time.time() * 1000) if ms is None else ms
    value = (t & ((1 << 48) - 1)) << 80 | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def is_ulid(name: str) -> bool:
    return len(name) == 26 and all(c in _CROCKFORD for c in name)


@dataclass
class BlockMeta:
    """What `meta.json` says. `max_time` is exclusive, as in Prometheus."""

    ulid: str
    min_time: int
    max_time: int
    num_series: int = 0
    num_samples: int = 0
    num_frames: int = 0
    level: int = 1
    sources: list[str] = field(default_factory=list)
    version: int = BLOCK_FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(
            {
                "ulid": self.ulid,
                "minTime": self.min_time,
                "maxTime": self.max_time,
                "stats": {
                    "numSeries": self.num_series,
                    "numSamples": self.num_samples,
                    "numFrames": self.num_frames,
                },
                "compaction": {"level": self.level, "sources": self.sources or [self.ulid]},
                "version": self.version,
            },
            indent=1,
        )

    @staticmethod
    def from_json(text: str) -> BlockMeta:
        d = json.loads(text)
        stats = d.get("stats", {})
        comp = d.get("compaction", {})
        meta = BlockMeta(
            ulid=str(d["ulid"]),
            min_time=int(d["minTime"]),
            max_time=int(d["maxTime"]),
            num_series=int(stats.get("numSeries", 0)),
            num_samples=int(stats.get("numSamples", 0)),
            num_frames=int(stats.get("numFrames", 0)),
            level=int(comp.get("level", 1)),
            sources=[str(s) for s in comp.get("sources", [])],
            version=int(d.get("version", 0)),
        )
        if meta.version != BLOCK_FORMAT_VERSION:
            raise ValueError(f"unsupported block format version {meta.version}")
        return meta
