"""Value types shared by every part of the database: label sets, matchers, stale markers.

Label sets are immutable, sorted by name, hashable and interned: the strings inside a
`Labels` are `sys.intern`ed, so a label value seen on ten thousand series is stored once.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from enum import Enum

import numpy as np
import numpy.typing as npt

from .re2 import Regexp, compile_re2

METRIC_NAME = "__name__"

#: Bit pattern of Prometheus's staleness marker, a NaN that no arithmetic produces.
STALE_NAN_BITS = 0x7FF0000000000002
STALE_NAN: float = float(np.array([STALE_NAN_BITS], dtype=np.uint64).view(np.float64)[0])

#: Timestamps are int64 milliseconds since the Unix epoch.
MIN_TIME = -(2**63)
MAX_TIME = 2**63 - 1

_LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


def is_stale(value: float) -> bool:
    """Return True if `value` carries exactly the staleness marker's bits."""
    return int(np.float64(value).view(np.uint64)) == STALE_NAN_BITS


def stale_mask(values: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Return a boolean mask of the elements of `values` that are staleness markers."""
    mask: npt.NDArray[np.bool_] = values.view(np.uint64) == np.uint64(STALE_NAN_BITS)
    return mask


def valid_label_name(name: str) -> bool:
    """Return True if `name` is a legal Prometheus label name."""
    return _LABEL_NAME_RE.match(name) is not None


class Labels(tuple[str, ...]):
    """A sorted, immutable label set stored flat as ``(name0, value0, name1, value1, …)``.

    Names are unique and sorted; labels with empty values are dropped, as in Prometheus
    (an empty value means "label absent"). Equality and hashing are those of the tuple, so
    two `Labels` built from the same pairs in any order are equal.
    """

    __slots__ = ()

    def __new__(cls, pairs: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> Labels:
        if isinstance(pairs, Labels):
            # A Labels iterates as flat strings, which would unpack as (char, char) pairs.
            return pairs
        items = pairs.items() if isinstance(pairs, Mapping) else pairs
        flat: list[str] = []
        for name, value in sorted((n, v) for n, v in items if v != ""):
            if flat and flat[-2] == name:
                raise ValueError(f"duplicate label name {name!r}")
            flat.append(sys.intern(name))
            flat.append(sys.intern(value))
        return super().__new__(cls, flat)

    @classmethod
    def from_flat(cls, flat: Iterable[str]) -> Labels:
        """Build from an already sorted, duplicate-free flat sequence (trusted input)."""
        return super().__new__(cls, (sys.intern(s) for s in flat))

    def get(self, name: str, default: str = "") -> str:
        # tuple.index scans in C; a hit at an odd position is a value, not a name.
        try:
            i = self.index(name)
            while i & 1:
                i = self.index(name, i + 1)
        except ValueError:
            return default
        return str(self[i + 1])

    @property
    def name(self) -> str:
        """The metric name (`__name__`), or an empty string."""
        return self.get(METRIC_NAME)

    def pairs(self) -> Iterator[tuple[str, str]]:
        for i in range(0, len(self), 2):
            yield self[i], self[i + 1]

    def names(self) -> list[str]:
        return list(self[0::2])

    def to_dict(self) -> dict[str, str]:
        return dict(self.pairs())

    def without(self, *names: str) -> Labels:
        if len(names) == 1:  # the common case (dropping __name__): one C-level scan, slices
            try:
                i = self.index(names[0])
                while i & 1:  # a value equal to the name, not the name
                    i = self.index(names[0], i + 1)
            except ValueError:
                return self
            # The strings come from a Labels: already interned.
            return tuple.__new__(Labels, self[:i] + self[i + 2 :])
        drop = set(names)
        return Labels.from_flat(
            s for i in range(0, len(self), 2) if self[i] not in drop for s in self[i : i + 2]
        )

    def __repr__(self) -> str:
        return f"Labels({self.to_dict()!r})"

    def __str__(self) -> str:
        """Prometheus's text form: ``name{a="b", c="d"}``, values quoted like Go's ``%q``."""
        name = self.name
        rest = ", ".join(f"{n}={go_quote(v)}" for n, v in self.pairs() if n != METRIC_NAME)
        if not rest:
            return name if name else "{}"
        return f"{name}{{{rest}}}"


def escape_label_value(value: str) -> str:
    """Escape a label value as the exposition formats do (backslash, quote, newline)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
    '"': '\\"',
}


