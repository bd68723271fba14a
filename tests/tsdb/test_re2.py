"""`vigilops.tsdb.re2`: Go's RE2 syntax checked, matched by RE2 C++ in linear time.

The matching semantics (anchoring, classes, flags) are tabled in test_model.py through
`Matcher`; this file covers what is particular to the engine: no pattern can make a match
take more than linear time, the literal fast paths agree with RE2, subjects with bytes that
were not UTF-8, capture spans over non-ASCII text, and the patterns Go and RE2 C++ disagree on.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigilops.tsdb.model import Matcher, MatchType
from vigilops.tsdb.re2 import compile_re2

#: Patterns that make a backtracking engine take time exponential in the subject's length.
CATASTROPHIC = ["(a+)+b", "(x+x+)+y", "(a|aa)+b", "(a*)*b", "(.*a){20}b", "(\\w+\\s?)+!"]


@pytest.mark.parametrize("pattern", CATASTROPHIC)
def test_catastrophic_patterns_finish_on_long_values(pattern: str) -> None:
    # A backtracking engine never finishes on 5000 characters: Python's `re` takes 0.9 s on
    # 24 of them for "(a+)+b", and four times as long for every two more.
    value = ("x" if "x" in pattern else "a") * 5000 + "c"
    assert not Matcher(MatchType.REGEX, "foo", pattern).matches(value)
    assert Matcher(MatchType.NOT_REGEX, "foo", pattern).matches(value)
    assert compile_re2(pattern).match(value) is None


def test_catastrophic_pattern_still_matches_what_it_should() -> None:
    assert compile_re2("(a+)+b").match("a" * 5000 + "b").groups() == ("a" * 5000,)  # type: ignore[union-attr]


#: Patterns `Regexp.matches` answers with string methods, or after a required prefix.
FAST_PATH_PATTERNS = [
    "", "foo", ".*", ".*.*", "foo.*", ".*foo", ".*foo.*", r"10\.0\.0\.1:9100",
    r".*\.example\.com", "a b-c/d:e", "é.*", ".*\\$x.*",
    "fo(o|x).*", "f[o-p]+", "é(a|\n)", r"\x{fffd}foo", r"x\x{fffd}", "(?i)FOO", "(a+)+b",
    # Alternations of literals (Grafana's multi-value variables), answered by a set lookup.
    "foo|fo", "(foo|xfoo|)", r"10\.0\.0\.1:9100|www\.example\.com", r"a\|b|foo", r"(a\\|b)",
]
VALUES = ["", "foo", "xfoo", "foox", "xfooy", "fo", "foo\n", "\nfoo", "a\nfoo", "f\noo",
          "10.0.0.1:9100", "10x0.0.1:9100", "www.example.com", "a b-c/d:e", "éa", "é\n", "$x",
          "ab$xy", "\udc80foo", "foo\udcff", "x\udc80", "\ufffdfoo", "aab", "fpp", "a|b", "a\\",
          "b"]


@pytest.mark.parametrize("pattern", FAST_PATH_PATTERNS)
def test_fast_paths_agree_with_re2(pattern: str) -> None:
    regexp = compile_re2(pattern)
    for value in VALUES:
        assert regexp.matches(value) is (regexp.match(value) is not None), value


@given(st.text(alphabet="fo.*\\\n\udc80x", max_size=6), st.text(alphabet="fo.\n\udc80x", max_size=8))
def test_boolean_and_capturing_matches_agree(pattern: str, value: str) -> None:
    try:
        regexp = compile_re2(pattern)
    except ValueError:
        return
    assert regexp.matches(value) is (regexp.match(value) is not None)


def test_bytes_that_were_not_utf8_match_as_u_fffd_and_keep_their_text() -> None:
    # Go reads each invalid byte as utf8.RuneError; Python keeps it as a lone surrogate.
    m = compile_re2("(.)x(\\x{fffd})").match("\udc80x\udcff")
    assert m is not None and m.groups() == ("\udc80", "\udcff")
    assert compile_re2(".+").matches("a\udc80b")
    assert not compile_re2("[^\\x{fffd}]").matches("\udc80")


def test_spans_are_character_offsets_over_non_ascii_text() -> None:
    m = compile_re2("(é+)(?P<rest>.)(x)?").match("ééé号")
    assert m is not None
    assert m.groups() == ("ééé", "号", None)
    assert m.span(2) == (3, 4) and m.span(3) == (-1, -1)
    assert m.groupdict() == {"rest": "号"}
    assert m.expand("$2-${1}-$3-$rest") == "号-ééé--号"


def test_a_pattern_valid_only_once_wrapped() -> None:
    # Relabel regexes and label_replace: Prometheus only compiles "^(?:" + re + ")$".
    with pytest.raises(ValueError, match="unexpected \\)"):
        compile_re2("a)|(b")
    regexp = compile_re2("a)|(b", standalone=False)
    assert regexp.match("axx") is not None and regexp.match("axx").group() == "a"  # type: ignore[union-attr]
    assert regexp.match("xxb").groups() == ("b",)  # type: ignore[union-attr]
    assert regexp.match("xx") is None and not regexp.matches("xx")
    with pytest.raises(ValueError, match="missing \\)"):
        compile_re2("(a", standalone=False)


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        # RE2 C++ accepts these; Go 1.19 does not.
        (r"\C", "invalid escape"),
        ("(?<n>x)", "unsupported Perl syntax"),
        (r"\p{Kawi}", "invalid character class range"),  # a script new in Unicode 15
        ("(?P<é>x)", "invalid named capture"),
        ("a\udc80", "invalid UTF-8"),
        # Both reject these; RE2's wording is replaced by Go's.
        ("(a{100}){100}", "invalid repeat count"),
        ("((a{10}){10}){11}", "invalid repeat count"),
    ],
)
def test_what_go_rejects_is_rejected(pattern: str, reason: str) -> None:
    for standalone in (True, False):
        with pytest.raises(ValueError, match=f"invalid regular expression.*{reason}"):
            compile_re2(pattern, standalone=standalone)


@pytest.mark.parametrize(
    ("pattern", "value"),
    [
        ("(a{10}){100}", "a" * 1000),  # nested counts multiplied: 1000 is the limit
        ("\\pL{1000}", "é" * 1000),  # needs more than RE2's default 8 MiB budget
        ("^*a$+", "a"),  # repeated empty-width assertions
        ("a\x00b", "a\x00b"),
    ],
)
def test_what_go_accepts_is_accepted(pattern: str, value: str) -> None:
    assert compile_re2(pattern).matches(value)


@given(st.text(alphabet="()?P<n>:i-a\\Q[E]|*{1}", max_size=12))
def test_group_names_are_counted_as_re2_counts_groups(pattern: str) -> None:
    # Regexp checks that its own count of capture groups (for their names) is RE2's.
    for standalone in (True, False):
        try:
            regexp = compile_re2(pattern, standalone=standalone)
        except ValueError:
            continue
        assert len(regexp.group_names) == regexp.groups
