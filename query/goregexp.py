"""Go's regular-expression syntax errors, as Prometheus 2.42 reports them for ``=~``/``!~``.

Prometheus 2.42 (built with Go 1.19) compiles a matcher's pattern twice: ``regexp.Compile``
of ``^(?:<pattern>)$``, then ``syntax.Parse(<pattern>, syntax.Perl)``. The first failure is
the error, worded by Go's ``regexp/syntax``: ``error parsing regexp: <code>: `<expr>` ``,
where ``<expr>`` is the offending piece, or the whole (wrapped) text for parenthesis
errors: ``missing closing ): `^(?:()$` ``.

`regexp_error` replays Go's parser (``regexp/syntax/parse.go``) far enough to find those
errors: it keeps Go's parse stack as markers (open parenthesis, ``|``) and, per operand,
the largest product of counted repetitions inside it, which is what Go's repeat-size rule
(at most 1000 copies, nested counts multiplied) needs. It builds no regexp.

The pattern is a `str` in which each byte that is not valid UTF-8 is a lone surrogate
(``bytes.decode("utf-8", "surrogateescape")``); an ``invalid UTF-8`` error shows each such
byte as U+FFFD, as Go's JSON encoder writes it. Not replayed: Go's limits on nesting depth
(1000) and compiled size, which no label pattern meets.
"""

from __future__ import annotations

import functools
from typing import Final, NoReturn

from vigilops.tsdb.re2 import UNICODE_CLASS_NAMES

__all__ = ["regexp_error"]

MAX_REPEAT: Final = 1000

_MISSING_PAREN = "missing closing )"
_UNEXPECTED_PAREN = "unexpected )"
_MISSING_BRACKET = "missing closing ]"
_INVALID_ESCAPE = "invalid escape sequence"
_INVALID_CHAR_RANGE = "invalid character class range"
_INVALID_NAMED_CAPTURE = "invalid named capture"
_INVALID_PERL_OP = "invalid or unsupported Perl syntax"
_INVALID_REPEAT_OP = "invalid nested repetition operator"
_INVALID_REPEAT_SIZE = "invalid repeat count"
_INVALID_UTF8 = "invalid UTF-8"
_MISSING_REPEAT_ARGUMENT = "missing argument to repetition operator"
_TRAILING_BACKSLASH = "trailing backslash at end of expression"

_POSIX_CLASSES = frozenset(
    f"[:{neg}{name}:]"
    for neg in ("", "^")
    for name in ("alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower",
                 "print", "punct", "space", "upper", "word", "xdigit")
)
_PERL_CLASSES = frozenset({"d", "D", "s", "S", "w", "W"})
_MAX_RUNE = 0x10FFFF


class _Paren:
    """An open parenthesis on the parse stack (Go's ``opLeftParen``)."""


class _Bar:
    """A ``|`` on the parse stack (Go's ``opVerticalBar``)."""


_PAREN: Final = _Paren()
_BAR: Final = _Bar()
#: A stack entry: a marker, or an operand given as the largest product of counted
#: repetitions on any path inside it (1 when it has none).
_Entry = _Paren | _Bar | int


class _SyntaxError(Exception):
    """Go's ``*syntax.Error``: a code and the offending text."""

    def __init__(self, code: str, expr: str) -> None:
        super().__init__(code)
        self.code = code
        self.expr = expr

    def message(self) -> str:
        shown = "".join("\ufffd" if _bad(c) else c for c in self.expr)
        return f"error parsing regexp: {self.code}: `{shown}`"


def _fail(code: str, expr: str) -> NoReturn:
    raise _SyntaxError(code, expr)


def _bad(c: str) -> bool:
    """Whether `c` stands for a byte that is not UTF-8 (or is a surrogate, which Go
    rejects as well)."""
    return 0xD800 <= ord(c) <= 0xDFFF


def _isalnum(c: str) -> bool:
    return c.isascii() and c.isalnum()


def _unhex(c: str) -> int:
    return int(c, 16) if c.isascii() and c in "0123456789abcdefABCDEF" else -1


@functools.lru_cache(maxsize=1024)
def regexp_error(pattern: str) -> str | None:
    """The error Prometheus 2.42 gives for the matcher pattern `pattern`, or None when Go
    accepts it: the wrapped ``^(?:pattern)$`` is parsed first, then the bare pattern."""
    for text in (f"^(?:{pattern})$", pattern):
        try:
            _Parser(text).parse()
        except _SyntaxError as err:
            return err.message()
    return None


