"""The query cases: templates over the data set's metrics, expanded into a few hundred
PromQL expressions (in the spirit of promql-compliance-tester's ``promql-test-queries.yml``).

A template names its variable parts as ``{{.name}}``; `expand` substitutes every
combination of the values listed in `VARIANTS`. Each case says whether its instant result
is ordered (``sort``, ``sort_desc``, ungrouped ``topk``/``bottomk``) and whether Prometheus
must fail it (`expect`); the harness checks the reference against that expectation, so a
case that silently stopped testing what it says is noticed.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Literal

from .dataset import END_MS, START_MS

Expect = Literal["any", "ok", "fail"]

#: Fixed evaluation times for ``@`` (seconds): the 2 h block boundary (midnight), an
#: unaligned time in the middle, one just after the first sample, the last slot.
AT_MIDNIGHT = str((END_MS - 3_600_000) // 1000)
AT_UNALIGNED = f"{(END_MS - 1_800_000) / 1000 + 7.5:.1f}"
AT_EARLY = str(START_MS // 1000 + 90)
AT_END = str(END_MS // 1000)

VARIANTS: dict[str, tuple[str, ...]] = {
    "range": ("1m", "5m", "15m", "1h"),
    "short_range": ("1m", "5m"),
    "offset": ("1m", "5m", "10m"),
    "at": (AT_MIDNIGHT, AT_UNALIGNED, AT_EARLY, AT_END),
    "simpleAggrOp": ("sum", "avg", "max", "min", "count", "stddev", "stdvar", "group"),
    "topBottomOp": ("topk", "bottomk"),
    "quantile": ("-0.5", "0", "0.1", "0.5", "0.75", "0.95", "0.99", "1", "1.5"),
    "arithBinOp": ("+", "-", "*", "/", "%", "^"),
    "compBinOp": ("==", "!=", "<", ">", "<=", ">="),
    "binOp": ("+", "-", "*", "/", "%", "^", "==", "!=", "<", ">", "<=", ">="),
    "setOp": ("and", "or", "unless"),
    "simpleTimeAggrOp": ("avg", "sum", "max", "min", "count", "stddev", "stdvar", "last", "present"),
    "simpleMathFunc": (
        "abs", "ceil", "floor", "exp", "sqrt", "ln", "log2", "log10", "round", "sgn",
        "acos", "acosh", "asin", "asinh", "atan", "atanh", "cos", "cosh", "sin", "sinh",
        "tan", "tanh", "deg", "rad",
    ),
    "extrapolatedRateFunc": ("delta", "rate", "increase"),
    "instantRateFunc": ("idelta", "irate"),
    "dateFunc": (
        "day_of_month", "day_of_week", "day_of_year", "days_in_month", "hour", "minute",
        "month", "year",
    ),
    "clampFunc": ("clamp_min", "clamp_max"),
    "smoothing": ("0.1", "0.5", "0.9"),
}


@dataclass(frozen=True)
class Case:
    """One PromQL expression to run on both systems."""

    query: str
    group: str
    #: Instant results are compared in order (range results are sorted by labels anyway).
    ordered: bool = False
    #: What Prometheus must do with it (checked on the reference only): "ok" succeed at
    #: every evaluation, "fail" fail at one at least (an error that depends on the data,
    #: like many-to-many matching, cannot happen where the selectors find nothing).
    expect: Expect = "any"
    #: Run as instant and/or range query.
    instant: bool = True
    range: bool = True


@dataclass(frozen=True)
class Template:
    text: str
    group: str
    ordered: bool = False
    expect: Expect = "any"
    instant: bool = True
    range: bool = True


_PLACEHOLDER = re.compile(r"\{\{\.(\w+)\}\}")


def expand(text: str) -> list[str]:
    """Every substitution of the ``{{.name}}`` placeholders of `text` (in order)."""
    names = list(dict.fromkeys(_PLACEHOLDER.findall(text)))
    if not names:
        return [text]
    out = []
    for combo in itertools.product(*(VARIANTS[n] for n in names)):
        values = dict(zip(names, combo, strict=True))
        out.append(_PLACEHOLDER.sub(lambda m: values[m.group(1)], text))
    return out


def T(text: str, group: str, **kw: object) -> Template:  # noqa: N802 - reads like a table row
    return Template(text, group, **kw)  # type: ignore[arg-type]


MEM = "demo_memory_bytes"
REQ = "demo_requests_total"
CPU = "demo_cpu_seconds_total"
NCPU = "demo_num_cpus"
DISK = "demo_disk_usage_bytes"
BATCH = "demo_batch_last_success_timestamp_seconds"
TEMP = "demo_temperature_celsius"
BUCKET = "demo_request_duration_seconds_bucket"
SPECIAL = "demo_special"
EDGE = "demo_edge_bucket"

TEMPLATES: tuple[Template, ...] = (
    # ---- literals and scalar expressions ------------------------------------------------
    *(T(q, "literal") for q in (
        "42", "1.234", ".123", "1.23e-3", "0x3d", "Inf", "+Inf", "-Inf", "NaN", "-0",
        "1 * 2 + 4 / 6 - 10 % 2 ^ 2", "2 ^ 3 ^ 2", "-2 ^ 2", "(-2) ^ 0.5", "5 % 3", "-5 % 3",
        "5.5 % -2", "1 / 0", "-1 / 0", "0 / 0", "Inf - Inf", "1 == bool 1", "1 != bool 1",
        "2 > bool 1", "NaN == bool NaN", "+(1)", "-(-1)", "((1 + 2))",
        "time()", "time() - 60", "time() / 3600 % 24", "time() > bool 1701388800",
        "vector(1)", "vector(1.23)", "vector(time())", "-vector(1)", "scalar(vector(5))",
        "pi()", "1 + vector(2)", "vector(2) ^ 0.5",
    )),
    T('"a string"', "literal", range=True),
    T("1 == 1", "literal", expect="fail"),
    T("1 +", "literal", expect="fail"),
    T('"a" + 1', "literal", expect="fail"),
    # ---- selectors -----------------------------------------------------------------------
    *(T(q, "selector") for q in (
        MEM, f'{{__name__="{MEM}"}}', f'{MEM}{{type="free"}}', f'{MEM}{{type!="free"}}',
        f'{MEM}{{instance=~"h[12]:.*"}}', f'{MEM}{{instance=~"h1"}}', f'{MEM}{{instance!~".*:9100"}}',
        f'{MEM}{{instance!~"h1:.*", type="used"}}', '{type="free", instance!="h1:9100"}',
        f'{{__name__=~"{MEM}|{NCPU}"}}', f'{{__name__=~"demo_(memory|num).*", job="api"}}',
        f'{MEM}{{job=""}}', f'{MEM}{{nonexistent=""}}', f'{MEM}{{nonexistent!=""}}', f'{MEM}{{job=~""}}',
        f'{MEM}{{job=~"|api"}}', f'{MEM}{{type=~"FREE"}}', f'{MEM}{{type=~"(?i)FREE"}}',
        "nonexistent_metric_name", f'{NCPU}{{instance="h4:9100"}}',
        "up", "up == 0", "job:demo_requests:rate5m", '{__name__="job:demo_requests:rate5m", job="db"}',
        "demo_churn_items", "demo_intermittent", TEMP,
        f'{TEMP}{{room="quote\\"d"}}', f'{TEMP}{{room="back\\\\slash"}}', f'{TEMP}{{room=~"back\\\\\\\\.*"}}',
        f'{TEMP}{{room="new\\nline"}}', f'{TEMP}{{room=~"new.line"}}', f'{TEMP}{{room=~"(?s)new.line"}}',
        f'{TEMP}{{room=~".*☃.*"}}', f'{TEMP}{{room="uni ☃ ünïcödé 日本"}}', f'{TEMP}{{room=" "}}',
        f'{TEMP}{{room="{{}}=,"}}', f'{TEMP}{{room="trailing\\\\"}}', f'{TEMP}{{sensor=""}}',
        f"{TEMP}{{sensor!=\"\"}}", f"{TEMP}{{room=~'.*\\\\\\\\.*'}}", f"{TEMP}{{room!~'[a-z]+'}}",
        f"{TEMP}{{room=`quote\"d`}}",
    )),
    T('{__name__=~".*"}', "selector", expect="fail"),
    T('{job=""}', "selector", expect="fail"),
    T(f'{MEM}{{type=~"(free"}}', "selector", expect="fail"),
    T(f"{MEM} offset {{{{.offset}}}}", "offset"),
    T(f"{MEM} offset -{{{{.offset}}}}", "offset"),
    T(f"{REQ} offset 1h", "offset"),
    T(f"{MEM} offset 3h", "offset"),
    T(f"{MEM} @ {{{{.at}}}}", "at"),
    T(f"{MEM} @ {{{{.at}}}} offset 5m", "at"),
    T(f"{MEM} offset 5m @ {AT_MIDNIGHT}", "at"),
    T(f"{MEM} @ start()", "at"),
    T(f"{MEM} @ end()", "at"),
    T(f"sum({MEM} @ end()) by (type)", "at"),
    T(f"rate({REQ}[5m] @ {AT_MIDNIGHT})", "at"),
    T(f"rate({REQ}[5m] @ end() offset 10m)", "at"),
    T(f"timestamp({MEM} @ {AT_UNALIGNED})", "at"),
    T(f"{MEM} @ {AT_MIDNIGHT} + {MEM}", "at"),
    T(f"max_over_time({MEM}[10m] @ start())", "at"),
    T(f"{MEM} @ (1 + 1)", "at", expect="fail"),
    # ---- range selectors as results (instant only; a range query of them is an error) ----
    T(f'{MEM}{{instance="h1:9100", type="free"}}[1m]', "range_selector"),
    T(f'{REQ}{{instance="h2:9100", method="get", code="200"}}[2m] offset 1m', "range_selector"),
    T("demo_intermittent[5m]", "range_selector"),
    T(f'{MEM}{{type="used"}}[45s] @ {AT_MIDNIGHT}', "range_selector"),
    T(f"{TEMP}[1m]", "range_selector"),
    # ---- aggregations ------------------------------------------------------------------
    T(f"{{{{.simpleAggrOp}}}}({MEM})", "aggregation"),
    T("{{.simpleAggrOp}}(nonexistent_metric_name)", "aggregation"),
    T(f"{{{{.simpleAggrOp}}}} by() ({MEM})", "aggregation"),
    T(f"{{{{.simpleAggrOp}}}} by(instance) ({MEM})", "aggregation"),
    T(f"{{{{.simpleAggrOp}}}} by(instance, type) ({MEM})", "aggregation"),
    T(f"{{{{.simpleAggrOp}}}} by(nonexistent) ({MEM})", "aggregation"),
    T(f"{{{{.simpleAggrOp}}}} without() ({MEM})", "aggregation"),
    T(f"{{{{.simpleAggrOp}}}} without(instance) ({MEM})", "aggregation"),
    T(f"{{{{.simpleAggrOp}}}} without(instance, type) ({MEM})", "aggregation"),
    T(f"{{{{.simpleAggrOp}}}} without(nonexistent) ({MEM})", "aggregation"),
    T(f"{{{{.simpleAggrOp}}}}({TEMP})", "aggregation"),
    T(f"{{{{.simpleAggrOp}}}} by (job) ({REQ})", "aggregation"),
    T(f"sum by (__name__) ({{__name__=~\"{MEM}|{NCPU}\"}})", "aggregation"),
    T(f"sum without (__name__) ({{__name__=~\"{MEM}|{NCPU}\"}})", "aggregation"),
    T(f"count by (__name__) ({{__name__=~\"demo_.*\"}})", "aggregation"),
    T(f"max by (room) ({TEMP})", "aggregation"),
    T(f"min without (room) ({TEMP})", "aggregation"),
    T(f"avg(max by(type) ({MEM}))", "aggregation"),
    T(f"sum(sum by (instance) ({MEM}))", "aggregation"),
    T(f"{{{{.topBottomOp}}}}(3, {MEM})", "topk", ordered=True),
    T(f"{{{{.topBottomOp}}}} by(instance) (2, {MEM})", "topk"),
    T(f"{{{{.topBottomOp}}}} without(instance) (2, {MEM})", "topk"),
    T(f"{{{{.topBottomOp}}}} without() (2, {MEM})", "topk"),
    T(f"{{{{.topBottomOp}}}}(0, {MEM})", "topk"),
    T(f"{{{{.topBottomOp}}}}(100, {MEM})", "topk", ordered=True),
    T(f"{{{{.topBottomOp}}}}(2.9, {MEM})", "topk", ordered=True),
    T(f"{{{{.topBottomOp}}}}(2, {TEMP})", "topk"),
    T(f"{{{{.topBottomOp}}}}(scalar(min({NCPU})), {MEM})", "topk", ordered=True),
    T(f"topk(-1, {MEM})", "topk"),
    T(f'topk("x", {MEM})', "topk", expect="fail"),
    T(f"quantile({{{{.quantile}}}}, {MEM})", "quantile"),
    T(f"quantile by (instance) (0.9, {MEM})", "quantile"),
    T(f"quantile without (type) (0.25, {MEM})", "quantile"),
    T(f"quantile(0.5, {TEMP})", "quantile"),
    T(f"quantile(NaN, {MEM})", "quantile"),
    T(f'count_values("value", {NCPU})', "count_values"),
    T(f'count_values by (job) ("value", {NCPU})', "count_values"),
    T(f'count_values("instance", {NCPU})', "count_values"),
    T(f'count_values("value", {BUCKET})', "count_values"),
    T(f'count_values("value", {TEMP})', "count_values"),
    T(f'count_values("value", demo_bool_flag)', "count_values"),
    T(f'count_values("invalid-name", {NCPU})', "count_values", expect="fail"),
    T(f"group by (job) ({REQ})", "aggregation"),
    T(f"stddev by (job) (rate({REQ}[5m]))", "aggregation"),
    T(f"sum({MEM}) by (type) / ignoring(type) group_left sum({MEM})", "aggregation"),
    # ---- binary operators ---------------------------------------------------------------
    T(f"{NCPU} + (1 {{{{.compBinOp}}}} bool 2)", "binop_scalar"),
    T(f"{MEM} {{{{.binOp}}}} 1.2345e9", "binop_scalar"),
    T(f"{MEM} {{{{.compBinOp}}}} bool 3e9", "binop_scalar"),
    T(f"3e9 {{{{.compBinOp}}}} bool {MEM}", "binop_scalar"),
    T(f"0.12345 {{{{.binOp}}}} {NCPU}", "binop_scalar"),
    T(f"(1 * 2 + 4 / 6 - (10%7)^2) {{{{.binOp}}}} {NCPU}", "binop_scalar"),
    T(f"{NCPU} {{{{.binOp}}}} (1 * 2 + 4 / 6 - 10)", "binop_scalar"),
    T(f"{TEMP} {{{{.binOp}}}} 20", "binop_scalar"),
    T(f"timestamp({MEM} * 1)", "binop_scalar"),
    T(f"timestamp(-{MEM})", "binop_scalar"),
    T(f"{MEM} {{{{.binOp}}}} on(instance, job, type) {MEM}", "binop_vector"),
    T(f"sum by(instance, type) ({MEM}) {{{{.binOp}}}} on(instance, type) group_left(job) {MEM}", "binop_vector"),
    T(f"{MEM} {{{{.compBinOp}}}} bool on(instance, job, type) {MEM}", "binop_vector"),
    T(f"{MEM} / on(instance, job, type, __name__) {MEM}", "binop_vector"),
    T(f"sum without(job) ({MEM}) / on(instance, type) {MEM}", "binop_vector"),
    T(f"sum without(job) ({MEM}) / on(instance, type) group_left {MEM}", "binop_vector"),
    T(f"sum without(job) ({MEM}) / on(instance, type) group_left(job) {MEM}", "binop_vector"),
    T(f"{MEM} / on(instance, job) group_left {NCPU}", "binop_vector"),
    T(f"{MEM} / ignoring(type) group_left {NCPU}", "binop_vector"),
    T(f"{NCPU} * on(instance) group_right {MEM}", "binop_vector"),
    T(f"{NCPU} * on(instance) group_right(job) {MEM}", "binop_vector"),
    T(f"{MEM} / on(instance, type, job, non_existent) {MEM}", "binop_vector"),
    T(f"{MEM} - {MEM} offset 5m", "binop_vector"),
    T(f"{MEM} > on(instance, type) ({MEM} offset 1m)", "binop_vector"),
    T(f"{MEM} + {NCPU}", "binop_vector"),
    T(f"{MEM} + ignoring(type) {NCPU}", "binop_vector", expect="any"),
    T(f"{REQ} + on(job) {REQ}", "binop_vector", expect="fail"),
    T(f"{MEM} / on(instance) {NCPU}", "binop_vector", expect="fail"),
    T(f"{NCPU} / on(instance) group_left {MEM}", "binop_vector", expect="fail"),
    T(f"{MEM} + on(instance) group_left {MEM}", "binop_vector", expect="fail"),
    T(f"{MEM} and on(instance) group_left {NCPU}", "binop_vector", expect="fail"),
    T(f"{NCPU} * Inf", "nan_inf"),
    T(f"{NCPU} * -Inf", "nan_inf"),
    T(f"{NCPU} * NaN", "nan_inf"),
    T(f"{TEMP} * 0", "nan_inf"),
    T(f"{TEMP} - {TEMP}", "nan_inf"),
    T(f"{TEMP} == {TEMP}", "nan_inf"),
    T(f"{TEMP} != bool {TEMP}", "nan_inf"),
    T(f"{TEMP} > -Inf", "nan_inf"),
    T(f"{MEM} + -(1)", "unary"),
    T(f"-{MEM}", "unary"),
    T(f"-{MEM} ^ 2", "unary"),
    T(f"- - {MEM}", "unary"),
    T("1 {{.arithBinOp}} time()", "binop_time"),
    T("time() {{.arithBinOp}} 1", "binop_time"),
    T("time() {{.compBinOp}} bool 1", "binop_time"),
    T("time() {{.compBinOp}} bool time()", "binop_time"),
    T(f"time() {{{{.binOp}}}} {NCPU}", "binop_time"),
    T(f"{NCPU} {{{{.binOp}}}} time()", "binop_time"),
    T(f"{MEM} {{{{.setOp}}}} {MEM}{{type=\"free\"}}", "set_op"),
    T(f"{MEM}{{type=\"free\"}} {{{{.setOp}}}} {MEM}", "set_op"),
    T(f"{MEM} {{{{.setOp}}}} on(instance) {NCPU}", "set_op"),
    T(f"{MEM} {{{{.setOp}}}} ignoring(type) {NCPU}", "set_op"),
    T(f"{MEM} {{{{.setOp}}}} on() up", "set_op"),
    T(f"{REQ} {{{{.setOp}}}} on(job) (up == 1)", "set_op"),
    T(f"demo_churn_items {{{{.setOp}}}} on(ns) demo_churn_items{{pod=\"p2\"}}", "set_op"),
    T(f"({MEM} > 3e9) or ({MEM} < 1.5e9)", "set_op"),
    T(f"{MEM} and nonexistent_metric_name", "set_op"),
    T(f"nonexistent_metric_name or {NCPU}", "set_op"),
    T(f"{MEM} unless {MEM}", "set_op"),
    T("1 and 1", "set_op", expect="fail"),
    T(f"{MEM} and 1", "set_op", expect="fail"),
    T(f"{MEM} and bool {NCPU}", "set_op", expect="fail"),
    # ---- functions over time --------------------------------------------------------------
    T(f"{{{{.simpleTimeAggrOp}}}}_over_time({MEM}[{{{{.range}}}}])", "over_time"),
    T(f"{{{{.simpleTimeAggrOp}}}}_over_time({TEMP}[{{{{.short_range}}}}])", "over_time"),
    T("{{.simpleTimeAggrOp}}_over_time(demo_intermittent[{{.short_range}}])", "over_time"),
    T(f"quantile_over_time({{{{.quantile}}}}, {MEM}[{{{{.short_range}}}}])", "over_time"),
    T(f"quantile_over_time(0.5, {TEMP}[5m])", "over_time"),
    T(f"count_over_time({MEM}[30s])", "over_time"),
    T(f"count_over_time({MEM}{{instance=\"h1:9100\"}}[15s])", "over_time"),
    T(f"sum_over_time({MEM}[1m] offset 1m)", "over_time"),
    T(f"absent_over_time({MEM}[5m])", "absent"),
    T("absent_over_time(nonexistent_metric_name{job=\"x\"}[5m])", "absent"),
    T("absent_over_time(demo_intermittent[1m])", "absent"),
    T("absent_over_time(demo_intermittent{instance=\"b1\"}[10m])", "absent"),
    T("present_over_time(demo_churn_items[10m])", "over_time"),
    T(f"{{{{.extrapolatedRateFunc}}}}(nonexistent_metric[5m])", "rate"),
    T(f"{{{{.extrapolatedRateFunc}}}}({REQ}[{{{{.range}}}}])", "rate"),
    T(f"{{{{.extrapolatedRateFunc}}}}({CPU}[{{{{.short_range}}}}])", "rate"),
    T(f"{{{{.extrapolatedRateFunc}}}}({MEM}[5m])", "rate"),
    T(f"{{{{.extrapolatedRateFunc}}}}({BUCKET}[5m])", "rate"),
    T(f"{{{{.extrapolatedRateFunc}}}}({REQ}[30s])", "rate"),
    T(f"{{{{.extrapolatedRateFunc}}}}({REQ}[15s])", "rate"),
    T(f"{{{{.extrapolatedRateFunc}}}}({REQ}[5m] offset 5m)", "rate"),
    T(f"{{{{.extrapolatedRateFunc}}}}({TEMP}[5m])", "rate"),
    T(f"{{{{.instantRateFunc}}}}({REQ}[{{{{.short_range}}}}])", "rate"),
    T(f"{{{{.instantRateFunc}}}}({MEM}[1m])", "rate"),
    T(f"{{{{.instantRateFunc}}}}({REQ}[15s])", "rate"),
    T(f"sum by (job) (rate({REQ}[5m]))", "rate"),
    T(f"sum by (job, code) (increase({REQ}[1h]))", "rate"),
    T(f"rate({{__name__=~\"demo_request_duration_seconds_(sum|count)\"}}[5m])", "rate", expect="fail"),
    T(f"rate({MEM})", "rate", expect="fail"),
    T(f"rate({REQ}[5m:1m])", "rate"),
    T(f"deriv({DISK}[{{{{.range}}}}])", "deriv"),
    T(f"deriv({MEM}[5m])", "deriv"),
    T(f"deriv({TEMP}[5m])", "deriv"),
    T(f"predict_linear({DISK}[{{{{.range}}}}], 600)", "deriv"),
    T(f"predict_linear({DISK}[15m], -3600)", "deriv"),
    T(f"predict_linear({MEM}[5m], 0)", "deriv"),
    T(f"holt_winters({MEM}[10m], {{{{.smoothing}}}}, {{{{.smoothing}}}})", "holt_winters"),
    T(f"holt_winters({DISK}[1h], 0.3, 0.3)", "holt_winters"),
    T(f"holt_winters({TEMP}[5m], 0.5, 0.5)", "holt_winters"),
    T(f"holt_winters({MEM}[10m], 1.5, 0.5)", "holt_winters", expect="fail"),
    T(f"holt_winters({MEM}[10m], 0.5, 0)", "holt_winters", expect="fail"),
    T(f"changes({BATCH}[{{{{.range}}}}])", "changes"),
    T("changes(demo_bool_flag[15m])", "changes"),
    T(f"changes({TEMP}[10m])", "changes"),
    T(f"resets({REQ}[{{{{.range}}}}])", "changes"),
    T("resets(demo_bool_flag[1h])", "changes"),
    T(f"resets({BUCKET}[1h])", "changes"),
    # ---- histograms ----------------------------------------------------------------------
    T(f"histogram_quantile({{{{.quantile}}}}, rate({BUCKET}[5m]))", "histogram"),
    T(f"histogram_quantile(0.9, sum by (le) (rate({BUCKET}[5m])))", "histogram"),
    T(f"histogram_quantile(0.5, sum by (job, le) (rate({BUCKET}[10m])))", "histogram"),
    T(f"histogram_quantile(0.99, sum without (instance, method) (rate({BUCKET}[1h])))", "histogram"),
    T(f"histogram_quantile(0.75, {BUCKET})", "histogram"),
    T(f"histogram_quantile(0.5, {BUCKET}{{instance=\"h4:9100\"}})", "histogram"),
    T(f"histogram_quantile(NaN, rate({BUCKET}[5m]))", "histogram"),
    T("histogram_quantile(0.9, nonexistent_metric)", "histogram"),
    T(f"histogram_quantile(0.9, {MEM})", "histogram"),
    T('histogram_quantile(0.9, {__name__=~"demo_request_duration_seconds_.+"})', "histogram"),
    T(f"histogram_quantile(0.9, rate({BUCKET}{{le!=\"+Inf\"}}[5m]))", "histogram"),
    T(f"histogram_quantile(0.9, rate({BUCKET}{{le=~\"0.1|1|1.0|\\\\+Inf\"}}[5m]))", "histogram"),
    T(f"histogram_quantile(scalar(vector(0.5)), rate({BUCKET}[5m]))", "histogram"),
    T(f"sum by (le) (increase({BUCKET}[10m]))", "histogram"),
    T("rate(demo_request_duration_seconds_sum[5m]) / rate(demo_request_duration_seconds_count[5m])", "histogram"),
    T('demo_rpc_latency_seconds{quantile="0.99"}', "histogram"),
    T("max by (quantile) (demo_rpc_latency_seconds)", "histogram"),
    T("rate(demo_rpc_latency_seconds_sum[5m]) / ignoring() rate(demo_rpc_latency_seconds_count[5m])", "histogram"),
    # ---- label manipulation ---------------------------------------------------------------
    T(f'label_replace({NCPU}, "job", "destination-value-$1", "instance", "h(.*):9100")', "labels"),
    T(f'label_replace({NCPU}, "job", "destination-value-$1", "instance", "host:(.*)")', "labels"),
    T(f'label_replace({NCPU}, "job", "$1-$2", "instance", "h(.*):(.*)")', "labels"),
    T(f'label_replace({NCPU}, "job", "value-$1", "nonexistent-src", "source-value-(.*)")', "labels"),
    T(f'label_replace({NCPU}, "job", "value-$1", "nonexistent-src", "(.*)")', "labels"),
    T(f'label_replace({NCPU}, "job", "value-$1", "instance", "non-matching-regex")', "labels"),
    T(f'label_replace({NCPU}, "job", "", "dst", ".*")', "labels"),
    T(f'label_replace({NCPU}, "job", "${{1}}x", "instance", "(h1).*")', "labels"),
    T(f'label_replace({NCPU}, "new", "$name", "instance", "(?P<name>h[0-9]).*")', "labels"),
    T(f'label_replace({NCPU}, "__name__", "renamed", "", "")', "labels"),
    T(f'label_replace({TEMP}, "r", "<$1>", "room", "(.*)")', "labels"),
    T(f'label_replace({NCPU}, "job", "value-$1", "src", "(.*")', "labels", expect="fail"),
    T(f'label_replace({NCPU}, "\\xff", "", "src", "(.*)")', "labels", expect="fail"),
    T(f'label_replace({NCPU}, "instance", "", "", "")', "labels", expect="fail"),
    T(f'label_join({NCPU}, "new_label", "-", "instance", "job")', "labels"),
    T(f'label_join({NCPU}, "job", "-", "instance", "job")', "labels"),
    T(f'label_join({NCPU}, "job", "-", "instance")', "labels"),
    T(f'label_join({NCPU}, "job", "")', "labels"),
    T(f'label_join({TEMP}, "x", "|", "room", "sensor", "room")', "labels"),
    T(f'label_join({NCPU}, "\\xff", "-", "instance")', "labels", expect="fail"),
    T(f'label_join({NCPU}, "instance", "")', "labels", expect="fail"),
    # ---- date and time --------------------------------------------------------------------
    T("{{.dateFunc}}()", "date"),
    T(f"{{{{.dateFunc}}}}({BATCH} offset {{{{.offset}}}})", "date"),
    T("{{.dateFunc}}(vector(1701388799))", "date"),
    T("{{.dateFunc}}(vector(-1))", "date"),
    T("{{.dateFunc}}(vector(NaN))", "date"),
    T(f"timestamp({NCPU})", "date"),
    T(f"timestamp(timestamp({NCPU}))", "date"),
    T("timestamp(demo_intermittent)", "date"),
    T(f"timestamp({MEM} offset 5m)", "date"),
    T("timestamp(vector(1))", "date"),
    T(f"time() - max({BATCH})", "date"),
    # ---- math ------------------------------------------------------------------------------
    T(f"{{{{.simpleMathFunc}}}}({MEM})", "math"),
    T(f"{{{{.simpleMathFunc}}}}(-{MEM})", "math"),
    T(f"{{{{.simpleMathFunc}}}}({TEMP} / 30)", "math"),
    T(f"round({MEM}, 1000)", "math"),
    T(f"round({TEMP}, 0.3)", "math"),
    T(f"round({TEMP}, -0.5)", "math"),
    T("round(vector(2.5))", "math"),
    T("round(vector(-2.5))", "math"),
    T(f"round({MEM}, {NCPU})", "math", expect="fail"),
    T(f"{{{{.clampFunc}}}}({MEM}, 2e9)", "math"),
    T(f"{{{{.clampFunc}}}}({TEMP}, 20)", "math"),
    T(f"clamp({MEM}, 0, 1)", "math"),
    T(f"clamp({MEM}, 0, 1e12)", "math"),
    T(f"clamp({MEM}, 1e12, 0)", "math"),
    T(f"clamp({MEM}, 1e12, 1e12)", "math"),
    T(f"clamp({TEMP}, 19, 21)", "math"),
    T(f"clamp({MEM}, NaN, 1)", "math"),
    T(f"sqrt(-{NCPU})", "math"),
    T(f"ln({NCPU} - {NCPU})", "math"),
    T(f"exp({MEM})", "math"),
    # ---- sorting, absence, scalar/vector ---------------------------------------------------
    T(f"sort({MEM})", "sort", ordered=True),
    T(f"sort_desc({MEM})", "sort", ordered=True),
    T(f"sort({TEMP})", "sort", ordered=True),
    T(f"sort_desc({TEMP})", "sort", ordered=True),
    T(f"sort(rate({REQ}[5m]))", "sort", ordered=True),
    T(f"sort_desc(sum by (instance) ({MEM}))", "sort", ordered=True),
    T(f"absent({MEM})", "absent"),
    T("absent(nonexistent_metric_name)", "absent"),
    T('absent(nonexistent_metric_name{job="x", instance=~"y"})', "absent"),
    T('absent(nonexistent_metric_name{job="x", job="y"})', "absent"),
    T('absent({__name__="nonexistent_metric_name", job="x"})', "absent"),
    T(f"absent(sum({MEM}))", "absent"),
    T("absent(sum(nonexistent_metric_name))", "absent"),
    T('absent(demo_churn_items{pod="p0"})', "absent"),
    T('absent(demo_intermittent{instance="b1"})', "absent"),
    T("absent(vector(1))", "absent"),
    T(f"scalar({NCPU})", "scalar"),
    T(f"scalar(sum({NCPU}))", "scalar"),
    T(f'scalar({NCPU}{{instance="h1:9100"}})', "scalar"),
    T("scalar(nonexistent_metric_name)", "scalar"),
    T(f'{MEM} / scalar(sum({NCPU}))', "scalar"),
    T(f'vector(scalar({NCPU}{{instance="h4:9100"}}))', "scalar"),
    T(f"scalar({NCPU}) + 1", "scalar"),
    T(f"vector({MEM})", "scalar", expect="fail"),
    # ---- subqueries ------------------------------------------------------------------------
    T(f"max_over_time((time() - max({BATCH}) < 1000)[5m:10s] offset 5m)", "subquery"),
    T(f"avg_over_time(rate({CPU}[1m])[2m:10s])", "subquery"),
    T(f"max_over_time(rate({REQ}[1m])[10m:1m])", "subquery"),
    T(f"avg_over_time({MEM}[10m:])", "subquery"),
    T(f"sum_over_time({NCPU}[5m:30s] offset 2m)", "subquery"),
    T(f"rate(sum({REQ})[10m:15s])", "subquery"),
    T(f"min_over_time(max_over_time({MEM}[2m:30s])[10m:1m])", "subquery"),
    T(f"count_over_time({MEM}[1m:7s])", "subquery"),
    T(f"last_over_time({MEM}[3m:1m] @ {AT_MIDNIGHT})", "subquery"),
    T(f"max_over_time({MEM} @ {AT_UNALIGNED}[5m:1m])", "subquery"),
    T(f"sum_over_time(demo_intermittent[20m:2m])", "subquery"),
    T(f"deriv(avg({DISK})[15m:1m])", "subquery"),
    T(f"({MEM} > 3e9)[5m:1m]", "subquery"),
    T(f"{MEM}[5m:1m]", "subquery"),
    T(f"quantile_over_time(0.5, (sum by (job) (rate({REQ}[5m])))[30m:5m])", "subquery"),
    T(f"changes(({NCPU} > 3)[1h:1m])", "subquery"),
    T(f"rate({MEM}[5m])[10m:0s]", "subquery", expect="fail"),
    # ---- float64 edges (demo_special) ------------------------------------------------------
    T(f"{{{{.simpleAggrOp}}}}({SPECIAL})", "special"),
    T(f"{{{{.simpleAggrOp}}}}({SPECIAL}{{kind=~\"huge.*\"}})", "special"),
    T(f"{{{{.simpleAggrOp}}}}({SPECIAL}{{kind=~\"nan|one\"}})", "special"),
    T(f"{{{{.simpleAggrOp}}}}({SPECIAL}{{kind=~\"inf|neginf\"}})", "special"),
    T(f"{{{{.simpleAggrOp}}}}({SPECIAL}{{kind=~\"cancel.*|one\"}})", "special"),
    T(f"{{{{.simpleAggrOp}}}}({SPECIAL}{{kind=~\"step|one\"}})", "special"),
    T(f"{{{{.topBottomOp}}}}(3, {SPECIAL})", "special", ordered=True),
    T(f"{{{{.topBottomOp}}}}(20, {SPECIAL})", "special", ordered=True),
    T(f"quantile({{{{.quantile}}}}, {SPECIAL})", "special"),
    T(f"sort({SPECIAL})", "special", ordered=True),
    T(f"sort_desc({SPECIAL})", "special", ordered=True),
    T(f'count_values("value", {SPECIAL})', "special"),
    T(f'count_values("value", {SPECIAL} * 3)', "special"),
    T(f'count_values("value", {SPECIAL} / 7)', "special"),
    T(f"{{{{.simpleTimeAggrOp}}}}_over_time({SPECIAL}[5m])", "special"),
    T(f"quantile_over_time(0.3, {SPECIAL}[5m])", "special"),
    T(f"{{{{.extrapolatedRateFunc}}}}({SPECIAL}[5m])", "special"),
    T(f"{{{{.instantRateFunc}}}}({SPECIAL}[5m])", "special"),
    T(f"deriv({SPECIAL}[5m])", "special"),
    T(f"predict_linear({SPECIAL}[5m], 60)", "special"),
    T(f"holt_winters({SPECIAL}[5m], 0.5, 0.5)", "special"),
    T(f"changes({SPECIAL}[5m])", "special"),
    T(f"resets({SPECIAL}[10m])", "special"),
    T(f"{{{{.simpleMathFunc}}}}({SPECIAL})", "special"),
    T(f"{SPECIAL} {{{{.binOp}}}} 0", "special"),
    T(f"-1 {{{{.binOp}}}} {SPECIAL}", "special"),
    T(f"{SPECIAL} {{{{.binOp}}}} {SPECIAL}", "special"),
    T(f"{SPECIAL} % -3", "special"),
    T(f"-{MEM} % 3e9", "special"),
    T(f"{MEM} % -3e9", "special"),
    T(f"{SPECIAL} atan2 1", "special"),
    T(f"1 atan2 {SPECIAL}", "special"),
    T("1 atan2 2", "special"),
    T(f"{MEM} atan2 on(instance) group_left {NCPU}", "special"),
    T(f"1 / {SPECIAL}{{kind=\"negzero\"}}", "special"),
    T(f"ln({SPECIAL}{{kind=\"negzero\"}})", "special"),
    T(f"clamp({SPECIAL}, -1, 1)", "special"),
    T(f"clamp_min({SPECIAL}, 0)", "special"),
    T(f"round({SPECIAL})", "special"),
    T(f"round({SPECIAL}, 0.1)", "special"),
    T(f'scalar({SPECIAL}{{kind="nan"}})', "special"),
    T(f'vector(scalar({SPECIAL}{{kind="inf"}}))', "special"),
    T(f"histogram_quantile(0.5, label_replace({SPECIAL}, \"le\", \"$1\", \"kind\", \"(.*)\"))", "special"),
    T(f"histogram_count({MEM})", "special"),
    T(f"histogram_sum({MEM})", "special"),
    T(f"histogram_fraction(0, 0.1, {MEM})", "special"),
    T(f"timestamp({SPECIAL})", "special"),
    T(f"1 ^ {SPECIAL}", "special"),
    T(f"0 ^ {SPECIAL}", "special"),
    T(f"{SPECIAL} ^ -1", "special"),
    T(f"{SPECIAL} ^ 0.5", "special"),
    T(f"{SPECIAL} % Inf", "special"),
    T(f"{SPECIAL} == bool 0", "special"),
    T(f"round({MEM}, 0)", "special"),
    T(f"clamp({MEM}, NaN, NaN)", "special"),
    T(f"exp({SPECIAL} * 710)", "special"),
    *(T(q, "special") for q in (
        "NaN ^ 0", "1 ^ NaN", "(-1) ^ Inf", "(-1) ^ -Inf", "0 ^ -1", "(-0) ^ -1", "(-8) ^ (1/3)",
        "5 % Inf", "Inf % 5", "-5 % -Inf", "0 * Inf", "-0 == bool 0", "sqrt(-0)", "ln(vector(0))",
    )),
    # ---- histogram shapes (demo_edge_bucket) ----------------------------------------------
    T(f"histogram_quantile({{{{.quantile}}}}, {EDGE})", "histogram_edge"),
    T(f"histogram_quantile(0.5, rate({EDGE}[5m]))", "histogram_edge"),
    T(f"histogram_quantile(0.5, sum by (le) ({EDGE}))", "histogram_edge"),
    T(f"histogram_quantile(0.9, {EDGE}{{le!=\"+Inf\"}})", "histogram_edge"),
    T(f"histogram_quantile(0.9, sum without (case) ({EDGE}{{case=~\"normal|dup_le\"}}))", "histogram_edge"),
    T(f'histogram_quantile(0.5, label_replace({EDGE}, "le", "+inf", "le", "\\\\+Inf"))', "histogram_edge"),
    T(f'histogram_quantile(0.5, label_replace({EDGE}, "le", "Inf", "le", "\\\\+Inf"))', "histogram_edge"),
    T(f'histogram_quantile(0.5, label_replace({EDGE}, "le", " 1", "le", "1"))', "histogram_edge"),
    T(f'histogram_quantile(0.5, label_replace({EDGE}, "le", "0x1", "le", "1"))', "histogram_edge"),
    # ---- more vector matching and grouping ----------------------------------------------------
    T(f"sum by (sensor) ({TEMP})", "binop_vector"),
    T(f"count without (room) ({TEMP})", "binop_vector"),
    T(f"{MEM} * on(instance) group_left(nonexistent) {NCPU}", "binop_vector"),
    T(f"{MEM} * on(instance) group_left(__name__) {NCPU}", "binop_vector"),
    T(f"{MEM} > bool on(instance) group_left {NCPU}", "binop_vector"),
    T(f"{MEM} > on(instance) group_left(job) ({NCPU} * 1e9)", "binop_vector"),
    T(f"{NCPU} or on(instance) {MEM}", "binop_vector"),
    T(f"{MEM} unless on() {NCPU}", "binop_vector"),
    T(f'{{__name__=~"demo_rpc_latency_seconds_(sum|count)"}} / on(instance, job) {NCPU}', "binop_vector"),
    T(f'{{__name__=~"demo_rpc_latency_seconds_(sum|count)"}} / ignoring(__name__) {NCPU}', "binop_vector"),
    T(f"sum({MEM}) + sum({NCPU})", "binop_vector"),
    T(f"vector(time()) - time()", "binop_vector"),
    T(f"deriv({MEM}[30s])", "deriv"),
    T(f"predict_linear({MEM}[30s], 60)", "deriv"),
    T("{{.dateFunc}}(vector(1709164800))", "date"),
    T("{{.dateFunc}}(vector(1704067199.999))", "date"),
    T("{{.dateFunc}}(vector(1e12))", "date"),
    T("{{.dateFunc}}(vector(Inf))", "date"),
    T("minute(vector(1701388799.9))", "date"),
    # ---- regular expressions (RE2, not Python's re) -----------------------------------------
    *(T(f"{TEMP}{{room=~{rx}}}", "regex") for rx in (
        '"[[:alpha:]]+"', '"\\\\pL+"', '".*\\\\p{Han}.*"', '"\\\\Qquote\\"d\\\\E"', '"(?i)KITCHEN"',
        '"kit.*|"', '"[^a-z]+"', '"\\\\s"', '"\\\\S+"', '"a{0}kitchen"', '"(?U)k.*"', '".*\\\\x{2603}.*"',
        '"\\\\w+"', '"\\\\d*"', '"(kitchen)+"', '"(?m)^new$"', '"(?s).*line"', '"new$"', '"^kitchen$"',
        '".*"', '".+"', '"[\\\\\\\\]+.*"', "'\\\\\\\\.*'", "`.*\\\\.*`", '"trailing\\\\\\\\"',
    )),
    *(T(f"{TEMP}{{room!~{rx}}}", "regex") for rx in ('"[[:alpha:]]+"', '"(?i)K.*"', '".*\\\\n.*"', '"(?s).*\\\\n.*"')),
    T(f'{TEMP}{{room=~"(?=k)kitchen"}}', "regex", expect="fail"),
    T(f'{TEMP}{{room=~"(k)\\\\1"}}', "regex", expect="fail"),
    T(f'{TEMP}{{room=~"(?<n>k).*"}}', "regex", expect="any"),
    T(f'{TEMP}{{room=~"k\\\\C*"}}', "regex", expect="any"),
    T(f'{TEMP}{{room=~"a**"}}', "regex", expect="fail"),
    T(f'label_replace({TEMP}, "x", "$1", "room", "(?s)(.*)")', "regex"),
    T(f'label_replace({NCPU}, "x", "$$1", "instance", "(.*)")', "regex"),
    T(f'label_replace({NCPU}, "x", "${{1", "instance", "(.*)")', "regex"),
    T(f'label_replace({NCPU}, "x", "$10", "instance", "(h)(.*)")', "regex"),
    T(f'label_replace({NCPU}, "x", "$1x", "instance", "(h.*)")', "regex"),
    T(f'label_replace({NCPU}, "x", "$2", "instance", "(h.*)")', "regex"),
    T(f'label_replace({NCPU}, "x", "$1 $1", "instance", "(h.*)")', "regex"),
    T(f'label_replace({NCPU}, "x", "\\\\1", "instance", "(h.*)")', "regex"),
    T(f'label_replace({NCPU}, "x", "$0", "instance", "h(.*)")', "regex"),
    T(f'label_replace({NCPU}, "x", "a", "instance", "(?=h).*")', "regex", expect="fail"),
    # ---- syntax corners ------------------------------------------------------------------------
    *(T(q, "syntax") for q in (
        "017", "08", "0x1F", "0X1f", "1e3", "1E-2", "inf", "nAn", "-inf", "+.5", "5.", "0.5e1",
        f"{MEM} # a comment", f"sum(\n  {MEM}\n)", f"sum(\t{MEM})\tby\n(type)",
        f"rate({REQ}[1h30m])", f"rate({REQ}[90s])", f"{MEM} offset 1h30m", f"count_over_time({MEM}[1d])",
        f"count_over_time({MEM}[1ms])", f"{MEM}[5m] offset 1w", f"{MEM}{{}}", f"sum({MEM}) without ()",
        f"sum by () ({MEM})", f"sum({MEM}) by (type,)", f'{MEM}{{type="free",}}',
        f'{MEM}{{ type = "free" , instance != "x" }}', f"sum(rate({REQ}[5m])) by (job) > bool 10",
        f"{MEM}{{type='free'}}", f"{MEM}{{type=`free`}}", f'label_replace({NCPU}, "x", "\\u2603", "instance", ".*")',
        f'label_replace({NCPU}, "x", `\\n`, "instance", ".*")', f'label_replace({NCPU}, "x", "\\x41\\101", "", "")',
        "1 + -+-1", f"((({MEM})))", f"-{MEM} offset 5m", f"{MEM} offset 5m * 2", f"{MEM} @ 1701390000.123",
        f"{MEM} offset 0s", "vector(1) + on() vector(2)", "time() + on() vector(1)", f'sum by (bool) (label_replace({NCPU}, "bool", "x", "", ""))',
        f"sum by (offset, on, by) ({MEM})", f"{MEM} offset -0s", f"timestamp(rate({REQ}[5m]))",
        f"timestamp(sum({MEM}))", f"timestamp({MEM} @ end())", "absent(nonexistent_metric_name @ 1701390000)",
        f"{MEM}[5m:1m] offset 30s", f"rate({REQ}[5m])[30m:37s]", f"max_over_time({MEM}[1m:1s])",
        f"sum_over_time({NCPU}[7m:3m])", f"{MEM}[5m:1m] @ {AT_MIDNIGHT}",
    )),
    *(T(q, "syntax", expect="fail") for q in (
        "1_000", "0b101", "1h", f"{MEM}{{type=\"free\"", f"{MEM}[5m", f"{MEM}[0s]", f"{MEM}[-5m]",
        "{}", f'{{"{MEM}"}}', f"{MEM} offset", f"{MEM} @", f"{MEM} @ foo()",
        f"sum({MEM}) by", "sum()", f"{MEM} offset 5m offset 1m", f"{MEM} @ 1 @ 2", f"({MEM})[5m]",
        f"rate({MEM}[5m])[5m]", "sort_by_label(demo_memory_bytes, \"type\")", "double_exponential_smoothing(demo_memory_bytes[5m], 0.5, 0.5)",
        f"{MEM}{{type=~\"free\"}} == on", f"(time())[5m:1m]", f"{MEM}[1m:2m:3m]",
    )),
    # ---- functions of the wrong type or arity ------------------------------------------------
    T(f"quantile_over_time(0.5, {MEM})", "type_error", expect="fail"),
    T(f"sum_over_time({MEM})", "type_error", expect="fail"),
    T(f"abs({MEM}[5m])", "type_error", expect="fail"),
    T(f"sort({MEM}, 1)", "type_error", expect="fail"),
    T("mad_over_time(demo_memory_bytes[5m])", "type_error", expect="fail"),
    T("limitk(2, demo_memory_bytes)", "type_error", expect="fail"),
    T("nonexistent_function(demo_memory_bytes)", "type_error", expect="fail"),
    T(f"sum({MEM}) by (type) offset 5m", "type_error", expect="fail"),
)


def cases() -> list[Case]:
    """All cases, in template order, without duplicates."""
    out: dict[str, Case] = {}
    for tpl in TEMPLATES:
        for query in expand(tpl.text):
            if query not in out:
                out[query] = Case(query, tpl.group, tpl.ordered, tpl.expect, tpl.instant, tpl.range)
    return list(out.values())
