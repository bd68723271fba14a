"""Comparison of two Prometheus API answers, the way promql-compliance-tester does it.

Both answers must have the same ``status``; failures must agree on ``errorType`` and HTTP
status code (the messages may differ). Successful query answers must have the same
``resultType``; vectors and matrices are compared as sets of label sets (a result marked
`ordered` must also list its values in the same order, and a matrix must list its series
sorted by labels as Prometheus does), with equal timestamps and values equal within
`Tolerance`: NaN equals NaN, infinities must match exactly.

Every function returns ``None`` when the answers agree and otherwise a short, readable
description of the differences.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

#: How many difference lines a diff keeps (the rest is counted).
MAX_DIFF_LINES = 12

LabelKey = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Tolerance:
    """Two floats x, y are equal when ``|x - y| <= max(margin, fraction * min(|x|, |y|))``
    (go-cmp's ``cmpopts.EquateApprox``).

    `fraction` is promql-compliance-tester's default (``defaultFraction = 0.00001``). Its
    default margin is 0; ours is 1e-12 so that cancellation noise around zero (``x - x``
    summed in another order, the variance of a constant series) is not reported, while a
    genuine small value (our data has none below 1e-6) still must match relatively.
    """

    fraction: float = 1e-5
    margin: float = 1e-12

    def equal(self, x: float, y: float) -> bool:
        if x == y:
            return True
        if math.isnan(x) or math.isnan(y):
            return math.isnan(x) and math.isnan(y)
        if math.isinf(x) or math.isinf(y):
            return False
        return abs(x - y) <= max(self.margin, self.fraction * min(abs(x), abs(y)))


DEFAULT_TOLERANCE = Tolerance()


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: the status code and the decoded JSON body (None if it was not
    JSON; `text` then holds the start of the body or the transport error)."""

    http_status: int
    body: Any
    text: str = ""

    @classmethod
    def from_bytes(cls, http_status: int, raw: bytes) -> Answer:
        try:
            return cls(http_status, orjson.loads(raw))
        except orjson.JSONDecodeError:
            return cls(http_status, None, raw[:300].decode("utf-8", "replace"))


# ---- formatting --------------------------------------------------------------------------
def format_labels(key: LabelKey) -> str:
    """``name{a="b", …}`` with values quoted as in PromQL."""
    name = ""
    pairs = []
    for k, v in key:
        if k == "__name__":
            name = v
        else:
            pairs.append(f"{k}={json.dumps(v, ensure_ascii=False)}")
    return f"{name}{{{', '.join(pairs)}}}"


def _short(answer: Answer) -> str:
    body = answer.body
    if not isinstance(body, dict):
        return f"HTTP {answer.http_status}, not JSON: {answer.text!r}"
    if body.get("status") == "error":
        return f"HTTP {answer.http_status} {body.get('errorType')}: {body.get('error')}"
    data = body.get("data")
    if isinstance(data, dict) and "resultType" in data:
        result = data.get("result")
        size = f"{len(result)} series" if isinstance(result, list) else "a value"
        return f"HTTP {answer.http_status} success, {data['resultType']} with {size}"
    return f"HTTP {answer.http_status} {body.get('status')}"


def _clip(lines: list[str]) -> str:
    if len(lines) > MAX_DIFF_LINES:
        lines = lines[:MAX_DIFF_LINES] + [f"... and {len(lines) - MAX_DIFF_LINES} more differences"]
    return "\n".join(lines)


def _key(metric: Any) -> LabelKey:
    if not isinstance(metric, dict):
        return (("<bad metric>", repr(metric)),)
    return tuple(sorted((str(k), str(v)) for k, v in metric.items()))


def _ms(ts: Any) -> int | None:
    try:
        return round(float(ts) * 1000)
    except (TypeError, ValueError):
        return None


def _float(text: Any) -> float | None:
    if not isinstance(text, str):
        return None  # the API sends sample values as strings
    try:
        return float(text)
    except ValueError:
        return None


def _point(point: Any) -> tuple[int | None, float | None, Any]:
    if isinstance(point, list) and len(point) == 2:
        return _ms(point[0]), _float(point[1]), point[1]
    return None, None, point


# ---- envelope ----------------------------------------------------------------------------
def _compare_envelope(ref: Answer, test: Answer) -> tuple[str | None, bool]:
    """(diff, done): the status/error part of the comparison; `done` when no data is left
    to compare."""
    if not isinstance(ref.body, dict):
        return f"reference answered {_short(ref)}", True
    if not isinstance(test.body, dict):
        return f"expected {_short(ref)}\n     got {_short(test)}", True
    rs, ts = ref.body.get("status"), test.body.get("status")
    if rs != ts:
        return f"expected {_short(ref)}\n     got {_short(test)}", True
    if rs == "error":
        if ref.body.get("errorType") != test.body.get("errorType") or ref.http_status != test.http_status:
            return f"expected {_short(ref)}\n     got {_short(test)}", True
        return None, True
    if ref.http_status != test.http_status:
        return f"HTTP status: expected {ref.http_status}, got {test.http_status}", True
    return None, False


# ---- query results -------------------------------------------------------------------------
def compare_query(
    ref: Answer, test: Answer, ordered: bool = False, tol: Tolerance = DEFAULT_TOLERANCE,
    sorted_matrix: bool = False,
) -> str | None:
    """Compare two answers of ``/api/v1/query`` or ``/api/v1/query_range``. `ordered`: a
    vector's values must come in the same order; `sorted_matrix`: a matrix's series must
    come in the same (label) order, as ``query_range`` sorts them (an instant query of a
    range vector does not)."""
    diff, done = _compare_envelope(ref, test)
    if done:
        return diff
    rdata, tdata = ref.body.get("data"), test.body.get("data")
    if rdata == tdata:  # the common case, and much faster than the comparison below
        return None
    if not isinstance(tdata, dict):
        return f"data is not an object: {tdata!r:.200}"
    rtype, ttype = rdata.get("resultType"), tdata.get("resultType")
    if rtype != ttype:
        return f"resultType: expected {rtype}, got {ttype} ({_short(test)})"
    rres, tres = rdata.get("result"), tdata.get("result")
    if rtype in ("scalar", "string"):
        return _compare_point(rres, tres, rtype == "string", tol)
    if not isinstance(tres, list):
        return f"result is not a list: {tres!r:.200}"
    if rtype == "vector":
        return _compare_vector(rres, tres, ordered, tol)
    if rtype == "matrix":
        return _compare_matrix(rres, tres, tol, sorted_matrix)
    return f"unknown resultType {rtype!r}"


def _compare_point(ref: Any, test: Any, is_string: bool, tol: Tolerance) -> str | None:
    rt, rv, rraw = _point(ref)
    tt, tv, traw = _point(test)
    lines = []
    if tt is None or (not is_string and tv is None):
        return f"malformed value {test!r:.200}"
    if rt != tt:
        lines.append(f"timestamp: expected {rt} ms, got {tt} ms")
    if is_string:
        if rraw != traw:
            lines.append(f"value: expected {rraw!r}, got {traw!r}")
    elif rv is not None and tv is not None and not tol.equal(rv, tv):
        lines.append(f"value: expected {rraw}, got {traw}")
    return _clip(lines) if lines else None


def _group(items: Sequence[Any]) -> dict[LabelKey, list[Any]]:
    out: dict[LabelKey, list[Any]] = defaultdict(list)
    for item in items:
        out[_key(item.get("metric") if isinstance(item, dict) else None)].append(item)
    return out


def _set_diff(ref: dict[LabelKey, list[Any]], test: dict[LabelKey, list[Any]]) -> list[str]:
    lines = []
    for key in sorted(ref.keys() - test.keys()):
        lines.append(f"missing series {format_labels(key)}")
    for key in sorted(test.keys() - ref.keys()):
        lines.append(f"unexpected series {format_labels(key)}")
    for key in sorted(ref.keys() & test.keys()):
        if len(ref[key]) != len(test[key]):
            lines.append(f"series {format_labels(key)}: {len(ref[key])} times expected, {len(test[key])} got")
    return lines


def _compare_vector(ref: list[Any], test: list[Any], ordered: bool, tol: Tolerance) -> str | None:
    rg, tg = _group(ref), _group(test)
    lines = _set_diff(rg, tg)
    for key in sorted(rg.keys() & tg.keys()):
        for r, t in zip(rg[key], tg[key]):
            rt, rv, rraw = _point(r.get("value"))
            tt, tv, traw = _point(t.get("value") if isinstance(t, dict) else None)
            if tt is None or tv is None:
                lines.append(f"{format_labels(key)}: malformed value {t!r:.120}")
            elif rt != tt:
                lines.append(f"{format_labels(key)}: timestamp expected {rt} ms, got {tt} ms")
            elif rv is not None and not tol.equal(rv, tv):
                lines.append(f"{format_labels(key)}: expected {rraw}, got {traw}")
    if not lines and ordered:
        rvals = [_point(r.get("value"))[1] for r in ref]
        tvals = [_point(t.get("value"))[1] for t in test]
        for i, (a, b) in enumerate(zip(rvals, tvals)):
            if a is None or b is None or not tol.equal(a, b):
                lines.append(
                    f"order: element {i} expected {format_labels(_key(ref[i].get('metric')))} = {a}, "
                    f"got {format_labels(_key(test[i].get('metric')))} = {b}"
                )
                break
    return _clip(lines) if lines else None


def _compare_matrix(ref: list[Any], test: list[Any], tol: Tolerance, check_order: bool) -> str | None:
    rg, tg = _group(ref), _group(test)
    lines = _set_diff(rg, tg)
    for key in sorted(rg.keys() & tg.keys()):
        for r, t in zip(rg[key], tg[key]):
            lines.extend(_compare_points(key, r.get("values"), t.get("values") if isinstance(t, dict) else None, tol))
    if not lines and check_order:
        rorder = [_key(r.get("metric")) for r in ref]
        torder = [_key(t.get("metric")) for t in test]
        if rorder != torder:
            first = next(i for i, (a, b) in enumerate(zip(rorder, torder)) if a != b)
            lines.append(
                f"series order: position {first} expected {format_labels(rorder[first])}, "
                f"got {format_labels(torder[first])} (a matrix is sorted by labels)"
            )
    return _clip(lines) if lines else None


def _compare_points(key: LabelKey, ref: Any, test: Any, tol: Tolerance) -> list[str]:
    if ref == test:
        return []
    name = format_labels(key)
    if not isinstance(test, list):
        return [f"{name}: values is not a list: {test!r:.120}"]
    rpts = [_point(p) for p in ref]
    tpts = [_point(p) for p in test]
    rts = [p[0] for p in rpts]
    tts = [p[0] for p in tpts]
    lines = []
    if rts != tts:
        missing = sorted(t for t in set(rts) - set(tts) if t is not None)
        extra = sorted(t for t in set(tts) - set(rts) if t is not None)
        parts = [f"{name}: {len(rts)} points expected, {len(tts)} got"]
        if missing:
            parts.append(f"missing at {_times(missing)}")
        if extra:
            parts.append(f"unexpected at {_times(extra)}")
        if not missing and not extra:
            parts.append("timestamps out of order or repeated")
        lines.append("; ".join(parts))
    tmap = {p[0]: p for p in tpts}
    bad = []
    for t, v, raw in rpts:
        other = tmap.get(t)
        if other is None:
            continue
        if other[1] is None or v is None or not tol.equal(v, other[1]):
            bad.append(f"@{t}: {raw} vs {other[2]}")
    if bad:
        more = f" (+{len(bad) - 3} more)" if len(bad) > 3 else ""
        lines.append(f"{name}: {len(bad)} values differ, expected vs got: {', '.join(bad[:3])}{more}")
    return lines


def _times(ms: Sequence[int]) -> str:
    shown = ", ".join(str(t) for t in ms[:4])
    return shown + (f" … ({len(ms)} in all)" if len(ms) > 4 else "")


@dataclass
class FineDifferences:
    """What is left between two answers that compare equal: values equal only within the
    tolerance (not bit for bit: another summation order, another ``pow``), and values or
    timestamps equal but printed differently (``1e+21`` for ``1000000000000000000000``, a
    float timestamp where Prometheus writes an integer). Neither fails a case, but the API
    promises Prometheus's JSON byte for byte and "identical results" means the bits."""

    inexact: list[str] = field(default_factory=list)
    printed: list[str] = field(default_factory=list)


def fine_differences(ref: Answer, test: Answer, limit: int = 3) -> FineDifferences:
    """The `FineDifferences` of two answers (at most `limit` examples of each kind)."""
    out = FineDifferences()
    try:
        rdata, tdata = ref.body["data"], test.body["data"]
        rtype, rres, tres = rdata["resultType"], rdata["result"], tdata["result"]
    except (KeyError, TypeError):
        return out
    pairs: list[tuple[str, Any, Any]] = []
    if rtype in ("scalar", "string"):
        pairs.append(("", rres, tres))
    elif rtype in ("vector", "matrix") and isinstance(tres, list):
        tmap = {_key(t.get("metric")): t for t in tres if isinstance(t, dict)}
        for r in rres:
            key = _key(r.get("metric"))
            t = tmap.get(key)
            if t is None:
                continue
            if rtype == "vector":
                pairs.append((format_labels(key), r.get("value"), t.get("value")))
            else:
                pairs.extend((format_labels(key), a, b) for a, b in zip(r.get("values") or [], t.get("values") or []))
    for name, a, b in pairs:
        if not (isinstance(a, list) and isinstance(b, list) and len(a) == len(b) == 2):
            continue
        if type(a[0]) is type(b[0]) and a[1] == b[1]:
            continue
        note = f"{name} [{a[0]!r}, {a[1]!r}] vs [{b[0]!r}, {b[1]!r}]"
        x, y = _float(a[1]), _float(b[1])
        same = x is not None and y is not None and (x == y or (math.isnan(x) and math.isnan(y)))
        if rtype != "string" and not same:
            if len(out.inexact) < limit:
                out.inexact.append(note)
        elif len(out.printed) < limit:
            out.printed.append(note)
    return out


# ---- other API answers ---------------------------------------------------------------------
CompareMode = Literal["exact", "set", "keys", "status"]


def compare_api(ref: Answer, test: Answer, mode: CompareMode) -> str | None:
    """Compare answers of the metadata endpoints: `exact` data, `set` (a list compared
    without order: label names, label values, series), `keys` (only the object's keys,
    e.g. buildinfo) or `status` (only success/error agreement)."""
    diff, done = _compare_envelope(ref, test)
    if done or mode == "status":
        return diff
    rdata, tdata = ref.body.get("data"), test.body.get("data")
    if mode == "exact":
        if rdata != tdata:
            return f"data: expected {json.dumps(rdata)[:300]}\n     got {json.dumps(tdata)[:300]}"
        return None
    if mode == "keys":
        if not isinstance(tdata, dict):
            return f"data is not an object: {tdata!r:.200}"
        missing = sorted(set(rdata) - set(tdata))
        extra = sorted(set(tdata) - set(rdata))
        if missing or extra:
            return f"data keys: missing {missing}, unexpected {extra}"
        return None
    if not isinstance(tdata, list):
        return f"data is not a list: {tdata!r:.200}"
    rset, tset = _as_set(rdata), _as_set(tdata)
    lines = [f"missing {_show(x)}" for x in sorted(rset - tset)]
    lines += [f"unexpected {_show(x)}" for x in sorted(tset - rset)]
    if not lines and len(rdata) != len(tdata):
        lines.append(f"{len(rdata)} entries expected, {len(tdata)} got (duplicates)")
    return _clip(lines) if lines else None


def _as_set(items: Iterable[Any]) -> set[Any]:
    return {_key(x) if isinstance(x, dict) else x for x in items}


def _show(item: Any) -> str:
    if isinstance(item, tuple):
        return format_labels(item)
    return json.dumps(item, ensure_ascii=False)
