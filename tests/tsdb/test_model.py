"""Label sets, matchers, selectors and stale markers behave exactly as in Prometheus.

Matcher semantics follow Prometheus 2.x (the version DESIGN.md compares against): regular
expressions use RE2 syntax and are fully anchored as ``^(?:re)$``; a matcher on a missing label
sees the empty string (docs/querying/basics.md, "Instant vector selectors").
"""

from __future__ import annotations

import random
import struct
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigilops.tsdb.model import (
    METRIC_NAME,
    STALE_NAN,
    STALE_NAN_BITS,
    Labels,
    Matcher,
    MatchType,
    escape_label_value,
    go_quote,
    is_stale,
    matches_all,
    parse_selector,
    stale_mask,
    valid_label_name,
)
from vigilops.tsdb.re2 import compile_re2

EQ, NEQ, RE, NRE = MatchType.EQUAL, MatchType.NOT_EQUAL, MatchType.REGEX, MatchType.NOT_REGEX

label_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,6}", fullmatch=True)
label_values = st.text(max_size=8)
label_dicts = st.dictionaries(label_names, label_values, max_size=6)


def fresh(s: str) -> str:
    """An equal string that is not the same object (defeats CPython's constant sharing)."""
    return "".join(list(s))


# --- Labels ----------------------------------------------------------------------------------


@given(label_dicts, st.randoms())
def test_labels_are_sorted_and_independent_of_input_order(
    d: dict[str, str], rnd: random.Random
) -> None:
    items = list(d.items())
    rnd.shuffle(items)
    ls = Labels(items)
    kept = {k: v for k, v in d.items() if v}
    assert ls == Labels(d) and hash(ls) == hash(Labels(d))
    assert ls.names() == sorted(kept)
    assert ls.to_dict() == kept
    assert list(ls) == [s for k in sorted(kept) for s in (k, kept[k])]
    assert list(ls.pairs()) == sorted(kept.items())


def test_labels_equality_and_hash() -> None:
    a = Labels({"job": "node", "instance": "h:9100"})
    b = Labels([("instance", "h:9100"), ("job", "node")])
    c = Labels({"job": "node", "instance": "h:9101"})
    assert a == b and hash(a) == hash(b)
    assert a != c
    assert len({a, b, c}) == 2
    assert {a: 1}[b] == 1
    assert Labels() == Labels({}) and str(Labels()) == "{}"


def test_empty_values_mean_absent() -> None:
    ls = Labels({"a": "", "b": "x"})
    assert ls == Labels({"b": "x"})
    assert ls.names() == ["b"]
    assert ls.get("a") == "" and ls.get("a", "default") == "default"
    assert ls.get("b") == "x"
    # An empty duplicate is simply absent, not a duplicate.
    assert Labels([("a", ""), ("a", "1")]) == Labels({"a": "1"})


def test_duplicate_label_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate label name 'a'"):
        Labels([("a", "1"), ("b", "2"), ("a", "3")])
    with pytest.raises(ValueError, match="duplicate"):
        Labels([("a", "1"), ("a", "1")])


def test_labels_strings_are_interned() -> None:
    a = Labels({fresh("instance"): fresh("host-1:9100")})
    b = Labels({fresh("instance"): fresh("host-1:9100")})
    assert a[0] is b[0] and a[1] is b[1]
    assert a[1] is sys.intern(fresh("host-1:9100"))
    c = Labels.from_flat([fresh("instance"), fresh("host-1:9100")])
    assert c == a and c[0] is a[0] and c[1] is a[1]


def test_labels_of_labels_is_the_same_set() -> None:
    a = Labels({"__name__": "up", "job": "x"})
    assert Labels(a) == a
    assert Labels(a) is a


def compare(a: Labels, b: Labels) -> int:
    """Prometheus's labels.Compare: label by label, name then value; a prefix sorts first."""
    for (an, av), (bn, bv) in zip(a.pairs(), b.pairs()):
        if an != bn:
            return -1 if an < bn else 1
        if av != bv:
            # Go compares UTF-8 bytes; for valid strings that is code point order.
            return -1 if av.encode() < bv.encode() else 1
    return len(a) - len(b)


