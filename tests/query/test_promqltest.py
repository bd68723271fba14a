"""Every eval of every script in ``tests/query/testdata/*.test`` against our engine, one pytest
item each (``selectors:42`` is the eval on line 42 of selectors.test).

The scripts' expectations are Prometheus 2.42's (test_promqltest_vs_prometheus.py checks them
against the real binary); the format and the checker are in promqltest.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.query.promqltest import (
    EngineTarget,
    EvalCase,
    EvalMismatch,
    ScriptSession,
    collect_cases,
    load_script,
)

CASES = collect_cases()


@pytest.fixture(scope="module")
def sessions() -> Iterator[dict[Path, ScriptSession]]:
    """One session (one engine, one DB at a time) per script, reused by its evals."""
    open_sessions: dict[Path, ScriptSession] = {}
    yield open_sessions
    for session in open_sessions.values():
        session.close()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_script_eval(
    case: EvalCase, sessions: dict[Path, ScriptSession], tmp_path_factory: pytest.TempPathFactory
) -> None:
    if case.index < 0:
        pytest.fail(case.error, pytrace=False)
    session = sessions.get(case.path)
    if session is None:
        for other in sessions.values():  # scripts run one after the other: free the last one
            other.close()
        base = tmp_path_factory.mktemp(case.path.stem)
        session = ScriptSession(load_script(case.path), lambda: EngineTarget(base))
        sessions[case.path] = session
    failure = ""
    try:
        session.run(case.index)
    except EvalMismatch as exc:
        failure = str(exc)
    except ImportError as exc:
        failure = f"the engine is not importable yet: {exc}"
    if failure:  # reported outside the except block: no chained traceback
        pytest.fail(failure, pytrace=False)


def test_every_family_has_a_script() -> None:
    names = {p.stem for p in {c.path for c in CASES}}
    families = {
        "selectors", "literals", "operators_arithmetic", "operators_comparison", "operators_set",
        "vector_matching", "aggregators", "functions_rate", "functions_over_time",
        "functions_math", "functions_time", "functions_labels", "histograms", "subqueries",
        "absent", "errors", "name_dropping",
    }
    assert families <= names, f"missing scripts: {sorted(families - names)}"
