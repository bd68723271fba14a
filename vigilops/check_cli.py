"""`vigilops check …`: validate files without running anything, like `promtool check`.

`vigilops check config FILE…` loads each configuration exactly as the server would and prints
promtool's report: ``Checking FILE``, then the number of rule files the `rule_files` patterns
match and a success line, or ``FAILED:`` and the error (with file, line and key path) on
standard error. The exit status is 1 if any file failed. The rule files themselves are not
checked here.
"""

from __future__ import annotations

import argparse
import glob
import sys


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = sub.add_parser("check", help="check configuration files (like promtool check)")
    csub = check.add_subparsers(dest="check_command", required=True)
    config = csub.add_parser(
        "config",
        help="check Prometheus-format configuration files (like promtool check config)",
    )
    config.add_argument("files", nargs="+", metavar="FILE", help="configuration file")
    config.add_argument(
        "--syntax-only",
        action="store_true",
        help="only check the file itself, not that the rule files it names exist",
    )


def run(args: argparse.Namespace) -> int:
    if args.check_command == "config":
        return check_config(args.files, syntax_only=args.syntax_only)
    raise AssertionError(args.check_command)


def check_config(files: list[str], syntax_only: bool = False) -> int:
    """Check each file; print promtool's report; return the exit status."""
    from vigilops.scrape.config import ConfigError, load_config

    failed = False
    for path in files:
        print(f"Checking {path}")
        try:
            cfg = load_config(path)
            rule_files = [] if syntax_only else _rule_files(cfg.path, cfg.rule_file_patterns())
        except ConfigError as exc:
            print(f"  FAILED: {exc}", file=sys.stderr)
            failed = True
        else:
            if not syntax_only:
                print(f"  SUCCESS: {len(rule_files)} rule files found")
            print(f" SUCCESS: {path} is valid prometheus config file syntax")
        print()
    return 1 if failed else 0


def _rule_files(config_path: str, patterns: list[str]) -> list[str]:
    """The files the patterns match; a pattern without wildcards must name a file."""
    from vigilops.scrape.config import ConfigError
    from vigilops.tsdb.model import go_quote

    found: list[str] = []
    for i, pattern in enumerate(patterns):
        matches = sorted(glob.glob(pattern, include_hidden=True))
        if not matches and not any(c in pattern for c in "*?[\\"):
            raise ConfigError(
                config_path,
                None,
                f"rule_files[{i}]",
                f"{go_quote(pattern)} does not point to an existing file",
            )
        found += matches
    return found
