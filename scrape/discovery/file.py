"""file_sd: target groups read from JSON and YAML files, re-read when they change.

Behaviour follows Prometheus 2.42's `discovery/file`:

* each configured path may hold a glob in its last element and is relative to the
  directory of the configuration file; a file's extension (.json, .yml, .yaml in any case)
  says how it is decoded;
* group `i` of file `f` has source ``"f:i"`` and the label ``__meta_filepath="f"``, where
  `f` is the path as the glob produced it;
* a file that cannot be read or decoded keeps the groups it had before; it is logged and
  counted (`vigilops_sd_file_read_errors_total`); a file that no longer matches loses them;
* everything is re-read whenever a matched file changes and every `refresh_interval`.

Prometheus learns of changes through inotify. The standard library has no file-watching
API, so this discoverer polls: it lists the patterns and stats the matches every
`poll_interval_s` and re-reads when the (path, mtime, size, inode) set differs. All file
system work runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from typing import TYPE_CHECKING

from vigilops.tsdb.model import go_quote

from . import gopath
from .decode import GroupDecodeError, RawGroup, decode_json, decode_yaml
from .metrics import SDMetrics
from .targetgroup import ADDRESS_LABEL, TargetGroup, UpdateFunc

if TYPE_CHECKING:
    from ..config import FileSDConfig

log = logging.getLogger("vigilops.scrape.discovery")

META_FILEPATH = "__meta_filepath"

#: How often the matched files are listed and stat'ed. A change is picked up within this
#: time; 5 s is a third of the default scrape interval, and listing a directory and
#: stat'ing a few files that often costs nothing measurable.
DEFAULT_POLL_INTERVAL_S = 5.0

#: The file names Prometheus accepts in `file_sd_configs` (its `patFileSDName`).
_FILE_SD_NAME = re.compile(r"[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)\Z")

_Snapshot = tuple[tuple[str, int, int, int], ...]


def check_file_sd_path(name: str) -> None:
    """Raise ValueError with Prometheus's message if `name` is not a valid file_sd path."""
    if not _FILE_SD_NAME.match(name):
        raise ValueError(f"path name {go_quote(name)} is not valid for file discovery")


def file_source(path: str, index: int) -> str:
    """The source of the `index`-th group of the file at `path`."""
    return f"{path}:{index}"


class FileDiscoverer:
    """Target groups from the files matching `cfg.files`; see the module docstring."""

    def __init__(
        self,
        cfg: FileSDConfig,
        base_dir: str,
        metrics: SDMetrics | None = None,
        *,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
    ) -> None:
        if not cfg.files:
            raise ValueError("file service discovery config must contain at least one path name")
        for name in cfg.files:
            check_file_sd_path(name)
        if cfg.refresh_interval_ms <= 0 or poll_interval_s <= 0:
            raise ValueError("file_sd refresh and poll intervals must be positive")
        self.patterns = [gopath.join_dir(base_dir, name) for name in cfg.files]
        self.refresh_interval_s = cfg.refresh_interval_ms / 1000
        self.poll_interval_s = poll_interval_s
        self.metrics = metrics if metrics is not None else SDMetrics(None)
        # Groups per file, from the last successful read of each file still matched.
        self._by_file: dict[str, list[TargetGroup]] = {}

    def __repr__(self) -> str:
        return f"FileDiscoverer({self.patterns!r})"

    async def run(self, updates: UpdateFunc) -> None:
        loop = asyncio.get_running_loop()
        published: list[TargetGroup] | None = None
        seen: _Snapshot | None = None
        next_refresh = loop.time()
        while True:
            snapshot = await asyncio.to_thread(self._snapshot)
            if snapshot != seen or loop.time() >= next_refresh:
                # The snapshot is taken before reading: a change made while we read shows
                # up as a difference at the next poll.
                seen = snapshot
                next_refresh = loop.time() + self.refresh_interval_s
                groups = await asyncio.to_thread(self.refresh)
                if groups != published:
                    published = groups
                    updates(groups)
            await asyncio.sleep(
                max(0.0, min(self.poll_interval_s, next_refresh - loop.time()))
            )

    def list_files(self, *, quiet: bool = False) -> list[str]:
        """The files matching the patterns, in pattern order, each once (blocking).

        A malformed pattern matches nothing and is logged unless `quiet`.
        """
        paths: dict[str, None] = {}
        for pattern in self.patterns:
            try:
                matches = gopath.glob(pattern)
            except gopath.BadPattern as exc:
                if not quiet:
                    log.error("file_sd: error expanding glob %r: %s", pattern, exc)
                continue
            for p in matches:
                paths.setdefault(p)
        return list(paths)

    def refresh(self) -> list[TargetGroup]:
        """Re-read every matched file and return the complete group list (blocking)."""
        start = time.perf_counter()
        current: dict[str, list[TargetGroup]] = {}
        for path in self.list_files():
            try:
                current[path] = read_file(path)
            except (OSError, GroupDecodeError) as exc:
                self.metrics.file_read_errors.inc()
                log.error("file_sd: error reading file %s: %s", path, exc)
                if path in self._by_file:
                    current[path] = self._by_file[path]
        self._by_file = current
        self.metrics.file_scan_duration.observe(time.perf_counter() - start)
        return [g for groups in current.values() for g in groups]

    def _snapshot(self) -> _Snapshot:
        out: list[tuple[str, int, int, int]] = []
        for path in self.list_files(quiet=True):  # refresh() logs, at its own pace
            try:
                st = os.stat(path)
            except OSError:
                out.append((path, -1, -1, -1))
                continue
            out.append((path, st.st_mtime_ns, st.st_size, st.st_ino))
        return tuple(out)


def read_file(path: str) -> list[TargetGroup]:
    """Read and decode one file_sd file (blocking). Raises OSError or GroupDecodeError."""
    with open(path, "rb") as f:
        data = f.read()
    name = path.rpartition("/")[2]
    ext = name[name.rfind(".") :].lower() if "." in name else ""  # Go's filepath.Ext
    raw: list[RawGroup]
    if ext == ".json":
        raw = decode_json(data)
    elif ext in (".yml", ".yaml"):
        raw = decode_yaml(data)
    else:
        raise GroupDecodeError(f"unsupported file extension {ext!r}")
    return [
        TargetGroup(
            source=file_source(path, i),
            targets=tuple({ADDRESS_LABEL: t} for t in g.targets),
            labels={**g.labels, META_FILEPATH: path},
        )
        for i, g in enumerate(raw)
    ]