def go_quote(value: str) -> str:
    """Quote `value` as Go's ``strconv.Quote`` does, which is how Prometheus prints values.

    Printable characters stay as they are (Python's `str.isprintable` and Go's
    `unicode.IsPrint` both accept letters, marks, numbers, punctuation, symbols and the
    ASCII space); the rest become ``\\n``-style, ``\\xNN``, ``\\uNNNN`` or ``\\UNNNNNNNN`` escapes.
    """
    if value.isprintable() and '"' not in value and "\\" not in value:
        return f'"{value}"'
    out = ['"']
    for ch in value:
        esc = _GO_ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
        elif ch.isprintable():
            out.append(ch)
        elif (cp := ord(ch)) < 0x80:
            out.append(f"\\x{cp:02x}")
        elif cp < 0x10000:
            out.append(f"\\u{cp:04x}")
        else:
            out.append(f"\\U{cp:08x}")
    out.append('"')
    return "".join(out)


class MatchType(Enum):
    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


class Matcher:
    """A label matcher. Regular expressions are fully anchored, as in Prometheus.

    A matcher on a missing label sees the empty string, so ``{foo=""}`` matches series
    without `foo` and ``{foo!=""}`` matches series that have it. Regular expressions use
    RE2 syntax and match like Prometheus 2.x's ``^(?:re)$``, in time linear in the value
    (see `compile_re2`).
    """

    __slots__ = ("type", "name", "value", "_re")

    def __init__(self, type: MatchType, name: str, value: str) -> None:
        self.type = type
        self.name = name
        self.value = value
        self._re: Regexp | None = None
        if type in (MatchType.REGEX, MatchType.NOT_REGEX):
            self._re = compile_re2(value)

    @classmethod
    def parse_op(cls, op: str, name: str, value: str) -> Matcher:
        """Build from an operator string such as ``"=~"``."""
        return cls(MatchType(op), name, value)

    def matches(self, value: str) -> bool:
        if self.type is MatchType.EQUAL:
            return value == self.value
        if self.type is MatchType.NOT_EQUAL:
            return value != self.value
        assert self._re is not None
        hit = self._re.matches(value)
        return hit if self.type is MatchType.REGEX else not hit

    def matches_empty(self) -> bool:
        """True if a series lacking this label is selected by the matcher."""
        return self.matches("")

    def literal_alternatives(self) -> list[str] | None:
        """For ``=~"a|b|c"`` made only of literals, the list of literals; else None."""
        if self.type is not MatchType.REGEX:
            return None
        parts = self.value.split("|")
        if all(p and re.escape(p) == p for p in parts):
            return parts
        return None

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Matcher)
            and (self.type, self.name, self.value) == (other.type, other.name, other.value)
        )

    def __hash__(self) -> int:
        return hash((self.type, self.name, self.value))

    def __repr__(self) -> str:
        return f"{self.name}{self.type.value}{go_quote(self.value)}"


def matches_all(labels: Labels, matchers: Iterable[Matcher]) -> bool:
    """Return True if `labels` satisfies every matcher."""
    return all(m.matches(labels.get(m.name)) for m in matchers)


# --- selectors -------------------------------------------------------------------------------

_METRIC_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME_AT = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_MATCH_OP_AT = re.compile(r"=~|!~|!=|=")
_SPACE = re.compile(r"\s*")
#: Words PromQL's lexer reads as keywords, never as a metric name.
_KEYWORDS = frozenset({"bool", "on", "ignoring", "group_left", "group_right", "atan2"})
_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
}
_NUMERIC_ESCAPES = {"x": (2, 16), "u": (4, 16), "U": (8, 16)}


def parse_selector(text: str) -> list[Matcher]:
    """Parse a series selector such as ``up{job="node",instance=~"a.*"}`` into matchers.

    This is the small selector grammar used by CLI flags and `match[]` parameters inside the
    database; the PromQL parser in `query/` has its own, complete grammar. Strings are
    PromQL's: double- or single-quoted with Go escapes, or raw between backticks. Raises
    ValueError with a message saying what is wrong and where.
    """
    p = _SelectorParser(text)
    return p.parse()


