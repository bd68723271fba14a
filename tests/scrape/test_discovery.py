"""Service discovery: decoding, Go path semantics, static, file_sd on real files, http_sd on a
real loopback server."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from peerprocs import free_port
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry

from vigilops.scrape.config import (
    Authorization,
    BasicAuth,
    FileSDConfig,
    HTTPSDConfig,
    StaticConfig,
    TLSConfig,
)
from vigilops.scrape.discovery import (
    FileDiscoverer,
    HTTPDiscoverer,
    HTTPSDError,
    SDMetrics,
    StaticDiscoverer,
    TargetGroup,
)
from vigilops.scrape.discovery import gopath
from vigilops.scrape.discovery.decode import GroupDecodeError, RawGroup, decode_json, decode_yaml

#: Upper bound on waiting for something that should happen within a few poll intervals.
#: It only guards against a hang; no test measures time.
PATIENCE_S = 20.0


# --- decoding ---------------------------------------------------------------------------------

JSON_CASES: list[tuple[str, str, list[RawGroup] | str]] = [
    (
        "two groups",
        '[{"targets": ["a:1", "b:2"], "labels": {"env": "prod"}}, {"targets": ["c:3"]}]',
        [RawGroup(("a:1", "b:2"), {"env": "prod"}), RawGroup(("c:3",), {})],
    ),
    ("null document", "null", []),
    ("empty list", "[]", []),
    ("nulls are empty", '[{"targets": [null], "labels": {"a": null}}]', [RawGroup(("",), {"a": ""})]),
    (
        "keys are case-insensitive",
        '[{"Targets": ["a:1"], "LABELS": {"x": "y"}}]',
        [RawGroup(("a:1",), {"x": "y"})],
    ),
    ("empty object", "[{}]", [RawGroup((), {})]),
    ("unknown field", '[{"targets": [], "lables": {}}]', 'unknown field "lables"'),
    ("null item", '[{"targets": []}, null]', "nil target group item found"),
    ("bad label name", '[{"targets": [], "labels": {"a-b": "x"}}]', '"a-b" is not a valid label name'),
    ("number target", '[{"targets": [8080]}]', "a target must be a string"),
    ("number label value", '[{"labels": {"a": 1}}]', 'label "a" must have a string value'),
    ("not a list", '{"targets": []}', "expected a list of target groups"),
    ("syntax error", '[{"targets": ["a:1"]', "invalid JSON"),
    ("NaN is not JSON", '[{"labels": {"a": NaN}}]', "invalid JSON"),
    ("empty input", "", "invalid JSON"),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in JSON_CASES], ids=[c[0] for c in JSON_CASES])
def test_decode_json(text: str, expected: list[RawGroup] | str) -> None:
    if isinstance(expected, str):
        with pytest.raises(GroupDecodeError, match=expected):
            decode_json(text.encode())
    else:
        assert decode_json(text.encode()) == expected


YAML_CASES: list[tuple[str, str, list[RawGroup] | str]] = [
    (
        "two groups",
        "- targets: [a:1, b:2]\n  labels: {env: prod}\n- targets:\n  - c:3\n",
        [RawGroup(("a:1", "b:2"), {"env": "prod"}), RawGroup(("c:3",), {})],
    ),
    ("empty document", "", []),
    ("comment only", "# nothing here\n", []),
    (
        "scalars are their source text",
        "- targets: [8080, 0x10]\n  labels: {a: 1.50, b: true, c: ~, d: 2001-12-14}\n",
        [RawGroup(("8080", "0x10"), {"a": "1.50", "b": "true", "c": "", "d": "2001-12-14"})],
    ),
    (
        "anchors",
        "- labels: &l {a: b}\n- labels: *l\n",
        [RawGroup((), {"a": "b"}), RawGroup((), {"a": "b"})],
    ),
    ("first document only", "- targets: [a:1]\n---\n- targets: [b:2]\n", [RawGroup(("a:1",), {})]),
    ("keys are case-sensitive", "- Targets: [a:1]\n", 'unknown field "Targets"'),
    ("null item", "- targets: []\n- ~\n", "nil target group item found"),
    ("repeated field", "- targets: [a]\n  targets: [b]\n", 'field "targets" already set'),
    ("repeated label", "- labels: {a: x, a: y}\n", 'label "a" already set'),
    ("bad label name", "- labels: {0a: x}\n", '"0a" is not a valid label name'),
    ("nested target", "- targets: [[a]]\n", "a target must be a scalar"),
    ("not a list", "targets: []\n", "expected a list of target groups"),
    ("syntax error", "- targets: [a\n", "invalid YAML"),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in YAML_CASES], ids=[c[0] for c in YAML_CASES])
def test_decode_yaml(text: str, expected: list[RawGroup] | str) -> None:
    if isinstance(expected, str):
        with pytest.raises(GroupDecodeError, match=expected):
            decode_yaml(text.encode())
    else:
        assert decode_yaml(text.encode()) == expected


# --- Go path semantics ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "cleaned"),
    [
        ("", "."),
        ("a/b/../c", "a/c"),
        ("//a//b/", "/a/b"),
        ("/../a", "/a"),
        ("../../a", "../../a"),
        ("./a/./b/.", "a/b"),
        ("a/..", "."),
    ],
)
def test_gopath_clean(path: str, cleaned: str) -> None:
    assert gopath.clean(path) == cleaned


@pytest.mark.parametrize(
    ("directory", "path", "joined"),
    [
        ("/etc/prometheus", "sd/*.json", "/etc/prometheus/sd/*.json"),
        ("/etc/prometheus", "./sd/../x.yml", "/etc/prometheus/x.yml"),
        ("/etc/prometheus", "/abs//x.yml", "/abs//x.yml"),  # absolute: not cleaned, like Go
        ("", "x.yml", "x.yml"),
        (".", "x.yml", "x.yml"),
    ],
)
def test_gopath_join_dir(directory: str, path: str, joined: str) -> None:
    assert gopath.join_dir(directory, path) == joined


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("*.json", "a.json", True),
        ("*.json", ".hidden.json", True),  # Go's * matches dot files
        ("*.json", "a.yml", False),
        ("a?.json", "ab.json", True),
        ("[^a]*.json", "b.json", True),
        ("[^a]*.json", "a.json", False),
        ("[a-c].yml", "b.yml", True),
        ("[c-a].yml", "b.yml", False),  # an inverted range matches nothing
        ("\\*.json", "*.json", True),
        ("\\*.json", "a.json", False),
    ],
)
def test_gopath_match(pattern: str, name: str, matches: bool) -> None:
    assert gopath.match(pattern, name) is matches


@pytest.mark.parametrize("pattern", ["[", "[]a]", "a[", "x\\", "[a-]"])
def test_gopath_bad_pattern(pattern: str) -> None:
    with pytest.raises(gopath.BadPattern):
        gopath.match(pattern, "a")


def test_gopath_glob(tmp_path: Path) -> None:
    for name in ["b.json", "a.json", ".c.json", "d.yml", "sub1/x.json", "sub2/y.json"]:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("[]")
    base = str(tmp_path)
    assert gopath.glob(f"{base}/*.json") == [f"{base}/.c.json", f"{base}/a.json", f"{base}/b.json"]
    assert gopath.glob(f"{base}/sub*/*.json") == [f"{base}/sub1/x.json", f"{base}/sub2/y.json"]
    # No wildcard: the path as given (not cleaned) if it exists.
    assert gopath.glob(f"{base}//d.yml") == [f"{base}//d.yml"]
    assert gopath.glob(f"{base}/missing.yml") == []
    assert gopath.glob(f"{base}/nodir/*.json") == []
    # A wildcard path is cleaned by the join, as in Go.
    assert gopath.glob(f"{base}//./*.yml") == [f"{base}/d.yml"]
    with pytest.raises(gopath.BadPattern):
        gopath.glob(f"{base}/[.json")


# --- helpers ----------------------------------------------------------------------------------


class Updates:
    """Collects what a discoverer reports, for awaiting in tests."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[list[TargetGroup]] = asyncio.Queue()
        self.calls = 0

    def __call__(self, groups: Sequence[TargetGroup]) -> None:
        self.calls += 1
        self.queue.put_nowait(list(groups))

    async def next(self) -> list[TargetGroup]:
        return await asyncio.wait_for(self.queue.get(), PATIENCE_S)


