"""The `vigilops` command. Subcommands import their subsystem lazily so that start-up and
`--help` stay fast."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__, agent_token_cli, check_cli, query_cli


def _add_tsdb_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tsdb = sub.add_parser("tsdb", help="inspect and fill a data directory")
    tsub = tsdb.add_subparsers(dest="tsdb_command", required=True)

    imp = tsub.add_parser("import", help="backfill blocks from a file")
    isub = imp.add_subparsers(dest="import_format", required=True)
    om = isub.add_parser(
        "openmetrics",
        help="build blocks from an OpenMetrics file with explicit timestamps "
        "(like promtool tsdb create-blocks-from openmetrics)",
    )
    om.add_argument("file", help="OpenMetrics text file ('-' for standard input)")
    om.add_argument("data_dir", nargs="?", default="data", help="output data directory")
    om.add_argument(
        "--max-block-duration",
        default="2h",
        help="largest block to write (a duration such as 2h or 24h; default 2h)",
    )
    om.add_argument("--compact", action="store_true", help="compact the new blocks afterwards")

    stats = tsub.add_parser("stats", help="series, samples, bytes per sample, cardinality")
    stats.add_argument("data_dir")
    stats.add_argument("--limit", type=int, default=10, help="entries in each top list")

    dump = tsub.add_parser("dump", help="write samples as OpenMetrics text")
    dump.add_argument("data_dir")
    dump.add_argument("--match", action="append", default=[], help="series selector")
    dump.add_argument("--min-time", default=None, help="RFC 3339 or Unix time (s or ms)")
    dump.add_argument("--max-time", default=None, help="RFC 3339 or Unix time (s or ms)")

    compact = tsub.add_parser("compact", help="compact blocks and apply retention now")
    compact.add_argument("data_dir")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vigilops", description=__doc__)
    parser.add_argument("--version", action="version", version=f"vigilops {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    server = sub.add_parser("server", help="run the monitoring server")
    server.add_argument("--config.file", dest="config_file", default=None)
    server.add_argument("--storage.tsdb.path", dest="data_dir", default="data")
    server.add_argument("--web.listen-address", dest="listen", default="127.0.0.1:9090")
    server.add_argument("--storage.tsdb.retention.time", dest="retention_time", default="15d")
    server.add_argument("--storage.tsdb.retention.size", dest="retention_size", default="0")
    server.add_argument(
        "--storage.tsdb.wal-sync",
        dest="wal_sync",
        default="commit",
        help="when the WAL is fsynced: 'always' (every commit), 'commit' (written to the OS "
        "on every commit, fsynced on segment rotation and every 10s), 'never'",
    )
    server.add_argument(
        "--storage.tsdb.out-of-order-time-window", dest="ooo_window", default="0s"
    )
    server.add_argument("--log.level", dest="log_level", default="info")
    server.add_argument(
        "--query.lookback-delta",
        dest="lookback_delta",
        default="5m",
        help="how far back an instant vector selector looks for a sample (default 5m)",
    )
    server.add_argument(
        "--query.timeout", dest="query_timeout", default="2m",
        help="longest a query may run before it is aborted (default 2m)",
    )
    server.add_argument(
        "--query.max-samples",
        dest="query_max_samples",
        type=int,
        default=50_000_000,
        help="most samples a single query may hold in memory (default 50000000)",
    )
    server.add_argument(
        "--query.max-concurrency",
        dest="query_max_concurrency",
        type=int,
        default=20,
        help="most queries evaluated at once; more wait (default 20)",
    )

    agent = sub.add_parser("agent", help="run the host agent (node_exporter-compatible /metrics)")
    agent.add_argument("--config", dest="agent_config", default=None, help="agent.yaml")
    agent.add_argument("--web.listen-address", dest="listen", default=None,
                       help="host:port, overrides listen_address (default :9100)")
    agent.add_argument("--log.level", dest="log_level", default="info")

    _add_tsdb_commands(sub)
    check_cli.add_parser(sub)
    agent_token_cli.add_parser(sub)  # agent registration tokens
    query_cli.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "server":
        from .server import run_server

        return run_server(args)
    if args.command == "tsdb":
        from . import tsdb_cli

        return tsdb_cli.run(args)
    if args.command == "agent":
        from .agent.main import run as run_agent

        return run_agent(args)
    if args.command == "check":
        return check_cli.run(args)
    if args.command == "agent-token":
        return agent_token_cli.run(args)
    if args.command == "query":
        return query_cli.run(args)
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
