"""``python -m bench <subcommand>``: run storage benchmarks, print tables, write JSON.

  dataset   make (or find) the OpenMetrics dataset and describe it
  disk      bytes per sample after compaction and backfill cost: VigilOps, Prometheus, VictoriaMetrics
  ingest    batch append throughput into the head
  memory    head memory per active series
  read      read-back speed through the Querier
  scrape    scrape ingest through the full scrape path (real servers, synthetic targets):
            VigilOps, Prometheus, VictoriaMetrics; VigilOps also while compacting
  query     dashboard query latency (range and instant), side by side with the peers
  all       everything above in one run; rewrites the figures in BENCHMARKS.md
  report    redraw BENCHMARKS.md from a saved ``--json`` file of ``all``
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from . import dataset as dsmod
from .machine import REPO, run_info
from .report import (
    BENCHMARKS_MD,
    disk_detail,
    ingest_detail,
    memory_detail,
    query_detail,
    read_detail,
    render_figures,
    scrape_detail,
    summary_table,
    update_markdown,
    write_json,
)

D = dict[str, Any]
SYSTEM_KEYS = {"vigilops": "VigilOps", "prometheus": "Prometheus", "victoriametrics": "VictoriaMetrics"}
DEFAULT_WORKDIR = os.path.join(dsmod.OUT_DIR, "work")
DEFAULT_ALL_JSON = os.path.join(dsmod.OUT_DIR, "results.json")

MD_HEADER = """# Benchmarks

Figures are written by `./dev.sh bench all` (see below); everything between the markers is
generated. Benchmarks report: nothing here is a pass/fail threshold for the tests.

