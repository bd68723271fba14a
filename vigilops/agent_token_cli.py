"""`vigilops agent-token create|list|revoke`: the tokens agents register with.

A token is printed once, by `create`; only its salted hash is kept, in
``DATA_DIR/agents/tokens.json`` (see `vigilops.agents`). A running server sees changes at
its next registration request, without a reload.
"""

from __future__ import annotations

import argparse
import re
import sys

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tokens = sub.add_parser("agent-token", help="create, list and revoke agent registration tokens")
    tsub = tokens.add_subparsers(dest="token_command", required=True)

    def data_dir(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", "--storage.tsdb.path", dest="data_dir", default="data",
                       help="the server's data directory (default: data)")

    create = tsub.add_parser("create", help="create a token and print it (once)")
    data_dir(create)
    create.add_argument("--name", default=None, help="a name to list and revoke it by "
                        "(default: token-N)")
    listing = tsub.add_parser("list", help="list token names and creation times")
    data_dir(listing)
    revoke = tsub.add_parser("revoke", help="revoke a token; agents using it are refused")
    data_dir(revoke)
    revoke.add_argument("name")


def run(args: argparse.Namespace) -> int:
    from .agents import TokenStore

    store = TokenStore(args.data_dir)
    try:
        if args.token_command == "create":
            if args.name is not None and not _NAME.match(args.name):
                print(f"vigilops agent-token: invalid name {args.name!r} (letters, digits, "
                      "'_.@-', at most 64)", file=sys.stderr)
                return 2
            name, token = store.create(args.name)
            print(token)
            print(f"created agent token {name!r}; it is not shown again. Put it in agent.yaml "
                  "as server.token.", file=sys.stderr)
            return 0
        if args.token_command == "list":
            for e in store.entries():
                print(f"{e.name}\t{e.created}")
            return 0
        if args.token_command == "revoke":
            if not store.revoke(args.name):
                print(f"vigilops agent-token: no token named {args.name!r}", file=sys.stderr)
                return 1
            print(f"revoked agent token {args.name!r}", file=sys.stderr)
            return 0
    except (OSError, ValueError) as exc:
        print(f"vigilops agent-token: {exc}", file=sys.stderr)
        return 1
    raise AssertionError(args.token_command)
