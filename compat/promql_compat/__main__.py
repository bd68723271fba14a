"""``python -m vigilops.compat.promql_compat``: run the PromQL compatibility suite.

Examples::

    python -m vigilops.compat.promql_compat --report compat.json
    python -m vigilops.compat.promql_compat --target prometheus      # validates the harness
    python -m vigilops.compat.promql_compat --match 'histogram_quantile' --failures 50
    python -m vigilops.compat.promql_compat --ref-url http://127.0.0.1:9090 \\
        --test-url http://127.0.0.1:9091                             # servers already running

Exit status: 0 when every case and API call agrees, 1 otherwise, 2 on a setup error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from .compare import Tolerance
from .harness import (
    EVALUATIONS,
    build_report,
    reference_version,
    results_markdown,
    run,
    run_all,
    select_cases,
    summary_text,
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m vigilops.compat.promql_compat", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", choices=("vigilops", "prometheus"), default="vigilops",
                   help="what to compare with Prometheus 2.42 (prometheus: a second Prometheus, "
                   "which must agree 100 %%)")
    p.add_argument("--profile", choices=tuple(EVALUATIONS), default="full",
                   help="evaluation times and grids (quick: the CI subset)")
    p.add_argument("--report", type=Path, default=None, help="write the JSON report here")
    p.add_argument("--match", default=None, help="only cases whose query matches this regex")
    p.add_argument("--group", default=None, help="only cases of this group (e.g. histogram)")
    p.add_argument("--workdir", type=Path, default=None,
                   help="keep data, blocks and server logs here (default: a temporary directory)")
    p.add_argument("--concurrency", type=int, default=4, help="cases in flight at once")
    p.add_argument("--fraction", type=float, default=Tolerance.fraction, help="relative tolerance")
    p.add_argument("--margin", type=float, default=Tolerance.margin, help="absolute tolerance")
    p.add_argument("--failures", type=int, default=15, help="failures printed in full")
    p.add_argument("--ref-url", default=None, help="use this running reference (with --test-url)")
    p.add_argument("--test-url", default=None, help="use this running target (with --ref-url)")
    p.add_argument("--list", action="store_true", help="print the cases and exit")
    p.add_argument("--results-md", type=Path, default=None,
                   help="write the pass rate as Markdown here (the README quotes compat/promql_compat/RESULTS.md)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    chosen = select_cases(args.match, args.group)
    if args.list:
        for c in chosen:
            print(f"{c.group:15s} {c.query}")
        return 0
    tol = Tolerance(args.fraction, args.margin)
    try:
        if args.ref_url or args.test_url:
            if not (args.ref_url and args.test_url):
                print("error: --ref-url and --test-url go together", file=sys.stderr)
                return 2
            evaluations = EVALUATIONS[args.profile]
            results, api = asyncio.run(run_all(args.ref_url.rstrip("/"), args.test_url.rstrip("/"),
                                               chosen, evaluations, args.concurrency, tol))
            report = build_report(results, api, evaluations, {
                "reference": f"{reference_version()} at {args.ref_url}", "target": args.test_url,
                "profile": args.profile,
            })
        else:
            report = run(args.target, args.profile, args.workdir, chosen, args.concurrency, tol)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.report:
        args.report.write_text(json.dumps(report, indent=1, ensure_ascii=False))
    if args.results_md:
        shown = f"`python -m vigilops.compat.promql_compat --profile {args.profile}`"
        args.results_md.write_text(results_markdown(report, shown), encoding="utf-8")
    print(summary_text(report, args.failures))
    s = report["summary"]
    ok = s["passed"] == s["cases"] and s["api_passed"] == s["api_calls"] and not s["reference_problems"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
