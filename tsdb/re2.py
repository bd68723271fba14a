r"""RE2 regular expressions as Prometheus matches label values, in linear time.

Prometheus matches label values (``=~``, ``!~``), relabel regexes and ``label_replace`` with
Go's ``regexp`` (RE2 syntax and semantics), fully anchored: Prometheus 2.x (the version
DESIGN.md compares against) compiles ``^(?:re)$``, so ``.`` does not match a newline (3.0
changed this to ``^(?s:re)$``). Go's engine runs in time linear in the input, so one bad
pattern such as ``(a+)+b`` cannot stall a query or a scrape; a backtracking engine would.

`compile_re2` therefore does two things:

1. It validates the pattern against Go 1.19's syntax (`_Validator`, a parser that builds
   nothing), raising ValueError with Go's reason for what Go rejects, including what RE2
   C++ accepts but Go does not: ``\C``, ``(?<name>x)``, scripts newer than Go 1.19's
   (``\p{Kawi}``), capture names with non-ASCII letters.
2. It compiles the pattern unchanged, wrapped as ``^(?:re)$``, with RE2 C++ (the
   ``google-re2`` package) and matches with it. RE2 C++ and Go's ``regexp`` share their
   syntax and semantics: leftmost-first (Perl) submatches, ``(?U)``, ASCII-only ``\d \s \w
   \b``, Unicode ``\pN``/``\p{Greek}`` classes, simple case folding under ``(?i)``, ``$``
   only at the end of the text unless ``(?m)``, repeat counts up to 1000 (nested counts
   multiplied), ``{,n}`` and ``{01}`` as literal text, repeated and digit-first capture
   names (the leftmost one is the name's group, like Go's ``SubexpIndex``, and ``$name``
   expands the leftmost one that took part, like Go's ``Expand``).

Known differences left, none of which ordinary label values meet: RE2 C++'s Unicode tables
are newer than Go 1.19's (Unicode 13.0), so code points assigned since then may fall in a
``\p`` class or fold under ``(?i)`` where Go's would not; a pattern whose compiled program
exceeds `_MAX_MEM` (e.g. ``[\pL\pN]{1000}[\pL\pN]{1000}``) is rejected as "expression too
large" where Go 1.19's limits differ.

A call into RE2 costs about 0.5 µs, three to five times a small Python `re` match, so
`Regexp.matches` (label matchers over every value of a label, relabel keep/drop) first
answers a literal, ``lit.*``, ``.*lit`` or ``.*lit.*`` with string methods, and rejects a value
that lacks the prefix every match must begin with (from RE2's ``PossibleMatchRange``).

Subjects are Python strings in which a byte that is not UTF-8 is a lone surrogate
(``surrogateescape``); Go reads each such byte as U+FFFD, and so does `Regexp` (groups still
hold the original text).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final, Protocol, cast

import re2 as _google_re2
from re2 import _re2

__all__ = ["Match", "Regexp", "UNICODE_CLASS_NAMES", "compile_re2"]

#: Go's ``unicode.Categories`` (plus ``Any``): the names ``\p`` accepts besides scripts.
_CATEGORIES: Final = frozenset(
    "Any C Cc Cf Co Cs L Ll Lm Lo Lt Lu M Mc Me Mn N Nd Nl No P Pc Pd Pe Pf Pi Po Ps "
    "S Sc Sk Sm So Z Zl Zp Zs".split()
)
#: Go 1.19's ``unicode.Scripts`` (Unicode 13.0). RE2 C++ knows newer ones, which Go rejects.
_SCRIPTS: Final = frozenset(
    """Adlam Ahom Anatolian_Hieroglyphs Arabic Armenian Avestan Balinese Bamum Bassa_Vah Batak
    Bengali Bhaiksuki Bopomofo Brahmi Braille Buginese Buhid Canadian_Aboriginal Carian
    Caucasian_Albanian Chakma Cham Cherokee Chorasmian Common Coptic Cuneiform Cypriot
    Cyrillic Deseret Devanagari Dives_Akuru Dogra Duployan Egyptian_Hieroglyphs Elbasan
    Elymaic Ethiopic Georgian Glagolitic Gothic Grantha Greek Gujarati Gunjala_Gondi
    Gurmukhi Han Hangul Hanifi_Rohingya Hanunoo Hatran Hebrew Hiragana Imperial_Aramaic
    Inherited Inscriptional_Pahlavi Inscriptional_Parthian Javanese Kaithi Kannada Katakana
    Kayah_Li Kharoshthi Khitan_Small_Script Khmer Khojki Khudawadi Lao Latin Lepcha Limbu
    Linear_A Linear_B Lisu Lycian Lydian Mahajani Makasar Malayalam Mandaic Manichaean
    Marchen Masaram_Gondi Medefaidrin Meetei_Mayek Mende_Kikakui Meroitic_Cursive
    Meroitic_Hieroglyphs Miao Modi Mongolian Mro Multani Myanmar Nabataean Nandinagari
    New_Tai_Lue Newa Nko Nushu Nyiakeng_Puachue_Hmong Ogham Ol_Chiki Old_Hungarian
    Old_Italic Old_North_Arabian Old_Permic Old_Persian Old_Sogdian Old_South_Arabian
    Old_Turkic Oriya Osage Osmanya Pahawh_Hmong Palmyrene Pau_Cin_Hau Phags_Pa Phoenician
    Psalter_Pahlavi Rejang Runic Samaritan Saurashtra Sharada Shavian Siddham SignWriting
    Sinhala Sogdian Sora_Sompeng Soyombo Sundanese Syloti_Nagri Syriac Tagalog Tagbanwa
    Tai_Le Tai_Tham Tai_Viet Takri Tamil Tangut Telugu Thaana Thai Tibetan Tifinagh Tirhuta
    Ugaritic Vai Wancho Warang_Citi Yezidi Yi Zanabazar_Square""".split()
)
#: Every name ``\p{…}`` accepts in Go 1.19.
UNICODE_CLASS_NAMES: Final = _CATEGORIES | _SCRIPTS
_POSIX_CLASSES: Final = frozenset(
    "alnum alpha ascii blank cntrl digit graph lower print punct space upper word xdigit".split()
)
_MAX_RUNE = 0x10FFFF
_FLAG_GROUP = re.compile(r"\(\?([a-zA-Z]*)(?:(-)([a-zA-Z]*))?([:)])")
_HEX_BRACES = re.compile(r"\{([0-9A-Fa-f]+)\}")
_HEX_PAIR = re.compile(r"[0-9A-Fa-f]{2}")
_OCTAL = re.compile(r"0[0-7]{0,2}|[1-7][0-7]{1,2}")
#: An RE2 counted repetition (no leading zeros: ``{01}`` is literal text in RE2).
_REPEAT = re.compile(r"\{(0|[1-9][0-9]*)(?:(,)(0|[1-9][0-9]*)?)?\}")
_MAX_REPEAT = 1000
#: RE2's memory budget per compiled pattern (program plus its DFA caches). RE2's default,
#: 8 MiB, refuses patterns Go compiles, such as ``\pL{1000}`` (a 1.2 million instruction
#: program over UTF-8); memory is only taken as a pattern needs it.
_MAX_MEM = 32 << 20
#: RE2 C++ error wordings and Go's for the same error (``regexp/syntax`` error codes).
_GO_WORDING = {
    "invalid repetition size": "invalid repeat count",
    "pattern too large - compile failed": "expression too large",
    "bad repetition operator": "invalid nested repetition operator",
}
_SURROGATE = re.compile("[\ud800-\udfff]")
#: A pattern that is a literal, optionally between ``.*``: ``foo``, ``foo.*``, ``.*:9100``,
#: ``.*\.example\.com.*``. Such patterns are matched with string methods (Prometheus's
#: ``FastRegexMatcher`` does the same); a newline or U+FFFD is never part of the literal, so
#: ``.`` matching anything but a newline (including what Go reads as U+FFFD) is all the
#: ``.*`` parts need.
_LITERAL_FORM = re.compile(r"(\.\*)?((?:[^\\.+*?()|\[\]{}^$\n\ufffd]|\\[!-/:-@\[-`{-~])*)(\.\*)?")
_ESCAPED_PUNCT = re.compile(r"\\([!-/:-@\[-`{-~])")
#: Literals joined by ``|``, optionally in one group: what Grafana sends for a multi-value
#: variable (``instance=~"(a:9100|b:9100)"``), answered by set membership.
_LITERAL_ALTERNATION = re.compile(
    r"(\()?((?:[^\\.+*?()|\[\]{}^$\n\ufffd]|\\[!-/:-@\[-`{-~])*"
    r"(?:\|(?:[^\\.+*?()|\[\]{}^$\n\ufffd]|\\[!-/:-@\[-`{-~])*)+)(?(1)\))"
)
#: How many bytes of RE2's bounds on a pattern's matches to ask for (`_required_prefix`).
_PREFIX_BOUND = 64


class _Program(Protocol):
    """The part of ``re2._re2.RE2`` (the C++ ``RE2`` object) used here."""

    def Match(self, anchor: object, text: bytes, pos: int, endpos: int) -> list[tuple[int, int]]: ...  # noqa: N802
    def NumberOfCapturingGroups(self) -> int: ...  # noqa: N802
    def ok(self) -> bool: ...
    def error(self) -> bytes: ...
    def PossibleMatchRange(self, maxlen: int) -> tuple[bool, bytes, bytes]: ...  # noqa: N802


_UNANCHORED: Final[object] = _re2.RE2.Anchor.UNANCHORED


def _program(text: str, capture: bool) -> _Program:
    """`text` compiled by RE2 C++ with Go's Perl-like defaults (``.`` excludes ``\\n``,
    leftmost-first, case-sensitive, UTF-8). Raises ValueError with RE2's reason."""
    options = _google_re2.Options()
    options.max_mem = _MAX_MEM
    options.log_errors = False
    options.never_capture = not capture
    prog = cast(_Program, _re2.RE2(text.encode("utf-8"), options))
    if not prog.ok():
        why = prog.error().decode("utf-8", "replace")
        for theirs, ours in _GO_WORDING.items():
            why = why.replace(theirs, ours)
        raise ValueError(why)
    return prog


