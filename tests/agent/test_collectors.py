"""Collector parsing on inline kernel text, and the stuck-statfs path of `filesystem`."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from vigilops.agent.collectors import filesystem as fs_module
from vigilops.agent.collectors.filesystem import FilesystemCollector, Mount, parse_mounts
from vigilops.agent.collectors.hwmon import HwmonCollector
from vigilops.agent.collectors.meminfo import parse_meminfo
from vigilops.agent.collectors.netstat import parse_paired, parse_snmp6
from vigilops.agent.collectors.textfile import TextfileCollector


def test_meminfo_names_like_node_exporter() -> None:
    got = parse_meminfo("MemTotal:  100 kB\nActive(anon):  2 kB\nHugePages_Total:  3\n")
    assert got == {"MemTotal_bytes": 102400.0, "Active_anon_bytes": 2048.0, "HugePages_Total": 3.0}


def test_mounts_unescape_and_readonly() -> None:
    got = parse_mounts("/dev/sdb1 /mnt/my\\040disk ext4 ro,relatime 0 0\n")
    assert got == [Mount("/dev/sdb1", "/mnt/my disk", "ext4", True)]


def test_netstat_parsing() -> None:
    paired = parse_paired("Tcp: ActiveOpens CurrEstab\nTcp: 5 2\n")
    assert paired == {("Tcp", "ActiveOpens"): "5", ("Tcp", "CurrEstab"): "2"}
    assert parse_snmp6("Ip6InOctets  10\nUdpLite6InErrors 0\n") == {
        ("Ip6", "InOctets"): "10", ("UdpLite6", "InErrors"): "0"}


def test_network_file_systems_are_excluded_by_default() -> None:
    collector = FilesystemCollector()
    assert collector.fs_types_exclude.search("nfs4")
    assert collector.fs_types_exclude.search("cifs")
    assert not collector.fs_types_exclude.search("ext4")


def test_stuck_statfs_marks_device_error(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    calls: list[str] = []
    real = os.statvfs

    def statvfs(path: str) -> os.statvfs_result:
        calls.append(path)
        if path == "/stuck":
            release.wait(60)
        return real("/")

    monkeypatch.setattr(fs_module.os, "statvfs", statvfs)
    collector = FilesystemCollector(statfs_timeout=0.2)
    monkeypatch.setattr(collector, "mounts", lambda: [
        Mount("server:/x", "/stuck", "ext4", False), Mount("/dev/vda", "/", "ext4", False)])
    try:
        for _ in range(2):
            families = {m.name: m for m in collector.collect()}
            errors = {s.labels["mountpoint"]: s.value
                      for s in families["node_filesystem_device_error"].samples}
            assert errors == {"/stuck": 1.0, "/": 0.0}
            sizes = {s.labels["mountpoint"] for s in families["node_filesystem_size_bytes"].samples}
            assert sizes == {"/"}
        assert calls.count("/stuck") == 1
    finally:
        release.set()


def test_textfile_bad_file_sets_error_and_keeps_good_ones(tmp_path: Path) -> None:
    (tmp_path / "good.prom").write_text("# TYPE a_jobs gauge\na_jobs 3\n")
    (tmp_path / "bad.prom").write_text("a_jobs{ 3\n")
    (tmp_path / "ignored.txt").write_text("not read\n")
    families = {m.name: m for m in TextfileCollector(str(tmp_path)).collect()}
    assert families["node_textfile_scrape_error"].samples[0].value == 1
    assert [s.value for s in families["a_jobs"].samples] == [3.0]
    files = [s.labels["file"] for s in families["node_textfile_mtime_seconds"].samples]
    assert files == [str(tmp_path / "good.prom")]


def test_hwmon_reads_a_sysfs_tree(tmp_path: Path) -> None:
    chip = tmp_path / "hwmon0"
    chip.mkdir()
    for name, value in {"name": "coretemp", "temp1_input": "45000", "temp1_crit": "100000",
                        "temp1_label": "Package id 0", "fan1_input": "1200"}.items():
        (chip / name).write_text(value + "\n")
    families = {m.name: m for m in HwmonCollector(str(tmp_path)).collect()}
    temp = families["node_hwmon_temp_celsius"].samples[0]
    assert (temp.labels, temp.value) == ({"chip": "coretemp", "sensor": "temp1"}, 45.0)
    assert families["node_hwmon_temp_crit_celsius"].samples[0].value == 100.0
    assert families["node_hwmon_fan_rpm"].samples[0].value == 1200.0
    assert families["node_hwmon_chip_names"].samples[0].labels == {"chip": "coretemp", "chip_name": "coretemp"}
    assert families["node_hwmon_sensor_label"].samples[0].labels["label"] == "Package id 0"