@given(st.lists(label_dicts.map(Labels), max_size=8))
def test_labels_order_is_prometheus_compare(sets: list[Labels]) -> None:
    from functools import cmp_to_key

    assert sorted(sets) == sorted(sets, key=cmp_to_key(compare))


@pytest.mark.parametrize(
    "smaller, larger",
    [
        ({"a": "1"}, {"a": "2"}),
        ({"a": "1"}, {"a": "1", "b": "0"}),  # a prefix sorts first
        ({"a": "1", "b": "9"}, {"a": "2"}),
        ({"a": "9"}, {"b": "0"}),  # names before values
        ({"a": "Z"}, {"a": "a"}),  # byte order, not case-insensitive
        ({"a": "z"}, {"a": "é"}),
    ],
)
def test_labels_order_examples(smaller: dict[str, str], larger: dict[str, str]) -> None:
    assert Labels(smaller) < Labels(larger)
    assert compare(Labels(smaller), Labels(larger)) < 0


def test_labels_accessors() -> None:
    ls = Labels({METRIC_NAME: "up", "job": "node", "instance": "h"})
    assert ls.name == "up"
    assert Labels({"job": "x"}).name == ""
    assert ls.without(METRIC_NAME) == Labels({"job": "node", "instance": "h"})
    assert ls.without("job", "missing") == Labels({METRIC_NAME: "up", "instance": "h"})
    assert ls.without() == ls
    assert repr(Labels({"a": "b"})) == "Labels({'a': 'b'})"


@pytest.mark.parametrize(
    "labels, text",
    [
        ({METRIC_NAME: "up"}, "up"),
        ({}, "{}"),
        ({"job": "node"}, '{job="node"}'),
        ({METRIC_NAME: "up", "job": "node", "a": "1"}, 'up{a="1", job="node"}'),
        ({"v": 'say "hi"\\'}, r'{v="say \"hi\"\\"}'),
        ({"v": "a\nb\tc\rd"}, r'{v="a\nb\tc\rd"}'),
        ({"v": "\x00\x07\x1b\x7f"}, r'{v="\x00\a\x1b\x7f"}'),
        ({"v": "é 日本 ü"}, '{v="é 日本 ü"}'),  # printable non-ASCII stays as it is
        ({"v": "\u200b\u00a0\U000e0001"}, r'{v="\u200b\u00a0\U000e0001"}'),
    ],
)
def test_labels_str_is_prometheus_text_form(labels: dict[str, str], text: str) -> None:
    assert str(Labels(labels)) == text


@pytest.mark.parametrize(
    "value, quoted",
    [
        ("", '""'),
        ("plain", '"plain"'),
        ("\a\b\f\n\r\t\v", r'"\a\b\f\n\r\t\v"'),
        ("\x01", r'"\x01"'),
        ("\u0085", r'"\u0085"'),  # a C1 control
        ("\U0001f600", '"\U0001f600"'),  # printable astral
    ],
)
def test_go_quote(value: str, quoted: str) -> None:
    assert go_quote(value) == quoted


def test_escape_label_value_is_the_exposition_escape() -> None:
    assert escape_label_value('a\\b"c\nd\te') == 'a\\\\b\\"c\\nd\te'


@pytest.mark.parametrize(
    "name, ok",
    [
        ("job", True),
        ("_x9", True),
        ("__name__", True),
        ("9x", False),
        ("a-b", False),
        ("", False),
        ("a:b", False),  # colons are for metric names only
        ("é", False),
        ("a\n", False),
    ],
)
def test_valid_label_name(name: str, ok: bool) -> None:
    assert valid_label_name(name) is ok


