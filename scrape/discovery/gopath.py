"""Go's `path/filepath` Join, Clean, Match and Glob on POSIX, so file_sd sees what Prometheus sees.

Python's `glob` differs in ways that change which files are read and what
``__meta_filepath`` says: it hides dot files from ``*``, reads ``[!a]`` rather than
``[^a]`` as a negated class, has no backslash escapes, and returns paths unsorted and
uncleaned.
"""

from __future__ import annotations

import os
import re
import stat

_META = "*?[\\"


def clean(path: str) -> str:
    """Go's `filepath.Clean`: the shortest equivalent path, lexically ("" becomes ".")."""
    if path == "":
        return "."
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    out = "/".join(parts)
    if rooted:
        return "/" + out
    return out or "."


def join(*elems: str) -> str:
    """Go's `filepath.Join`: the non-empty elements joined with "/" and cleaned."""
    nonempty = [e for e in elems if e]
    return clean("/".join(nonempty)) if nonempty else ""


def join_dir(directory: str, path: str) -> str:
    """Prometheus's `config.JoinDir`: `path` relative to `directory` unless absolute or empty."""
    if path == "" or path.startswith("/"):
        return path
    return join(directory, path)


def has_meta(path: str) -> bool:
    return any(c in path for c in _META)


class BadPattern(ValueError):
    """Go's `filepath.ErrBadPattern`."""

    def __init__(self) -> None:
        super().__init__("syntax error in pattern")


def _translate(pattern: str) -> re.Pattern[str]:
    """Compile one `filepath.Match` pattern (which never matches "/" with a wildcard)."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\":
            if i >= n:
                raise BadPattern()
            out.append(re.escape(pattern[i]))
            i += 1
        elif c == "[":
            negate = i < n and pattern[i] == "^"
            if negate:
                i += 1
            ranges: list[str] = []
            first = True
            while True:
                if i >= n:
                    raise BadPattern()
                if pattern[i] == "]" and not first:
                    i += 1
                    break
                first = False
                lo, i = _class_char(pattern, i)
                hi = lo
                if i < n and pattern[i] == "-":
                    hi, i = _class_char(pattern, i + 1)
                if lo <= hi:  # Go accepts an inverted range, which matches nothing.
                    ranges.append(re.escape(lo) if lo == hi else f"{re.escape(lo)}-{re.escape(hi)}")
            body = "".join(ranges)
            if negate:
                out.append(f"[^{body}]" if body else "(?s:.)")
            else:
                out.append(f"[{body}]" if body else "(?!)")
        else:
            out.append(re.escape(c))
    return re.compile("".join(out), re.DOTALL)


def _class_char(pattern: str, i: int) -> tuple[str, int]:
    if i >= len(pattern) or pattern[i] in "-]":
        raise BadPattern()
    if pattern[i] == "\\":
        i += 1
        if i >= len(pattern):
            raise BadPattern()
    return pattern[i], i + 1


def match(pattern: str, name: str) -> bool:
    """Go's `filepath.Match` (the whole of `name` must match; raises BadPattern)."""
    return _translate(pattern).fullmatch(name) is not None


def glob(pattern: str) -> list[str]:
    """Go's `filepath.Glob`: matching paths, sorted per directory; I/O errors are ignored.

    Raises BadPattern for a malformed pattern, like Go.
    """
    _translate(pattern)  # Go validates the whole pattern before any I/O.
    if not has_meta(pattern):
        try:
            os.lstat(pattern)
        except OSError:
            return []
        return [pattern]
    directory, _, file = pattern.rpartition("/")
    if "/" not in pattern:
        directory = "."
    elif directory == "":
        directory = "/"
    if not has_meta(directory):
        return _glob_in(directory, file)
    matches: list[str] = []
    for d in glob(directory):
        matches.extend(_glob_in(d, file))
    return matches


def _glob_in(directory: str, pattern: str) -> list[str]:
    try:
        if not stat.S_ISDIR(os.stat(directory).st_mode):
            return []
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    rx = _translate(pattern)
    return [join(directory, n) for n in names if rx.fullmatch(n)]
