"""``python -m bench.agent``: the host agent next to node_exporter, in one run.

Both exporters run on loopback and are scraped every `--interval` seconds (default 15, the
DESIGN.md figure) for `--minutes` (default 10). Reported per exporter: RSS (median and
max over the run, from /proc via psutil), CPU seconds over the run and per scrape, the
share of one core, and the median / p95 scrape latency seen by the scraper. The scraper
itself is this process and is not counted. Goal (DESIGN.md): agent under 50 MB RSS and
under 1 % of one core at a 15 s interval.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field

import psutil

from .procs import free_port


@dataclass
class ExporterRun:
    name: str
    command: list[str]
    rss_samples: list[int] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)
    cpu_s: float = 0.0
    wall_s: float = 0.0
    scrapes: int = 0
    series: int = 0

    def summary(self) -> dict[str, object]:
        lat = sorted(self.latencies_s)
        p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))] if lat else 0.0
        return {
            "exporter": self.name,
            "command": " ".join(self.command),
            "scrapes": self.scrapes,
            "series": self.series,
            "rss_median_mb": statistics.median(self.rss_samples) / 2**20 if self.rss_samples else 0,
            "rss_max_mb": max(self.rss_samples) / 2**20 if self.rss_samples else 0,
            "cpu_s": self.cpu_s,
            "cpu_ms_per_scrape": 1000 * self.cpu_s / self.scrapes if self.scrapes else 0,
            "core_percent": 100 * self.cpu_s / self.wall_s if self.wall_s else 0,
            "latency_median_ms": 1000 * statistics.median(lat) if lat else 0,
            "latency_p95_ms": 1000 * p95,
        }


def _cpu(p: psutil.Process) -> float:
    t = p.cpu_times()
    return float(t.user + t.system)


def _scrape(url: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = resp.read()
    lines = sum(1 for ln in body.splitlines() if ln and not ln.startswith(b"#"))
    return time.perf_counter() - t0, lines


def _wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: exporter exited with {proc.returncode}")
        try:
            _scrape(url)
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url}: exporter did not answer")


def run(minutes: float, interval_s: float) -> list[ExporterRun]:
    node_port, agent_port = free_port(), free_port()
    workdir = tempfile.mkdtemp(prefix="vigilops-bench-agent-")
    config = os.path.join(workdir, "agent.yaml")
    with open(config, "w") as f:
        f.write(f"listen_address: 127.0.0.1:{agent_port}\n")
    vigilops = os.path.join(os.path.dirname(sys.executable), "vigilops")
    runs = [
        ExporterRun("node_exporter", [shutil.which("prometheus-node-exporter") or "/usr/bin/prometheus-node-exporter",
                                      f"--web.listen-address=127.0.0.1:{node_port}"]),
        ExporterRun("vigilops agent", [vigilops, "agent", "--config", config]),
    ]
    urls = [f"http://127.0.0.1:{node_port}/metrics", f"http://127.0.0.1:{agent_port}/metrics"]
    procs = [subprocess.Popen(r.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for r in runs]
    try:
        for url, proc in zip(urls, procs):
            _wait_up(url, proc)
        handles = [psutil.Process(p.pid) for p in procs]
        # One warm-up scrape each (imports, first reads), then measure.
        for url in urls:
            _scrape(url)
        cpu0 = [_cpu(h) for h in handles]
        t_start = time.monotonic()
        deadline = t_start + minutes * 60
        next_tick = t_start
        while time.monotonic() < deadline:
            for r, url, h in zip(runs, urls, handles):
                latency, series = _scrape(url)
                r.latencies_s.append(latency)
                r.series = series
                r.scrapes += 1
                r.rss_samples.append(h.memory_info().rss)
            next_tick += interval_s
            time.sleep(max(0.0, next_tick - time.monotonic()))
        wall = time.monotonic() - t_start
        for r, h, c0 in zip(runs, handles, cpu0):
            r.cpu_s = _cpu(h) - c0
            r.wall_s = wall
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(workdir, ignore_errors=True)
    return runs


def render(results: list[dict[str, object]], minutes: float, interval_s: float) -> str:
    head = "| Exporter | Series | Scrapes | RSS median | RSS max | CPU-s | CPU per scrape | Share of a core | Latency median | p95 |"
    rows = [head, "|" + " --- |" * 10]
    for r in results:
        rows.append(
            f"| {r['exporter']} | {r['series']} | {r['scrapes']} | {r['rss_median_mb']:.1f} MB | "
            f"{r['rss_max_mb']:.1f} MB | {r['cpu_s']:.2f} | {r['cpu_ms_per_scrape']:.1f} ms | "
            f"{r['core_percent']:.2f} % | {r['latency_median_ms']:.1f} ms | {r['latency_p95_ms']:.1f} ms |"
        )
    rows.append("")
    rows.append(f"- scraped every {interval_s:g} s for {minutes:g} minutes, both in the same run; "
                f"`python -m bench.agent --minutes {minutes:g} --interval {interval_s:g}`")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.agent", description=__doc__)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--interval", type=float, default=15.0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    results = [r.summary() for r in run(args.minutes, args.interval)]
    print(render(results, args.minutes, args.interval))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"minutes": args.minutes, "interval_s": args.interval, "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

