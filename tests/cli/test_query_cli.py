"""`vigilops query`: promtool's text for each result type, promtool's range defaults, errors
on standard error with exit status 1; against a real `vigilops server` process, and (peer)
the same output as `promtool query instant|range` against Prometheus 2.42 over the same
OpenMetrics data."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path

import pytest

from peerprocs import binary, free_port, get, process, wait_for

from vigilops.query_cli import range_params, render

VIGILOPS = [sys.executable, "-m", "vigilops.cli"]


def _data(text: str) -> object:
    return json.loads(text, parse_float=Decimal)


def test_render_vector_like_promtool() -> None:
    data = _data(
        '{"resultType":"vector","result":['
        '{"metric":{"__name__":"up","job":"a","instance":"h1"},"value":[1700000000.120,"1e-07"]},'
        '{"metric":{"x":"q\\"u\\n"},"value":[1700000000,"1e+21"]},'
        '{"metric":{"__name__":"up"},"value":[0.5,"NaN"]},'
        '{"metric":{},"value":[1,"-Inf"]}]}'
    )
    assert render(data) == (
        'up{instance="h1", job="a"} => 0.0000001 @[1700000000.12]\n'
        '{x="q\\"u\\n"} => 1000000000000000000000 @[1700000000]\n'
        "up => NaN @[0.5]\n"
        "{} => -Inf @[1]"
    )
    assert render(_data('{"resultType":"vector","result":[]}')) == ""


def test_render_matrix_sorted_like_promtool() -> None:
    data = _data(
        '{"resultType":"matrix","result":['
        '{"metric":{"__name__":"up","job":"a","instance":"h1"},"values":[[1,"1"],[2.500,"2"]]},'
        '{"metric":{"__name__":"up","job":"b","region":"us"},"values":[[1,"0"]]},'
        '{"metric":{"__name__":"up","job":"c"},"values":[[1,"+Inf"]]},'
        '{"metric":{"__name__":"up","a0":"1","a":"2"},"values":[[3,"3"]]}]}'
    )
    # model.Matrix sorts by LabelSet.Before: fewer labels first, then in the order of all
    # label names of both, the side missing a name first; labels print sorted as
    # `name="value"` text (so a0 before a).
    assert render(data) == (
        'up{job="c"} =>\n+Inf @[1]\n'
        'up{job="b", region="us"} =>\n0 @[1]\n'
        'up{instance="h1", job="a"} =>\n1 @[1]\n2 @[2.5]\n'
        'up{a0="1", a="2"} =>\n3 @[3]'
    )


def test_render_scalar_and_string() -> None:
    assert render(_data('{"resultType":"scalar","result":[1.5,"0.1"]}')) == "scalar: 0.1 @[1.5]"
    assert render(_data('{"resultType":"string","result":[2,"a\\"b"]}')) == '"a\\"b" @[2]'


def test_range_defaults_like_promtool() -> None:
    assert range_params(None, "1000", None) == {"start": "700", "end": "1000", "step": "1"}
    assert range_params("0", "100000", None) == {"start": "0", "end": "100000", "step": "400"}
    assert range_params("2023-11-14T22:13:20Z", "1700000600.5", "1m30s") == {
        "start": "1700000000", "end": "1700000600.5", "step": "90"}
    assert range_params("1", "2", "0.25") == {"start": "1", "end": "2", "step": "0.25"}


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VIGILOPS, "query", *args], capture_output=True, text=True, timeout=60)


def test_unreachable_server_is_an_error() -> None:
    out = _run("up", "--url", f"http://127.0.0.1:{free_port()}")
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.startswith("query error: ")


def test_bad_start_and_end_are_errors() -> None:
    out = _run("up", "--start", "10", "--end", "5", "--url", f"http://127.0.0.1:{free_port()}")
    assert (out.returncode, out.stderr) == (1, "query error: start time is not before end time\n")
    out = _run("up", "--time", "yesterday", "--url", f"http://127.0.0.1:{free_port()}")
    assert (out.returncode, out.stderr) == (1, 'query error: cannot parse "yesterday" to a valid timestamp\n')


# ---- against real servers ------------------------------------------------------------------
END_S = (int(time.time()) // 3600 - 2) * 3600
START_S = END_S - 3600
AT = START_S + 1800


def _openmetrics() -> str:
    lines = ["# TYPE up gauge", "# TYPE temp gauge"]
    for t in range(START_S, END_S + 1, 60):
        k = (t - START_S) // 60
        lines.append(f'up{{job="a",instance="h1"}} {k % 2} {t}')
        lines.append(f'up{{job="b",region="us"}} 1 {t}')
        lines.append(f'up{{job="c"}} 1 {t}')
        lines.append(f'temp{{room="hall \\"x\\""}} {20 + k / 8} {t}')
        lines.append(f'temp{{room="tiny"}} 1e-7 {t}')
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def ours(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    tmp = tmp_path_factory.mktemp("query_cli")
    (tmp / "data.om").write_text(_openmetrics())
    (tmp / "empty.yml").write_text("global:\n  scrape_interval: 1h\nscrape_configs: []\n")
    subprocess.run([*VIGILOPS, "tsdb", "import", "openmetrics", str(tmp / "data.om"), str(tmp / "vigil")],
                   check=True, capture_output=True)
    port = free_port()
    with process([*VIGILOPS, "server", "--config.file", str(tmp / "empty.yml"),
                  "--storage.tsdb.path", str(tmp / "vigil"), "--web.listen-address", f"127.0.0.1:{port}",
                  "--storage.tsdb.retention.time", "100y"], str(tmp / "vigil.log")) as proc:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: get(base + "/-/ready"), "vigilops ready", proc=proc)
        yield base, tmp


def test_instant_and_range_against_our_server(ours: tuple[str, Path]) -> None:
    base, _ = ours
    out = _run('up{job="a"}', "--time", str(AT), "--url", base)
    assert (out.returncode, out.stdout, out.stderr) == (0, f'up{{instance="h1", job="a"}} => 0 @[{AT}]\n', "")
    out = _run('up{job="a"}', "--start", str(AT), "--end", str(AT + 60), "--step", "30s", "--url", base)
    assert out.stdout == f'up{{instance="h1", job="a"}} =>\n0 @[{AT}]\n0 @[{AT + 30}]\n1 @[{AT + 60}]\n'
    out = _run("sum(up) / 2", "--time", f"{AT}.5", "--url", base)
    assert out.stdout == f"{{}} => 1 @[{AT}.5]\n"


def test_api_error_goes_to_stderr(ours: tuple[str, Path]) -> None:
    base, _ = ours
    out = _run("up +", "--url", base)
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr == 'query error: bad_data: invalid parameter "query": 1:5: parse error: unexpected end of input\n'
    out = _run("up", "--start", "1", "--end", "100000", "--step", "1", "--url", base)
    assert out.returncode == 1
    assert out.stderr.startswith("query error: bad_data: exceeded maximum resolution of 11,000 points")


@pytest.fixture(scope="module")
def both(ours: tuple[str, Path]) -> Iterator[tuple[str, str]]:
    vbase, tmp = ours
    pdir = tmp / "prom"
    subprocess.run([binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", str(tmp / "data.om"), str(pdir)],
                   check=True, capture_output=True)
    port = free_port()
    with ExitStack() as stack:
        proc = stack.enter_context(process([
            binary("prometheus"), f"--config.file={tmp / 'empty.yml'}", f"--storage.tsdb.path={pdir}",
            f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=100y",
        ], str(tmp / "prom.log")))
        pbase = f"http://127.0.0.1:{port}"
        wait_for(lambda: get(pbase + "/-/ready"), "prometheus ready", proc=proc)
        yield pbase, vbase


INSTANT = ["up", "temp", "up[3m]", "1.5", "0 - 0.25", "nothing", 'up{job="c"} * 3', "sort_desc(temp)",
           "up +", "time()", "temp[2m] offset 10m"]


@pytest.mark.peer
@pytest.mark.parametrize("query", INSTANT)
def test_instant_output_as_promtool(both: tuple[str, str], query: str) -> None:
    pbase, vbase = both
    at = f"{AT}.25"
    p = subprocess.run([binary("promtool"), "query", "instant", f"--time={at}", pbase, query],
                       capture_output=True, text=True, timeout=60)
    v = _run(query, "--time", at, "--url", vbase)
    assert (v.returncode, v.stdout, v.stderr) == (p.returncode, p.stdout, p.stderr)


RANGE = ["up", "temp", "sum by (job) (up)", "nothing", "time()"]


@pytest.mark.peer
@pytest.mark.parametrize("query", RANGE)
def test_range_output_as_promtool(both: tuple[str, str], query: str) -> None:
    pbase, vbase = both
    flags = [f"--start={AT - 300}", f"--end={AT + 300}", "--step=70s"]
    p = subprocess.run([binary("promtool"), "query", "range", *flags, pbase, query],
                       capture_output=True, text=True, timeout=60)
    v = _run(query, *flags, "--url", vbase)
    assert (v.returncode, v.stdout, v.stderr) == (p.returncode, p.stdout, p.stderr)


def test_server_reports_query_flags(ours: tuple[str, Path]) -> None:
    base, _ = ours
    flags = json.loads(get(base + "/api/v1/status/flags"))["data"]
    assert {k: v for k, v in flags.items() if k.startswith("query.")} == {
        "query.lookback-delta": "5m", "query.timeout": "2m",
        "query.max-samples": "50000000", "query.max-concurrency": "20",
    }