"""


# -- the steps -------------------------------------------------------------------------------

def step(name: str) -> None:
    print(f"\n== {name} ({time.strftime('%H:%M:%S')})", flush=True)


def guarded(what: str, fn: Callable[[], D]) -> D:
    """Run one measurement; a failure is recorded in the results, not raised, so the
    other figures of the run survive it."""
    try:
        return fn()
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - reported, the run goes on
        traceback.print_exc()
        print(f"!! {what} failed: {exc}", file=sys.stderr, flush=True)
        return {"error": f"{type(exc).__name__}: {exc}"}


def run_disk(ds: dsmod.Dataset, workdir: str, systems: list[str], keep: bool = False) -> D:
    from .disk import openmetrics_parser_available, vigilops_backfill
    from .peers import prometheus_backfill, victoriametrics_import

    os.makedirs(workdir, exist_ok=True)
    out: D = {}
    for key in systems:
        name = SYSTEM_KEYS[key]
        log = os.path.join(workdir, f"{key}.log")
        step(f"disk: {name} (log: {os.path.relpath(log, REPO)})")
        if key == "vigilops":
            if not openmetrics_parser_available():
                out[name] = {"error": "vigilops.tsdb.openmetrics_parse is not there yet (import unavailable)"}
                continue
            out[name] = guarded(name, lambda: vigilops_backfill(ds, workdir, log).to_dict())
        elif key == "prometheus":
            out[name] = guarded(name, lambda: prometheus_backfill(ds, workdir, log).to_dict())
        else:
            out[name] = guarded(name, lambda: victoriametrics_import(ds, workdir, log).to_dict())
        r = out[name]
        if "error" not in r:
            print(f"   {r['bytes_per_sample']:.3f} B/sample, {r['phases'][0]['cpu_s']:.1f} CPU-s", flush=True)
        if key != "vigilops" and not keep:
            shutil.rmtree(os.path.join(workdir, "victoria-metrics" if key == "victoriametrics" else key),
                          ignore_errors=True)
    return out


def run_ingest_all(workdir: str, series: int, hours: float, syncs: list[str]) -> list[D]:
    from vigilops.tsdb.wal.wal import SyncPolicy

    from .ingest import run_ingest

    out = []
    for sync in syncs:
        step(f"ingest: {series:,} series x {hours:g} h, WAL sync {sync}")
        r = guarded("ingest", lambda: run_ingest(workdir, series, hours, wal_sync=SyncPolicy(sync)).to_dict())
        if "error" not in r:
            r["command"] = f"python -m bench ingest --series {series} --hours {hours:g} --wal-sync {sync}"
            print(f"   {r['samples_per_cpu_s'] / 1e6:.2f} M samples per CPU-s", flush=True)
            out.append(r)
    return out


def run_memory_step(workdir: str, scales: tuple[int, ...], scrapes: int, repeats: int) -> D | None:
    from .memory import run_memory_scales

    step(f"memory: {', '.join(f'{n:,}' for n in scales)} series x {scrapes} scrapes, {repeats} runs each "
         "+ 1 untuned + 1 traced at the first")
    r = guarded("memory", lambda: run_memory_scales(workdir, scales, scrapes, repeats=repeats))
    if "error" in r:
        return None
    for sc in r["scales"]:
        print(f"   {sc['series']:,} series: {sc['bytes_per_series']:,.0f} B per series "
              f"(peak {sc['peak_bytes_per_series']:,.0f} B)", flush=True)
    return r


def run_scrape_step(args: argparse.Namespace, workdir: str, systems: list[str],
                    backfill: dsmod.Dataset | None) -> D:
    from .scrape import run_scrape

    run = run_info().to_dict()  # before: the commit under test, not one made meanwhile
    out = run_scrape(
        os.path.join(workdir, "scrape"), systems, targets=args.scrape_targets, interval_s=args.scrape_interval,
        warmup_s=args.scrape_warmup, duration_s=args.scrape_duration, probes=args.scrape_probes,
        backfill=backfill, step=step, guarded=guarded,
    )
    out["command"] = "python -m bench " + shlex.join(sys.argv[1:])
    out["run"] = run
    return out


def is_reference_scrape(args: argparse.Namespace, systems: list[str]) -> bool:
    from .scrape import DEFAULT_INTERVAL_S, DEFAULT_PROBES, DEFAULT_TARGETS

    return (args.scrape_targets == DEFAULT_TARGETS and args.scrape_interval == DEFAULT_INTERVAL_S
            and args.scrape_warmup >= 60 and args.scrape_duration >= 180
            and args.scrape_probes == DEFAULT_PROBES and len(systems) == len(SYSTEM_KEYS))


# -- subcommands -----------------------------------------------------------------------------

def add_dataset_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("dataset")
    g.add_argument("--dataset", metavar="FILE",
                   help="OpenMetrics file (default: bench/out/node_<H>h_<T>t.om, generated if missing)")
    g.add_argument("--targets", type=int, default=dsmod.DEFAULT_TARGETS)
    g.add_argument("--hours", type=float, default=dsmod.DEFAULT_HOURS)
    g.add_argument("--step", type=int, default=dsmod.DEFAULT_STEP_S, help="seconds between samples")
    g.add_argument("--end", type=int, default=dsmod.DEFAULT_END, help="Unix seconds of the last sample")


def add_scrape_args(p: argparse.ArgumentParser, prefix: bool = False) -> None:
    from .scrape import (
        DEFAULT_DURATION_S,
        DEFAULT_INTERVAL_S,
        DEFAULT_PROBES,
        DEFAULT_TARGETS,
        DEFAULT_WARMUP_S,
    )

    g = p.add_argument_group("scrape ingest")
    pre = "--scrape-" if prefix else "--"
    g.add_argument(pre + "targets", dest="scrape_targets", type=int, metavar="N", default=DEFAULT_TARGETS,
                   help="load server targets (default %(default)s)")
    g.add_argument(pre + "interval", dest="scrape_interval", type=float, metavar="SECONDS", default=DEFAULT_INTERVAL_S,
                   help="scrape interval in seconds (default %(default)s)")
    g.add_argument(pre + "warmup", dest="scrape_warmup", type=float, metavar="SECONDS", default=DEFAULT_WARMUP_S,
                   help="seconds scraped before measuring (default %(default)s)")
    g.add_argument(pre + "duration", dest="scrape_duration", type=float, metavar="SECONDS", default=DEFAULT_DURATION_S,
                   help="seconds measured (default %(default)s)")
    g.add_argument(pre + "probes", dest="scrape_probes", type=int, metavar="N", default=DEFAULT_PROBES,
                   help="probe targets recording scrape arrival times (default %(default)s)")


def get_dataset(args: argparse.Namespace) -> dsmod.Dataset:
    ds = dsmod.ensure_dataset(args.dataset, args.targets, args.hours, args.step, args.end)
    print(f"dataset: {ds.path}: {ds.samples:,} samples, {ds.series:,} series, {ds.hours:g} h", flush=True)
    return ds


def is_reference(ds: dsmod.Dataset) -> bool:
    return (ds.targets, ds.step_s, round(ds.hours, 3), ds.end_s) == (
        dsmod.DEFAULT_TARGETS, dsmod.DEFAULT_STEP_S, dsmod.DEFAULT_HOURS, dsmod.DEFAULT_END)


def parse_systems(text: str) -> list[str]:
    keys = [s.strip().lower().replace("-", "") for s in text.split(",") if s.strip()]
    bad = [k for k in keys if k not in SYSTEM_KEYS]
    if bad:
        raise SystemExit(f"error: unknown system(s) {', '.join(bad)}; choose from {', '.join(SYSTEM_KEYS)}")
    return keys


def workdir_for(args: argparse.Namespace) -> str:
    path = os.path.join(os.path.abspath(args.workdir), f"run-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
    os.makedirs(path, exist_ok=True)
    return path


def finish(args: argparse.Namespace, res: D, workdir: str | None) -> None:
    res.setdefault("command", "python -m bench " + shlex.join(sys.argv[1:]))
    if args.json:
        write_json(args.json, res)
        print(f"\nwrote {args.json}")
    if workdir and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    elif workdir:
        print(f"kept {workdir}")


def cmd_dataset(args: argparse.Namespace) -> D:
    ds = get_dataset(args)
    print(json.dumps(ds.to_dict(), indent=1))
    return {"dataset": ds.to_dict()}


def cmd_disk(args: argparse.Namespace, workdir: str) -> D:
    ds = get_dataset(args)
    res: D = {"run": run_info().to_dict(), "dataset": ds.to_dict()}
    systems = parse_systems(args.systems)
    res["disk"] = run_disk(ds, workdir, systems, args.keep)
    print("\n" + summary_table(res) + "\n\n" + disk_detail(res))
    if not args.no_md and (args.md or (is_reference(ds) and len(systems) == len(SYSTEM_KEYS))):
        merge_section(args, res, "disk")
    return res


def cmd_ingest(args: argparse.Namespace, workdir: str) -> D:
    res: D = {"run": run_info().to_dict()}
    res["ingest"] = run_ingest_all(workdir, args.series, args.hours, args.wal_sync.split(","))
    print("\n" + ingest_detail(res))
    return res


def cmd_memory(args: argparse.Namespace, workdir: str) -> D:
    res: D = {"run": run_info().to_dict()}
    from .memory import DEFAULT_SCALES

    scales = tuple(int(x) for x in args.series.split(","))
    mem = run_memory_step(workdir, scales, args.scrapes, args.repeats)
    if mem:
        res["memory"] = mem
        print("\n" + memory_detail(res))
        reference = (scales, args.scrapes) == (DEFAULT_SCALES, 240)
        if not args.no_md and (args.md or reference):
            merge_section(args, res, "memory")
    return res


def cmd_read(args: argparse.Namespace, workdir: str) -> D:
    from .read import read_data_dir, read_head, read_synthetic_blocks

    res: D = {"run": run_info().to_dict(), "read": []}
    step("read: blocks")
    if args.data_dir:
        r = guarded("read blocks", lambda: read_data_dir(args.data_dir, args.repeats).to_dict())
    else:
        r = guarded("read blocks", lambda: read_synthetic_blocks(workdir, args.series, args.block_hours,
                                                                 args.repeats).to_dict())
    if "error" not in r:
        res["read"].append(r)
    step("read: head")
    r = guarded("read head", lambda: read_head(workdir, args.series, args.head_hours, args.repeats).to_dict())
    if "error" not in r:
        res["read"].append(r)
    print("\n" + read_detail(res))
    return res


def merge_section(args: argparse.Namespace, res: D, key: str) -> None:
    """Put `res[key]` into the results of the last `all` (keeping its other figures) and
    redraw the Markdown from them."""
    merged: D = {}
    if os.path.exists(args.results):
        with open(args.results) as f:
            merged = json.load(f)
    merged.setdefault("run", res["run"])
    merged[key] = res[key]
    if key != "scrape":  # the scrape section records its own run and command
        merged.setdefault("separate_runs", {})[key] = {
            "date_utc": res["run"].get("date_utc", "?"),
            "vigilops_commit": res["run"].get("vigilops_commit", "?"),
            "command": "python -m bench " + shlex.join(sys.argv[1:]),
        }
    write_json(args.results, merged)
    md = args.md or BENCHMARKS_MD
    update_markdown(merged, md, MD_HEADER)
    print(f"updated {args.results} and {md}")


def cmd_scrape(args: argparse.Namespace, workdir: str) -> D:
    systems = parse_systems(args.systems)
    backfill = None
    if not args.no_compaction and "vigilops" in systems:
        backfill = dsmod.ensure_dataset(args.backfill, args.backfill_targets, args.backfill_hours,
                                        dsmod.DEFAULT_STEP_S, dsmod.DEFAULT_END)
        print(f"backfill for the compaction run: {backfill.path}: {backfill.samples:,} samples", flush=True)
    res: D = {"run": run_info().to_dict()}
    res["scrape"] = run_scrape_step(args, workdir, systems, backfill)
    print("\n" + scrape_detail(res))
    if args.no_md:
        pass
    elif args.md or is_reference_scrape(args, systems):
        merge_section(args, res, "scrape")
    else:
        print("not the reference shape (200 targets at 1 s, 60 s + 180 s, all systems): BENCHMARKS.md left "
              "alone; pass --md PATH to write the figures anyway")
    return res


def cmd_query(args: argparse.Namespace, workdir: str) -> D:
    from .query import run_query_bench

    ds = get_dataset(args)
    res: D = {"run": run_info().to_dict(), "dataset": ds.to_dict()}
    res["query"] = guarded("query", lambda: run_query_bench(
        ds, dsmod.OUT_DIR, parse_systems(args.systems), args.repeats, step))
    res["query"]["command"] = "python -m bench " + shlex.join(sys.argv[1:])
    if "error" not in res["query"]:
        print("\n" + query_detail(res))
        if not args.no_md and (args.md or is_reference(ds)):
            merge_section(args, res, "query")
    return res


def cmd_all(args: argparse.Namespace, workdir: str) -> D:
    from .read import read_data_dir, read_head, read_synthetic_blocks

    ds = get_dataset(args)
    res: D = {"run": run_info().to_dict(), "dataset": ds.to_dict()}
    res["ingest"] = run_ingest_all(workdir, args.series, 2.0, ["commit", "never"])
    from .memory import DEFAULT_SCALES

    mem = run_memory_step(workdir, DEFAULT_SCALES, 240, 3)
    if mem:
        res["memory"] = mem
    res["read"] = []
    step("read: head")
    r = guarded("read head", lambda: read_head(workdir, ds.series, 2.0, 3).to_dict())
    if "error" not in r:
        res["read"].append(r)
    res["disk"] = run_disk(ds, workdir, parse_systems(args.systems), args.keep)
    step("read: blocks")
    imported = os.path.join(workdir, "vigilops")
    if "error" not in res["disk"].get("VigilOps", {"error": ""}):
        r = guarded("read blocks", lambda: read_data_dir(imported, 3).to_dict())
    else:
        r = guarded("read blocks", lambda: read_synthetic_blocks(workdir, ds.series, 6.0, 3).to_dict())
    if "error" not in r:
        res["read"].insert(0, r)
    if not args.keep:
        shutil.rmtree(imported, ignore_errors=True)
    if not args.no_scrape:
        res["scrape"] = run_scrape_step(args, workdir, parse_systems(args.systems), ds)
    res["command"] = "python -m bench " + shlex.join(sys.argv[1:])
    print("\n" + render_figures(res))
    if args.no_md:
        pass
    elif args.md or is_reference(ds):
        md = args.md or BENCHMARKS_MD
        update_markdown(res, md, MD_HEADER)
        print(f"updated {md}")
    else:
        print("not the reference dataset (20 targets x 24 h at 15 s): BENCHMARKS.md left alone; "
              "pass --md PATH to write the figures anyway")
    return res


def cmd_report(args: argparse.Namespace) -> None:
    with open(args.results) as f:
        res = json.load(f)
    print(render_figures(res))
    if not args.no_md:
        md = args.md or BENCHMARKS_MD
        update_markdown(res, md, MD_HEADER)
        print(f"updated {md}")


def add_results_args(p: argparse.ArgumentParser, what: str, reference: str) -> None:
    p.add_argument("--results", metavar="PATH", default=DEFAULT_ALL_JSON,
                   help=f"results of `all` to put the {what} figures into before redrawing BENCHMARKS.md")
    p.add_argument("--md", metavar="PATH", help="Markdown file to update (default: BENCHMARKS.md, "
                   f"only for {reference})")
    p.add_argument("--no-md", action="store_true", help="do not touch any Markdown or results file")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")

    def common(p: argparse.ArgumentParser, json_default: str | None = None) -> None:
        p.add_argument("--json", metavar="PATH", default=json_default, help="also write the results as JSON")
        p.add_argument("--workdir", default=DEFAULT_WORKDIR, help="scratch space (default: bench/out/work)")
        p.add_argument("--keep", action="store_true", help="keep the scratch data directories")

    p = sub.add_parser("dataset", help="make or find the dataset and describe it")
    add_dataset_args(p)
    p.add_argument("--json", metavar="PATH")

    p = sub.add_parser("disk", help="bytes per sample and backfill cost, side by side with the peers")
    add_dataset_args(p)
    p.add_argument("--systems", default=",".join(SYSTEM_KEYS), help="comma-separated subset of %(default)s")
    add_results_args(p, "disk and backfill", "the reference dataset and all systems")
    common(p)

    p = sub.add_parser("ingest", help="batch append throughput into the head")
    p.add_argument("--series", type=int, default=10_000)
    p.add_argument("--hours", type=float, default=2.0, help="of 15 s scrapes")
    p.add_argument("--wal-sync", default="commit,never", help="comma-separated WAL sync policies")
    common(p)

    p = sub.add_parser("memory", help="head memory per active series")
    p.add_argument("--series", default="107000,10700",
                   help="comma-separated series counts, the headline first (default: 200 targets and the "
                        "reference dataset's 20, x 535 series)")
    p.add_argument("--scrapes", type=int, default=240, help="15 s scrapes (240 = 1 h)")
    p.add_argument("--repeats", type=int, default=3)
    add_results_args(p, "memory", "the reference shape")
    common(p)

    p = sub.add_parser("read", help="read-back speed through the Querier")
    p.add_argument("--data-dir", help="read the blocks of this VigilOps data directory "
                   "(default: write synthetic blocks first)")
    p.add_argument("--series", type=int, default=10_700)
    p.add_argument("--head-hours", type=float, default=2.0)
    p.add_argument("--block-hours", type=float, default=6.0)
    p.add_argument("--repeats", type=int, default=3)
    common(p)

    p = sub.add_parser("scrape", help="scrape ingest through the full scrape path, side by side with the peers")
    add_scrape_args(p)
    p.add_argument("--systems", default=",".join(SYSTEM_KEYS), help="comma-separated subset of %(default)s")
    g = p.add_argument_group("compaction run (VigilOps scraping while its maintenance merges backfilled blocks)")
    g.add_argument("--backfill", metavar="FILE", help="OpenMetrics file to backfill (default: "
                   "bench/out/node_<H>h_<T>t.om, generated if missing)")
    g.add_argument("--backfill-targets", type=int, default=dsmod.DEFAULT_TARGETS)
    g.add_argument("--backfill-hours", type=float, default=dsmod.DEFAULT_HOURS)
    g.add_argument("--no-compaction", action="store_true", help="skip the compaction run")
    p.add_argument("--results", metavar="PATH", default=DEFAULT_ALL_JSON,
                   help="results of `all` to put the scrape figures into before redrawing BENCHMARKS.md "
                   "(default: %(default)s)")
    p.add_argument("--md", metavar="PATH", help="Markdown file to update (default: BENCHMARKS.md, "
                   "only for the reference shape)")
    p.add_argument("--no-md", action="store_true", help="do not touch any Markdown or results file")
    common(p)

    p = sub.add_parser("query", help="dashboard query latency, side by side with the peers")
    add_dataset_args(p)
    p.add_argument("--systems", default=",".join(SYSTEM_KEYS), help="comma-separated subset of %(default)s")
    p.add_argument("--repeats", type=int, default=10, help="timed requests per query (default %(default)s)")
    add_results_args(p, "query", "the reference dataset")
    common(p)

    p = sub.add_parser("all", help="everything, one run; rewrites the figures in BENCHMARKS.md")
    add_dataset_args(p)
    p.add_argument("--systems", default=",".join(SYSTEM_KEYS), help="comma-separated subset of %(default)s")
    p.add_argument("--series", type=int, default=10_000, help="series for the append benchmark")
    add_scrape_args(p, prefix=True)
    p.add_argument("--no-scrape", action="store_true", help="skip the scrape ingest benchmark")
    p.add_argument("--md", metavar="PATH", help="Markdown file to update (default: BENCHMARKS.md, "
                   "only for the reference dataset)")
    p.add_argument("--no-md", action="store_true", help="do not touch any Markdown file")
    common(p, json_default=DEFAULT_ALL_JSON)

    p = sub.add_parser("report", help="redraw BENCHMARKS.md from a saved `all` JSON")
    p.add_argument("results", help="JSON written by `all` (default bench/out/results.json)",
                   nargs="?", default=DEFAULT_ALL_JSON)
    p.add_argument("--md", metavar="PATH")
    p.add_argument("--no-md", action="store_true")
    return ap


def _terminate(signum: int, frame: object) -> None:
    # Unwind normally so every `with Server(...)` stops its process and scratch dirs go.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    if args.command == "report":
        cmd_report(args)
        return 0
    if args.command == "dataset":
        res = cmd_dataset(args)
        if args.json:
            write_json(args.json, res)
        return 0
    workdir = workdir_for(args)
    try:
        handler = {"disk": cmd_disk, "ingest": cmd_ingest, "memory": cmd_memory, "read": cmd_read,
                   "scrape": cmd_scrape, "query": cmd_query, "all": cmd_all}[args.command]
        res = handler(args, workdir)
    except BaseException:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        raise
    finish(args, res, workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
