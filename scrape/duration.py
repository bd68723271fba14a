"""Prometheus's duration and byte-size notations, parsed and printed as Prometheus 2.42 does.

Durations are `model.Duration` from prometheus/common: ``1y2w3d4h5m6s7ms`` with each unit at
most once and in that order, or ``0``; no signs, no fractions. Byte sizes are
`units.Base2Bytes` from alecthomas/units: ``10MB`` and ``10MiB`` both mean 10 × 2^20 bytes,
fractions and sequences (``1.5GB``, ``1GB512MB``) are allowed, and a bare number is not
(except ``0``).
"""

from __future__ import annotations

import re

from vigilops.tsdb.model import go_quote

_UNIT_MS = (
    ("y", 365 * 86_400_000),
    ("w", 7 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1000),
    ("ms", 1),
)
_DURATION_RE = re.compile(
    r"(?:([0-9]+)y)?(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?"
    r"(?:([0-9]+)ms)?",
    re.ASCII,
)
#: A Go `time.Duration` is int64 nanoseconds, so about 292 years is the longest duration.
MAX_DURATION_MS = (2**63 - 1) // 1_000_000


def parse_duration_ms(text: str) -> int:
    """Return the milliseconds of a Prometheus duration such as ``1m30s``.

    Raises ValueError with Prometheus's wording (``not a valid duration string: "fast"``).
    """
    if text == "0":
        return 0
    if text == "":
        raise ValueError("empty duration string")
    m = _DURATION_RE.fullmatch(text)
    if m is None:
        raise ValueError(f"not a valid duration string: {go_quote(text)}")
    total = 0
    for value, (_, mult) in zip(m.groups(), _UNIT_MS):
        if value:
            total += int(value) * mult
            if total > MAX_DURATION_MS:
                raise ValueError("duration out of range")
    return total


def format_duration_ms(ms: int) -> str:
    """Print milliseconds as Prometheus does (``90s`` → ``1m30s``, 0 → ``0s``).

    Years and weeks are used only when they divide the duration exactly, as Prometheus finds
    ``90d`` easier to read than ``12w6d``.
    """
    if ms == 0:
        return "0s"
    out = []
    for unit, mult in _UNIT_MS:
        if unit in ("y", "w") and ms % mult:
            continue
        if ms >= mult:
            out.append(f"{ms // mult}{unit}")
            ms %= mult
    return "".join(out)


_BYTE_UNITS: dict[str, int] = {"B": 1}
for _i, _prefix in enumerate("KMGTPE", start=1):
    _BYTE_UNITS[f"{_prefix}B"] = 1024**_i
    _BYTE_UNITS[f"{_prefix}iB"] = 1024**_i
_BYTE_ELEMENT = re.compile(r"([0-9]*)(?:\.([0-9]*))?([^0-9.]*)", re.ASCII)


def parse_bytes(text: str) -> int:
    """Return the bytes of a size such as ``10MB``, ``512KiB`` or ``1.5GB`` (powers of 1024).

    A leading sign is accepted as Prometheus accepts it; callers decide what a negative size
    means. Raises ValueError with the wording of alecthomas/units.
    """
    s = text
    neg = False
    if s[:1] in ("-", "+"):
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if s == "":
        raise ValueError(f"units: invalid {text}")
    total = 0.0
    pos = 0
    while pos < len(s):
        m = _BYTE_ELEMENT.match(s, pos)
        assert m is not None  # every group may be empty
        whole, frac, unit = m.group(1), m.group(2), m.group(3)
        if not whole and not frac:
            raise ValueError(f"units: invalid {text}")
        if unit not in _BYTE_UNITS:
            raise ValueError(f"units: unknown unit {unit} in {text}")
        value = float(int(whole or "0"))
        if frac:
            value += int(frac) / 10 ** len(frac)
        total += value * _BYTE_UNITS[unit]
        pos = m.end()
    if neg:
        total = -total
    if not -(2.0**63) <= total < 2.0**63:
        raise ValueError("units: overflow parsing unit")
    return int(total)


def format_bytes(n: int) -> str:
    """Print a byte count as Prometheus does (``10485760`` → ``10MiB``, 1536 → ``1KiB512B``)."""
    if n == 0:
        return "0B"
    sign = "-" if n < 0 else ""
    n = abs(n)
    parts = []
    for prefix in ("", "K", "M", "G", "T", "P", "E"):
        if n % 1024:
            parts.append(f"{n % 1024}{prefix}{'iB' if prefix else 'B'}")
        n //= 1024
        if n == 0:
            break
    return sign + "".join(reversed(parts))

