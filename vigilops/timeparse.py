"""Prometheus-style durations (`1h30m`, `15s`, `250ms`) and byte sizes (`512MB`)."""

from __future__ import annotations

import re

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000,
             "w": 604_800_000, "y": 31_536_000_000}
_DURATION_RE = re.compile(r"(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?\Z")
_BYTES = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40, "PB": 1 << 50, "EB": 1 << 60}


def parse_duration_ms(text: str) -> int:
    """Milliseconds of a Prometheus duration such as ``1h30m``; ``0`` is allowed."""
    if text == "0":
        return 0
    m = _DURATION_RE.match(text)
    if not text or not m or not any(m.groups()):
        raise ValueError(f"not a valid duration string: {text!r}")
    total = 0
    for value, unit in zip(m.groups(), ("y", "w", "d", "h", "m", "s", "ms")):
        if value:
            total += int(value) * _UNITS_MS[unit]
    return total


def parse_bytes(text: str) -> int:
    """Bytes of a Prometheus size such as ``512MB`` or ``1GB`` (powers of 1024); ``0`` is allowed."""
    m = re.fullmatch(r"(\d+)([KMGTPE]?B)", text.strip())
    if text.strip() == "0":
        return 0
    if not m:
        raise ValueError(f"not a valid size: {text!r} (use e.g. 512MB, 10GB)")
    return int(m.group(1)) * _BYTES[m.group(2)]
