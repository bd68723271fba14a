"""Service discovery: static_configs, file_sd_configs and http_sd_configs.

Each mechanism is a `Discoverer`: a coroutine that reports the complete list of its
`TargetGroup`s through a callback whenever it changes. `vigilops.scrape.targets` turns
groups into scrape targets.
"""

from __future__ import annotations

from .decode import GroupDecodeError
from .file import DEFAULT_POLL_INTERVAL_S, META_FILEPATH, FileDiscoverer
from .http import META_URL, HTTPDiscoverer, HTTPSDError
from .metrics import SDMetrics
from .static import StaticDiscoverer
from .targetgroup import ADDRESS_LABEL, Discoverer, TargetGroup, UpdateFunc

__all__ = [
    "ADDRESS_LABEL",
    "DEFAULT_POLL_INTERVAL_S",
    "META_FILEPATH",
    "META_URL",
    "Discoverer",
    "FileDiscoverer",
    "GroupDecodeError",
    "HTTPDiscoverer",
    "HTTPSDError",
    "SDMetrics",
    "StaticDiscoverer",
    "TargetGroup",
    "UpdateFunc",
]