# --- Matcher ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "type, pattern, value, expected",
    [
        (EQ, "node", "node", True),
        (EQ, "node", "nodes", False),
        (EQ, "", "", True),  # {foo=""} selects series without foo
        (EQ, "", "x", False),
        (NEQ, "", "x", True),  # {foo!=""} selects series that have foo
        (NEQ, "", "", False),
        (NEQ, "a", "", True),
        # Regular expressions are fully anchored.
        (RE, "foo", "foo", True),
        (RE, "foo", "foobar", False),
        (RE, "foo", "xfoo", False),
        (RE, "foo.*", "foobar", True),
        (RE, ".*bar", "foobar", True),
        # The anchors wrap the whole alternation, not its first and last branches.
        (RE, "a|b", "a", True),
        (RE, "a|b", "b", True),
        (RE, "a|b", "ab", False),
        (RE, "a|b", "xa", False),
        (RE, "a|b", "bx", False),
        (RE, "staging|testing|development", "testing", True),
        (RE, "staging|testing|development", "test", False),
        (RE, "^foo$", "foo", True),  # redundant anchors are harmless
        # .* matches the empty string, and so a missing label; .+ does not.
        (RE, ".*", "", True),
        (RE, ".+", "", False),
        (RE, "", "", True),
        (RE, "", "x", False),
        (RE, "a|", "", True),
        (RE, "foo|", "", True),
        # Negated regular expressions.
        (NRE, "a|b", "a", False),
        (NRE, "a|b", "ab", True),
        (NRE, ".*", "", False),
        (NRE, ".*", "x", False),
        (NRE, "", "x", True),
        (NRE, "", "", False),
        (NRE, "foo", "", True),
        # Prometheus 2.x: '.' does not match a newline unless the s flag is set.
        (RE, ".*", "a\nb", False),
        (RE, "(?s).*", "a\nb", True),
        (RE, "a(?s:.)b", "a\nb", True),
        (RE, "a\nb", "a\nb", True),
        # Flags: (?i) applies to the rest of its group, across alternatives.
        (RE, "(?i)foo", "FoO", True),
        (RE, "(?i)foo|bar", "BAR", True),
        (RE, "a(?i)b|c", "aB", True),
        (RE, "a(?i)b|c", "C", True),
        (RE, "a(?i)b|c", "AB", False),
        (RE, "(a(?i)b)c", "aBc", True),
        (RE, "(a(?i)b)c", "aBC", False),
        (RE, "(?i:a)b", "Ab", True),
        (RE, "(?i:a)b", "AB", False),
        (RE, "(?i)a(?-i)b", "Ab", True),
        (RE, "(?i)a(?-i)b", "AB", False),
        (RE, "(?m)^b$", "b", True),
        # RE2's classes are ASCII-only.
        (RE, r"\d+", "0123456789", True),
        (RE, r"\d", "٣", False),
        (RE, r"\w+", "a_Z9", True),
        (RE, r"\w", "é", False),
        (RE, r"\s", "\u00a0", False),
        (RE, r"\s", "\v", False),  # RE2's \s is [\t\n\f\r ]
        (RE, r"\D", "٣", True),
        (RE, r"[\d]", "5", True),
        (RE, r"[^\s]", "x", True),
        (RE, r"\bfoo\b", "foo", True),
        (RE, r"x\b.", "xé", True),  # é is not a word character in RE2
        (RE, r"x\B.", "xé", False),
        (RE, "[[:digit:]]+", "2024", True),
        (RE, "[[:alpha:]]+", "ab1", False),
        (RE, "[[:upper:][:digit:]]+", "A1", True),
        (RE, "[[:punct:]]", "[", True),
        (RE, "[[:xdigit:]]+", "deadBEEF", True),
        (RE, "[[:space:]]", "\v", True),
        # RE2 escapes Python reads differently.
        (RE, r"a\z", "a", True),
        (RE, r"\Qa.b\E", "a.b", True),
        (RE, r"\Qa.b\E", "axb", False),
        (RE, r"\Q(x)\E", "(x)", True),
        (RE, r"\x{e9}", "é", True),
        (RE, r"\x41", "A", True),
        (RE, r"\101", "A", True),
        (RE, r"\0", "\x00", True),
        (RE, "a{,2}", "a{,2}", True),  # not a repetition in RE2
        (RE, "a{2}", "aa", True),
        (RE, "a*?b", "aab", True),
        # Characters Python would read as nested sets or set operations are literals in RE2.
        (RE, "[a&&b]", "&", True),
        (RE, "[a~~b]", "~", True),
        (RE, "[a||b]", "|", True),
        (RE, "[[a]", "[", True),
        (RE, "[+--]", ",", True),
        (RE, "[]a]", "]", True),
        (RE, "[^]a]", "b", True),
        (RE, "[^]a]", "]", False),
        # A "-" after a class is a literal in RE2, not a range.
        (RE, r"[\d-z]+", "1-z", True),
        (RE, r"[\pZ-a]+", " -a", True),
        (RE, r"[\pZ-a]", "b", False),
        # Unicode classes: general categories (one or two letters), scripts, negations.
        (RE, r"\pL+", "kitchen", True),
        (RE, r"\pL+", "Küche", True),
        (RE, r"\pL", "1", False),
        (RE, r"\p{L}\p{Lu}\p{Ll}", "éÉé", True),
        (RE, r"\p{Lu}", "é", False),
        (RE, r"\PL+", "12 !", True),
        (RE, r"\PL", "x", False),
        (RE, r"\p{^L}", "x", False),
        (RE, r"\P{^L}", "x", True),
        (RE, r"[\p{L}\d]+", "ab12", True),
        (RE, r"[^\pL]", "x", False),
        (RE, r"\pN+", "١٢٣", True),  # \pN is Unicode, \d is not
        (RE, r"\p{Nd}", "Ⅻ", False),
        (RE, r"\p{Nl}", "Ⅻ", True),
        (RE, r"\pZ", "\u00a0", True),
        (RE, r"\pC", "\x7f", True),
        (RE, r"\pC", "\U000e0080", False),  # unassigned: not in C, as in Go
        (RE, r"\p{Any}+", "a\nb", True),
        (RE, r".*\p{Han}.*", "1号厨房", True),
        (RE, r"\p{Han}", "ひ", False),
        (RE, r"\p{Hiragana}+\p{Katakana}+", "ひらカタ", True),
        (RE, r"\p{Greek}+", "αβΓ", True),
        (RE, r"\p{Greek}", "a", False),
        (RE, r"\p{Cyrillic}+", "привет", True),
        (RE, r"\p{Latin}+", "ªé", True),
        (RE, r"\p{Common}+", "1 !", True),
        (RE, r"\p{Inherited}", "\u0301", True),
        (RE, r"(?i)\p{Lu}+", "ab", True),
        (RE, "[[:^alpha:]]+", "1 !é", True),
        (RE, "[[:^alpha:]]", "a", False),
        (RE, r"[\D]", "a", True),
        (RE, r"[\W]", "é", True),
        (RE, r"\x{10FFFF}", "\U0010ffff", True),
        (RE, "a{01}", "a{01}", True),  # leading zeros: not a repetition in RE2
        # Flags: (?U) swaps greedy and lazy (a fully anchored match is the same either
        # way); $ is the end of the text unless (?m).
        (RE, "(?U)k.*", "kitchen", True),
        (RE, "(?U)a*?", "aaa", True),
        (RE, "(?)a", "a", True),
        (RE, "a$\n", "a\n", False),
        (RE, "(?m)a$\n", "a\n", True),
        (RE, "^*a$+", "a", True),
        (RE, "(?P<name>x)", "x", True),
        (RE, "(?:a|b)+", "abba", True),
        (RE, "10\\.0\\.\\d+\\.\\d+:9100", "10.0.3.17:9100", True),
    ],
)
def test_matcher_semantics(type: MatchType, pattern: str, value: str, expected: bool) -> None:
    assert Matcher(type, "label", pattern).matches(value) is expected


