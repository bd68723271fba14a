"""http_sd: target groups fetched from an HTTP endpoint every `refresh_interval`.

Behaviour follows Prometheus 2.42's `discovery/http`:

* a GET with ``Accept: application/json`` and ``X-Prometheus-Refresh-Interval-Seconds``,
  with the config's basic auth or authorization header and TLS settings, timing out after
  one refresh interval;
* the answer must be status 200 with Content-Type ``application/json`` (optionally with
  ``charset=utf-8``) and hold a JSON list of ``{"targets": […], "labels": {…}}``;
* group `i` has source ``"<url>:<i>"`` and the label ``__meta_url="<url>"``;
* a failed or malformed refresh is logged and counted (`vigilops_sd_http_failures_total`)
  and keeps the last good groups.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import TYPE_CHECKING

import aiohttp

from vigilops.tsdb.model import go_quote

from ..http_client import USER_AGENT, auth_header, ssl_context
from .decode import GroupDecodeError, decode_json
from .metrics import SDMetrics
from .targetgroup import ADDRESS_LABEL, TargetGroup, UpdateFunc

if TYPE_CHECKING:
    from ..config import HTTPSDConfig

log = logging.getLogger("vigilops.scrape.discovery")

META_URL = "__meta_url"

#: Prometheus's `matchContentType` (RE2's ``\s`` is ASCII whitespace without \v).
_JSON_CONTENT_TYPE = re.compile(r'(?i:application/json(;[\t\n\f\r ]*charset=("utf-8"|utf-8))?)\Z')


class HTTPSDError(Exception):
    """One http_sd refresh failed; the message says why (as Prometheus words it)."""


def url_source(url: str, index: int) -> str:
    """The source of the `index`-th group returned by `url`."""
    return f"{url}:{index}"


def _go_seconds(seconds: float) -> str:
    """Seconds as Go's ``strconv.FormatFloat(s, 'f', -1, 64)`` writes them (60, 0.5)."""
    return str(int(seconds)) if seconds.is_integer() else repr(seconds)


class HTTPDiscoverer:
    """Target groups from `cfg.url`; see the module docstring."""

    def __init__(self, cfg: HTTPSDConfig, metrics: SDMetrics | None = None) -> None:
        if cfg.refresh_interval_ms <= 0:
            raise ValueError("http_sd refresh interval must be positive")
        self.url = cfg.url
        self.refresh_interval_s = cfg.refresh_interval_ms / 1000
        self.metrics = metrics if metrics is not None else SDMetrics(None)
        self._cfg = cfg
        self._headers = {
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            "X-Prometheus-Refresh-Interval-Seconds": _go_seconds(self.refresh_interval_s),
            **auth_header(cfg.basic_auth, cfg.authorization),
        }

    def __repr__(self) -> str:
        return f"HTTPDiscoverer({self.url!r})"

    def new_session(self) -> aiohttp.ClientSession:
        """A session with this config's TLS settings; the caller closes it."""
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=ssl_context(self._cfg.tls_config)),
            timeout=aiohttp.ClientTimeout(total=self.refresh_interval_s),
        )

    async def run(self, updates: UpdateFunc) -> None:
        published: list[TargetGroup] | None = None
        async with self.new_session() as session:
            while True:
                groups: list[TargetGroup] | None
                try:
                    groups = await self.refresh(session)
                except HTTPSDError as exc:
                    log.error("http_sd: unable to refresh target groups from %s: %s", self.url, exc)
                    groups = None
                if groups is None:
                    if published is None:
                        # Report "nothing yet" once, so that consumers waiting for every
                        # discoverer's first answer are not held up by a dead endpoint.
                        published = []
                        updates(published)
                elif groups != published:
                    published = groups
                    updates(groups)
                await asyncio.sleep(self.refresh_interval_s)

    async def refresh(self, session: aiohttp.ClientSession | None = None) -> list[TargetGroup]:
        """Fetch the groups once. Raises HTTPSDError (and counts it) on any failure.

        Without a `session`, a temporary one is opened and closed.
        """
        if session is None:
            async with self.new_session() as own:
                return await self.refresh(own)
        start = time.perf_counter()
        try:
            return await self._fetch(session)
        except HTTPSDError:
            self.metrics.http_failures.inc()
            raise
        finally:
            self.metrics.refresh_duration.labels("http").observe(time.perf_counter() - start)

    async def _fetch(self, session: aiohttp.ClientSession) -> list[TargetGroup]:
        try:
            async with session.get(
                self.url, headers=self._headers, allow_redirects=self._cfg.follow_redirects
            ) as resp:
                if resp.status != 200:
                    raise HTTPSDError(f"server returned HTTP status {resp.status} {resp.reason}")
                content_type = resp.headers.get("Content-Type", "")
                if not _JSON_CONTENT_TYPE.match(content_type.strip()):
                    raise HTTPSDError(f"unsupported content type {go_quote(content_type)}")
                body = await resp.read()
        except TimeoutError:
            raise HTTPSDError(f'Get "{self.url}": context deadline exceeded') from None
        except (aiohttp.ClientError, OSError) as exc:
            raise HTTPSDError(f'Get "{self.url}": {exc}') from None
        try:
            raw = decode_json(body)
        except GroupDecodeError as exc:
            raise HTTPSDError(str(exc)) from None
        return [
            TargetGroup(
                source=url_source(self.url, i),
                targets=tuple({ADDRESS_LABEL: t} for t in g.targets),
                labels={**g.labels, META_URL: self.url},
            )
            for i, g in enumerate(raw)
        ]
