"""A payload read through its target's template must be read exactly as the exact parser
reads it: the same keys, value bits and metadata, or the same error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigilops.scrape import payload_template, textparse
from vigilops.scrape.payload_template import PayloadTemplate, scan
from vigilops.scrape.textparse import ScrapeParseError, parse_scrape
from vigilops.tsdb.compiled import warm_up

from tests.scrape.test_textparse import _MUTATION_CHARS, OM, TEXT, assert_same, expositions, parse, value_texts

NODE_EXPORTER = Path(__file__).parent / "testdata" / "node_exporter_1.5.prom"

_ODD_VALUES = st.sampled_from(
    ["1e", "0x1p-2", "1_0", "", "+NaN", "1e999", "-1e999", "1e-400", "\u0663", "1.5\r", "٣", ".", "-", "+.5", "5.",
     "00012", "-0", "0e99999", "9007199254740993", "123456789012345678901234567890", "1.0000000000000002",
     "4.9e-324", "1.7976931348623157e308", "1e22", "1e23", "3e-22", "3e-23", "inFinity", "nan", "NaN", "Inf"]
)


@pytest.fixture(autouse=True, scope="module")
def _compiled() -> None:
    warm_up()


def _with_values(body: bytes, texts: list[str]) -> bytes:
    """`body` with the value of each sample line (the text after its last space) replaced
    by the next of `texts`, cycling."""
    out = []
    k = 0
    for line in body.decode("utf-8", "surrogateescape").split("\n"):
        if line and not line.startswith("#") and " " in line:
            line = line.rpartition(" ")[0] + " " + texts[k % len(texts)]
            k += 1
        out.append(line)
    return "\n".join(out).encode("utf-8", "surrogateescape")


def _parse_both(body: bytes, content_type: str, template: PayloadTemplate) -> None:
    """Through the template, and checked against the exact parser (same result or same
    error)."""
    try:
        expected = parse(body, content_type)
    except ScrapeParseError as exc:
        with pytest.raises(ScrapeParseError) as info:
            parse_scrape(body, content_type, template=template)
        assert (info.value.line, info.value.message) == (exc.line, exc.message)
        return
    assert_same(parse_scrape(body, content_type, template=template), expected)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.booleans(), st.data())
def test_new_values_in_a_remembered_shape_read_as_the_exact_parser_reads_them(om: bool, data: st.DataObject) -> None:
    body, _, _ = data.draw(expositions(openmetrics=om))
    content_type = OM if om else TEXT
    template = PayloadTemplate()
    _parse_both(body, content_type, template)
    texts = data.draw(st.lists(value_texts().map(lambda tv: tv[0]) | _ODD_VALUES, min_size=1, max_size=12))
    _parse_both(_with_values(body, texts), content_type, template)
    _parse_both(body, content_type, template)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.booleans(), st.data())
def test_damaged_payloads_after_a_remembered_one_read_as_the_exact_parser_reads_them(
    om: bool, data: st.DataObject
) -> None:
    body, _, _ = data.draw(expositions(openmetrics=om))
    content_type = OM if om else TEXT
    template = PayloadTemplate()
    _parse_both(body, content_type, template)
    damaged = bytearray(body)
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(damaged)))
        op = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = b"" if op == "delete" else data.draw(st.sampled_from(_MUTATION_CHARS)).encode("utf-8", "surrogateescape")
        damaged[at : at + (0 if op == "insert" else 1)] = piece
    _parse_both(bytes(damaged), content_type, template)
    # The other format's Content-Type with the same bytes is never read through the template.
    _parse_both(bytes(damaged), TEXT if om else OM, template)


@settings(max_examples=500, deadline=None)
@given(st.floats(allow_nan=False) | st.integers(-(2**64), 2**64).map(float), st.sampled_from(["repr", ".17g", ".6e", ".3f", "int"]))
def test_every_value_the_fast_path_reads_is_bit_exact(v: float, style: str) -> None:
    if style == "int":
        if v != v or abs(v) == float("inf"):
            return
        text = str(int(v))
    elif style == "repr":
        text = repr(v)
    else:
        text = format(v, style)
    body = f"a {text}\nb -{text.lstrip('-')}\n".encode()
    sc = scan(body)
    assert sc is not None
    for k, t in enumerate([text, "-" + text.lstrip("-")]):
        if k in sc.slow[:, 0].tolist():
            continue  # left to the Go reader
        assert np.float64(sc.values[k]).view(np.uint64) == np.float64(float(t)).view(np.uint64), t


def test_the_node_exporter_payload_is_read_through_the_template(monkeypatch: pytest.MonkeyPatch) -> None:
    body = NODE_EXPORTER.read_bytes()
    template = PayloadTemplate()
    first = parse_scrape(body, TEXT, template=template)
    assert template.skeleton is not None and len(template.keys) == len(first.keys)
    rng = np.random.default_rng(3)
    texts = [repr(float(x)) for x in rng.standard_normal(50) * 1e6] + ["NaN", "+Inf", "1.7001234567890123e+09", "0"]
    changed = _with_values(body, texts)
    expected = parse(changed, TEXT)

    def usual_path(*args: object) -> None:
        raise AssertionError("the template should have been used")

    monkeypatch.setattr(textparse, "_parse_fast", usual_path)
    got = parse_scrape(changed, TEXT, template=template)
    assert_same(got, expected)
    assert got.keys is first.keys
    assert len(got.values) == len(expected.values)


def test_a_changed_shape_is_parsed_the_usual_way_and_remembered() -> None:
    template = PayloadTemplate()
    assert_same(parse_scrape(b"a 1\nb 2\n", TEXT, template=template), parse(b"a 1\nb 2\n"))
    for body in (b"a 1\nb 2", b"a 1\nc 2\n", b"a 1\nb 2\nb 3\n", b"# TYPE a gauge\na 1\nb 2\n", b"a 1 5\nb 2\n"):
        assert_same(parse_scrape(body, TEXT, template=template), parse(body))
    # The last simple payload is remembered: "a 1 5" is not simple, the one before is.
    assert template.skeleton == b"# TYPE a gauge\na \nb \n"


def test_nothing_is_used_before_the_loop_is_compiled(monkeypatch: pytest.MonkeyPatch) -> None:
    class Uncompiled:
        signatures: list[object] = []

    monkeypatch.setattr(payload_template, "_scan", Uncompiled())
    monkeypatch.setattr(payload_template, "_compiled", [False])
    template = PayloadTemplate()
    for _ in range(2):
        assert_same(parse_scrape(b"a 1\n", TEXT, template=template), parse(b"a 1\n"))
    assert template.skeleton is None


_PLAIN = ["0", "7", "-7", "0.7", "7e3", "-7E-3", "+7.", ".7", "007", "12.5", "1e-5", "0.000123", "123456789012345678",
          "9007199254740992", "9007199254740993", "1e22", "-0", "0.0", "3.14159", "2.5e+06", "1.5e-05", "100", "65536"]


@pytest.mark.parametrize("text", _PLAIN)
def test_plain_decimals_read_bit_exact(text: str) -> None:
    sc = scan(f"a {text}\n".encode())
    assert sc is not None
    if len(sc.slow):
        assert text in ("9007199254740993", "123456789012345678")  # beyond 2**53: the Go reader's
        return
    assert np.float64(sc.values[0]).view(np.uint64) == np.float64(float(text)).view(np.uint64)