@pytest.mark.parametrize(
    "pattern, reason",
    [
        ("(", "missing \\)"),
        ("a)", "unexpected \\)"),
        ("[a", "missing closing \\]"),
        ("a**", "nested repetition"),
        ("a++", "nested repetition"),  # Python would read a possessive quantifier
        ("*a", ""),
        ("(?=a)", "unsupported Perl syntax"),  # lookarounds are not RE2
        ("(?<!a)b", "unsupported Perl syntax"),
        ("(?#comment)", "unsupported Perl syntax"),
        ("(?P=name)", "unsupported Perl syntax"),
        ("(?x)a b", "unsupported Perl syntax"),
        ("(?-)", "unsupported Perl syntax"),
        (r"(a)\1", "backreferences"),
        (r"\8", "invalid escape"),
        (r"\e", "invalid escape"),
        (r"\Z", "invalid escape"),
        ("\\", "trailing backslash"),
        (r"\xZZ", "invalid escape"),
        (r"\x{110000}", "out of range"),
        ("[[:foo:]]", "invalid character class"),
        (r"[\b]", "invalid escape"),
        # Unicode classes RE2 does not know.
        (r"\p{Foo}", "invalid character class range \\\\p\\{Foo\\}"),
        (r"\pX", "invalid character class range"),
        (r"[\p{Greek]", "invalid character class range"),
        ("[[:^foo:]]", "invalid character class"),
        # Prometheus wraps the pattern as ^(?:re)$: an open \Q swallows the ")$".
        (r"\Q(x)", "missing closing \\)"),
        (r"[\Qa\E]", "invalid escape"),  # \Q is not read inside brackets
        (r"\C", "invalid escape"),
        ("(?<n>x)", "unsupported Perl syntax"),  # Go 1.19 knows only (?P<n>x)
        ("(?P<a-b>x)", "invalid named capture"),
        ("a{2}*", "nested repetition"),
        ("a*??", "nested repetition"),
        ("a{1001}", "invalid repeat count"),
        ("a{2,1}", "invalid repeat count"),
        ("[z-a]", "invalid character class range"),
    ],
)
def test_invalid_regular_expressions_raise_value_error(pattern: str, reason: str) -> None:
    for t in (RE, NRE):
        with pytest.raises(ValueError, match=f"invalid regular expression.*{reason}"):
            Matcher(t, "label", pattern)
    with pytest.raises(ValueError, match="invalid regular expression"):
        compile_re2(pattern)


