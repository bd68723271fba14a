"""TCP probe: success when a connection to host:port opens within the timeout."""

from __future__ import annotations

import logging
import time

from ..config import ProbeConfig
from .base import Deadline, ProbeError, ProbeResult, connect

log = logging.getLogger("vigilops.agent")


class TCPProbe:
    def __init__(self, config: ProbeConfig) -> None:
        self.config = config
        host, _, port = config.target.rpartition(":")
        self.host, self.port = host.strip("[]"), int(port)

    def run(self) -> ProbeResult:
        start = time.monotonic()
        error: str | None = None
        with Deadline(self.config.timeout) as deadline:
            try:
                deadline.close(connect(self.host, self.port, deadline))
            except (ProbeError, OSError) as exc:
                error = str(exc)
        if error is not None:
            log.debug("probe %s failed: %s", self.config.name, error)
        return ProbeResult(error is None, time.monotonic() - start, time.time(), error=error)
