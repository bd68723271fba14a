"""Differential test: our parser against Prometheus 2.42's, through ``promtool check rules``.

promtool has no parse-only command, but checking a rule file parses every ``expr:`` with
Prometheus's own parser and reports each failure with its ``line:col: parse error: …`` text.
We put every expression of the parser tables (and some more) into one rule file and require
the same accept/reject decision for each, and the same message where we claim one.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from vigilops.query.parser import ParseError, parse
from vigilops.query.printer import to_promql

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
HERE = Path(__file__).resolve().parent

pytestmark = pytest.mark.peer

EXTRA = [
    "foo offset 5m @ 100", "foo @ 100 offset 5m", "foo[5m] @ end()", "a + ignoring() group_left b",
    "sum by (a,) (x)", "sum(x) without (a)", "count_values by (a) (\"v\", x)",
    "topk by (a) (2, x)", "foo{a='\"'}", "foo{a=\"\\u00e9\\x41\"}", "x @ 9223372036854775.807",
    "1 + -2 * 3", "-1 ^ 2", "2 ^ -1 ^ 2", "a == bool on(x) group_right(y) b",
    "foo{a=\"b\",}", "foo{,}", "(foo", "foo)", "abs(x", "group", "foo[5M]", "foo[1y1w]",
    "foo[5m:1m] offset -1m", "foo offset -0s", "x[5m:1m:]", "1 + bool 2", "1 == bool 2",
    "{__name__=~\"a|b\"}", "inf", "Inf{a=\"b\"}", "nan", "NaN[5m]", "foo @ -0.0005",
    "vector(time())", "day_of_month()", "days_in_month(x, y)", "sort(x) by (a)",
    "absent(nonexistent{job=\"x\"})", "holt_winters(x[5m], 0.1)", "a unless on() b",
    "a or ignoring(x) group_left b", "a + on(x) group_left(x) b", "a + ignoring(x) group_left(x) b",
    "quantile_over_time(0.5, x[5m])", "predict_linear(x[5m], 3600)", "0x", "1e", "08", "1_000",
    "`a\nb`", "\"a\nb\"", "foo # comment\n+ bar", "sum without(on,group_right)(x)",
    "foo and bar or baz unless qux", "a atan2 b", "2 atan2 3", "-x ^ 2", "x[1h:5m] @ start()",
    "without{a=\"b\"}", "by(x)", "bool{a=\"b\"}", "sum by (by) (x)", "x + on(on) y",
    "sum(x) by (without)", "1.2.3", "x[ 5m ]", "x [5m]", "x[5m : 1m]", "x[5m:1m ]",
    "rate(x[5m]) [5m:]", "sum(x)[5m:] offset 1m", "x offset 1m[5m]", "x @ 1 [5m]",
    "(x)[5m:]", "1[5m:]", "\"a\"[5m:]", "-(x[5m])", "foo{a!~\"\"}", "foo{a=~\"\"}",
    "{a!=\"\"}", "{a=~\"x*\"}", "count_values(\"v\", x) by (a) + 1", "min by (a) (x)",
    "max without (a) (x)", "stddev(x[5m])", "topk(x, y)", "quantile(\"q\", x)",
    "scalar(x) + 1 < bool 2", "time() > time()", "vector(1) and vector(2)", "x == bool y",
    "x offset 1y", "x offset 292y", "x[1ms]", "x[1h1h]", "x @ 1e20", "x @ -Inf",
    "label_replace(x, \"a\", \"b\", \"c\")", "label_join(x, \"a\", \",\")",
    "histogram_fraction(0, 1, x)", "histogram_count(x)", "histogram_sum(x)",
    "sgn(x) ^ 2", "ON", "Offset", "sum By (a) (x)", "foo{A=\"b\"}", "fOo", "SUM BY (a) (x)",
    "x AND y", "a + Bool b", "foo{", "foo{a", "foo[5m", "foo]", "foo}", "foo{a=\"b\"",
    "x[5m",
    "{{", "sum(foo))", "((foo)", "foo{a=\"b\"}}", "x[5m]]", "x[[5m]]", "foo{a} ", "foo $",
    "foo{a=\"b\"} [5m", "rate(x[5m)", "1 +", "sum by (a", "(foo # )\n", "\"(\" + (",
    "a == BOOL b", "a * ON(b) GROUP_LEFT c",
]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_vs_promtool_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _expressions() -> list[str]:
    parser_tests = _load("test_parser")
    printer_tests = _load("test_printer")
    error_tests = _load("test_parser_errors")
    texts = [t for t, _ in parser_tests.VALID] + [t for t, _ in parser_tests.PRECEDENCE]
    texts += [t for t, _ in parser_tests.INVALID if t.strip() and not t.startswith("#")]
    texts += [t for t, _ in error_tests.REGEXP_ERRORS + error_tests.CONTEXT_ERRORS]
    texts += list(printer_tests.ROUND_TRIP) + EXTRA
    printed = []
    for t in texts:
        try:
            printed.append(to_promql(parse(t)))
        except ParseError:
            pass
    return list(dict.fromkeys(texts + printed))


_FAILURE = re.compile(r'rule (\d+), "r": could not parse expression: (.*)$')


def _promtool_verdicts(tmp_path: Path, exprs: list[str]) -> dict[int, str]:
    rules = "".join(
        f"  - record: r\n    expr: {json.dumps(e, ensure_ascii=False)}\n" for e in exprs
    )
    path = tmp_path / "rules.yml"
    path.write_text("groups:\n- name: g\n  rules:\n" + rules, encoding="utf-8")
    out = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True,
                         timeout=120)
    # Messages quote regexps byte for byte: show each byte that is not UTF-8 as U+FFFD, as
    # Prometheus's JSON (and our ParseError) does.
    raw = (out.stdout + out.stderr).decode("utf-8", "surrogateescape")
    report = re.sub("[\udc80-\udcff]", "\ufffd", raw)
    failures: dict[int, str] = {}
    for line in report.splitlines():
        m = _FAILURE.search(line)
        if m:
            failures[int(m.group(1)) - 1] = m.group(2)
    assert out.returncode == (1 if failures else 0), report
    return failures


# Where we knowingly say less than Prometheus: inside brackets its lexer reports a second
# colon itself, and it names a digit separator's number in its own way.
_MESSAGE_DIFFERENCES = {"x[5m:1m:]", "1_000"}


@pytest.mark.skipif(not Path(PROMTOOL).exists(), reason="promtool not installed")
def test_accepts_and_rejects_like_promtool(tmp_path: Path) -> None:
    exprs = _expressions()
    failures = _promtool_verdicts(tmp_path, exprs)
    verdict_diffs = []
    message_diffs = []
    for i, text in enumerate(exprs):
        try:
            parse(text)
            ours = None
        except ParseError as err:
            ours = str(err)
        theirs = failures.get(i)
        if (ours is None) != (theirs is None):
            verdict_diffs.append((text, ours, theirs))
        elif ours is not None and theirs is not None and text not in _MESSAGE_DIFFERENCES:
            if not theirs.startswith(ours):
                message_diffs.append((text, ours, theirs))
    assert verdict_diffs == []
    assert message_diffs == []