def test_ungreedy_flag_swaps_greedy_and_lazy_in_its_scope() -> None:
    """What label_replace's capture groups see (checked against Prometheus 2.42)."""
    def groups(pattern: str, value: str) -> tuple[str | None, ...]:
        m = compile_re2(pattern).match(value)
        assert m is not None
        return m.groups()

    assert groups("(?U)(a+)(a*)", "aaa") == ("a", "aa")
    assert groups("(?U)(a+?)(a*)", "aaa") == ("aaa", "")
    assert groups("(?U:(a+))(a*)", "aaa") == ("a", "aa")
    assert groups("(a+)(?U)(a+)(a*)", "aaaa") == ("aaa", "a", "")
    assert groups("(?U)(a{1,3})(a*)", "aaa") == ("a", "aa")
    assert groups("(?U)(a??)(a*)", "aa") == ("a", "a")
    assert groups("((?U)a+)(a*)", "aaa") == ("a", "aa")
    assert groups("(?U)(?-U)(a+)(a*)", "aaa") == ("aaa", "")


def test_group_names_are_go_s_repeated_or_digit_first() -> None:
    """Go allows a name twice (the leftmost group is the name's in ``SubexpIndex``; ``$name``
    is the leftmost such group that took part) and names that start with a digit."""
    assert compile_re2("(?P<n>a)").match("a").groupdict() == {"n": "a"}  # type: ignore[union-attr]
    twice = compile_re2("(?P<1a>a)(?P<1a>b)")
    assert twice.match("ab").groups() == ("a", "b")  # type: ignore[union-attr]
    assert twice.groupindex == {"1a": 1}
    assert compile_re2("(?P<a>x)(?P<a>y)").match("xy").expand("$a ${a}$2") == "x xy"  # type: ignore[union-attr]
    later = compile_re2("(?P<a>x)?(?P<a>y)").match("y")
    assert later is not None and later.expand("[$a]") == "[y]" and later.groupdict() == {"a": "y"}


def quote_meta(s: str) -> str:
    """Go's regexp.QuoteMeta."""
    return "".join("\\" + c if c in "\\.+*?()|[]{}^$" else c for c in s)


@given(st.text(max_size=10), st.text(max_size=10))
def test_quoted_literal_matches_only_itself(literal: str, value: str) -> None:
    m = Matcher(RE, "x", quote_meta(literal))
    assert m.matches(value) is (value == literal)
    assert Matcher(NRE, "x", quote_meta(literal)).matches(value) is (value != literal)