class _SelectorParser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, why: str) -> ValueError:
        return ValueError(f"invalid series selector {self.text!r}: {why} at position {self.pos}")

    def skip_space(self) -> None:
        m = _SPACE.match(self.text, self.pos)
        assert m is not None
        self.pos = m.end()

    def peek(self) -> str:
        return self.text[self.pos : self.pos + 1]

    def parse(self) -> list[Matcher]:
        matchers: list[Matcher] = []
        self.skip_space()
        name = ""
        if m := _METRIC_NAME_RE.match(self.text, self.pos):
            name = m.group()
            if name in _KEYWORDS:
                raise self.fail(f"{name!r} is a keyword, not a metric name")
            matchers.append(Matcher(MatchType.EQUAL, METRIC_NAME, name))
            self.pos = m.end()
            self.skip_space()
        if self.peek() == "{":
            self.pos += 1
            matchers += self.label_matchers()
        elif not name:
            raise self.fail("expected a metric name or '{'")
        self.skip_space()
        if self.pos != len(self.text):
            raise self.fail(f"unexpected {self.text[self.pos:]!r}")
        if name and any(m.name == METRIC_NAME for m in matchers[1:]):
            raise self.fail(f"metric name must not be set twice: {name!r} and __name__")
        if all(m.matches_empty() for m in matchers):
            raise self.fail("a selector needs at least one matcher that rejects empty values")
        return matchers

    def label_matchers(self) -> list[Matcher]:
        out: list[Matcher] = []
        while True:
            self.skip_space()
            if self.peek() == "}":
                self.pos += 1
                return out
            m = _LABEL_NAME_AT.match(self.text, self.pos)
            if not m:
                raise self.fail("expected a label name or '}'")
            label = m.group()
            self.pos = m.end()
            self.skip_space()
            op = _MATCH_OP_AT.match(self.text, self.pos)
            if not op:
                raise self.fail(f"expected a match operator after {label!r}")
            self.pos = op.end()
            self.skip_space()
            value = self.string()
            try:
                out.append(Matcher(MatchType(op.group()), label, value))
            except ValueError as exc:
                raise ValueError(f"invalid series selector {self.text!r}: {exc}") from None
            self.skip_space()
            if self.peek() == ",":
                self.pos += 1
            elif self.peek() != "}":
                raise self.fail("expected ',' or '}'")

    def string(self) -> str:
        text, start = self.text, self.pos
        quote = self.peek()
        if quote not in ('"', "'", "`"):
            raise self.fail("expected a quoted string")
        if quote == "`":
            end = text.find("`", start + 1)
            if end < 0:
                raise self.fail("unterminated raw string")
            self.pos = end + 1
            return text[start + 1 : end]
        out = bytearray()
        i = start + 1
        while True:
            if i >= len(text) or text[i] == "\n":
                self.pos = i
                raise self.fail("unterminated quoted string")
            c = text[i]
            if c == quote:
                break
            if c != "\\":
                out += c.encode("utf-8", "surrogatepass")
                i += 1
                continue
            e = text[i + 1 : i + 2]
            self.pos = i
            if e in _SIMPLE_ESCAPES:
                out += _SIMPLE_ESCAPES[e].encode()
                i += 2
            elif e == quote:
                out += e.encode()
                i += 2
            elif e and (e in _NUMERIC_ESCAPES or e in "01234567"):
                digits, base = _NUMERIC_ESCAPES.get(e, (3, 8))
                first = i + 1 if base == 8 else i + 2
                code = text[first : first + digits]
                valid = "01234567" if base == 8 else "0123456789abcdefABCDEF"
                if len(code) != digits or any(ch not in valid for ch in code):
                    raise self.fail(f"invalid escape sequence {text[i : first + digits]!r}")
                n = int(code, base)
                if e in "uU":
                    if n > 0x10FFFF or 0xD800 <= n < 0xE000:
                        raise self.fail(f"invalid Unicode code point {code!r}")
                    out += chr(n).encode()
                elif n > 255:
                    raise self.fail(f"octal escape {code!r} is above 255")
                else:
                    out.append(n)  # \x and octal escapes are bytes, as in Go
                i = first + digits
            else:
                raise self.fail(f"unknown escape sequence {text[i : i + 2]!r}")
        self.pos = i + 1
        try:
            return out.decode("utf-8")
        except UnicodeDecodeError:
            self.pos = start
            raise self.fail("string is not valid UTF-8") from None
