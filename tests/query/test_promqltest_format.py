"""The scripted-test format itself (promqltest.py): the expanding notation, the script parser,
the checker's tolerance, ordering and reporting, and the runner's range-mode re-check and
replay — all without an engine."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.query.promqltest import (
    STALE_NAN,
    ClearCmd,
    EvalCmd,
    EvalFailure,
    EvalMismatch,
    LoadCmd,
    Outcome,
    ResultSeries,
    Script,
    ScriptError,
    ScriptSession,
    almost_equal,
    check_outcome,
    collect_cases,
    expand_values,
    format_labels,
    format_ms,
    format_value,
    parse_duration,
    parse_labels,
    parse_number,
    parse_script,
    parse_series_line,
    run_eval,
)


def bits(v: float | None) -> int:
    assert v is not None
    return int(struct.unpack("<Q", struct.pack("<d", v))[0])


# ---- numbers, durations, values -----------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", 1.0), ("-2.5", -2.5), ("0x1F", 31.0), ("0X1f", 31.0), ("-0x10", -16.0),
        ("017", 15.0), ("0", 0.0), ("0b101", 5.0), ("0o17", 15.0), ("1e3", 1000.0),
        (".5", 0.5), ("5.", 5.0), ("1E-3", 0.001), ("Inf", math.inf), ("+Inf", math.inf),
        ("-inf", -math.inf), ("9223372036854775808", 9.223372036854775808e18),
    ],
)
def test_numbers_are_read_as_go_reads_them(text: str, value: float) -> None:
    assert parse_number(text) == value


def test_nan_and_bad_numbers() -> None:
    assert math.isnan(parse_number("NaN")) and math.isnan(parse_number("nan"))
    for bad in ("", "abc", "1_000", "1.2.3", "0x", "--1", "08x"):
        with pytest.raises(ValueError):
            parse_number(bad)


@pytest.mark.parametrize(
    ("text", "ms"),
    [("0", 0), ("5m", 300_000), ("1h30m", 5_400_000), ("10s", 10_000), ("300001ms", 300_001),
     ("1d", 86_400_000), ("1w", 604_800_000), ("1y", 31_536_000_000), ("2m30s500ms", 150_500),
     ("90", 90_000), ("1.5", 1500)],
)
def test_durations(text: str, ms: int) -> None:
    assert parse_duration(text) == ms


@pytest.mark.parametrize("bad", ["", "5M", "m", "1m1h", "-5m", "5 m"])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_format_helpers() -> None:
    assert format_ms(90_000) == "1m30s" and format_ms(0) == "0s" and format_ms(-60_000) == "-1m"
    assert format_ms(3_600_500) == "1h500ms"
    assert [format_value(v) for v in (3.0, -0.5, math.nan, math.inf, -math.inf, STALE_NAN)] == [
        "3", "-0.5", "NaN", "+Inf", "-Inf", "stale"
    ]
    assert format_labels((("__name__", "up"), ("job", "a"))) == 'up{job="a"}'
    assert format_labels((("__name__", "up"),)) == "up"
    assert format_labels(()) == "{}"
    assert format_labels((("__name__", "a-b"), ("x", 'q"'))) == '{__name__="a-b", x="q\\""}'


# ---- the expanding notation ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("1+2x3", [1, 3, 5, 7]),
        ("-2+4x3", [-2, 2, 6, 10]),
        ("1-2x4", [1, -1, -3, -5, -7]),
        ("5x2", [5, 5, 5]),
        ("1 2 3", [1, 2, 3]),
        ("_", [None]),
        ("_x3 1", [None, None, None, 1]),
        ("1 _ 3", [1, None, 3]),
        ("1x0", [1]),
        ("1e-3-1e-3x2", [0.001, 0.0, -0.001]),
        ("0x10", [16]),  # a hex number, as Prometheus's lexer reads it: not "0 repeated 10"
        ("0+0x2", [0, 0, 0]),
        ("Inf -Inf", [math.inf, -math.inf]),
        ("", []),
    ],
)
def test_expanding_notation(text: str, values: list[float | None]) -> None:
    assert expand_values(text) == values


def test_increments_accumulate_like_prometheus() -> None:
    # Prometheus adds the increment repeatedly; 0.1 * 3 would give a different float.
    assert expand_values("0.1+0.1x2")[2] == 0.1 + 0.1 + 0.1


def test_stale_and_nan_values() -> None:
    vals = expand_values("1 stale NaNx1")
    assert bits(vals[1]) == 0x7FF0000000000002
    assert vals[2] is not None and math.isnan(vals[2]) and bits(vals[2]) != bits(vals[1])
    assert vals[3] is not None and math.isnan(vals[3])


@pytest.mark.parametrize("bad", ["1+x3", "abc", "1x", "x3", "_x", "stalex2", "1+2y3"])
def test_bad_values(bad: str) -> None:
    with pytest.raises(ValueError):
        expand_values(bad)


def test_series_lines() -> None:
    labels, values = parse_series_line('metric{a="b c}", d=\'e\', z=""} 1 2')
    assert labels == (("__name__", "metric"), ("a", "b c}"), ("d", "e"))
    assert values == [1, 2]
    assert parse_series_line("{} 5") == ((), [5])
    assert parse_series_line("up 1") == ((("__name__", "up"),), [1])
    assert parse_series_line('up{a="\\"x\\n"}') == ((("__name__", "up"), ("a", '"x\n')), [])
    assert parse_series_line('{__name__="a-b", x="1"} 2') == (
        (("__name__", "a-b"), ("x", "1")), [2]
    )
    assert parse_labels('{a=""}') == ()
    for bad in ('metric{a=~"b"} 1', 'metric{a="b"', "1 2", 'm{a="1", a="2"} 1'):
        with pytest.raises(ValueError):
            parse_series_line(bad)


# ---- scripts ------------------------------------------------------------------------------
SCRIPT = """
# A comment.
load 1m
    up{job="a"} 1+1x3
    up{job="b"} _ stale 2