@given(st.lists(st.text(max_size=5), min_size=1, max_size=4), st.text(max_size=5))
def test_alternation_of_literals_is_anchored_as_a_whole(alts: list[str], value: str) -> None:
    m = Matcher(RE, "x", "|".join(quote_meta(a) for a in alts))
    assert m.matches(value) is (value in alts)


@given(
    st.sampled_from(["a|b", ".*", ".+", "", "x.*y", "(?i)ab", "[0-9]+", r"\w+"]),
    st.text(max_size=6),
)
def test_negations_are_complements(pattern: str, value: str) -> None:
    assert Matcher(NRE, "l", pattern).matches(value) is not Matcher(RE, "l", pattern).matches(value)
    assert Matcher(NEQ, "l", pattern).matches(value) is not Matcher(EQ, "l", pattern).matches(value)


def test_prometheus_docs_examples() -> None:
    # docs/querying/basics.md: an empty-value matcher selects series lacking the label.
    dataset = [
        Labels({METRIC_NAME: "http_requests_total"}),
        Labels({METRIC_NAME: "http_requests_total", "replica": "rep-a"}),
        Labels({METRIC_NAME: "http_requests_total", "replica": "rep-b"}),
        Labels({METRIC_NAME: "http_requests_total", "environment": "development"}),
    ]

    def select(text: str) -> list[Labels]:
        ms = parse_selector(text)
        return [ls for ls in dataset if matches_all(ls, ms)]

    assert select('http_requests_total{environment=""}') == dataset[:3]
    assert select('http_requests_total{replica!="rep-a",replica=~"rep.*"}') == [dataset[2]]
    assert select('{__name__=~"http_.*"}') == dataset
    assert select('{__name__=~"http"}') == []
    assert select("http_requests_total") == dataset
    assert select('{replica=~".+"}') == dataset[1:3]
    assert select('{job=~".*",environment="development"}') == [dataset[3]]


def test_matches_empty_and_literal_alternatives() -> None:
    assert Matcher(EQ, "a", "").matches_empty()
    assert not Matcher(EQ, "a", "x").matches_empty()
    assert Matcher(NEQ, "a", "x").matches_empty()
    assert Matcher(RE, "a", "x|").matches_empty()
    assert not Matcher(NRE, "a", "").matches_empty()
    assert Matcher(RE, "a", "x|y|z_1").literal_alternatives() == ["x", "y", "z_1"]
    assert Matcher(RE, "a", "node").literal_alternatives() == ["node"]
    for pattern in ("x|", "x.y|z", "(?i)x", "x|y*", ""):
        assert Matcher(RE, "a", pattern).literal_alternatives() is None
    assert Matcher(EQ, "a", "x").literal_alternatives() is None
    assert Matcher(NRE, "a", "x|y").literal_alternatives() is None


def test_matcher_identity_and_repr() -> None:
    a = Matcher(RE, "job", "a|b")
    assert a == Matcher.parse_op("=~", "job", "a|b")
    assert hash(a) == hash(Matcher(RE, "job", "a|b"))
    assert a != Matcher(NRE, "job", "a|b") and a != Matcher(RE, "job", "a")
    assert a != "job=~a|b"
    assert repr(a) == 'job=~"a|b"'
    assert repr(Matcher(NEQ, "v", 'q"\n\\')) == r'v!="q\"\n\\"'
    with pytest.raises(ValueError):
        Matcher.parse_op("==", "job", "x")


def test_matches_all_uses_empty_for_missing_labels() -> None:
    ls = Labels({METRIC_NAME: "up", "job": "node"})
    assert matches_all(ls, [Matcher(EQ, "instance", ""), Matcher(EQ, "job", "node")])
    assert not matches_all(ls, [Matcher(NEQ, "instance", "")])
    assert matches_all(ls, [])


