"""`filesystem`: statfs of every mounted file system, like node_exporter's collector.

Pseudo and network file systems are excluded by default (node_exporter's defaults plus the
network types its maintainers advise excluding, so a dead NFS server cannot stall a scrape).
Each statfs runs in its own short-lived daemon thread with a timeout; a mount whose statfs
hangs is reported with `node_filesystem_device_error 1` and not stat'ed again until the stuck
call returns.
"""

from __future__ import annotations

import os
import re
import threading
from typing import NamedTuple

from prometheus_client.core import Metric

from .base import PROC, Family, finish, read_text

DEFAULT_MOUNT_POINTS_EXCLUDE = (
    r"^/(dev|proc|run|sys|mnt|media|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)"
)
DEFAULT_FS_TYPES_EXCLUDE = (
    r"^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|"
    r"iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|"
    r"sysfs|tracefs"
    # network file systems (VigilOps addition: node_exporter#244, #868, #3058)
    r"|nfs4?|cifs|smb3?|smbfs|ncpfs|afs|ceph|glusterfs|fuse\.glusterfs|fuse\.sshfs|9p|lustre"
    r"|gfs2|ocfs2|davfs|fuse\.s3fs|fuse\.rclone)$"
)
STATFS_TIMEOUT = 5.0


class Mount(NamedTuple):
    device: str
    mountpoint: str
    fstype: str
    readonly: bool


_OCTAL = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mounts(text: str) -> list[Mount]:
    mounts = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        mounts.append(Mount(_unescape(parts[0]), _unescape(parts[1]), parts[2],
                            "ro" in parts[3].split(",")))
    return mounts


class FilesystemCollector:
    name = "filesystem"

    def __init__(self, mount_points_exclude: str = DEFAULT_MOUNT_POINTS_EXCLUDE,
                 fs_types_exclude: str = DEFAULT_FS_TYPES_EXCLUDE,
                 statfs_timeout: float = STATFS_TIMEOUT) -> None:
        self.mount_points_exclude = re.compile(mount_points_exclude)
        self.fs_types_exclude = re.compile(fs_types_exclude)
        self.statfs_timeout = statfs_timeout
        self._stuck: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def _statfs(self, mountpoint: str) -> os.statvfs_result | None:
        """statfs with a timeout; None when it failed or is (still) stuck."""
        with self._lock:
            stuck = self._stuck.get(mountpoint)
            if stuck is not None and stuck.is_alive():
                return None
            self._stuck.pop(mountpoint, None)
        result: list[os.statvfs_result | None] = [None]

        def run() -> None:
            try:
                result[0] = os.statvfs(mountpoint)
            except OSError:
                pass

        worker = threading.Thread(target=run, name=f"statfs {mountpoint}", daemon=True)
        worker.start()
        worker.join(self.statfs_timeout)
        if worker.is_alive():
            with self._lock:
                self._stuck[mountpoint] = worker
            return None
        return result[0]

    def mounts(self) -> list[Mount]:
        try:
            text = read_text(f"{PROC}/1/mounts")
        except OSError:
            text = read_text(f"{PROC}/mounts")
        seen: set[Mount] = set()
        out = []
        for m in parse_mounts(text):
            if self.mount_points_exclude.search(m.mountpoint) or self.fs_types_exclude.search(m.fstype):
                continue
            if m in seen:
                continue
            seen.add(m)
            out.append(m)
        return out

    def collect(self) -> list[Metric]:
        fams = {
            "size": Family("node_filesystem_size_bytes", "Filesystem size in bytes.", "gauge"),
            "free": Family("node_filesystem_free_bytes", "Filesystem free space in bytes.", "gauge"),
            "avail": Family("node_filesystem_avail_bytes",
                            "Filesystem space available to non-root users in bytes.", "gauge"),
            "files": Family("node_filesystem_files", "Filesystem total file nodes.", "gauge"),
            "files_free": Family("node_filesystem_files_free", "Filesystem total free file nodes.",
                                 "gauge"),
            "ro": Family("node_filesystem_readonly", "Filesystem read-only status.", "gauge"),
            "err": Family("node_filesystem_device_error",
                          "Whether an error occurred while getting statistics for the given device.",
                          "gauge"),
        }
        for m in self.mounts():
            labels = {"device": m.device, "fstype": m.fstype, "mountpoint": m.mountpoint}
            st = self._statfs(m.mountpoint)
            fams["err"].add(0 if st is not None else 1, labels)
            fams["ro"].add(1 if m.readonly else 0, labels)
            if st is None:
                continue
            fams["size"].add(st.f_blocks * st.f_bsize, labels)
            fams["free"].add(st.f_bfree * st.f_bsize, labels)
            fams["avail"].add(st.f_bavail * st.f_bsize, labels)
            fams["files"].add(st.f_files, labels)
            fams["files_free"].add(st.f_ffree, labels)
        return finish(fams.values())
