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
        for i in range(0, len(self), 2):
            if self[i] == name:
                return self[i + 1]
        return default

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
        drop = set(names)
        return Labels.from_flat(
            s for i in range(0, len(self), 2) if self[i] not in drop for s in self[i : i + 2]
        )

    def __repr__(self) -> str:
        return f"Labels({self.to_dict()!r})"

    def __str__(self) -> str:
        """Prometheus's text form: ``name{a="b", c="d"}``."""
        name = self.name
        rest = ", ".join(
            f'{n}="{escape_label_value(v)}"' for n, v in self.pairs() if n != METRIC_NAME
        )
        if not rest:
            return name if name else "{}"
        return f"{name}{{{rest}}}"


def escape_label_value(value: str) -> str:
    """Escape a label value as the exposition formats do (backslash, quote, newline)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class MatchType(Enum):
    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


class Matcher:
    """A label matcher. Regular expressions are fully anchored, as in Prometheus.

    A matcher on a missing label sees the empty string, so ``{foo=""}`` matches series
    without `foo` and ``{foo!=""}`` matches series that have it.
    """

    __slots__ = ("type", "name", "value", "_re")

    def __init__(self, type: MatchType, name: str, value: str) -> None:
        self.type = type
        self.name = name
        self.value = value
        self._re: re.Pattern[str] | None = None
        if type in (MatchType.REGEX, MatchType.NOT_REGEX):
            try:
                self._re = re.compile(f"(?s:{value})\\Z")
            except re.error as exc:
                raise ValueError(f"invalid regular expression {value!r}: {exc}") from None

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
        hit = self._re.match(value) is not None
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
        return f'{self.name}{self.type.value}"{escape_label_value(self.value)}"'


def matches_all(labels: Labels, matchers: Iterable[Matcher]) -> bool:
    """Return True if `labels` satisfies every matcher."""
    return all(m.matches(labels.get(m.name)) for m in matchers)


def parse_selector(text: str) -> list[Matcher]:
    """Parse a series selector such as ``up{job="node",instance=~"a.*"}`` into matchers.

    This is the small selector grammar used by CLI flags and `match[]` parameters inside the
    database; the PromQL parser in `query/` has its own, complete grammar.
    """
    text = text.strip()
    m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*(\{.*\})?\Z", text, re.S)
    if not m or (m.group(1) is None and m.group(2) is None):
        raise ValueError(f"invalid series selector {text!r}")
    matchers: list[Matcher] = []
    if m.group(1):
        matchers.append(Matcher(MatchType.EQUAL, METRIC_NAME, m.group(1)))
    body = (m.group(2) or "{}")[1:-1]
    pos = 0
    item = re.compile(
        r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,|\Z)', re.S
    )
    while pos < len(body):
        im = item.match(body, pos)
        if not im:
            raise ValueError(f"invalid series selector {text!r} near {body[pos:]!r}")
        value = _unescape(im.group(3))
        matchers.append(Matcher(MatchType(im.group(2)), im.group(1), value))
        pos = im.end()
    if not matchers or all(mt.matches_empty() for mt in matchers):
        raise ValueError(f"selector {text!r} must contain at least one non-empty matcher")
    return matchers


def _unescape(s: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            nxt = s[i + 1]
            out.append({"n": "\n", "t": "\t", "\\": "\\", '"': '"'}.get(nxt, "\\" + nxt))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)