# --- parse_selector --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("up", [(EQ, METRIC_NAME, "up")]),
        ("  up  ", [(EQ, METRIC_NAME, "up")]),
        ("job:rate5m:sum", [(EQ, METRIC_NAME, "job:rate5m:sum")]),
        ("up{}", [(EQ, METRIC_NAME, "up")]),
        ('up{job="node"}', [(EQ, METRIC_NAME, "up"), (EQ, "job", "node")]),
        (
            'up { job = "node" , instance =~ "a.*" , }',
            [(EQ, METRIC_NAME, "up"), (EQ, "job", "node"), (RE, "instance", "a.*")],
        ),
        ('{job!="",a!~"b"}', [(NEQ, "job", ""), (NRE, "a", "b")]),
        ('{__name__=~"node_.+"}', [(RE, METRIC_NAME, "node_.+")]),
        ('{a="1",a="2"}', [(EQ, "a", "1"), (EQ, "a", "2")]),  # repeated names are allowed
        ("{a='single'}", [(EQ, "a", "single")]),
        ("{a=`raw \\d \\n`}", [(EQ, "a", "raw \\d \\n")]),
        ("{a=`multi\nline`}", [(EQ, "a", "multi\nline")]),
        ('{a="\\"q\\" \\\\ \\n \\t"}', [(EQ, "a", '"q" \\ \n \t')]),
        ("{a='it\\'s'}", [(EQ, "a", "it's")]),
        ('{a="\\a\\b\\f\\r\\v"}', [(EQ, "a", "\a\b\f\r\v")]),
        ('{a="\\x41\\101\\u00e9\\U0001F600"}', [(EQ, "a", "AAé\U0001f600")]),
        ('{a="\\xc3\\xa9"}', [(EQ, "a", "é")]),  # \x escapes are bytes of UTF-8
        ('{a=~"10\\\\.0\\\\.\\\\d+"}', [(RE, "a", "10\\.0\\.\\d+")]),
        ('{a="}",b="{"}', [(EQ, "a", "}"), (EQ, "b", "{")]),
        ('{a=","}', [(EQ, "a", ",")]),
        ('sum{a="x"}', [(EQ, METRIC_NAME, "sum"), (EQ, "a", "x")]),  # aggregators may name metrics
        ('{on="x"}', [(EQ, "on", "x")]),  # keywords are fine as label names
    ],
)
def test_parse_selector(text: str, expected: list[tuple[MatchType, str, str]]) -> None:
    assert parse_selector(text) == [Matcher(t, n, v) for t, n, v in expected]


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", "expected a metric name"),
        ("   ", "expected a metric name"),
        ("{}", "at least one matcher"),
        ('{a=""}', "at least one matcher"),
        ('{a=~".*"}', "at least one matcher"),
        ('{a=~".*",b!="x"}', "at least one matcher"),
        ('{a!~".+"}', "at least one matcher"),
        ("9up", "expected a metric name"),
        ("up-down", "unexpected"),
        ('up{job="x"} extra', "unexpected"),
        ("up[5m]", "unexpected"),
        ('up{job="x"', "expected ',' or '}'"),
        ('up{job="x" instance="y"}', "expected ',' or '}'"),
        ('up{job="x",,a="b"}', "expected a label name"),
        ('up{,job="x"}', "expected a label name"),
        ('up{"job"="x"}', "expected a label name"),
        ('up{9a="x"}', "expected a label name"),
        ("up{job}", "expected a match operator"),
        ('up{job=="x"}', "expected a quoted string"),
        ('up{job~="x"}', "expected a match operator"),
        ("up{job=x}", "expected a quoted string"),
        ('up{job="x}', "unterminated quoted string"),
        ('up{job="a\nb"}', "unterminated quoted string"),
        ("up{job=`x}", "unterminated raw string"),
        ('up{job="\\d"}', "unknown escape sequence"),
        ("up{job='\\\"'}", "unknown escape sequence"),
        ('up{job="\\x4"}', "invalid escape sequence"),
        ('up{job="\\400"}', "above 255"),
        ('up{job="\\uD800"}', "invalid Unicode code point"),
        ('up{job="\\U00110000"}', "invalid Unicode code point"),
        ('up{job="\\xff"}', "not valid UTF-8"),
        ('up{job=~"("}', "invalid regular expression"),
        ('up{job=~"(?=x)"}', "invalid regular expression"),
        ('up{__name__="x"}', "metric name must not be set twice"),
        ('up{__name__=~"u.*"}', "metric name must not be set twice"),
        ("on", "keyword"),
        ('bool{a="b"}', "keyword"),
        ("group_left", "keyword"),
    ],
)
def test_parse_selector_rejects(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match="invalid series selector") as exc:
        parse_selector(text)
    assert reason in str(exc.value)


