"""Numbers as Prometheus 2.42's exposition parsers read them (Go's `strconv`).

Prometheus parses sample values (and OpenMetrics timestamps) with
``strconv.ParseFloat(s, 64)`` after rejecting any ``p``, ``P`` or ``_`` (no hex floats, no
digit separators), and text-format timestamps with ``strconv.ParseInt(s, 10, 64)``. Python's
`float` is close but looser: it also takes surrounding whitespace, ``_`` separators, Unicode
digits and a signed NaN, and returns ``inf`` where Go reports ``value out of range``. The
functions here accept exactly Go's spellings and fail with Go's error text, so a user can
grep for the message Prometheus would have logged.

Every NaN read is returned with the bits of Prometheus's ``value.NormalNaN``
(``0x7ff8000000000001``, also what Go's `ParseFloat("NaN")` yields), never the staleness
marker.
"""

from __future__ import annotations

import math
import re

import numpy as np

__all__ = [
    "INT64_MAX",
    "NORMAL_NAN",
    "NORMAL_NAN_BITS",
    "GoNumError",
    "go_quote_bytes",
    "parse_go_float",
    "parse_go_int64",
]

#: Bits of the NaN Prometheus stores for a scraped NaN (value.NormalNaN).
NORMAL_NAN_BITS = 0x7FF8000000000001
NORMAL_NAN: float = float(np.array([NORMAL_NAN_BITS], dtype=np.uint64).view(np.float64)[0])

INT64_MAX = 2**63 - 1

# Go's decimal ParseFloat syntax (hex floats and "_" are refused before this is consulted).
# ASCII digits only: Python's \d would also match other scripts' digits.
_GO_FLOAT_RE = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
    r"|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)"
    r"|[nN][aA][nN]"
)


class GoNumError(ValueError):
    """A number Go's `strconv` (as Prometheus uses it) would refuse; the message is Go's."""


def go_quote_bytes(text: str) -> str:
    """Quote `text` like Go's ``%q``, showing undecodable bytes (surrogate escapes from
    ``decode("utf-8", "surrogateescape")``) as ``\\xNN`` the way Go shows invalid UTF-8."""
    out = ['"']
    for ch in text:
        cp = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif 0xDC80 <= cp <= 0xDCFF:
            out.append(f"\\x{cp - 0xDC00:02x}")
        elif ch.isprintable():
            out.append(ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif cp < 0x80:
            out.append(f"\\x{cp:02x}")
        elif cp < 0x10000:
            out.append(f"\\u{cp:04x}")
        else:
            out.append(f"\\U{cp:08x}")
    out.append('"')
    return "".join(out)


def parse_go_float(text: str) -> float:
    """Parse `text` as Prometheus's `parseFloat` does; raises `GoNumError` with Go's message.

    ``1``, ``-2.5e3``, ``.5``, ``5.``, ``+Inf``, ``inf``, ``-Infinity``, ``NaN``, ``nan`` are
    accepted; ``0x1p3``, ``1_000``, ``+nan``, `` 1``, ``1e999`` (out of range) are not.
    """
    if "p" in text or "P" in text or "_" in text:
        raise GoNumError("unsupported character in float")
    if _GO_FLOAT_RE.fullmatch(text) is None:
        raise GoNumError(f"strconv.ParseFloat: parsing {go_quote_bytes(text)}: invalid syntax")
    value = float(text)
    if value != value:
        return NORMAL_NAN
    if math.isinf(value) and text.lstrip("+-")[:1] not in ("i", "I"):
        raise GoNumError(f"strconv.ParseFloat: parsing {go_quote_bytes(text)}: value out of range")
    return value


def parse_go_int64(text: str) -> int:
    """Parse a run of ASCII digits as ``strconv.ParseInt(text, 10, 64)`` does (the text
    format's lexer only ever hands it digits); raises `GoNumError` with Go's message."""
    if not (text.isascii() and text.isdigit()):
        raise GoNumError(f"strconv.ParseInt: parsing {go_quote_bytes(text)}: invalid syntax")
    value = int(text)
    if value > INT64_MAX:
        raise GoNumError(f"strconv.ParseInt: parsing {go_quote_bytes(text)}: value out of range")
    return value