def compile_re2(pattern: str, *, standalone: bool = True) -> Regexp:
    """Compile an RE2 pattern to match as Go's ``regexp.Compile("^(?:" + pattern + ")$")``.

    With `standalone` (label matchers, as Prometheus 2.42 also parses the pattern alone),
    `pattern` must be a regular expression on its own. Without it (relabel regexes and
    ``label_replace``, which Prometheus only compiles wrapped), it need only be one once
    wrapped: ``a)|(b`` is then accepted and finds an ``a`` at the start or a ``b`` at the end.
    Raises ValueError (Go's reason, e.g. an unknown ``\\p{Foo}`` is "invalid character class
    range") for patterns Prometheus rejects.
    """
    try:
        names = _Validator(pattern).run()
    except ValueError:
        if standalone:
            raise
        try:
            names = _Validator("^(?:" + pattern + ")$").run()
        except ValueError:
            pass
        else:
            return Regexp(pattern, names, standalone=False)
        raise
    return Regexp(pattern, names, standalone=True)


class Regexp:
    """A validated RE2 pattern, matched as ``^(?:pattern)$`` in time linear in the subject.

    Thread-safe: RE2 programs are immutable once compiled; the boolean program is made on
    first use and a race only compiles it twice.
    """

    __slots__ = ("pattern", "groups", "group_names", "groupindex", "_prog", "_test", "_literal",
                 "_any_before", "_any_after", "_prefix", "_alternatives")

    def __init__(self, pattern: str, group_names: list[str], *, standalone: bool) -> None:
        """`group_names` holds each capture group's name (``""`` if it has none), in order;
        `standalone` says `pattern` is a regex on its own, so every match starts at 0."""
        #: The pattern as written (not wrapped).
        self.pattern = pattern
        wrapped = "^(?:" + pattern + ")$"
        try:
            self._prog = _program(wrapped, capture=True)
        except ValueError as exc:
            raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
        #: The number of capture groups.
        self.groups = self._prog.NumberOfCapturingGroups()
        assert self.groups == len(group_names), (pattern, group_names)
        #: The name of each group, 1 to `groups` (``""``: none), at index group - 1.
        self.group_names = tuple(group_names)
        index: dict[str, int] = {}
        for i, name in enumerate(group_names, 1):
            if name:
                index.setdefault(name, i)
        #: Each capture name and its leftmost group (Go's ``SubexpIndex``).
        self.groupindex: Mapping[str, int] = index
        self._test: _Program | None = None if self.groups else self._prog
        self._literal: str | None = None
        self._any_before = self._any_after = False
        self._prefix = ""
        self._alternatives: frozenset[str] | None = None
        form = _LITERAL_FORM.fullmatch(pattern) if standalone else None
        alternation = _LITERAL_ALTERNATION.fullmatch(pattern) if standalone else None
        if form is not None:
            self._literal = _ESCAPED_PUNCT.sub(r"\1", form.group(2))
            self._any_before, self._any_after = form.group(1) is not None, form.group(3) is not None
        elif alternation is not None:
            self._alternatives = frozenset(
                _ESCAPED_PUNCT.sub(r"\1", alt) for alt in _split_alternatives(alternation.group(2))
            )
        elif standalone:
            self._prefix = _required_prefix(self._prog)

    def __repr__(self) -> str:
        return f"Regexp({self.pattern!r})"

    def matches(self, value: str) -> bool:
        """Whether ``^(?:pattern)$`` matches `value` (Go's ``MatchString``)."""
        literal = self._literal
        if literal is not None:
            if not (self._any_before or self._any_after):
                return value == literal
            if "\n" in value:
                return False
            if self._any_before and self._any_after:
                return literal in value
            return value.endswith(literal) if self._any_before else value.startswith(literal)
        if self._alternatives is not None:
            return value in self._alternatives
        if not value.startswith(self._prefix):
            return False
        test = self._test
        if test is None:
            test = self._test = _program("^(?:" + self.pattern + ")$", capture=False)
        text = _subject(value)
        return test.Match(_UNANCHORED, text, 0, len(text))[0][0] >= 0

    def match(self, value: str) -> Match | None:
        """The leftmost-first match of ``^(?:pattern)$`` in `value`, with its groups (Go's
        ``FindStringSubmatchIndex``); for a standalone pattern, all of `value` or None."""
        text = _subject(value)
        spans = self._prog.Match(_UNANCHORED, text, 0, len(text))
        if spans[0][0] < 0:
            return None
        if not value.isascii():
            spans = [_char_span(text, s) for s in spans]
        return Match(self, value, spans)