metric_names = st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,8}", fullmatch=True).filter(
    lambda n: n not in {"bool", "on", "ignoring", "group_left", "group_right", "atan2"}
)


@given(label_dicts, st.one_of(st.just(""), metric_names))
def test_labels_str_parses_back_to_equality_matchers(d: dict[str, str], name: str) -> None:
    # Go's %q output is a valid PromQL string, so str() of a label set is a selector that
    # selects exactly that label set (the metric name is printed bare, before the braces).
    ls = Labels({**d, METRIC_NAME: name})
    if not ls:
        return
    matchers = parse_selector(str(ls))
    assert {(m.name, m.value) for m in matchers} == set(ls.pairs())
    assert all(m.type is EQ for m in matchers)
    assert matches_all(ls, matchers)


# --- stale markers ---------------------------------------------------------------------------


SPECIAL_BITS = [
    STALE_NAN_BITS,
    STALE_NAN_BITS ^ 1,
    STALE_NAN_BITS | (1 << 63),  # the marker with the sign bit set is not the marker
    0x7FF8000000000000,
    0x7FF8000000000002,  # quiet NaN with the marker's payload
    0x7FF0000000000001,
    0x7FF0000000000000,  # +Inf
    0x0000000000000000,
    0x8000000000000000,
    0x0000000000000002,
]


def test_stale_nan_constant_has_the_marker_bits() -> None:
    assert struct.pack("<d", STALE_NAN) == struct.pack("<Q", STALE_NAN_BITS)
    assert STALE_NAN_BITS == 0x7FF0000000000002
    assert STALE_NAN != STALE_NAN  # it is a NaN


@pytest.mark.parametrize("bits", SPECIAL_BITS)
def test_is_stale_is_bit_exact(bits: int) -> None:
    value = struct.unpack("<d", struct.pack("<Q", bits))[0]
    assert is_stale(value) is (bits == STALE_NAN_BITS)
    assert is_stale(np.float64(value)) is (bits == STALE_NAN_BITS)
    assert is_stale(np.array([bits], dtype=np.uint64).view(np.float64)[0]) is (
        bits == STALE_NAN_BITS
    )


def test_is_stale_of_ordinary_values() -> None:
    assert is_stale(STALE_NAN)
    for v in (float("nan"), -float("nan"), 0.0, -0.0, 1.0, float("inf"), 5e-324):
        assert not is_stale(v)


@given(
    st.lists(
        st.one_of(st.sampled_from(SPECIAL_BITS), st.integers(0, 2**64 - 1)), max_size=40
    )
)
def test_stale_mask_is_bit_exact(bits: list[int]) -> None:
    a = np.array(bits, dtype=np.uint64)
    mask = stale_mask(a.view(np.float64))
    assert mask.dtype == np.bool_
    assert mask.tolist() == [b == STALE_NAN_BITS for b in bits]


def test_stale_mask_of_a_strided_view() -> None:
    bits = SPECIAL_BITS * 2
    a = np.array(bits, dtype=np.uint64).view(np.float64)
    assert stale_mask(a[::3]).tolist() == [b == STALE_NAN_BITS for b in bits[::3]]


@given(
    st.dictionaries(st.sampled_from("abcdx"), st.sampled_from(["", "a", "b", "c", "x", "v"]), max_size=5),
    st.sampled_from("abcdx"),
)
def test_get_finds_names_never_values(pairs: dict[str, str], name: str) -> None:
    # Values equal to label names (and to the name asked for) must not be taken for names.
    ls = Labels(pairs)
    assert ls.get(name) == pairs.get(name, "")
    assert ls.get(name, "?") == (pairs[name] if pairs.get(name) else "?")


@given(
    st.dictionaries(st.sampled_from("abcdx"), st.sampled_from(["", "a", "b", "c", "x", "v"]), max_size=5),
    st.lists(st.sampled_from("abcdx"), max_size=3),
)
def test_without_drops_names_never_values(pairs: dict[str, str], names: list[str]) -> None:
    ls = Labels(pairs)
    got = ls.without(*names)
    assert got == Labels({n: v for n, v in pairs.items() if n not in names})
    assert type(got) is Labels
