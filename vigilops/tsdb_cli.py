"""`vigilops tsdb …` subcommands (placeholder until the storage engine lands)."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    raise SystemExit(f"vigilops tsdb {args.tsdb_command}: not available yet")
