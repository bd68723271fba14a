"""``label_replace`` and ``label_join`` (Prometheus 2.42).

Both rewrite label sets and leave values alone, so they loop over series (labels are per
series) and never over steps. The metric name is kept. Argument errors are raised even
when the vector is empty, as 2.42 checks them on every call.

`label_replace` matches the regular expression fully anchored (``^(?:re)$``, RE2 syntax)
and expands the replacement like Go's ``Regexp.Expand`` (``$1``, ``${1}``, ``$name``,
``${name}``, ``$$``); no match leaves the series untouched and an empty result deletes the
destination label.
"""

from __future__ import annotations

import re
import unicodedata

from vigilops.query.funcs._args import string_arg, vector_arg
from vigilops.query.values import ExecutionError, FunctionContext, Value, Vector
from vigilops.tsdb.model import Labels, valid_label_name
from vigilops.tsdb.re2 import compile_re2


class _AnchoredRegex:
    """A pattern matched like Go's ``regexp.MustCompile("^(?:" + re + ")$")``."""

    def __init__(self, regex: str) -> None:
        self._full: re.Pattern[str] | None = None
        self._search: re.Pattern[str] | None = None
        try:
            self._full = compile_re2(regex)
        except ValueError:
            # Text such as "a)|(b" is not a regex on its own but is one once wrapped.
            self._search = compile_re2("^(?:" + regex + ")$")

    def match(self, value: str) -> re.Match[str] | None:
        if self._full is not None:
            return self._full.fullmatch(value)
        assert self._search is not None
        return self._search.search(value)


def _is_name_char(ch: str) -> bool:
    return ch == "_" or ch.isalpha() or unicodedata.category(ch) == "Nd"


def _extract(template: str) -> tuple[str, int, str] | None:
    """Go's `extract`: a leading ``name`` or ``{name}`` → (name, number or -1, rest)."""
    brace = template.startswith("{")
    body = template[1:] if brace else template
    i = 0
    while i < len(body) and _is_name_char(body[i]):
        i += 1
    if i == 0:
        return None
    name = body[:i]
    if brace:
        if i >= len(body) or body[i] != "}":
            return None
        i += 1
    num = -1
    if name.isascii() and name.isdigit() and not (name[0] == "0" and len(name) > 1):
        num = int(name) if len(name) <= 9 else -1
    return name, num, body[i:]


def expand(template: str, match: re.Match[str]) -> str:
    """Go's ``Regexp.ExpandString(nil, template, src, match)``: ``$n``/``${n}`` and
    ``$name``/``${name}`` are replaced by the group's text (empty if the group does not
    exist or took no part), ``$$`` by ``$``; a malformed reference is kept literally."""
    out: list[str] = []
    rest = template
    while True:
        before, dollar, after = rest.partition("$")
        out.append(before)
        if not dollar:
            break
        if after.startswith("$"):
            out.append("$")
            rest = after[1:]
            continue
        ref = _extract(after)
        if ref is None:
            out.append("$")
            rest = after
            continue
        name, num, rest = ref
        group: int | None = None
        if num >= 0:
            group = num if num <= (match.re.groups) else None
        else:
            group = match.re.groupindex.get(name)
        if group is not None and match.start(group) >= 0:
            out.append(match.group(group))
    return "".join(out)


def label_replace(args: list[Value], ctx: FunctionContext) -> Value:
    """``label_replace(v, dst, replacement, src, regex)``."""
    vec = vector_arg(args, 0)
    dst, repl, src, regex = (string_arg(args, i) for i in range(1, 5))
    try:
        pattern = _AnchoredRegex(regex)
    except ValueError:
        raise ExecutionError(f"invalid regular expression in label_replace(): {regex}") from None
    if not valid_label_name(dst):
        raise ExecutionError(f"invalid destination label name in label_replace(): {dst}")
    labels: list[Labels] = []
    for ls in vec.labels:
        m = pattern.match(ls.get(src))
        if m is None:
            labels.append(ls)
            continue
        pairs = ls.to_dict()
        pairs[dst] = expand(repl, m)
        labels.append(Labels(pairs))
    return Vector(labels, vec.values.copy(), vec.present.copy())


def label_join(args: list[Value], ctx: FunctionContext) -> Value:
    """``label_join(v, dst, separator, src_1, src_2, …)``."""
    vec = vector_arg(args, 0)
    dst, sep = string_arg(args, 1), string_arg(args, 2)
    sources = [string_arg(args, i) for i in range(3, len(args))]
    for src in sources:
        if not valid_label_name(src):
            raise ExecutionError(f"invalid source label name in label_join(): {src}")
    if not valid_label_name(dst):
        raise ExecutionError(f"invalid destination label name in label_join(): {dst}")
    labels: list[Labels] = []
    for ls in vec.labels:
        pairs = ls.to_dict()
        pairs[dst] = sep.join(ls.get(src) for src in sources)
        labels.append(Labels(pairs))
    return Vector(labels, vec.values.copy(), vec.present.copy())
