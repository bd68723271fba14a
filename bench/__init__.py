"""VigilOps's storage benchmarks, side by side with real Prometheus and VictoriaMetrics.

Run as ``python -m bench <subcommand>`` (``./dev.sh bench …``); see BENCHMARKS.md. A
benchmark reports figures; it never asserts on them.
"""
