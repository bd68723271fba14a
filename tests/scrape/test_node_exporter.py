"""Scraping a real node_exporter (Debian's prometheus-node-exporter) on loopback."""

from __future__ import annotations

import math

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from vigilops.scrape.config import parse_config
from vigilops.scrape.discovery import TargetGroup
from vigilops.scrape.http_client import ScrapeClients, TargetClient
from vigilops.scrape.loop import ScrapeLoop
from vigilops.scrape.metrics import ScrapeMetrics
from vigilops.scrape.targets import build_targets
from vigilops.tsdb.db import DB
from vigilops.tsdb.model import MAX_TIME, MIN_TIME, Labels, Matcher, MatchType

from peerprocs import binary, free_port, get, process, wait_for

T0 = 1_795_305_600_000


@pytest.mark.peer
async def test_every_node_exporter_series_is_stored_with_its_value(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    exporter = [binary("prometheus-node-exporter"), f"--web.listen-address=127.0.0.1:{port}"]
    with process(exporter, str(tmp_path / "node_exporter.log")) as proc:
        wait_for(lambda: get(f"http://127.0.0.1:{port}/metrics"), "node_exporter", proc=proc)
        served: list[bytes] = []
        real_get = TargetClient.get

        async def recording_get(self: TargetClient) -> tuple[bytes, str]:
            body, content_type = await real_get(self)
            served.append(body)
            return body, content_type

        monkeypatch.setattr(TargetClient, "get", recording_get)
        address = f"127.0.0.1:{port}"
        cfg = parse_config(
            f"scrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['{address}']\n"
        ).scrape_configs[0]
        targets, _ = build_targets([TargetGroup("0", ({"__address__": address},), {})], cfg)
        with DB.open(str(tmp_path / "data")) as db:
            loop = ScrapeLoop(targets[0], cfg, db, ScrapeClients(cfg), ScrapeMetrics(None))
            try:
                await loop.scrape_and_report(T0)
            finally:
                await loop.client.close()
            assert loop.status.health == "up", loop.status.last_error
            with db.querier(MIN_TIME, MAX_TIME) as q:
                stored = {
                    s.labels: s.values for s in q.select([Matcher(MatchType.REGEX, "__name__", ".+")])
                }
    (body,) = served
    # An independent parser (prometheus_client's) reads what node_exporter served.
    expected: dict[Labels, float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            labels = {**sample.labels, "__name__": sample.name, "job": "node", "instance": address}
            expected[Labels(labels)] = sample.value
    assert len(expected) > 200  # a real node_exporter exposes hundreds of series
    report = {"up", "scrape_duration_seconds", "scrape_samples_scraped",
              "scrape_samples_post_metric_relabeling", "scrape_series_added"}
    assert {ls for ls in stored if ls.name not in report} == set(expected)
    for ls, value in expected.items():
        got = stored[ls]
        assert len(got) == 1
        if math.isnan(value):
            assert np.isnan(got[0])
        else:
            assert got[0] == value, ls
    assert stored[Labels({"__name__": "scrape_samples_scraped", "job": "node", "instance": address})][0] == len(expected)
