"""VigilOps: a Prometheus-compatible, pull-based monitoring engine."""

__version__ = "0.1.0"