class _Parser:
    """Go's ``regexp/syntax`` parser with ``syntax.Perl`` flags, reduced to its checks."""

    def __init__(self, text: str) -> None:
        self.s = text
        self.stack: list[_Entry] = []

    # ---- the parse stack (Go's push, concat, alternate, swapVerticalBar)
    def _collapse(self) -> None:
        """Replace the operands above the topmost marker by one (concat or alternate)."""
        i = len(self.stack)
        while i > 0 and isinstance(self.stack[i - 1], int):
            i -= 1
        operands = [e for e in self.stack[i:] if isinstance(e, int)]
        del self.stack[i:]
        self.stack.append(max(operands, default=1))

    def _swap_bar(self) -> bool:
        st = self.stack
        if len(st) >= 2 and st[-2] is _BAR:
            st[-2], st[-1] = st[-1], _BAR
            return True
        return False

    def _vertical_bar(self) -> None:
        self._collapse()
        if not self._swap_bar():
            self.stack.append(_BAR)

    def _close_group(self) -> None:
        """Collapse the current group's alternatives (Go's concat, swap, alternate)."""
        self._collapse()
        if self._swap_bar():
            self.stack.pop()
        self._collapse()

    def _right_paren(self) -> None:
        self._close_group()
        if len(self.stack) < 2 or self.stack[-2] is not _PAREN:
            _fail(_UNEXPECTED_PAREN, self.s)
        inner = self.stack.pop()
        self.stack.pop()
        self.stack.append(inner)

    def _repeat(self, at: int, end: int, lo: int, hi: int, last_repeat: int) -> int:
        """Apply ``*``, ``+``, ``?`` or ``{lo,hi}`` (text ``s[at:end]``) to the top operand;
        returns where parsing goes on. ``lo == hi == -2`` marks the three operators, which
        have no count. `last_repeat` is where the previous operator started, or -1."""
        s = self.s
        if end < len(s) and s[end] == "?":  # non-greedy
            end += 1
        if last_repeat >= 0:
            _fail(_INVALID_REPEAT_OP, s[last_repeat:end])
        if not self.stack or not isinstance(self.stack[-1], int):
            _fail(_MISSING_REPEAT_ARGUMENT, s[at:end])
        inner = self.stack[-1]
        assert isinstance(inner, int)
        if lo == -2:
            return end
        # Go's repeatIsValid: the counts along any path multiply to at most 1000; a {0}
        # hides what it repeats, {0,} counts as nothing.
        count = hi if hi != -1 else lo
        weight = 1 if hi == 0 else inner * max(count, 1)
        self.stack[-1] = weight
        if (lo >= 2 or hi >= 2) and weight > MAX_REPEAT:
            _fail(_INVALID_REPEAT_SIZE, s[at:end])
        return end

    # ---- the main loop (Go's parse)
    def parse(self) -> None:
        s = self.s
        i, n = 0, len(s)
        last_repeat = -1
        while i < n:
            c = s[i]
            repeat = -1
            if c == "(":
                if s.startswith("(?", i):
                    i = self._perl_flags(i)
                else:
                    self.stack.append(_PAREN)
                    i += 1
            elif c == "|":
                self._vertical_bar()
                i += 1
            elif c == ")":
                self._right_paren()
                i += 1
            elif c in "^$.":
                self.stack.append(1)
                i += 1
            elif c == "[":
                i = self._char_class(i)
            elif c in "*+?":
                repeat = i
                i = self._repeat(i, i + 1, -2, -2, last_repeat)
            elif c == "{":
                counted = self._parse_repeat(i)
                if counted is None:  # not a repetition: a literal "{"
                    self.stack.append(1)
                    i += 1
                else:
                    lo, hi, end = counted
                    if lo < 0 or lo > MAX_REPEAT or hi > MAX_REPEAT or 0 <= hi < lo:
                        _fail(_INVALID_REPEAT_SIZE, s[i:end])
                    repeat = i
                    i = self._repeat(i, end, lo, hi, last_repeat)
            elif c == "\\":
                i = self._backslash(i)
            else:
                self._next_rune(i)
                self.stack.append(1)
                i += 1
            last_repeat = repeat
        self._close_group()
        if len(self.stack) != 1:
            _fail(_MISSING_PAREN, s)

    def _next_rune(self, i: int) -> str:
        """Go's ``nextRune``: the character at `i`, failing on a byte that is not UTF-8."""
        c = self.s[i]
        if _bad(c):
            _fail(_INVALID_UTF8, self.s[i:])
        return c

    def _check_utf8(self, text: str) -> None:
        for k, c in enumerate(text):
            if _bad(c):
                _fail(_INVALID_UTF8, text[k:])

    def _parse_int(self, i: int) -> tuple[int, int] | None:
        """Go's ``parseInt`` at `i`: (value or -1 when too large, end), None if no number
        (or one with a leading zero)."""
        s = self.s
        j = i
        while j < len(s) and "0" <= s[j] <= "9":
            j += 1
        if j == i or (j - i >= 2 and s[i] == "0"):
            return None
        # Go stops at 1e8 before taking another digit: ten digits or more are "too large".
        return (int(s[i:j]) if j - i <= 9 else -1), j

    def _parse_repeat(self, i: int) -> tuple[int, int, int] | None:
        """Go's ``parseRepeat`` of ``{n}``, ``{n,}``, ``{n,m}`` at `i`: (min, max, end) with
        max -1 for ``{n,}`` and min -1 when a number is too large; None if not one."""
        s = self.s
        first = self._parse_int(i + 1)
        if first is None:
            return None
        lo, j = first
        if j >= len(s):
            return None
        if s[j] != ",":
            hi = lo
        else:
            j += 1
            if j >= len(s):
                return None
            if s[j] == "}":
                hi = -1
            else:
                second = self._parse_int(j)
                if second is None:
                    return None
                hi, j = second
                if hi < 0:
                    lo = -1
        if j >= len(s) or s[j] != "}":
            return None
        return lo, hi, j + 1

    def _perl_flags(self, i: int) -> int:
        """Go's ``parsePerlFlags`` at ``(?``: a named group, a flag change or a
        non-capturing group; returns where parsing goes on."""
        s = self.s
        if len(s) - i > 4 and s.startswith("(?P<", i):
            end = s.find(">", i)
            if end < 0:
                self._check_utf8(s[i:])
                _fail(_INVALID_NAMED_CAPTURE, s[i:])
            name = s[i + 4 : end]
            self._check_utf8(name)
            if not name or not all(ch == "_" or _isalnum(ch) for ch in name):
                _fail(_INVALID_NAMED_CAPTURE, s[i : end + 1])
            self.stack.append(_PAREN)
            return end + 1
        j = i + 2
        negated = saw_flag = False
        while j < len(s):
            c = self._next_rune(j)
            j += 1
            if c in "imsU":
                saw_flag = True
            elif c == "-":
                if negated:
                    break
                negated, saw_flag = True, False
            elif c in ":)":
                if negated and not saw_flag:
                    break
                if c == ":":
                    self.stack.append(_PAREN)
                return j
            else:
                break
        _fail(_INVALID_PERL_OP, s[i:j])

    def _backslash(self, i: int) -> int:
        """An escape outside a class: an assertion, ``\\Q…\\E``, a Unicode or Perl class,
        or a single character."""
        s = self.s
        nxt = s[i + 1] if i + 1 < len(s) else ""
        if nxt in ("A", "b", "B", "z"):
            self.stack.append(1)
            return i + 2
        if nxt == "C":
            _fail(_INVALID_ESCAPE, s[i : i + 2])
        if nxt == "Q":
            end = s.find("\\E", i + 2)
            literal = s[i + 2 :] if end < 0 else s[i + 2 : end]
            for k in range(len(literal)):
                if _bad(literal[k]):
                    _fail(_INVALID_UTF8, literal[k:])
                self.stack.append(1)
            return len(s) if end < 0 else end + 2
        after = self._unicode_class(i)
        if after is None and nxt in _PERL_CLASSES:
            after = i + 2
        if after is None:
            after = self._escape(i)
        self.stack.append(1)
        return after

    def _unicode_class(self, i: int) -> int | None:
        """Go's ``parseUnicodeClass`` at `i`: the end of ``\\pL`` or ``\\p{Name}``, None when
        `i` does not start one."""
        s = self.s
        if not (s.startswith("\\p", i) or s.startswith("\\P", i)):
            return None
        j = i + 2
        if j >= len(s):
            seq, name = s[i:j], ""  # Go decodes RuneError from the empty rest
        elif s[j] != "{":
            self._next_rune(j)
            seq, name = s[i : j + 1], s[j]
        else:
            end = s.find("}", i)
            if end < 0:
                self._check_utf8(s[i:])
                _fail(_INVALID_CHAR_RANGE, s[i:])
            seq, name = s[i : end + 1], s[i + 3 : end]
            self._check_utf8(name)
        if name.startswith("^"):
            name = name[1:]
        if name not in UNICODE_CLASS_NAMES:
            _fail(_INVALID_CHAR_RANGE, seq)
        return i + len(seq)

    def _escape(self, i: int) -> int:
        """Go's ``parseEscape`` at the backslash `i`: returns the end of a valid escape of
        one character, else fails with the text read so far."""
        s = self.s
        j = i + 1
        if j >= len(s):
            _fail(_TRAILING_BACKSLASH, "")
        c = self._next_rune(j)
        j += 1
        if c.isascii() and not _isalnum(c):
            return j
        if c in "1234567" and not (j < len(s) and "0" <= s[j] <= "7"):
            _fail(_INVALID_ESCAPE, s[i:j])  # a backreference
        if c in "01234567":
            for _ in range(2):
                if j < len(s) and "0" <= s[j] <= "7":
                    j += 1
            return j
        if c == "x":
            return self._hex_escape(i, j)
        if c in "afnrtv":
            return j
        _fail(_INVALID_ESCAPE, s[i:j])

    def _hex_escape(self, i: int, j: int) -> int:
        """``\\xHH`` or ``\\x{H…}``; `j` is just after the ``x``."""
        s = self.s
        if j >= len(s):
            _fail(_INVALID_ESCAPE, s[i:j])
        c = self._next_rune(j)
        j += 1
        if c == "{":
            digits = value = 0
            while True:
                if j >= len(s):
                    _fail(_INVALID_ESCAPE, s[i:j])
                c = self._next_rune(j)
                j += 1
                if c == "}":
                    break
                v = _unhex(c)
                value = value * 16 + v
                if v < 0 or value > _MAX_RUNE:
                    _fail(_INVALID_ESCAPE, s[i:j])
                digits += 1
            if digits == 0:
                _fail(_INVALID_ESCAPE, s[i:j])
            return j
        x = _unhex(c)
        y = -1
        if j < len(s):
            y = _unhex(self._next_rune(j))
            j += 1
        if x < 0 or y < 0:
            _fail(_INVALID_ESCAPE, s[i:j])
        return j

    def _class_char(self, k: int, start: int) -> tuple[int, int]:
        """Go's ``parseClassChar``: (code point, end) of the character at `k` inside the
        class that opened at `start`."""
        s = self.s
        if k >= len(s):
            _fail(_MISSING_BRACKET, s[start:])
        if s[k] == "\\":
            end = self._escape(k)
            return _escaped_value(s[k:end]), end
        return ord(self._next_rune(k)), k + 1

    def _char_class(self, start: int) -> int:
        """Go's ``parseClass`` at ``[``: returns the index after the closing ``]``."""
        s = self.s
        k = start + 1
        if k < len(s) and s[k] == "^":
            k += 1
        first = True
        while k >= len(s) or s[k] != "]" or first:
            first = False
            if s.startswith("[:", k) and len(s) - k > 2:
                close = s.find(":]", k + 2)
                if close >= 0:
                    name = s[k : close + 2]
                    if name not in _POSIX_CLASSES:
                        _fail(_INVALID_CHAR_RANGE, name)
                    k = close + 2
                    continue
            after = self._unicode_class(k)
            if after is not None:
                k = after
                continue
            if s.startswith("\\", k) and s[k + 1 : k + 2] in _PERL_CLASSES:
                k += 2
                continue
            range_start = k
            lo, k = self._class_char(k, start)
            if len(s) - k >= 2 and s[k] == "-" and s[k + 1] != "]":
                hi, k = self._class_char(k + 1, start)
                if hi < lo:
                    _fail(_INVALID_CHAR_RANGE, s[range_start:k])
        self.stack.append(1)
        return k + 1


def _escaped_value(esc: str) -> int:
    """The code point of a valid single-character escape such as ``\\n``, ``\\101``,
    ``\\x41``, ``\\x{41}`` or ``\\.`` (for class ranges)."""
    c = esc[1]
    if c in "afnrtv":
        return ord({"a": "\a", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}[c])
    if c in "01234567":
        return int(esc[1:], 8)
    if c == "x":
        return int(esc[3:-1] if esc[2] == "{" else esc[2:4], 16)
    return ord(c)