eval instant at 2m up
    up{job="a"} 3
    up{job="b"} 2

eval_ordered instant at 1m30s sort(up)
    {job="a"} 2

eval_fail instant at 0s up + on() up
    expected_fail_message many-to-many matching not allowed

eval instant at 0 1 + 1
    2

eval instant at 0s "x"
    "x"

eval range from 0 to 2m step 1m up
    up{job="a"} 1 2 3
    up{job="b"} _ _ 2

eval instant at 5m nothing

clear

eval instant at 0s vector(1)
    expect fail regex: nope.*
    expect no_warn
"""


def test_parse_script_commands() -> None:
    script = parse_script(SCRIPT, "x.test")
    kinds = [type(c).__name__ for c in script.commands]
    assert kinds == ["LoadCmd"] + ["EvalCmd"] * 7 + ["ClearCmd", "EvalCmd"]
    load = script.commands[0]
    assert isinstance(load, LoadCmd) and load.line == 3 and load.step_ms == 60_000
    a, b = load.series
    assert a.timestamps == (0, 60_000, 120_000, 180_000) and a.values == (1, 2, 3, 4)
    assert b.timestamps == (60_000, 120_000) and bits(b.values[0]) == bits(STALE_NAN)
    assert b.has_stale and not a.has_stale

    evals = [c for c in script.commands if isinstance(c, EvalCmd)]
    e = evals[0]
    assert (e.line, e.expr, e.instant, e.start, e.where) == (7, "up", True, 120_000, "x.test:7")
    assert [x.labels for x in e.expected] == [
        (("__name__", "up"), ("job", "a")), (("__name__", "up"), ("job", "b"))
    ]
    assert [x.line for x in e.expected] == [8, 9]
    assert evals[1].ordered and evals[1].start == 90_000
    assert evals[2].fail and evals[2].fail_message == "many-to-many matching not allowed"
    assert evals[3].expected_scalar == 2 and evals[3].start == 0
    assert evals[4].expected_string == "x" and not evals[4].range_mode_applies
    r = evals[5]
    assert not r.instant and (r.start, r.end, r.step) == (0, 120_000, 60_000)
    assert r.steps == [0, 60_000, 120_000]
    assert r.expected[1].values == (None, None, 2)
    assert evals[6].expected == [] and evals[6].expected_scalar is None
    assert evals[7].fail and evals[7].fail_regex == "nope.*" and evals[7].expect_warn is False
    assert isinstance(script.commands[8], ClearCmd)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("foo", "x.test:1: invalid command 'foo'"),
        ("load", "x.test:1: invalid load command"),
        ("load 1m\n  up 1\n  up 2", "x.test:1: line 3: series up loaded twice"),
        ("load 1m\n  up{ 1", "x.test:1: line 2:"),
        ("eval instant 5m up", "x.test:1: invalid eval command"),
        ("eval instant at 5m up\n  up 1 2", "exactly one value per series"),
        ("eval instant at 5m up\n  up 1\n  up 2", "line 3: series up expected twice"),
        ("eval range from 0 to 1m step 1m up\n  up 1 2 3", "3 values for a range of 2 steps"),
        ("eval range from 0 to 1m step 0s up", "step > 0"),
        ("eval_fail instant at 0s up\n  up 1", "takes no expected results"),
        ("eval instant at 0s 1\n  1\n  2", "nothing may follow"),
        ("eval instant at 0s up\n  expect info", "unsupported expectation"),
        ("eval instant at 0s up\n  expected_fail_message x", "needs eval_fail"),
        ("eval_ordered range from 0 to 1m step 1m up", "only defined for instant"),
        ("clear 5m", "'clear' takes no arguments"),
        # A comment ends the command: the next line is read as a new command.
        ("eval instant at 0s up\n  up 1\n# c\n  up 2", "x.test:4: invalid command 'up 2'"),
    ],
)
def test_script_errors_name_file_and_line(text: str, message: str) -> None:
    with pytest.raises(ScriptError) as err:
        parse_script(text, Path("/somewhere/x.test"))
    assert message in str(err.value)


def test_every_shipped_script_parses() -> None:
    cases = collect_cases()
    assert cases and all(c.index >= 0 for c in cases), [c.error for c in cases if c.index < 0]
    assert len({c.id for c in cases}) == len(cases)


# ---- the checker --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        (1.0, 1.0 + 1e-7, True), (1.0, 1.00001, False), (math.nan, math.nan, True),
        (math.nan, 1.0, False), (math.inf, math.inf, True), (math.inf, 1e308, False),
        (-math.inf, math.inf, False), (0.0, 1e-320, True), (0.0, 1e-10, False),
        (1e300, 1e300 * (1 + 1e-9), True), (-2.0, -2.0 + 1e-12, True), (0.0, -0.0, True),
    ],
)
def test_tolerance(a: float, b: float, equal: bool) -> None:
    assert almost_equal(a, b) is equal
    assert almost_equal(b, a) is equal


def eval_cmd(text: str) -> EvalCmd:
    cmd = parse_script(text, "t.test").commands[0]
    assert isinstance(cmd, EvalCmd)
    return cmd


def vec(t: int, *samples: tuple[dict[str, str], float]) -> Outcome:
    return Outcome("vector", [ResultSeries(tuple(sorted(ls.items())), [t], [v]) for ls, v in samples])


def test_vector_results_are_compared_as_sets() -> None:
    cmd = eval_cmd('eval instant at 1m up\n  up{a="1"} 1\n  up{a="2"} NaN')
    got = vec(60_000, ({"__name__": "up", "a": "2"}, math.nan), ({"__name__": "up", "a": "1"}, 1 + 1e-9))
    assert check_outcome(cmd, got) == []


def test_vector_mismatches_are_all_reported() -> None:
    cmd = eval_cmd('eval instant at 1m up\n  up{a="1"} 1\n  up{a="2"} 2\n  up{a="3"} 3')
    got = vec(
        60_000,
        ({"__name__": "up", "a": "1"}, 1.5),
        ({"__name__": "up", "a": "3"}, 3),
        ({"__name__": "up", "a": "4"}, 4),
    )
    problems = check_outcome(cmd, got)
    assert problems == [
        'missing: up{a="2"} 2',
        'up{a="1"}: expected 1, got 1.5',
        'unexpected: up{a="4"} 4@1m',
    ]


def test_vector_sample_time_must_be_the_eval_time() -> None:
    cmd = eval_cmd('eval instant at 1m up\n  up{a="1"} 1')
    problems = check_outcome(cmd, vec(0, ({"__name__": "up", "a": "1"}, 1)))
    assert problems == ['up{a="1"}: sample at 0s, expected the evaluation time 1m (1 series affected)']


def test_ordered_results() -> None:
    cmd = eval_cmd("eval_ordered instant at 0s sort(x)\n  x{a=\"1\"} 1\n  x{a=\"2\"} 2")
    right = vec(0, ({"__name__": "x", "a": "1"}, 1), ({"__name__": "x", "a": "2"}, 2))
    wrong = vec(0, ({"__name__": "x", "a": "2"}, 2), ({"__name__": "x", "a": "1"}, 1))
    assert check_outcome(cmd, right) == []
    assert check_outcome(cmd, wrong) == [
        'wrong order: got x{a="2"}, x{a="1"}; expected x{a="1"}, x{a="2"}'
    ]
    unordered = eval_cmd("eval instant at 0s sort(x)\n  x{a=\"1\"} 1\n  x{a=\"2\"} 2")
    assert check_outcome(unordered, wrong) == []


def test_result_types() -> None:
    scalar = Outcome("scalar", [ResultSeries((), [0], [2.0])])
    string = Outcome("string", [ResultSeries((), [0], [math.nan])], "x")
    assert check_outcome(eval_cmd("eval instant at 0s 2\n  2"), scalar) == []
    assert check_outcome(eval_cmd("eval instant at 0s 2\n  3"), scalar) == ["expected scalar 3, got 2"]
    assert check_outcome(eval_cmd("eval instant at 0s 2\n  {} 2"), scalar) == [
        "expected a vector, got a scalar"
    ]
    assert check_outcome(eval_cmd('eval instant at 0s "x"\n  "x"'), string) == []
    assert check_outcome(eval_cmd('eval instant at 0s "x"\n  "y"'), string) == [
        "expected string 'y', got 'x'"
    ]
    assert check_outcome(eval_cmd("eval instant at 0s x"), vec(0)) == []
    assert check_outcome(eval_cmd("eval instant at 0s 2\n  2"), string) == [
        "expected a scalar, got a string"
    ]


def test_matrix_points() -> None:
    cmd = eval_cmd("eval range from 0 to 3m step 1m x\n  x 1 _ 3")
    good = Outcome("matrix", [ResultSeries((("__name__", "x"),), [0, 120_000], [1, 3])])
    assert check_outcome(cmd, good) == []
    bad = Outcome("matrix", [ResultSeries((("__name__", "x"),), [0, 60_000, 180_000], [1.5, 2, 4])])
    (problem,) = check_outcome(cmd, bad)
    assert problem.splitlines() == [
        "x: @0s: expected 1, got 1.5; @1m: expected no point, got 2; @2m: expected 3, got no point; "
        "@3m: expected no point, got 4",
        "      expected 1 _ 3",
        "      got      1.5 2 _ 4",
    ]


def test_matrix_must_be_sorted_and_unique() -> None:
    cmd = eval_cmd('eval range from 0 to 0s step 1m x\n  x{a="1"} 1\n  x{a="2"} 2')
    b = ResultSeries((("__name__", "x"), ("a", "2")), [0], [2])
    a = ResultSeries((("__name__", "x"), ("a", "1")), [0], [1])
    assert check_outcome(cmd, Outcome("matrix", [b, a])) == [
        'range result not sorted by labels: x{a="2"} before x{a="1"}'
    ]
    assert 'series x{a="1"} returned twice' in check_outcome(cmd, Outcome("matrix", [a, a, b]))


def test_warnings_expectations() -> None:
    cmd = eval_cmd("eval instant at 0s x\n  expect warn")
    assert check_outcome(cmd, vec(0)) == ["expected warnings, got none"]
    assert check_outcome(cmd, Outcome("vector", [], warnings=["w"])) == []


# ---- the runner ---------------------------------------------------------------------------
@dataclass
class FakeTarget:
    """Answers from a table; records every call."""

    answers: dict[tuple[str, int, int, int], Outcome | EvalFailure] = field(default_factory=dict)
    calls: list[tuple[object, ...]] = field(default_factory=list)
    closed: bool = False

    def load(self, cmd: LoadCmd) -> None:
        self.calls.append(("load", cmd.line))

    def clear(self) -> None:
        self.calls.append(("clear",))

    def _answer(self, key: tuple[str, int, int, int]) -> Outcome:
        self.calls.append(key)
        answer = self.answers.get(key, Outcome("vector", []) if key[2] == key[1] else Outcome("matrix", []))
        if isinstance(answer, EvalFailure):
            raise answer
        return answer

    def instant(self, expr: str, t: int) -> Outcome:
        return self._answer((expr, t, t, 0))

    def range(self, expr: str, start: int, end: int, step: int) -> Outcome:
        return self._answer((expr, start, end, step))

    def close(self) -> None:
        self.closed = True


def series(labels: dict[str, str], points: dict[int, float]) -> ResultSeries:
    return ResultSeries(tuple(sorted(labels.items())), list(points), list(points.values()))


def test_instant_evals_are_rechecked_as_range_queries() -> None:
    cmd = eval_cmd('eval instant at 2m x\n  x{a="1"} 5')
    target = FakeTarget()
    target.answers[("x", 120_000, 120_000, 0)] = vec(120_000, ({"__name__": "x", "a": "1"}, 5))
    target.answers[("x", 60_000, 180_000, 60_000)] = Outcome(
        "matrix", [series({"__name__": "x", "a": "1"}, {60_000: 4, 120_000: 5, 180_000: 6})]
    )
    run_eval(target, cmd)
    assert target.calls == [("x", 120_000, 120_000, 0), ("x", 60_000, 180_000, 60_000)]

    target.answers[("x", 60_000, 180_000, 60_000)] = Outcome(
        "matrix", [series({"__name__": "x", "a": "1"}, {60_000: 4, 180_000: 6})]
    )
    with pytest.raises(EvalMismatch) as err:
        run_eval(target, cmd)
    assert 'range mode (from 1m to 3m step 1m): missing: x{a="1"} 5' in str(err.value)


def test_scalar_range_mode() -> None:
    cmd = eval_cmd("eval instant at 1m time()\n  60")
    target = FakeTarget()
    target.answers[("time()", 60_000, 60_000, 0)] = Outcome("scalar", [ResultSeries((), [60_000], [60.0])])
    target.answers[("time()", 0, 120_000, 60_000)] = Outcome(
        "matrix", [series({}, {0: 0.0, 60_000: 60.0, 120_000: 120.0})]
    )
    run_eval(target, cmd)
    target.answers[("time()", 0, 120_000, 60_000)] = Outcome("matrix", [series({}, {0: 0.0})])
    with pytest.raises(EvalMismatch, match="range mode .*expected a scalar, got a matrix"):
        run_eval(target, cmd)


def test_range_mode_is_skipped_where_it_cannot_agree() -> None:
    for text in ('eval instant at 0s "s"\n  "s"', "eval instant at 1m x @ start()",
                 "eval_fail instant at 0s x"):
        cmd = eval_cmd(text)
        target = FakeTarget()
        target.answers[(cmd.expr, cmd.start, cmd.start, 0)] = (
            Outcome("string", [ResultSeries((), [0], [math.nan])], "s") if '"' in text
            else EvalFailure("boom", "execution") if cmd.fail else Outcome("vector", [])
        )
        run_eval(target, cmd)
        assert len(target.calls) == 1, text


def test_ordered_evals_run_the_range_query_without_comparing_it() -> None:
    cmd = eval_cmd('eval_ordered instant at 0s x\n  x{a="1"} 1')
    target = FakeTarget()
    target.answers[("x", 0, 0, 0)] = vec(0, ({"__name__": "x", "a": "1"}, 1))
    run_eval(target, cmd)
    assert len(target.calls) == 2
    target.answers[("x", -60_000, 60_000, 60_000)] = EvalFailure("broken", "execution")
    with pytest.raises(EvalMismatch, match="range mode .*query failed: execution: broken"):
        run_eval(target, cmd)


def test_failing_evals() -> None:
    target = FakeTarget()
    target.answers[("x", 0, 0, 0)] = EvalFailure("many-to-many matching not allowed: x", "execution")
    run_eval(target, eval_cmd("eval_fail instant at 0s x"))
    run_eval(target, eval_cmd("eval_fail instant at 0s x\n  expected_fail_regexp many-to-many"))
    run_eval(target, eval_cmd("eval instant at 0s x\n  expect fail msg: many-to-many matching not allowed: x"))
    with pytest.raises(EvalMismatch) as err:
        run_eval(target, eval_cmd("eval_fail instant at 0s x\n  expected_fail_message other"))
    assert "expected error message 'other', got 'many-to-many matching not allowed: x'" in str(err.value)
    with pytest.raises(EvalMismatch) as err:
        run_eval(target, eval_cmd('eval instant at 0s x\n  x 1'))
    assert "query failed: execution: many-to-many matching not allowed: x" in str(err.value)
    with pytest.raises(EvalMismatch) as err:
        run_eval(target, eval_cmd("eval_fail instant at 0s y"))
    assert "expected the query to fail, it succeeded" in str(err.value)


def test_failure_report_shows_expected_and_got() -> None:
    cmd = parse_script('\n\neval instant at 1m up\n  up{a="1"} 1\n', "f.test").commands[0]
    assert isinstance(cmd, EvalCmd)
    target = FakeTarget()
    target.answers[("up", 60_000, 60_000, 0)] = vec(60_000, ({"__name__": "up", "a": "1"}, 2))
    with pytest.raises(EvalMismatch) as err:
        run_eval(target, cmd)
    assert str(err.value).splitlines() == [
        "f.test:3: eval instant at 1m up",
        '  up{a="1"}: expected 1, got 2',
        "  expected vector of 1 series:",
        '    up{a="1"} 1',
        "  got vector of 1 series:",
        '    up{a="1"} 2@1m',
    ]


def test_crashes_name_the_eval() -> None:
    class Crashing(FakeTarget):
        def instant(self, expr: str, t: int) -> Outcome:
            raise ZeroDivisionError("bug")

    with pytest.raises(ZeroDivisionError) as err:
        run_eval(Crashing(), eval_cmd("eval instant at 0s x"))
    assert err.value.__notes__ == ["while evaluating t.test:1: eval instant at 0s x"]


def test_session_replays_loads_and_clears() -> None:
    text = "load 1m\n  a 1\n\neval instant at 0s a\n\nclear\n\nload 1m\n  b 1\n\neval instant at 0s b\n"
    script = parse_script(text, "s.test")
    assert isinstance(script, Script)
    made: list[FakeTarget] = []

    def make() -> FakeTarget:
        made.append(FakeTarget())
        return made[-1]

    session = ScriptSession(script, make)
    evals = [i for i, _ in script.evals()]
    session.run(evals[0])
    session.run(evals[1])
    assert len(made) == 1
    assert [c for c in made[0].calls if c[0] in ("load", "clear")] == [("load", 1), ("clear",), ("load", 8)]
    session.run(evals[0])  # going back starts over on a fresh target
    assert len(made) == 2 and made[0].closed
    assert [c for c in made[1].calls if c[0] in ("load", "clear")] == [("load", 1)]
    session.run(evals[1])  # only what lies between is applied
    assert [c for c in made[1].calls if c[0] in ("load", "clear")] == [("load", 1), ("clear",), ("load", 8)]
    session.close()
    assert made[1].closed
