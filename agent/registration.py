"""Self-registration: the agent announces itself to a VigilOps server.

With `server:` set in agent.yaml, a daemon thread POSTs

    {"hostname": …, "address": "host:port", "tags": {…}, "version": …, "announceInterval": s}

to ``<server.url>/api/v1/agents/register`` with ``Authorization: Bearer <token>`` at start
and then every `announce_interval`. The server scrapes `address`; the server marks the agent
stale after about three missed intervals, so `announceInterval` travels with each
announcement.

`address` is `server.advertise_address` when set; otherwise the host of `listen_address`
when that is a specific address, else `hostname` (so ``:9100`` on host web-1 announces
``web-1:9100``, which the server must be able to resolve).

A failed announcement (server down, token refused, bad answer) is logged and retried after
a backoff that starts at `FIRST_RETRY_S`, doubles, and never exceeds the announce interval.
It all happens on its own thread: `/metrics` never waits for the server.

Self-metrics: ``vigilops_agent_registration_failures_total`` and
``vigilops_agent_registration_last_success_timestamp_seconds``.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from .config import AgentConfig, ServerConfig, split_listen_address

log = logging.getLogger("vigilops.agent.registration")

REGISTER_PATH = "/api/v1/agents/register"
#: First retry after a failure; it doubles up to the announce interval.
FIRST_RETRY_S = 1.0
#: An announcement that takes longer than this has failed (at least 2 s even for very
#: short intervals, so that a slow server is not hammered).
MAX_REQUEST_TIMEOUT_S = 10.0


class RegistrationError(Exception):
    """One announcement failed; the message says why."""


def advertise_address(config: AgentConfig) -> str:
    """The host:port the server should scrape (see the module docstring)."""
    assert config.server is not None
    if config.server.advertise_address:
        return config.server.advertise_address
    host, port = split_listen_address(config.listen_address)
    if host in ("", "0.0.0.0", "::"):
        host = config.hostname
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Announcer:
    """The announcing thread and its self-metrics (a prometheus_client collector)."""

    def __init__(self, config: AgentConfig, version: str) -> None:
        if config.server is None:
            raise ValueError("no server configured")
        self.server: ServerConfig = config.server
        self.url = self.server.url + REGISTER_PATH
        announcement: dict[str, object] = {
            "hostname": config.hostname,
            "address": advertise_address(config),
            "tags": config.tags,
            "version": version,
            "announceInterval": self.server.announce_interval,
        }
        if config.scrape_interval is not None:
            announcement["scrapeInterval"] = config.scrape_interval
        self.body = json.dumps(announcement).encode()
        self.failures = 0
        self.last_success = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def announce_once(self) -> None:
        """POST one announcement. Raises RegistrationError."""
        req = urllib.request.Request(self.url, data=self.body, method="POST", headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {self.server.token}",
            "User-Agent": "vigilops-agent",
        })
        timeout = min(MAX_REQUEST_TIMEOUT_S, max(2.0, self.server.announce_interval))
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                resp.read()
        except urllib.error.HTTPError as exc:
            with exc:
                detail = _error_message(exc.read())
            raise RegistrationError(f"server answered {exc.code}: {detail}") from None
        except (OSError, ValueError) as exc:  # URLError, timeouts, refused connections
            reason = getattr(exc, "reason", exc)
            raise RegistrationError(f"cannot reach {self.url}: {reason}") from None

    def run(self) -> None:
        """Announce until `stop`; the thread's body."""
        interval = self.server.announce_interval
        retry = FIRST_RETRY_S
        ok = True
        while not self._stop.is_set():
            try:
                self.announce_once()
            except RegistrationError as exc:
                self.failures += 1
                log.warning("registration with %s failed, retrying: %s", self.server.url, exc)
                ok = False
                delay = min(retry, interval) * random.uniform(0.5, 1.0)
                retry *= 2
            else:
                if not ok or self.last_success == 0.0:
                    log.info("registered with %s", self.server.url)
                ok = True
                self.last_success = time.time()
                retry = FIRST_RETRY_S
                delay = interval
            self._stop.wait(delay)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="registration", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop announcing; waits at most for one request in flight."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(MAX_REQUEST_TIMEOUT_S + 1)

    def collect(self) -> Iterable[Metric]:
        failures = CounterMetricFamily("vigilops_agent_registration_failures",
                                       "Announcements to the server that failed.")
        failures.add_metric([], self.failures)
        yield failures
        yield GaugeMetricFamily("vigilops_agent_registration_last_success_timestamp_seconds",
                                "When the server last accepted an announcement (0: never).",
                                value=self.last_success)


def _error_message(body: bytes) -> str:
    """The `error` of a Prometheus-style JSON error body, else the body's start."""
    try:
        doc: Any = json.loads(body)
        return str(doc["error"])
    except (ValueError, KeyError, TypeError):
        return body[:200].decode("utf-8", "replace").strip() or "(no body)"