async def wait_for(predicate: Callable[[], bool]) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), PATIENCE_S)


async def stop(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def addresses(groups: Sequence[TargetGroup]) -> dict[str, list[str]]:
    return {g.source: [t["__address__"] for t in g.targets] for g in groups}


def counter(registry: CollectorRegistry, name: str) -> float:
    value = registry.get_sample_value(name)
    return 0.0 if value is None else value


# --- static -----------------------------------------------------------------------------------


async def test_static_discoverer_reports_once_until_cancelled() -> None:
    configs = [
        StaticConfig(targets=["a:1", "b:2"], labels={"env": "prod"}),
        StaticConfig(targets=["c:3"], labels={}),
    ]
    updates = Updates()
    task = asyncio.create_task(StaticDiscoverer(configs, "job").run(updates))
    groups = await updates.next()
    assert groups == [
        TargetGroup("0", ({"__address__": "a:1"}, {"__address__": "b:2"}), {"env": "prod"}),
        TargetGroup("1", ({"__address__": "c:3"},), {}),
    ]
    await asyncio.sleep(0.05)
    assert updates.calls == 1
    await stop(task)


# --- file_sd ----------------------------------------------------------------------------------


def write(path: Path, text: str) -> None:
    """Replace a file's content so that a poll notices (new size or new mtime)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    old = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    st = path.stat()
    if st.st_mtime_ns == old:  # coarse-grained file system clocks
        os.utime(path, ns=(st.st_atime_ns, old + 1_000_000_000))


def file_sd(files: list[str], refresh_ms: int = 300_000) -> FileSDConfig:
    return FileSDConfig(files=files, refresh_interval_ms=refresh_ms)


@pytest.mark.parametrize(
    "name",
    ["targets.txt", "sd/*/x.json", "a.json.bak", "targets", "*.Json"],
)
def test_file_discoverer_rejects_paths_prometheus_rejects(name: str) -> None:
    with pytest.raises(ValueError, match="is not valid for file discovery"):
        FileDiscoverer(file_sd([name]), "/etc")


def test_discoverers_reject_zero_intervals() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        FileDiscoverer(file_sd(["a.json"], refresh_ms=0), "/etc")
    with pytest.raises(ValueError, match="must be positive"):
        FileDiscoverer(file_sd(["a.json"]), "/etc", poll_interval_s=0)
    with pytest.raises(ValueError, match="must be positive"):
        HTTPDiscoverer(http_sd("http://127.0.0.1:1/sd", refresh_ms=0))


def test_file_discoverer_resolves_paths_against_base_dir() -> None:
    d = FileDiscoverer(file_sd(["sd/*.json", "/abs/x.yml", "../y.YAML"]), "/etc/prometheus")
    assert d.patterns == ["/etc/prometheus/sd/*.json", "/abs/x.yml", "/etc/y.YAML"]


async def test_file_discoverer_follows_files(tmp_path: Path) -> None:
    sd = tmp_path / "sd"
    a = sd / "a.json"
    b = sd / "b.yml"
    write(a, json.dumps([{"targets": ["a1:1", "a2:2"], "labels": {"team": "x"}}, {"targets": ["a3:3"]}]))
    write(b, "- targets: [b1:1]\n  labels: {__meta_custom: yes}\n")
    write(sd / "ignored.txt", "[]")
    registry = CollectorRegistry()
    disc = FileDiscoverer(
        file_sd(["sd/*.json", "sd/b.yml"]), str(tmp_path), SDMetrics(registry), poll_interval_s=0.02
    )
    updates = Updates()
    task = asyncio.create_task(disc.run(updates))
    try:
        groups = await updates.next()
        pa, pb = str(a), str(b)
        assert groups == [
            TargetGroup(
                f"{pa}:0",
                ({"__address__": "a1:1"}, {"__address__": "a2:2"}),
                {"team": "x", "__meta_filepath": pa},
            ),
            TargetGroup(f"{pa}:1", ({"__address__": "a3:3"},), {"__meta_filepath": pa}),
            TargetGroup(
                f"{pb}:0", ({"__address__": "b1:1"},), {"__meta_custom": "yes", "__meta_filepath": pb}
            ),
        ]

        # Modified: the file's groups are replaced (here: one group fewer).
        write(a, json.dumps([{"targets": ["a9:9"]}]))
        assert addresses(await updates.next()) == {f"{pa}:0": ["a9:9"], f"{pb}:0": ["b1:1"]}

        # Malformed: logged, counted, and the file keeps its previous groups (no update).
        calls = updates.calls
        write(a, '[{"targets": ["broken"')
        await wait_for(lambda: counter(registry, "vigilops_sd_file_read_errors_total") == 1)
        write(b, "- targets: [b2:2]\n")  # other files still follow their changes
        assert addresses(await updates.next()) == {f"{pa}:0": ["a9:9"], f"{pb}:0": ["b2:2"]}
        assert updates.calls == calls + 1

        # Fixed again.
        write(a, json.dumps([{"targets": ["a10:10"]}]))
        assert addresses(await updates.next()) == {f"{pa}:0": ["a10:10"], f"{pb}:0": ["b2:2"]}

        # A new file matching the glob joins; a deleted file's groups go.
        c = sd / "c.json"
        write(c, json.dumps([{"targets": ["c1:1"]}]))
        assert addresses(await updates.next()) == {
            f"{pa}:0": ["a10:10"],
            f"{pb}:0": ["b2:2"],
            f"{c}:0": ["c1:1"],
        }
        a.unlink()
        assert addresses(await updates.next()) == {f"{pb}:0": ["b2:2"], f"{c}:0": ["c1:1"]}
        shutil.rmtree(sd)
        assert await updates.next() == []
    finally:
        await stop(task)
    # Every refresh reads every file: the change to b.yml re-read the still broken a.json.
    assert counter(registry, "vigilops_sd_file_read_errors_total") == 2


async def test_file_discoverer_malformed_from_the_start(tmp_path: Path) -> None:
    write(tmp_path / "bad.yml", "- targets: [a\n")
    write(tmp_path / "good.yaml", "- targets: [g:1]\n")
    registry = CollectorRegistry()
    disc = FileDiscoverer(
        file_sd(["*.yml", "*.yaml"]), str(tmp_path), SDMetrics(registry), poll_interval_s=0.02
    )
    updates = Updates()
    task = asyncio.create_task(disc.run(updates))
    try:
        assert addresses(await updates.next()) == {f"{tmp_path}/good.yaml:0": ["g:1"]}
        assert counter(registry, "vigilops_sd_file_read_errors_total") == 1
    finally:
        await stop(task)


async def test_file_discoverer_rereads_at_refresh_interval(tmp_path: Path) -> None:
    """Without polling (poll interval of an hour) a change is still seen at refresh_interval."""
    path = tmp_path / "t.json"
    write(path, json.dumps([{"targets": ["a:1"]}]))
    disc = FileDiscoverer(file_sd(["t.json"], refresh_ms=50), str(tmp_path), poll_interval_s=3600)
    updates = Updates()
    task = asyncio.create_task(disc.run(updates))
    try:
        assert addresses(await updates.next()) == {f"{path}:0": ["a:1"]}
        write(path, json.dumps([{"targets": ["b:2"]}]))
        assert addresses(await updates.next()) == {f"{path}:0": ["b:2"]}
    finally:
        await stop(task)


async def test_file_discoverer_reports_empty_start(tmp_path: Path) -> None:
    disc = FileDiscoverer(file_sd(["nothing/*.json"]), str(tmp_path), poll_interval_s=0.02)
    updates = Updates()
    task = asyncio.create_task(disc.run(updates))
    try:
        assert await updates.next() == []
        write(tmp_path / "nothing" / "x.json", '[{"targets": ["x:1"]}]')
        assert addresses(await updates.next()) == {f"{tmp_path}/nothing/x.json:0": ["x:1"]}
    finally:
        await stop(task)


# --- http_sd ----------------------------------------------------------------------------------


class SDServer:
    """A real HTTP server on loopback whose answers the test sets."""

    def __init__(self) -> None:
        self.status = 200
        self.content_type = "application/json"
        self.body: bytes = b"[]"
        self.requests: list[web.Request] = []
        self.required_auth: str | None = None

    def set_groups(self, groups: object) -> None:
        self.body = json.dumps(groups).encode()

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(request)
        if self.required_auth is not None and request.headers.get("Authorization") != self.required_auth:
            return web.Response(status=401, text="unauthorized")
        return web.Response(status=self.status, body=self.body, headers={"Content-Type": self.content_type})


async def _moved(request: web.Request) -> web.Response:
    raise web.HTTPFound("/sd")


@pytest.fixture
async def sd_server() -> AsyncIterator[tuple[SDServer, str]]:
    state = SDServer()
    app = web.Application()
    app.router.add_get("/sd", state.handle)
    app.router.add_get("/moved", _moved)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield state, str(server.make_url("/sd"))
    finally:
        await server.close()


def http_sd(url: str, refresh_ms: int = 60_000, **kw: Any) -> HTTPSDConfig:
    return HTTPSDConfig(url=url, refresh_interval_ms=refresh_ms, **kw)


async def test_http_sd_good_response(sd_server: tuple[SDServer, str]) -> None:
    state, url = sd_server
    state.set_groups(
        [
            {"targets": ["a:1", "b:2"], "labels": {"env": "prod", "__meta_url": "spoofed"}},
            {"targets": ["c:3"]},
        ]
    )
    groups = await HTTPDiscoverer(http_sd(url, refresh_ms=15_000)).refresh()
    assert groups == [
        TargetGroup(
            f"{url}:0",
            ({"__address__": "a:1"}, {"__address__": "b:2"}),
            {"env": "prod", "__meta_url": url},
        ),
        TargetGroup(f"{url}:1", ({"__address__": "c:3"},), {"__meta_url": url}),
    ]
    headers = state.requests[-1].headers
    assert headers["Accept"] == "application/json"
    assert headers["X-Prometheus-Refresh-Interval-Seconds"] == "15"
    assert "Authorization" not in headers


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "Application/JSON",
        "application/json; charset=utf-8",
        'application/json;charset="UTF-8"',
    ],
)
async def test_http_sd_accepts_json_content_types(
    sd_server: tuple[SDServer, str], content_type: str
) -> None:
    state, url = sd_server
    state.content_type = content_type
    state.set_groups([{"targets": ["a:1"]}])
    assert len(await HTTPDiscoverer(http_sd(url)).refresh()) == 1


@pytest.mark.parametrize(
    ("status", "content_type", "body", "error"),
    [
        (200, "text/plain", b"[]", 'unsupported content type "text/plain"'),
        (200, "application/json; charset=latin-1", b"[]", "unsupported content type"),
        (200, "application/jsonx", b"[]", "unsupported content type"),
        (500, "application/json", b"[]", "server returned HTTP status 500 Internal Server Error"),
        (404, "application/json", b"[]", "server returned HTTP status 404 Not Found"),
        (200, "application/json", b'[{"targets": [', "invalid JSON"),
        (200, "application/json", b'{"targets": []}', "expected a list of target groups"),
        (200, "application/json", b"[null]", "nil target group item found"),
        (200, "application/json", b'[{"labels": {"a.b": "x"}}]', "not a valid label name"),
    ],
)
async def test_http_sd_failures(
    sd_server: tuple[SDServer, str], status: int, content_type: str, body: bytes, error: str
) -> None:
    state, url = sd_server
    state.status, state.content_type, state.body = status, content_type, body
    registry = CollectorRegistry()
    with pytest.raises(HTTPSDError, match=error):
        await HTTPDiscoverer(http_sd(url), SDMetrics(registry)).refresh()
    assert counter(registry, "vigilops_sd_http_failures_total") == 1


async def test_http_sd_follows_redirects_unless_told_not_to(sd_server: tuple[SDServer, str]) -> None:
    state, url = sd_server
    state.set_groups([{"targets": ["a:1"]}])
    moved = url.replace("/sd", "/moved")
    [g] = await HTTPDiscoverer(http_sd(moved, refresh_ms=500)).refresh()
    assert g.source == f"{moved}:0" and g.labels == {"__meta_url": moved}
    assert state.requests[-1].headers["X-Prometheus-Refresh-Interval-Seconds"] == "0.5"
    with pytest.raises(HTTPSDError, match="server returned HTTP status 302 Found"):
        await HTTPDiscoverer(http_sd(moved, follow_redirects=False)).refresh()


async def test_http_sd_connection_refused() -> None:
    port = free_port()
    registry = CollectorRegistry()
    with pytest.raises(HTTPSDError, match=f'Get "http://127.0.0.1:{port}/sd"'):
        await HTTPDiscoverer(http_sd(f"http://127.0.0.1:{port}/sd"), SDMetrics(registry)).refresh()
    assert counter(registry, "vigilops_sd_http_failures_total") == 1


async def test_http_sd_basic_auth(sd_server: tuple[SDServer, str]) -> None:
    state, url = sd_server
    state.required_auth = "Basic " + base64.b64encode(b"sd:s3cret").decode()
    state.set_groups([{"targets": ["a:1"]}])
    with pytest.raises(HTTPSDError, match="401 Unauthorized"):
        await HTTPDiscoverer(http_sd(url)).refresh()
    with pytest.raises(HTTPSDError, match="401 Unauthorized"):
        await HTTPDiscoverer(http_sd(url, basic_auth=BasicAuth(username="sd", password="wrong"))).refresh()
    cfg = http_sd(url, basic_auth=BasicAuth(username="sd", password="s3cret"))
    assert len(await HTTPDiscoverer(cfg).refresh()) == 1


async def test_http_sd_bearer_token(sd_server: tuple[SDServer, str]) -> None:
    state, url = sd_server
    state.required_auth = "Bearer tok3n"
    state.set_groups([{"targets": ["a:1"]}])
    with pytest.raises(HTTPSDError, match="401 Unauthorized"):
        await HTTPDiscoverer(http_sd(url)).refresh()
    cfg = http_sd(url, authorization=Authorization(type="Bearer", credentials="tok3n"))
    assert len(await HTTPDiscoverer(cfg).refresh()) == 1


async def test_http_sd_run_keeps_last_good_groups(sd_server: tuple[SDServer, str]) -> None:
    state, url = sd_server
    state.set_groups([{"targets": ["a:1"]}])
    registry = CollectorRegistry()
    updates = Updates()
    disc = HTTPDiscoverer(http_sd(url, refresh_ms=20), SDMetrics(registry))
    task = asyncio.create_task(disc.run(updates))
    try:
        assert addresses(await updates.next()) == {f"{url}:0": ["a:1"]}
        # An unchanged answer is not reported again.
        seen = len(state.requests)
        await wait_for(lambda: len(state.requests) >= seen + 3)
        assert updates.calls == 1

        state.status = 500
        await wait_for(lambda: counter(registry, "vigilops_sd_http_failures_total") >= 2)
        state.status = 200
        state.content_type = "text/html"
        await wait_for(lambda: counter(registry, "vigilops_sd_http_failures_total") >= 4)
        assert updates.calls == 1  # failures keep the last good groups

        state.content_type = "application/json"
        state.set_groups([{"targets": ["b:2"]}, {"targets": ["c:3"]}])
        assert addresses(await updates.next()) == {f"{url}:0": ["b:2"], f"{url}:1": ["c:3"]}
        state.set_groups([])
        assert await updates.next() == []
    finally:
        await stop(task)


async def test_http_sd_run_reports_empty_when_first_refresh_fails(sd_server: tuple[SDServer, str]) -> None:
    state, url = sd_server
    state.status = 503
    updates = Updates()
    task = asyncio.create_task(HTTPDiscoverer(http_sd(url, refresh_ms=20)).run(updates))
    try:
        assert await updates.next() == []
        state.status = 200
        state.set_groups([{"targets": ["a:1"]}])
        assert addresses(await updates.next()) == {f"{url}:0": ["a:1"]}
    finally:
        await stop(task)


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[str, str]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


async def test_http_sd_over_tls(tls_files: tuple[str, str]) -> None:
    cert, key = tls_files
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    state = SDServer()
    state.set_groups([{"targets": ["a:1"]}])
    app = web.Application()
    app.router.add_get("/sd", state.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    try:
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        url = f"https://127.0.0.1:{port}/sd"
        # Not trusted by default.
        with pytest.raises(HTTPSDError, match="certificate"):
            await HTTPDiscoverer(http_sd(url)).refresh()
        trusted = http_sd(url, tls_config=TLSConfig(ca_file=cert))
        assert len(await HTTPDiscoverer(trusted).refresh()) == 1
        insecure = http_sd(url, tls_config=TLSConfig(insecure_skip_verify=True))
        assert len(await HTTPDiscoverer(insecure).refresh()) == 1
    finally:
        await runner.cleanup()
