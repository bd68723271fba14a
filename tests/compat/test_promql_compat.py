"""PromQL compatibility with Prometheus 2.42, side by side (`vigilops.compat.promql_compat`).

The peer tests import the generated data set into Prometheus (promtool) and VigilOps,
start both servers and run every query case through both HTTP APIs (the ``quick``
profile: 3 instant times and 2 range grids per case) and Grafana's metadata calls.

* Every case not in `KNOWN_DIFFERENCES` must agree, and every case in it must still
  differ, so the list stays honest: fix a difference, delete its line.
* The pass rate is printed in the Markdown of ``compat/promql_compat/RESULTS.md``, which the README quotes.
* Two Prometheus processes on the same data agree on everything (validates the harness).

The comparator itself is tested without servers at the bottom.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson
import pytest

from vigilops.compat.promql_compat import dataset, harness
from vigilops.compat.promql_compat.compare import Answer, Tolerance, compare_api, compare_query
from vigilops.compat.promql_compat.queries import cases, expand

#: Query → why VigilOps answers differently from Prometheus 2.42 (the engine's to-do list).
KNOWN_DIFFERENCES: dict[str, str] = {}

# ---- side by side ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    workdir = tmp_path_factory.mktemp("promql-compat")
    result = harness.run("vigilops", "quick", workdir)
    (workdir / "report.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    # The figures the README quotes come from `python -m vigilops.compat.promql_compat
    # --results-md compat/promql_compat/RESULTS.md`; the test only shows them.
    print(harness.results_markdown(result, "tests/compat/test_promql_compat.py (profile `quick`)"))
    print(harness.summary_text(result, failures=0))
    return result


@pytest.mark.peer
def test_cases_agree_with_prometheus(report: dict[str, Any]) -> None:
    unexpected = [f for f in report["failures"] if f["query"] not in KNOWN_DIFFERENCES]
    shown = "\n".join(
        f"{f['query']}  [{f['diffs'][0]['evaluation']}]\n    " + f["diffs"][0]["diff"].replace("\n", "\n    ")
        for f in unexpected[:25]
    )
    assert not unexpected, f"{len(unexpected)} cases differ from Prometheus:\n{shown}"


@pytest.mark.peer
def test_known_differences_still_differ(report: dict[str, Any]) -> None:
    outcome = report["cases_passed"]
    unknown = sorted(q for q in KNOWN_DIFFERENCES if q not in outcome)
    assert not unknown, f"KNOWN_DIFFERENCES names queries that are no case: {unknown}"
    fixed = sorted(q for q in KNOWN_DIFFERENCES if outcome[q])
    assert not fixed, f"these now agree with Prometheus; delete them from KNOWN_DIFFERENCES: {fixed}"


@pytest.mark.peer
def test_api_calls_agree_with_prometheus(report: dict[str, Any]) -> None:
    assert not report["api_failures"], "\n".join(
        f"{a['name']} {a['path']} {a['params']}: {a['diff']}" for a in report["api_failures"]
    )


@pytest.mark.peer
def test_reference_does_what_cases_expect(report: dict[str, Any]) -> None:
    assert not report["reference_problems"]


@pytest.mark.peer
def test_prometheus_agrees_with_itself(tmp_path: Path) -> None:
    """Two Prometheus servers on copies of the same blocks agree on every case (a sample of
    the cases here; ``--target prometheus`` runs all of them)."""
    sample = cases()[::7]
    result = harness.run("prometheus", "quick", tmp_path, sample)
    assert result["summary"]["passed"] == len(sample), harness.summary_text(result)
    assert not result["api_failures"]
    assert not result["reference_problems"]


# ---- the comparator, without servers ------------------------------------------------------------
def _answer(data: Any, status: int = 200) -> Answer:
    return Answer(status, {"status": "success", "data": data})


def _error(kind: str, status: int) -> Answer:
    return Answer(status, {"status": "error", "errorType": kind, "error": "boom"})


def _vector(*samples: tuple[dict[str, str], str], t: float = 100.0) -> Answer:
    return _answer({"resultType": "vector", "result": [{"metric": m, "value": [t, v]} for m, v in samples]})


def _matrix(*series: tuple[dict[str, str], list[tuple[float, str]]]) -> Answer:
    return _answer({"resultType": "matrix", "result": [
        {"metric": m, "values": [[t, v] for t, v in pts]} for m, pts in series
    ]})


A, B, C = {"a": "1"}, {"a": "2"}, {"a": "3"}


def test_tolerance_is_relative_with_a_tiny_margin() -> None:
    tol = Tolerance()
    assert tol.equal(1e9, 1e9 + 1)
    assert not tol.equal(1.0, 1.001)
    assert tol.equal(0.0, 1e-13)
    assert not tol.equal(0.0, 1e-9)
    assert tol.equal(math.nan, math.nan)
    assert not tol.equal(math.nan, 0.0)
    assert tol.equal(math.inf, math.inf)
    assert not tol.equal(math.inf, -math.inf)
    assert not tol.equal(math.inf, 1e308)


def test_vectors_compare_as_sets_with_tolerance() -> None:
    ref = _vector((A, "1"), (B, "NaN"), (C, "+Inf"))
    assert compare_query(ref, _vector((C, "+Inf"), (A, "1.000000001"), (B, "NaN"))) is None
    diff = compare_query(ref, _vector((A, "1"), (B, "NaN")))
    assert diff is not None and 'missing series {a="3"}' in diff
    diff = compare_query(ref, _vector((A, "1"), (B, "NaN"), (C, "+Inf"), ({"a": "4"}, "0")))
    assert diff is not None and "unexpected series" in diff
    diff = compare_query(ref, _vector((A, "1.1"), (B, "NaN"), (C, "+Inf")))
    assert diff is not None and "expected 1, got 1.1" in diff
    assert compare_query(ref, _vector((A, "1"), (B, "NaN"), (C, "+Inf"), t=101.0)) is not None


def test_ordered_vectors_compare_value_order_not_tie_order() -> None:
    ref = _vector((A, "3"), (B, "1"), (C, "1"))
    assert compare_query(ref, _vector((A, "3"), (C, "1"), (B, "1")), ordered=True) is None
    diff = compare_query(ref, _vector((B, "1"), (A, "3"), (C, "1")), ordered=True)
    assert diff is not None and diff.startswith("order")
    assert compare_query(ref, _vector((B, "1"), (A, "3"), (C, "1"))) is None


def test_matrices_compare_points_and_range_order() -> None:
    ref = _matrix((A, [(1, "1"), (2, "2")]), (B, [(1, "5")]))
    assert compare_query(ref, _matrix((A, [(1, "1"), (2, "2")]), (B, [(1, "5")])), sorted_matrix=True) is None
    diff = compare_query(ref, _matrix((A, [(1, "1")]), (B, [(1, "5")])))
    assert diff is not None and "missing at 2000" in diff
    diff = compare_query(ref, _matrix((A, [(1, "1"), (2, "2.5")]), (B, [(1, "5")])))
    assert diff is not None and "values differ" in diff
    swapped = _matrix((B, [(1, "5")]), (A, [(1, "1"), (2, "2")]))
    assert compare_query(ref, swapped) is None
    diff = compare_query(ref, swapped, sorted_matrix=True)
    assert diff is not None and "series order" in diff


def test_errors_agree_on_type_and_status_only() -> None:
    assert compare_query(_error("bad_data", 400), _error("bad_data", 400)) is None
    assert compare_query(_error("execution", 422), _error("bad_data", 400)) is not None
    assert compare_query(_error("execution", 422), _error("execution", 500)) is not None
    diff = compare_query(_error("bad_data", 400), _vector())
    assert diff is not None and "got HTTP 200 success" in diff
    assert compare_query(_vector(), Answer(0, None, "connection refused")) is not None


def test_scalars_strings_and_result_types() -> None:
    scalar = _answer({"resultType": "scalar", "result": [4, "2"]})
    assert compare_query(scalar, _answer({"resultType": "scalar", "result": [4.0, "2"]})) is None
    assert compare_query(scalar, _answer({"resultType": "scalar", "result": [4, "3"]})) is not None
    diff = compare_query(scalar, _vector(({}, "2"), t=4))
    assert diff is not None and diff.startswith("resultType")
    string = _answer({"resultType": "string", "result": [4, "a"]})
    assert compare_query(string, _answer({"resultType": "string", "result": [4, "b"]})) is not None


def test_api_answers_compare_as_sets_or_keys() -> None:
    assert compare_api(_answer(["a", "b"]), _answer(["b", "a"]), "set") is None
    assert compare_api(_answer(["a", "b"]), _answer(["a"]), "set") is not None
    assert compare_api(_answer([A, B]), _answer([B, A]), "set") is None
    assert compare_api(_answer({"version": "2.42"}), _answer({"version": "0.1"}), "keys") is None
    assert compare_api(_answer({"version": "2.42"}), _answer({}), "keys") is not None
    assert compare_api(_answer({}), _answer({"x": []}), "exact") is not None


# ---- data set and cases ------------------------------------------------------------------------
def test_dataset_is_deterministic_and_well_formed() -> None:
    first, second = dataset.generate(), dataset.generate()
    assert first.text == second.text
    assert first.text.endswith("# EOF\n")
    assert 120 <= first.series <= 250
    lines = first.text.splitlines()
    samples = [ln for ln in lines if not ln.startswith("#")]
    assert len(samples) == first.samples
    stamps = [int(float(ln.rsplit(" ", 1)[1]) * 1000) for ln in samples]
    assert dataset.START_MS - 1000 <= min(stamps) and max(stamps) < dataset.END_MS + dataset.SCRAPE_INTERVAL_MS


def test_cases_expand_templates_without_duplicates() -> None:
    assert expand("{{.setOp}}(x)") == ["and(x)", "or(x)", "unless(x)"]
    all_cases = cases()
    assert len(all_cases) >= 500
    assert len({c.query for c in all_cases}) == len(all_cases)
    assert not [c.query for c in all_cases if "{{." in c.query]
