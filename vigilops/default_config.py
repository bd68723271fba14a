"""The configuration `vigilops server` runs with when no `--config.file` is given.

It monitors the server itself, and the host agent on the default agent port (its target
is simply down until `vigilops agent` runs there), so a newcomer's first command already
produces data.
"""

from __future__ import annotations

DEFAULT_CONFIG_TEMPLATE = """\
# Embedded default configuration of `vigilops server` (used without --config.file).
global:
  scrape_interval: 15s
  scrape_timeout: 10s
  evaluation_interval: 15s

scrape_configs:
  - job_name: vigilops
    static_configs:
      - targets: ["{self_address}"]
  - job_name: node
    static_configs:
      - targets: ["127.0.0.1:9100"]
"""


def default_config(listen_host: str, listen_port: int) -> str:
    host = "127.0.0.1" if listen_host in ("", "0.0.0.0", "::") else listen_host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return DEFAULT_CONFIG_TEMPLATE.format(self_address=f"{host}:{listen_port}")
