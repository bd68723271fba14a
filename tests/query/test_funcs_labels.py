"""label_replace, label_join, absent, absent_over_time, sort, sort_desc, and the registry
itself. Expected label sets and error texts were checked against Prometheus 2.42."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vigilops.query.funcs import IMPLEMENTATIONS
from vigilops.query.functions import FUNCTIONS, ValueType
from vigilops.query.parser import parse
from vigilops.query.values import (
    ExecutionError,
    FunctionContext,
    Scalar,
    String,
    Value,
    Vector,
    build_windows,
)
from vigilops.tsdb.model import Labels

T = 1_000_000_020_000


def lab_vector() -> Vector:
    labels = [Labels({"__name__": "lab", "a": "foo-bar", "b": "x"}), Labels({"__name__": "lab", "a": "zzz", "b": "y"})]
    return Vector(labels, np.array([[1.0], [2.0]]), np.ones((2, 1), dtype=bool))


def call(name: str, *args: Value, node: object = None, times: list[int] | None = None) -> Vector:
    ctx = FunctionContext(np.array(times or [T], dtype=np.int64), (node,) if node is not None else ())
    out = IMPLEMENTATIONS[name](list(args), ctx)
    assert isinstance(out, Vector)
    return out


def replace(dst: str, repl: str, src: str, regex: str) -> list[dict[str, str]]:
    out = call("label_replace", lab_vector(), String(dst), String(repl), String(src), String(regex))
    assert out.values[:, 0].tolist() == [1.0, 2.0]
    return [ls.to_dict() for ls in out.labels]


def test_every_function_has_an_implementation() -> None:
    assert set(IMPLEMENTATIONS) == set(FUNCTIONS)


@pytest.mark.parametrize(
    ("args", "first", "second"),
    [
        (("c", "$1", "a", "(.*)-(.*)"), {"c": "foo"}, {}),
        (("c", "$2$1", "a", "(.*)-(.*)"), {"c": "barfoo"}, {}),
        # Fully anchored: "foo.*" does not match "zzz"; an empty result deletes the label.
        (("a", "", "a", "foo.*"), {"a": None}, {}),
        (("__name__", "new", "b", "x"), {"__name__": "new"}, {}),
        (("c", "${1}_$name", "a", "(?P<name>f)oo.*"), {"c": "f_f"}, {}),
        (("c", "$3x", "a", "(f)(o)(o).*"), {}, {}),  # "$3x" names group "3x": empty
        (("c", "$1", "nonexist", "(.*)"), {}, {}),
        (("c", "x", "nonexist", "(.+)"), {}, {}),
        (("c", "$$1-$", "a", "(.*)"), {"c": "$1-$"}, {"c": "$1-$"}),
        (("c", "${1", "a", "(.*)"), {"c": "${1"}, {"c": "${1"}),
        (("c", "$01", "a", "(.*)"), {}, {}),
        (("c", "x", "a", "FOO.*"), {}, {}),
        (("c", "x", "a", "(?i)FOO.*"), {"c": "x"}, {}),
        (("c", "$1", "a", "foo|(zzz)"), {}, {"c": "zzz"}),
        # Not a regex on its own, but "^(?:x)|(y)$" is: Prometheus accepts it.
        (("c", "hit", "b", "x)|(q"), {"c": "hit"}, {}),
    ],
)
def test_label_replace(args: tuple[str, str, str, str], first: dict[str, str | None], second: dict[str, str]) -> None:
    base = [{"__name__": "lab", "a": "foo-bar", "b": "x"}, {"__name__": "lab", "a": "zzz", "b": "y"}]
    want = []
    for labels, change in zip(base, (first, second)):
        merged = {**labels, **change}
        want.append({k: v for k, v in merged.items() if v is not None})
    assert replace(*args) == want


def test_label_replace_with_a_catastrophic_regex_finishes() -> None:
    """Linear-time matching: a backtracking engine would never return from this."""
    value = "a" * 5000 + "c"
    vec = Vector([Labels({"__name__": "lab", "a": value})], np.array([[1.0]]), np.ones((1, 1), dtype=bool))
    out = call("label_replace", vec, String("c"), String("$1"), String("a"), String("(a+)+b"))
    assert [ls.to_dict() for ls in out.labels] == [{"__name__": "lab", "a": value}]
    out = call("label_replace", vec, String("c"), String("$2"), String("a"), String("(a+)+b|(a+)+c"))
    assert [ls.to_dict() for ls in out.labels] == [{"__name__": "lab", "a": value, "c": "a" * 5000}]


def test_label_replace_errors_even_on_an_empty_vector() -> None:
    empty = Vector.empty(1)
    with pytest.raises(ExecutionError, match=r"^invalid regular expression in label_replace\(\): \($"):
        call("label_replace", empty, String("a"), String("b"), String("c"), String("("))
    with pytest.raises(ExecutionError, match=r"^invalid destination label name in label_replace\(\): 1a$"):
        call("label_replace", empty, String("1a"), String("b"), String("c"), String("x"))


def test_label_join() -> None:
    def join(*args: str) -> list[dict[str, str]]:
        out = call("label_join", lab_vector(), *(String(a) for a in args))
        return [ls.to_dict() for ls in out.labels]

    assert join("d", "-", "a", "b") == [
        {"__name__": "lab", "a": "foo-bar", "b": "x", "d": "foo-bar-x"},
        {"__name__": "lab", "a": "zzz", "b": "y", "d": "zzz-y"},
    ]
    assert join("a", ",", "b") == [{"__name__": "lab", "a": "x", "b": "x"}, {"__name__": "lab", "a": "y", "b": "y"}]
    assert join("b", "+") == [{"__name__": "lab", "a": "foo-bar"}, {"__name__": "lab", "a": "zzz"}]
    with pytest.raises(ExecutionError, match=r"^invalid destination label name in label_join\(\): 1a$"):
        call("label_join", Vector.empty(1), String("1a"), String("b"))
    with pytest.raises(ExecutionError, match=r"^invalid source label name in label_join\(\): x-y$"):
        call("label_join", Vector.empty(1), String("d"), String("b"), String("x-y"))


# ---- absent ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "labels"),
    [
        ('absent(nonexistent{a="b",c=~"d",e="f",e="g",h="i"})', {"a": "b", "h": "i"}),
        ('absent((nonexistent{a="b"}))', {"a": "b"}),
        ('absent(sum(nonexistent{a="b"}))', {}),
        ('absent(nonexistent{a=""})', {}),
        ('absent({__name__="x",a="b"})', {"a": "b"}),
    ],
)
def test_absent_labels_come_from_equality_matchers(query: str, labels: dict[str, str]) -> None:
    expr = parse(query)
    node = expr.args[0]  # type: ignore[attr-defined]
    out = call("absent", Vector.empty(1), node=node)
    assert out.labels == [Labels(labels)]
    assert out.present.tolist() == [[True]]


def test_absent_is_present_only_where_the_argument_is_empty() -> None:
    v = Vector([Labels({"a": "1"}), Labels({"a": "2"})], np.zeros((2, 3)),
               np.array([[True, False, False], [False, False, True]]))
    out = call("absent", v, times=[T, T + 1, T + 2])
    assert out.present.tolist() == [[False, True, False]]
    assert out.values.tolist() == [[1.0, 1.0, 1.0]]


def test_absent_over_time() -> None:
    node = parse('absent_over_time(x{job="j"}[1m])').args[0]  # type: ignore[attr-defined]
    ts = np.array([0, 10_000], dtype=np.int64)
    win = build_windows([Labels({"__name__": "x", "job": "j"})], [ts], [np.ones(2)],
                        np.array([5_000, 60_000, 100_000], dtype=np.int64), 60_000)
    out = call("absent_over_time", win, node=node, times=[5_000, 60_000, 100_000])
    assert out.labels == [Labels({"job": "j"})]
    assert out.present.tolist() == [[False, False, True]]


# ---- sort -----------------------------------------------------------------------------------------
def test_sort_orders_an_instant_vector_with_nan_last() -> None:
    values = [3.0, math.nan, -1.0, 7.0, 0.5]
    labels = [Labels({"__name__": "m", "i": str(i)}) for i in range(len(values))]
    v = Vector(labels, np.array(values)[:, None], np.ones((len(values), 1), dtype=bool))
    up = call("sort", v)
    down = call("sort_desc", v)
    assert [ls.get("i") for ls in up.labels] == ["2", "4", "0", "3", "1"]
    assert [ls.get("i") for ls in down.labels] == ["3", "0", "4", "2", "1"]
    assert up.labels[0].name == "m"  # keeps the metric name


def test_sort_leaves_range_results_alone() -> None:
    v = Vector([Labels({"a": "1"}), Labels({"a": "2"})], np.array([[2.0, 2.0], [1.0, 1.0]]), np.ones((2, 2), dtype=bool))
    assert call("sort", v, times=[T, T + 1]).labels == v.labels


def _empty_arg(kind: ValueType, steps: int) -> Value:
    if kind is ValueType.SCALAR:
        return Scalar(np.full(steps, 0.5))
    if kind is ValueType.VECTOR:
        return Vector.empty(steps)
    if kind is ValueType.MATRIX:
        return build_windows([], [], [], np.arange(steps, dtype=np.int64) * 1000, 60_000)
    return String("a")


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_accepts_empty_inputs(name: str) -> None:
    fn = FUNCTIONS[name]
    steps = 3
    args = [_empty_arg(fn.arg_type(i), steps) for i in range(fn.min_args)]
    out = IMPLEMENTATIONS[name](args, FunctionContext(np.arange(steps, dtype=np.int64) * 1000))
    if fn.return_type is ValueType.SCALAR:
        assert isinstance(out, Scalar) and out.values.shape == (steps,)
    else:
        assert isinstance(out, Vector) and out.values.shape == (len(out), steps)
        assert out.present.shape == (len(out), steps)
        # Only absent(), absent_over_time() and argument-free calendar calls produce a series.
        assert len(out) <= 1
