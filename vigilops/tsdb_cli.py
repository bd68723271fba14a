"""`vigilops tsdb …`: import, dump, stats and compact a data directory."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import time
from typing import BinaryIO

from .timeparse import parse_duration_ms

log = logging.getLogger("vigilops.tsdb")


def parse_time_ms(text: str) -> int:
    """RFC 3339, or Unix time in seconds (with decimals) or milliseconds (13+ digits)."""
    try:
        value = float(text)
    except ValueError:
        try:
            stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise SystemExit(f"invalid time {text!r}: use RFC 3339 or Unix seconds") from None
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=dt.timezone.utc)
        return int(round(stamp.timestamp() * 1000))
    if abs(value) >= 1e12:
        return int(value)
    return int(round(value * 1000))


def _import(args: argparse.Namespace) -> int:
    from vigilops.tsdb.db import DBOptions
    from vigilops.tsdb.errors import InputParseError
    from vigilops.tsdb.importer import import_openmetrics

    from vigilops.malloc_tuning import trim, tune_malloc_for_batch

    block_ms = parse_duration_ms(args.max_block_duration)
    tune_malloc_for_batch()
    t0 = time.process_time()
    source: BinaryIO
    try:
        source = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")
    except OSError as exc:
        print(f"error: cannot open {args.file}: {exc.strerror}", file=sys.stderr)
        return 1
    try:
        with source:
            # With --compact, write the layout compaction would end with right away.
            ranges = DBOptions().compaction_ranges_ms if args.compact else ()
            report = import_openmetrics(source, args.data_dir, block_ms, compaction_ranges_ms=ranges)
    except InputParseError as exc:
        where = f"{args.file}:{exc.line}: " if exc.line else f"{args.file}: "
        print(f"error: {where}{exc.message}", file=sys.stderr)
        return 1
    blocks = report.blocks or []
    print(
        f"imported {report.samples} samples of {report.series} series into "
        f"{len(blocks)} blocks in {args.data_dir} ({time.process_time() - t0:.1f} CPU-s)"
    )
    if args.compact:
        # The import's freed heap was kept for its own reuse; hand it back before opening
        # the database, so that compaction's reads do not add to the import's peak.
        trim()
        return _compact(args)
    return 0


def _open(data_dir: str, read_only: bool = True):  # type: ignore[no-untyped-def]
    from vigilops.tsdb.db import DB
    from vigilops.tsdb.errors import TSDBError

    try:
        return DB.open(data_dir, read_only=read_only)
    except TSDBError as exc:
        raise SystemExit(f"error: {exc}") from None


def _compact(args: argparse.Namespace) -> int:
    db = _open(args.data_dir, read_only=False)
    with db:
        before = len(db.block_list())
        db.maintain()
        after = len(db.block_list())
    print(f"compaction: {before} blocks before, {after} after")
    return 0


def _dump(args: argparse.Namespace) -> int:
    from vigilops.tsdb.model import MAX_TIME, METRIC_NAME, MIN_TIME, Matcher, MatchType, parse_selector
    from vigilops.tsdb.openmetrics_write import write_openmetrics

    try:
        selectors = [parse_selector(s) for s in args.match] or [
            [Matcher(MatchType.REGEX, METRIC_NAME, ".+")]
        ]
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    mint = parse_time_ms(args.min_time) if args.min_time else MIN_TIME
    maxt = parse_time_ms(args.max_time) if args.max_time else MAX_TIME
    db = _open(args.data_dir)
    with db, db.querier(mint, maxt) as q:
        seen = set()
        series = []
        for matchers in selectors:
            for s in q.select(matchers, sort=True):
                if s.labels not in seen:
                    seen.add(s.labels)
                    series.append(s)
        series.sort(key=lambda s: s.labels)
        write_openmetrics(series, sys.stdout)
    return 0


def _stats(args: argparse.Namespace) -> int:
    from vigilops.tsdb.stats import compute_stats

    db = _open(args.data_dir)
    with db:
        st = compute_stats(db, args.limit)
    span = (st.max_time - st.min_time) / 1000 if st.samples else 0
    print(f"data directory:   {args.data_dir}")
    print(f"series:           {st.series} ({st.head_series} in the head)")
    print(f"samples:          {st.samples} ({st.head_samples} in the head)")
    print(f"time range:       {st.min_time} .. {st.max_time} ms ({span / 3600:.1f} h)")
    print(f"blocks:           {st.blocks}, {st.block_bytes} bytes")
    print(f"bytes per sample: {st.block_bytes_per_sample:.3f} (blocks only)")
    print(f"WAL:              {st.wal_bytes} bytes")
    for title, rows in (
        ("top metric names by series", st.top_metric_names),
        ("top label pairs by series", st.top_label_pairs),
        ("label names with most values", st.top_label_names_by_values),
    ):
        print(f"\n{title}:")
        for name, count in rows:
            print(f"  {count:>10}  {name}")
    return 0


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.tsdb_command == "import":
        return _import(args)
    if args.tsdb_command == "dump":
        return _dump(args)
    if args.tsdb_command == "stats":
        return _stats(args)
    if args.tsdb_command == "compact":
        return _compact(args)
    raise AssertionError(args.tsdb_command)