def _split_alternatives(text: str) -> list[str]:
    """`text` (literals with escaped punctuation) cut at each ``|`` that is not escaped."""
    out: list[str] = []
    start = i = 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == "|":
            out.append(text[start:i])
            start = i + 1
        i += 1
    out.append(text[start:])
    return out


def _required_prefix(prog: _Program) -> str:
    """Text every match of `prog` (anchored at the start) begins with, from RE2's bounds on
    what it can match: whatever lies between two strings shares their common prefix. Cut
    before any U+FFFD, which a lone surrogate in a subject also stands for."""
    ok, low, high = prog.PossibleMatchRange(_PREFIX_BOUND)
    if not ok:
        return ""
    same = 0
    while same < min(len(low), len(high)) and low[same] == high[same]:
        same += 1
    common = low[:same]
    for cut in range(4):  # a UTF-8 character is at most 4 bytes: drop a partial last one
        try:
            text = common[: len(common) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return text.partition("\ufffd")[0]
    return ""


def _subject(value: str) -> bytes:
    """`value` as the UTF-8 bytes RE2 reads, each lone surrogate (a byte that was not
    UTF-8) as U+FFFD, as Go reads such a byte; character offsets are kept."""
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", value).encode("utf-8")


def _char_span(text: bytes, span: tuple[int, int]) -> tuple[int, int]:
    """A byte span of `text` as a character span (RE2 spans fall on character bounds)."""
    start, end = span
    if start < 0:
        return span
    first = len(text[:start].decode("utf-8"))
    return first, first + len(text[start:end].decode("utf-8"))


class Match:
    """One match of a `Regexp`: its groups as slices of the subject."""

    __slots__ = ("re", "string", "_spans")

    def __init__(self, regexp: Regexp, string: str, spans: list[tuple[int, int]]) -> None:
        self.re = regexp
        self.string = string
        self._spans = spans

    def __repr__(self) -> str:
        return f"<Match {self.re.pattern!r} {self.group()!r}>"

    def span(self, group: int = 0) -> tuple[int, int]:
        """Character offsets of `group` in the subject; ``(-1, -1)`` if it took no part."""
        return self._spans[group]

    def start(self, group: int = 0) -> int:
        return self._spans[group][0]

    def end(self, group: int = 0) -> int:
        return self._spans[group][1]

    def group(self, group: int = 0) -> str | None:
        """The text of `group` (0: the whole match), or None if it took no part."""
        start, end = self._spans[group]
        return None if start < 0 else self.string[start:end]

    def groups(self) -> tuple[str | None, ...]:
        return tuple(self.group(i) for i in range(1, len(self._spans)))

    def groupdict(self) -> dict[str, str | None]:
        """Each capture name and the text of its leftmost group that took part, else None."""
        return {name: self._named(name) for name in self.re.groupindex}

    def _named(self, name: str) -> str | None:
        """Go's ``Expand`` of ``$name``: the leftmost group so named that took part."""
        for i, group_name in enumerate(self.re.group_names, 1):
            if group_name == name and self._spans[i][0] >= 0:
                return self.group(i)
        return None

    def expand(self, template: str) -> str:
        """Go's ``Regexp.ExpandString``: ``$n``/``${n}`` and ``$name``/``${name}`` become the
        group's text (empty if the group does not exist or took no part), ``$$`` a ``$``; a
        name is the longest run of letters, digits and ``_`` (so ``$1_x`` names a group
        ``1_x``), and a malformed reference (``$`` before no name, ``${x`` without ``}``) is
        kept as text."""
        out: list[str] = []
        i, n = 0, len(template)
        while True:
            j = template.find("$", i)
            if j < 0:
                out.append(template[i:])
                return "".join(out)
            out.append(template[i:j])
            i = j + 1
            if i < n and template[i] == "$":
                out.append("$")
                i += 1
                continue
            name, end = _reference(template, i)
            if name is None:
                out.append("$")
                continue
            i = end
            if name.isascii() and name.isdigit() and not (len(name) > 1 and name[0] == "0"):
                # A number (no leading zero, at most 9 digits) is the group of that number.
                num = int(name) if len(name) <= 9 else -1
                if 0 <= num <= self.re.groups:
                    out.append(self.group(num) or "")
            else:
                out.append(self._named(name) or "")


def _reference(template: str, i: int) -> tuple[str | None, int]:
    """Go's ``extract``: the name after a ``$`` at `i` and where the reference ends."""
    brace = i < len(template) and template[i] == "{"
    start = i + 1 if brace else i
    k = start
    # Go: unicode.IsLetter, unicode.IsDigit (Nd) or '_'.
    while k < len(template) and (template[k] == "_" or template[k].isalpha() or template[k].isdecimal()):
        k += 1
    if k == start:
        return None, i
    name = template[start:k]
    if brace:
        if k >= len(template) or template[k] != "}":
            return None, i
        k += 1
    return name, k


class _Validator:
    """Walks an RE2 pattern as Go 1.19's parser reads it, raising ValueError with Go's
    reason at the first thing Go rejects; it builds nothing."""

    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0
        self.depth = 0
        self.names: list[str] = []

    def fail(self, why: str) -> ValueError:
        return ValueError(f"invalid regular expression {self.p!r}: {why} at position {self.i}")

    def run(self) -> list[str]:
        """Check the pattern; return the name of each capture group (``""``: none)."""
        p = self.p
        if bad := _SURROGATE.search(p):
            self.i = bad.start()
            raise self.fail("invalid UTF-8")
        while self.i < len(p):
            c = p[self.i]
            if c == "\\":
                self.escape()
            elif c == "[":
                self.char_class()
            elif c == "(":
                self.open_group()
            elif c == ")":
                if self.depth == 0:
                    raise self.fail("unexpected )")
                self.depth -= 1
                self.i += 1
            elif c in "*+?":
                self.repeat(1)
            elif c == "{" and (m := _REPEAT.match(p, self.i)):
                lo, hi = m.group(1), m.group(3)
                if int(lo) > _MAX_REPEAT or (hi is not None and (int(hi) > _MAX_REPEAT or int(hi) < int(lo))):
                    raise self.fail(f"invalid repeat count {m.group()}")
                self.repeat(len(m.group()))
            else:
                self.i += 1
        if self.depth:
            raise self.fail("missing )")
        return self.names

    def repeat(self, length: int) -> None:
        """A repetition operator `length` characters long at `i`, with its optional ``?``;
        Go rejects another repetition right after it."""
        p = self.p
        self.i += length
        if p.startswith("?", self.i):
            self.i += 1
        if self.i < len(p) and (p[self.i] in "*+?" or _REPEAT.match(p, self.i)):
            raise self.fail(f"invalid nested repetition operator {p[self.i]!r}")

    def open_group(self) -> None:
        p, i = self.p, self.i
        if not p.startswith("(?", i):
            self.depth += 1
            self.names.append("")
            self.i += 1
            return
        if p.startswith("(?P<", i):
            close = p.find(">", i)
            name = p[i + 4 : close]
            if close < 0 or not name or not all(ch == "_" or (ch.isascii() and ch.isalnum()) for ch in name):
                raise self.fail(f"invalid named capture {p[i : close + 1 if close >= 0 else len(p)]!r}")
            self.depth += 1
            self.names.append(name)
            self.i = close + 1
            return
        m = _FLAG_GROUP.match(p, i)
        if not m:
            raise self.fail(f"invalid or unsupported Perl syntax {p[i : i + 3]!r}")
        on, minus, off, end = m.group(1), m.group(2), m.group(3) or "", m.group(4)
        if set(on + off) - set("imsU") or (minus and not off):
            raise self.fail(f"invalid or unsupported Perl syntax {m.group()!r}")
        if end == ":":
            self.depth += 1
        self.i = m.end()

    def escape(self) -> None:
        """An escape outside brackets: a class, an assertion, ``\\Q…\\E`` or one character."""
        p, i = self.p, self.i
        c = p[i + 1] if i + 1 < len(p) else ""
        if c and c in "dDsSwWpP":
            self.class_escape()
        elif c == "Q":  # literal text up to \E
            end = p.find("\\E", i + 2)
            if end < 0:  # Prometheus wraps the pattern: the literal swallows its ")$"
                raise self.fail("missing closing ) after \\Q")
            self.i = end + 2
        elif c in ("z", "A", "b", "B"):
            self.i = i + 2
        else:
            self.escape_char()

    def class_escape(self) -> None:
        """``\\d \\D \\s \\S \\w \\W \\p \\P``."""
        c = self.p[self.i + 1]
        self.i += 2
        if c in "pP":
            self.unicode_class()

    def escape_char(self) -> int:
        """The code point of a one-character escape at `i` (RE2's ``\\a \\f \\t \\n \\r \\v``,
        octal, ``\\xHH``, ``\\x{H…}`` and escaped punctuation)."""
        p, i = self.p, self.i
        if i + 1 >= len(p):
            raise self.fail("trailing backslash")
        c = p[i + 1]
        self.i = i + 2
        simple = {"a": 7, "f": 12, "t": 9, "n": 10, "r": 13, "v": 11}
        if c in simple:
            return simple[c]
        if c == "x":
            if m := _HEX_BRACES.match(p, self.i):
                self.i = m.end()
                cp = int(m.group(1), 16)
                if cp > _MAX_RUNE:
                    raise self.fail(f"escape sequence out of range ({cp:#x})")
                return cp
            if _HEX_PAIR.match(p, self.i):
                self.i += 2
                return int(p[self.i - 2 : self.i], 16)
            raise self.fail("invalid escape sequence \\x")
        if c.isdigit():
            m = _OCTAL.match(p, i + 1)
            if not m:
                raise self.fail(f"invalid escape sequence \\{c} (backreferences are not RE2)")
            self.i = m.end()
            return int(m.group(), 8)
        if c.isascii() and not c.isalnum():
            return ord(c)
        raise self.fail(f"invalid escape sequence \\{c}")

    def unicode_class(self) -> None:
        """``\\pX``, ``\\p{Name}`` or ``\\p{^Name}`` after the ``\\p`` or ``\\P`` just read."""
        p, start = self.p, self.i - 2
        if self.i >= len(p):
            raise self.fail("invalid character class range \\p")
        if p[self.i] == "{":
            end = p.find("}", self.i)
            if end < 0:
                raise self.fail(f"invalid character class range {p[start:]}")
            name = p[self.i + 1 : end]
            self.i = end + 1
        else:
            name = p[self.i]
            self.i += 1
        if name.removeprefix("^") not in UNICODE_CLASS_NAMES:
            raise self.fail(f"invalid character class range {p[start : self.i]}")

    def char_class(self) -> None:
        """A bracketed class (``[``, ``&&``, ``~~``, ``||`` and ``--`` are literals in it, and
        so is a ``-`` after a class such as ``\\pZ``)."""
        p = self.p
        self.i += 1
        if self.i < len(p) and p[self.i] == "^":
            self.i += 1
        first = True
        while True:
            if self.i >= len(p):
                raise self.fail("missing closing ]")
            c = p[self.i]
            if c == "]" and not first:
                self.i += 1
                return
            first = False
            if c == "[" and p.startswith("[:", self.i) and (end := p.find(":]", self.i + 2)) > 0:
                name = p[self.i + 2 : end]
                if name.removeprefix("^") not in _POSIX_CLASSES:
                    raise self.fail(f"invalid character class range [:{name}:]")
                self.i = end + 2
                continue
            if c == "\\" and self.i + 1 < len(p) and p[self.i + 1] in "dDsSwWpP":
                self.class_escape()
                continue
            lo = self.class_char()
            if p.startswith("-", self.i) and self.i + 1 < len(p) and p[self.i + 1] != "]":
                self.i += 1
                hi = self.class_char()
                if hi < lo:
                    raise self.fail(f"invalid character class range {chr(lo)}-{chr(hi)}")

    def class_char(self) -> int:
        c = self.p[self.i]
        if c == "\\":
            return self.escape_char()
        self.i += 1
        return ord(c)
