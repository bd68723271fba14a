"""Relabeling behaves exactly as Prometheus 2.42's ``model/relabel``.

One table of (input labels, rules, expected labels or None for "dropped") covers every action
and default. The same table is replayed through the real Prometheus (Debian's 2.42) as target
relabeling: each case becomes a scrape job with one static target, and the labels Prometheus
reports in ``/api/v1/targets`` must equal what our `relabel` gives for that target.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from peerprocs import free_port, get
import yaml

from vigilops.scrape.config import RelabelConfig
from vigilops.scrape.relabel import go_lower, go_upper, relabel
from vigilops.tsdb.model import Labels

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


@dataclass
class Case:
    id: str
    labels: dict[str, str]
    rules: list[dict[str, Any]]
    want: dict[str, str] | None
    #: False when the case cannot be replayed as target relabeling in Prometheus (for
    #: example a rule that removes `__address__` or writes an invalid label name).
    peer: bool = True
    notes: str = field(default="", repr=False)


def R(**kw: Any) -> dict[str, Any]:  # noqa: N802 - reads like YAML in the table
    return kw


CASES = [
    # --- replace ---------------------------------------------------------------------------
    Case("replace-copies-by-default", {"a": "foo"}, [R(source_labels=["a"], target_label="b")],
         {"a": "foo", "b": "foo"}),
    Case("replace-overwrites", {"a": "foo", "b": "old"}, [R(source_labels=["a"], target_label="b")],
         {"a": "foo", "b": "foo"}),
    Case("replace-groups-braced", {"a": "foo-bar"},
         [R(source_labels=["a"], regex="(.*)-(.*)", target_label="c", replacement="${2}_${1}")],
         {"a": "foo-bar", "c": "bar_foo"}),
    Case("replace-$2_-is-a-group-name", {"a": "foo-bar"},
         [R(source_labels=["a"], regex="(.*)-(.*)", target_label="c", replacement="$2_$1")],
         {"a": "foo-bar", "c": "foo"}),
    Case("replace-no-match-no-change", {"a": "x", "b": "old"},
         [R(source_labels=["a"], regex="y(.*)", target_label="b")], {"a": "x", "b": "old"}),
    Case("replace-empty-result-deletes", {"a": "x", "b": "old"},
         [R(source_labels=["a"], regex="x", target_label="b", replacement="")], {"a": "x"}),
    Case("replace-literal", {"a": "x"}, [R(source_labels=["a"], target_label="b", replacement="static")],
         {"a": "x", "b": "static"}),
    Case("replace-missing-source-deletes-target", {"b": "keep"},
         [R(source_labels=["missing"], target_label="b")], {}),
    Case("replace-no-sources-sets-literal", {"a": "1"}, [R(target_label="b", replacement="v")],
         {"a": "1", "b": "v"}),
    Case("replace-no-sources-empty-replacement-deletes", {"a": "1", "b": "x"},
         [R(target_label="b", replacement="")], {"a": "1"}),
    Case("replace-explicit-default-regex-same-as-default", {"a": "1", "b": "x"},
         [R(target_label="b", regex="(.*)", replacement="v")], {"a": "1", "b": "v"}),
    Case("replace-joins-with-separator", {"a": "1", "b": "2"},
         [R(source_labels=["a", "b"], target_label="c")], {"a": "1", "b": "2", "c": "1;2"}),
    Case("replace-custom-separator", {"a": "1", "b": "2"},
         [R(source_labels=["a", "b"], separator="", target_label="c")], {"a": "1", "b": "2", "c": "12"}),
    Case("replace-missing-middle-source", {"a": "1", "b": "2"},
         [R(source_labels=["a", "m", "b"], target_label="c")], {"a": "1", "b": "2", "c": "1;;2"}),
    Case("replace-regex-on-joined-value", {"a": "1", "b": "2"},
         [R(source_labels=["a", "b"], regex="(.*);(.*)", target_label="c", replacement="$2$1")],
         {"a": "1", "b": "2", "c": "21"}),
    Case("replace-templated-target", {"a": "foo"},
         [R(source_labels=["a"], target_label="${1}_x", replacement="v")],
         {"a": "foo", "foo_x": "v"}),
    Case("replace-templated-target-named", {"a": "k=v"},
         [R(source_labels=["a"], regex="(?P<k>[a-z]+)=(?P<v>.*)", target_label="$k",
            replacement="$v")],
         {"a": "k=v", "k": "v"}),
    Case("replace-templated-target-invalid-after-expansion", {"a": "1foo", "b": "x"},
         [R(source_labels=["a"], target_label="$1", replacement="v")], {"a": "1foo", "b": "x"}),
    Case("replace-templated-target-empty-after-expansion", {"b": "x"},
         [R(source_labels=["missing"], target_label="$1", replacement="v")], {"b": "x"}),
    # Prometheus 2.42 then deletes the label named "$1" (the template), not "b".
    Case("replace-templated-target-empty-value-deletes-template-name", {"a": "b", "b": "x"},
         [R(source_labels=["a"], regex="(.*)", target_label="$1", replacement="$2")],
         {"a": "b", "b": "x"}),
    Case("replace-$$-is-dollar", {"a": "x"},
         [R(source_labels=["a"], target_label="b", replacement="$$1")], {"a": "x", "b": "$1"}),
    Case("replace-named-groups", {"addr": "host1:9100"},
         [R(source_labels=["addr"], regex="(?P<host>[^:]+):(?P<port>\\d+)", target_label="h",
            replacement="$host/${port}x")],
         {"addr": "host1:9100", "h": "host1/9100x"}),
    Case("replace-$0-whole-match", {"a": "xyz"},
         [R(source_labels=["a"], regex="x(y)z", target_label="b", replacement="<$0>")],
         {"a": "xyz", "b": "<xyz>"}),
    Case("replace-missing-group-is-empty", {"a": "x"},
         [R(source_labels=["a"], target_label="b", replacement="[$5]")], {"a": "x", "b": "[]"}),
    Case("replace-leading-zero-is-a-name", {"a": "x"},
         [R(source_labels=["a"], target_label="b", replacement="[$01]")], {"a": "x", "b": "[]"}),
    Case("replace-unclosed-brace-literal", {"a": "x"},
         [R(source_labels=["a"], target_label="b", replacement="${1")], {"a": "x", "b": "${1"}),
    Case("replace-trailing-dollar-literal", {"a": "x"},
         [R(source_labels=["a"], target_label="b", replacement="$1$")], {"a": "x", "b": "x$"}),
    Case("replace-dollar-punct-literal", {"a": "x"},
         [R(source_labels=["a"], target_label="b", replacement="$-$1")], {"a": "x", "b": "$-x"}),
    Case("replace-unicode-name-char", {"a": "x"},
         [R(source_labels=["a"], target_label="b", replacement="$1ü|")], {"a": "x", "b": "|"}),
    Case("replace-unmatched-optional-group", {"a": "x"},
         [R(source_labels=["a"], regex="(x)(y)?", target_label="b", replacement="$1-$2-")],
         {"a": "x", "b": "x--"}),
    Case("replace-metric-name", {"__name__": "http_requests_total", "job": "j"},
         [R(source_labels=["__name__"], regex="(.*)_total", target_label="__name__",
            replacement="${1}_count")],
         {"__name__": "http_requests_count", "job": "j"}, peer=False),
    Case("replace-regex-matches-empty-missing", {"b": "1"},
         [R(source_labels=["m"], regex="", target_label="t", replacement="x")], {"b": "1", "t": "x"}),
    Case("replace-address-port", {"__address__": "10.0.0.1:9100"},
         [R(source_labels=["__address__"], regex="([^:]+):\\d+", target_label="__address__",
            replacement="${1}:9200")],
         {"__address__": "10.0.0.1:9200"}, peer=False),
    # --- regex semantics -------------------------------------------------------------------
    Case("regex-fully-anchored", {"a": "xfoox"}, [R(source_labels=["a"], regex="foo", action="keep")],
         None),
    Case("regex-alternation-anchored", {"a": "ab"}, [R(source_labels=["a"], regex="a|ab", action="keep")],
         {"a": "ab"}),
    Case("regex-case-insensitive-flag", {"a": "FoO"},
         [R(source_labels=["a"], regex="(?i)foo", action="keep")], {"a": "FoO"}),
    Case("regex-dot-does-not-match-newline", {"a": "x\ny"},
         [R(source_labels=["a"], regex=".*", action="keep")], None),
    Case("regex-s-flag-matches-newline", {"a": "x\ny"},
         [R(source_labels=["a"], regex="(?s).*", action="keep")], {"a": "x\ny"}),
    Case("regex-posix-class", {"a": "ab12"},
         [R(source_labels=["a"], regex="[[:alpha:]]+([[:digit:]]+)", target_label="n")],
         {"a": "ab12", "n": "12"}),
    Case("regex-perl-class-ascii-only", {"a": "٣"},
         [R(source_labels=["a"], regex="\\d", action="drop")], {"a": "٣"}),
    # --- keep / drop -----------------------------------------------------------------------
    Case("keep-match", {"a": "yes1"}, [R(source_labels=["a"], regex="yes.*", action="keep")],
         {"a": "yes1"}),
    Case("keep-no-match", {"a": "no"}, [R(source_labels=["a"], regex="yes.*", action="keep")], None),
    Case("keep-missing-label-empty-regex", {"b": "1"}, [R(source_labels=["a"], regex="", action="keep")],
         {"b": "1"}),
    Case("keep-missing-label-nonempty-regex", {"b": "1"},
         [R(source_labels=["a"], regex=".+", action="keep")], None),
    Case("keep-default-regex-keeps-all", {"b": "1"}, [R(source_labels=["a"], action="keep")],
         {"b": "1"}),
    Case("keep-joined", {"a": "1", "b": "2"}, [R(source_labels=["a", "b"], regex="1;2", action="keep")],
         {"a": "1", "b": "2"}),
    Case("drop-match", {"a": "x"}, [R(source_labels=["a"], regex="x", action="drop")], None),
    Case("drop-no-match", {"a": "y"}, [R(source_labels=["a"], regex="x", action="drop")], {"a": "y"}),
    Case("drop-default-drops-everything", {"a": "y"}, [R(action="drop")], None),
    Case("drop-stops-processing", {"a": "x"},
         [R(source_labels=["a"], regex="x", action="drop"), R(target_label="b", replacement="v")], None),
    # --- keepequal / dropequal -------------------------------------------------------------
    Case("keepequal-equal", {"a": "1", "b": "1"}, [R(source_labels=["a"], target_label="b", action="keepequal")],
         {"a": "1", "b": "1"}),
    Case("keepequal-different", {"a": "1", "b": "2"},
         [R(source_labels=["a"], target_label="b", action="keepequal")], None),
    Case("keepequal-both-missing", {"c": "1"},
         [R(source_labels=["a"], target_label="b", action="keepequal")], {"c": "1"}),
    Case("keepequal-joined-sources", {"a": "1", "b": "2", "c": "1;2"},
         [R(source_labels=["a", "b"], target_label="c", action="keepequal")],
         {"a": "1", "b": "2", "c": "1;2"}),
    Case("dropequal-equal", {"a": "1", "b": "1"}, [R(source_labels=["a"], target_label="b", action="dropequal")],
         None),
    Case("dropequal-different", {"a": "1", "b": "2"},
         [R(source_labels=["a"], target_label="b", action="dropequal")], {"a": "1", "b": "2"}),
    Case("dropequal-missing-vs-present", {"a": "1"},
         [R(source_labels=["m"], target_label="a", action="dropequal")], {"a": "1"}),
    # --- hashmod ---------------------------------------------------------------------------
    Case("hashmod", {"a": "foo"}, [R(source_labels=["a"], target_label="h", modulus=10, action="hashmod")],
         {"a": "foo", "h": "6"}),
    Case("hashmod-missing-source", {"b": "1"},
         [R(source_labels=["a"], target_label="h", modulus=10, action="hashmod")], {"b": "1", "h": "8"}),
    Case("hashmod-modulus-1", {"a": "foo"}, [R(source_labels=["a"], target_label="h", modulus=1, action="hashmod")],
         {"a": "foo", "h": "0"}),
    Case("hashmod-large-modulus", {"a": "foo"},
         [R(source_labels=["a"], target_label="h", modulus=2**32, action="hashmod")],
         {"a": "foo", "h": "3435439320"}),
    Case("hashmod-joined", {"a": "1", "b": "2"},
         [R(source_labels=["a", "b"], target_label="h", modulus=7, action="hashmod")],
         {"a": "1", "b": "2", "h": "0"}),
    Case("hashmod-sharding", {"__address__": "127.0.0.1:9100"},
         [R(source_labels=["__address__"], target_label="__tmp_hash", modulus=3, action="hashmod"),
          R(source_labels=["__tmp_hash"], regex="1", action="keep")],
         {"__address__": "127.0.0.1:9100", "__tmp_hash": "1"}, peer=False),
    Case("hashmod-ignores-regex", {"a": "bar"},
         [R(source_labels=["a"], regex="nomatch", target_label="h", modulus=1000, action="hashmod")],
         {"a": "bar", "h": "922"}),
    # --- labelmap --------------------------------------------------------------------------
    Case("labelmap-meta", {"__meta_x_role": "web", "__meta_x_dc": "eu", "a": "1"},
         [R(regex="__meta_x_(.+)", action="labelmap")],
         {"__meta_x_role": "web", "__meta_x_dc": "eu", "a": "1", "role": "web", "dc": "eu"}),
    Case("labelmap-overwrites-existing", {"x_a": "new", "a": "old"},
         [R(regex="x_(.*)", action="labelmap")], {"x_a": "new", "a": "new"}),
    Case("labelmap-collision-last-in-order-wins", {"p_a": "1", "q_a": "2"},
         [R(regex="[pq]_(.*)", action="labelmap")], {"p_a": "1", "q_a": "2", "a": "2"}),
    Case("labelmap-fixed-replacement", {"a": "1", "b": "2"},
         [R(regex="a|b", replacement="x", action="labelmap")], {"a": "1", "b": "2", "x": "2"}),
    Case("labelmap-anchored", {"ab": "1"}, [R(regex="a", replacement="z", action="labelmap")],
         {"ab": "1"}),
    Case("labelmap-braced-suffix", {"k_a": "1"},
         [R(regex="k_(.*)", replacement="${1}_copy", action="labelmap")], {"k_a": "1", "a_copy": "1"}),
    Case("labelmap-sees-labels-before-the-rule", {"x_x_a": "1"},
         [R(regex="x_(.*)", action="labelmap")], {"x_x_a": "1", "x_a": "1"}),
    # --- labeldrop / labelkeep -------------------------------------------------------------
    Case("labeldrop", {"a": "1", "ab": "2", "b": "3"}, [R(regex="a.*", action="labeldrop")], {"b": "3"}),
    Case("labeldrop-anchored", {"a": "1", "ab": "2"}, [R(regex="a", action="labeldrop")], {"ab": "2"}),
    Case("labeldrop-nothing", {"a": "1"}, [R(regex="z", action="labeldrop")], {"a": "1"}),
    Case("labelkeep", {"a": "1", "b": "2", "c": "3", "__address__": "h:1", "job": "j"},
         [R(regex="a|b|__address__|job", action="labelkeep")],
         {"a": "1", "b": "2", "__address__": "h:1", "job": "j"}, peer=False),
    Case("labelkeep-everything-default-regex", {"a": "1"}, [R(action="labelkeep")], {"a": "1"}),
    # --- lowercase / uppercase -------------------------------------------------------------
    Case("lowercase", {"a": "FoO-Bar"}, [R(source_labels=["a"], target_label="b", action="lowercase")],
         {"a": "FoO-Bar", "b": "foo-bar"}),
    Case("uppercase", {"a": "FoO-Bar"}, [R(source_labels=["a"], target_label="a", action="uppercase")],
         {"a": "FOO-BAR"}),
    Case("lowercase-missing-source-deletes-target", {"b": "X"},
         [R(source_labels=["m"], target_label="b", action="lowercase")], {}),
    Case("lowercase-joined", {"a": "A", "b": "B"},
         [R(source_labels=["a", "b"], separator="-", target_label="c", action="lowercase")],
         {"a": "A", "b": "B", "c": "a-b"}),
    Case("uppercase-sharp-s-has-no-simple-mapping", {"a": "straße"},
         [R(source_labels=["a"], target_label="b", action="uppercase")],
         {"a": "straße", "b": "STRAßE"}),
    Case("lowercase-no-final-sigma", {"a": "ΟΔΟΣ"},
         [R(source_labels=["a"], target_label="b", action="lowercase")],
         {"a": "ΟΔΟΣ", "b": "οδοσ"}),
    Case("lowercase-dotted-capital-i", {"a": "İx"},
         [R(source_labels=["a"], target_label="b", action="lowercase")], {"a": "İx", "b": "ix"}),
    # --- sequences -------------------------------------------------------------------------
    Case("rules-apply-in-order", {"a": "web-1"},
         [R(source_labels=["a"], regex="(.*)-\\d+", target_label="role"),
          R(source_labels=["role"], regex="web", action="keep"),
          R(regex="a", action="labeldrop")],
         {"role": "web"}),
    Case("later-rule-sees-earlier-result", {"a": "1"},
         [R(target_label="b", replacement="2"),
          R(source_labels=["a", "b"], target_label="c", separator="+")],
         {"a": "1", "b": "2", "c": "1+2"}),
    Case("no-rules", {"a": "1"}, [], {"a": "1"}),
    # --- RE2 syntax Python's re lacks ------------------------------------------------------
    Case("regex-unicode-class", {"a": "héllo"},
         [R(source_labels=["a"], regex=r"\p{L}+", target_label="b", replacement="letters")],
         {"a": "héllo", "b": "letters"}),
    Case("regex-unicode-script-no-match", {"a": "hello"},
         [R(source_labels=["a"], regex=r"\p{Greek}+", target_label="b", replacement="greek")],
         {"a": "hello"}),
    Case("regex-negated-posix-class", {"a": "123"},
         [R(source_labels=["a"], regex="[[:^alpha:]]+", action="keep")], {"a": "123"}),
    Case("regex-ungreedy-flag", {"a": "aaa"},
         [R(source_labels=["a"], regex="(?U)(a+)(a*)", target_label="b", replacement="$1")],
         {"a": "aaa", "b": "a"}),
    Case("regex-repeated-group-name", {"a": "y"},
         [R(source_labels=["a"], regex="(?P<n>x)|(?P<n>y)", target_label="b", replacement="$2")],
         {"a": "y", "b": "y"}),
    # Go's Expand takes the leftmost group of a name that took part in the match.
    Case("regex-repeated-group-name-takes-the-one-that-matched", {"a": "y"},
         [R(source_labels=["a"], regex="(?P<n>x)?(?P<n>y)", target_label="b", replacement="[$n]")],
         {"a": "y", "b": "[y]"}),
    Case("regex-digit-first-group-name", {"a": "xy"},
         [R(source_labels=["a"], regex="(?P<1a>x)(y)", target_label="b", replacement="$1a/$2")],
         {"a": "xy", "b": "x/y"}),
    # Prometheus compiles only "^(?:" + regex + ")$", which is "^(?:x)|(q)$" here: it finds
    # an "x" at the start (or a "q" at the end), and $1 is the (q) group.
    Case("regex-valid-only-once-wrapped", {"a": "xyz"},
         [R(source_labels=["a"], regex="x)|(q", target_label="b", replacement="hit$1")],
         {"a": "xyz", "b": "hit"}),
    # Linear-time matching: a backtracking engine never finishes this one.
    Case("regex-catastrophic-pattern", {"a": "a" * 5000 + "c"},
         [R(source_labels=["a"], regex="(a+)+b", action="drop")], {"a": "a" * 5000 + "c"}),
]

# The labels Prometheus gives every static target before relabeling.
_TARGET_LABELS = {
    "__address__": "127.0.0.1:1",
    "__scheme__": "http",
    "__metrics_path__": "/metrics",
    "__scrape_interval__": "1h",
    "__scrape_timeout__": "10s",
}


def rules(case: Case) -> list[RelabelConfig]:
    out = [RelabelConfig(**r) for r in case.rules]
    for rc in out:
        rc.validate()
    return out


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_relabel(case: Case) -> None:
    got = relabel(Labels(case.labels), rules(case))
    want = None if case.want is None else Labels(case.want)
    assert got == want


@pytest.mark.parametrize("case", CASES[:12], ids=lambda c: c.id)
def test_relabel_accepts_a_mapping_and_leaves_input_alone(case: Case) -> None:
    before = dict(case.labels)
    got = relabel(case.labels, rules(case))
    assert case.labels == before
    assert got == (None if case.want is None else Labels(case.want))


def test_empty_values_in_a_mapping_are_absent() -> None:
    cfg = [RelabelConfig(source_labels=["a"], regex="", action="keep")]
    assert relabel({"a": "", "b": "x"}, cfg) == Labels({"b": "x"})


def test_labelmap_to_an_empty_name_sets_it() -> None:
    # Prometheus does not validate labelmap's result; an empty expansion makes a nameless
    # label (which target creation then rejects).
    got = relabel({"a": "1"}, [RelabelConfig(regex="a", action="labelmap")])
    assert got is not None and got.get("") == "1"


@pytest.mark.parametrize(
    ("template", "want"),
    [
        ("$1", "foo"),
        ("${1}", "foo"),
        ("$2", "bar"),
        ("$1$2", "foobar"),
        ("$1_$2", "bar"),  # "1_" names a group that does not exist
        ("${1}_$2", "foo_bar"),
        ("$name", "bar"),
        ("${name}s", "bars"),
        ("$names", ""),
        ("$$", "$"),
        ("$$$1", "$foo"),
        ("$", "$"),
        ("x$", "x$"),
        ("${", "${"),
        ("${}", "${}"),
        ("${1", "${1"),
        ("$ 1", "$ 1"),
        ("$0", "foo-bar"),
        ("$00", ""),
        ("$9", ""),
        ("$100000000000", ""),
        ("${٣}", ""),  # a Unicode digit: a name, not a number
        ("plain", "plain"),
        ("", ""),
    ],
)
def test_expand_template_like_go(template: str, want: str) -> None:
    m = RelabelConfig(regex="(foo)-(?P<name>bar)").compiled.match("foo-bar")
    assert m is not None
    assert m.expand(template) == want


@pytest.mark.parametrize(
    ("s", "lower", "upper"),
    [
        ("ABC def", "abc def", "ABC DEF"),
        ("straße", "straße", "STRAßE"),
        ("ΣΑΣ", "σασ", "ΣΑΣ"),
        ("İ", "i", "İ"),
        ("ﬁ", "ﬁ", "ﬁ"),
        ("ᾳ", "ᾳ", "ᾼ"),
        ("Ǆǅǆ", "ǆǆǆ", "ǄǄǄ"),
        ("", "", ""),
    ],
)
def test_case_mapping_is_gos_simple_mapping(s: str, lower: str, upper: str) -> None:
    assert go_lower(s) == lower
    assert go_upper(s) == upper


# --- side by side with Prometheus ------------------------------------------------------------


def _peer_config(cases: list[Case]) -> str:
    jobs = []
    for i, case in enumerate(cases):
        jobs.append(
            {
                "job_name": f"c{i}",
                "scrape_interval": "1h",
                "static_configs": [{"targets": [_TARGET_LABELS["__address__"]], "labels": case.labels}],
                "relabel_configs": case.rules,
            }
        )
    return yaml.safe_dump({"scrape_configs": jobs}, allow_unicode=True)


def _our_target(case: Case, job: str) -> dict[str, str] | None:
    """What Prometheus should list for the case's target: None if dropped, else its labels
    after relabeling, without ``__`` labels and with `instance` defaulted to the address."""
    start = {**_TARGET_LABELS, "job": job, **case.labels}
    got = relabel(start, rules(case))
    if got is None:
        return None
    out = {k: v for k, v in got.pairs() if not k.startswith("__")}
    out.setdefault("instance", got.get("__address__"))
    return out


@pytest.fixture(scope="module")
def prometheus_targets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if not os.access(PROMETHEUS, os.X_OK):
        pytest.skip("Debian's prometheus is not installed")
    tmp = tmp_path_factory.mktemp("prometheus")
    cases = [c for c in CASES if c.peer]
    (tmp / "prometheus.yml").write_text(_peer_config(cases))
    port = free_port()
    with (tmp / "prometheus.log").open("wb") as log:
        proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=error",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        yield _wait_for_targets(port, len(cases), proc, tmp / "prometheus.log")
    finally:
        proc.terminate()
        proc.wait(30)


def _wait_for_targets(port: int, jobs: int, proc: subprocess.Popen[bytes], log: Path) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}/api/v1/targets?state=any"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            pytest.fail(f"prometheus exited: {log.read_text()[-2000:]}")
        try:
            data: dict[str, Any] = json.loads(get(url))["data"]
            pools = {t["scrapePool"] for t in data["activeTargets"]}
            pools |= {t["discoveredLabels"]["job"] for t in data["droppedTargets"]}
            if len(pools) >= jobs:
                return data
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail("prometheus did not list the targets within 60 s")
        time.sleep(0.2)


@pytest.mark.peer
@pytest.mark.slow
@pytest.mark.parametrize("case", [c for c in CASES if c.peer], ids=lambda c: c.id)
def test_relabel_same_as_prometheus(case: Case, prometheus_targets: dict[str, Any]) -> None:
    job = f"c{[c for c in CASES if c.peer].index(case)}"
    active = [t for t in prometheus_targets["activeTargets"] if t["scrapePool"] == job]
    dropped = [t for t in prometheus_targets["droppedTargets"] if t["discoveredLabels"]["job"] == job]
    assert len(active) + len(dropped) == 1, (active, dropped)
    theirs = active[0]["labels"] if active else None
    assert _our_target(case, job) == theirs


def test_a_catastrophic_regex_cannot_stall_relabeling() -> None:
    """Under a backtracking engine this would never finish (and would hang the scrape loop)."""
    value = "a" * 5000 + "c"
    keep = [RelabelConfig(source_labels=["a"], regex="(a+)+b", action="keep")]
    assert relabel({"a": value}, keep) is None
    replace = [RelabelConfig(source_labels=["a"], regex="(x+x+)+y|(a+)+b", target_label="b")]
    assert relabel({"a": value}, replace) == Labels({"a": value})
    labeldrop = [RelabelConfig(regex="(a+)+b", action="labeldrop")]
    assert relabel({value: "1"}, labeldrop) == Labels({value: "1"})
