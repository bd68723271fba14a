"""Fetching `/metrics` over HTTP(S) the way Prometheus does: headers, auth, TLS, limits."""

from __future__ import annotations

import asyncio
import base64
import ssl
from typing import TYPE_CHECKING

import aiohttp

from vigilops import __version__

from .textparse import ACCEPT_HEADER

if TYPE_CHECKING:
    from .config import Authorization, BasicAuth, ScrapeConfig, TLSConfig

USER_AGENT = f"VigilOps/{__version__}"


class ScrapeError(Exception):
    """A scrape failed; the message is what /api/v1/targets shows as lastError."""


def ssl_context(tls: TLSConfig | None) -> ssl.SSLContext | bool:
    """An SSL context for `tls`, or True (default verification) when there is none."""
    if tls is None:
        return True
    ctx = ssl.create_default_context(cafile=tls.ca_file or None)
    if tls.cert_file:
        ctx.load_cert_chain(tls.cert_file, tls.key_file or None)
    if tls.insecure_skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    versions = {
        "TLS10": ssl.TLSVersion.TLSv1,
        "TLS11": ssl.TLSVersion.TLSv1_1,
        "TLS12": ssl.TLSVersion.TLSv1_2,
        "TLS13": ssl.TLSVersion.TLSv1_3,
    }
    if tls.min_version:
        ctx.minimum_version = versions[tls.min_version]
    return ctx


def auth_header(basic: BasicAuth | None, authz: Authorization | None) -> dict[str, str]:
    if basic is not None:
        token = base64.b64encode(f"{basic.username}:{basic.password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}
    if authz is not None and authz.credentials:
        return {"Authorization": f"{authz.type or 'Bearer'} {authz.credentials}"}
    return {}


def new_session(cfg: ScrapeConfig) -> aiohttp.ClientSession:
    """One session per scrape pool: connections are reused across scrapes of its targets."""
    connector = aiohttp.TCPConnector(
        ssl=ssl_context(cfg.tls_config), limit=0, ttl_dns_cache=300, enable_cleanup_closed=True
    )
    return aiohttp.ClientSession(
        connector=connector,
        headers={"User-Agent": USER_AGENT, **auth_header(cfg.basic_auth, cfg.authorization)},
        auto_decompress=True,
        timeout=aiohttp.ClientTimeout(total=None),
    )


async def fetch(
    session: aiohttp.ClientSession, url: str, timeout_ms: int, body_size_limit: int
) -> tuple[bytes, str]:
    """GET `url`; return the (decompressed) body and its Content-Type.

    Raises ScrapeError with Prometheus's wording for a non-200 status, a timeout or a
    body over `body_size_limit` bytes (0: no limit).
    """
    timeout_s = timeout_ms / 1000
    headers = {
        "Accept": ACCEPT_HEADER,
        "Accept-Encoding": "gzip",
        "X-Prometheus-Scrape-Timeout-Seconds": f"{timeout_s:g}",
    }
    try:
        async with asyncio.timeout(timeout_s):
            async with session.get(url, headers=headers, allow_redirects=True) as resp:
                if resp.status != 200:
                    raise ScrapeError(f"server returned HTTP status {resp.status} {resp.reason}")
                if body_size_limit <= 0:
                    return await resp.read(), resp.headers.get("Content-Type", "")
                parts: list[bytes] = []
                size = 0
                while chunk := await resp.content.read(1 << 16):
                    size += len(chunk)
                    if size > body_size_limit:
                        raise ScrapeError("body size limit exceeded")
                    parts.append(chunk)
                return b"".join(parts), resp.headers.get("Content-Type", "")
    except TimeoutError:
        raise ScrapeError(f"Get \"{url}\": context deadline exceeded") from None
    except aiohttp.ClientError as exc:
        raise ScrapeError(f"Get \"{url}\": {exc}") from None
    except (OSError, ssl.SSLError) as exc:
        raise ScrapeError(f"Get \"{url}\": {exc}") from None
