"""`vigilops server` (placeholder until the storage engine lands)."""

from __future__ import annotations

import argparse


def run_server(args: argparse.Namespace) -> int:
    raise SystemExit("vigilops server: not available yet")
