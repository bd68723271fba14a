"""Entry point of `vigilops agent` (wired from vigilops/cli.py)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys

from .config import ConfigError, load_config, split_listen_address


def run(args: argparse.Namespace) -> int:
    from vigilops import __version__

    try:
        config = load_config(args.agent_config)
        if args.listen is not None:
            split_listen_address(args.listen)
            config = dataclasses.replace(config, listen_address=args.listen)
    except ConfigError as exc:
        print(f"vigilops agent: invalid configuration: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=getattr(logging, args.log_level.upper(), logging.INFO),
                        format="ts=%(asctime)s level=%(levelname)s msg=%(message)s")
    from .server import run_agent

    try:
        return run_agent(config, __version__)
    except OSError as exc:
        print(f"vigilops agent: cannot listen on {config.listen_address}: {exc}", file=sys.stderr)
        return 1
