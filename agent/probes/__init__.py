"""Service health checks: HTTP and TCP probes with blackbox_exporter's metric names.

Each probe runs in its own thread on its own interval and caches its last result; `/metrics`
only reads the cache (`ProbeRunner.collect`), so a slow or hung probe never delays a scrape.
"""

from __future__ import annotations

from .base import ProbeResult
from .http_probe import HTTPProbe
from .runner import Probe, ProbeRunner, make_probe
from .tcp_probe import TCPProbe

__all__ = ["HTTPProbe", "Probe", "ProbeResult", "ProbeRunner", "TCPProbe", "make_probe"]
