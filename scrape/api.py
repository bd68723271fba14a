"""JSON bodies of the scrape-related HTTP API endpoints, in Prometheus's shapes.

`/api/v1/targets` and `/api/v1/targets/metadata`; the HTTP layer wraps them in the
`{"status": "success", "data": …}` envelope.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from vigilops.tsdb.model import Matcher, matches_all

from .manager import ScrapeManager


def _rfc3339(ms: int) -> str:
    if not ms:
        return "0001-01-01T00:00:00Z"
    dt = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return dt.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _duration(ms: int) -> str:
    """Go's time.Duration formatting for whole seconds and minutes (15s, 1m, 1m30s)."""
    s = ms / 1000
    if s >= 60 and s == int(s):
        m, sec = divmod(int(s), 60)
        h, m = divmod(m, 60)
        out = (f"{h}h" if h else "") + (f"{m}m" if m or h else "") + f"{sec}s"
        return out
    return f"{s:g}s"


def targets_body(manager: ScrapeManager, state: str = "any") -> dict[str, Any]:
    active: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    if state in ("any", "active"):
        for loop in manager.active():
            t, st = loop.target, loop.status
            active.append(
                {
                    "discoveredLabels": t.discovered_labels.to_dict(),
                    "labels": t.labels.to_dict(),
                    "scrapePool": loop.cfg.job_name,
                    "scrapeUrl": t.url,
                    "globalUrl": t.url,
                    "lastError": st.last_error,
                    "lastScrape": _rfc3339(st.last_scrape_ms),
                    "lastScrapeDuration": st.last_duration_s,
                    "health": st.health,
                    "scrapeInterval": _duration(t.interval_ms),
                    "scrapeTimeout": _duration(t.timeout_ms),
                }
            )
        active.sort(key=lambda d: (d["scrapePool"], d["scrapeUrl"]))
    if state in ("any", "dropped"):
        for _job, d in manager.dropped():
            dropped.append({"discoveredLabels": d.discovered_labels.to_dict()})
    return {"activeTargets": active, "droppedTargets": dropped}


def target_metadata_body(
    manager: ScrapeManager, match_target: list[Matcher], metric: str, limit: int
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for loop in manager.active():
        if match_target and not matches_all(loop.target.labels, match_target):
            continue
        for name, meta in sorted(loop.status.metadata.items()):
            if metric and name != metric:
                continue
            out.append(
                {
                    "target": loop.target.labels.to_dict(),
                    "metric": name,
                    "type": meta.type,
                    "help": meta.help,
                    "unit": meta.unit,
                }
            )
            if limit and len(out) >= limit:
                return out
    return out

