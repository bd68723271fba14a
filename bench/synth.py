"""A small node_exporter-like workload for the in-process benchmarks.

Each simulated host exposes 535 series shaped like node_exporter 1.5's (CPU seconds per
CPU and mode, memory, filesystems, disks, network devices, Go runtime, per-collector scrape
durations, …) plus a two-handler request-latency histogram, labelled
``instance="host-NN:9100", job="node"``. Values follow what an idle real host shows at a
15 s interval: about two thirds of the series never change; counters grow in whole units
(bytes, packets) or in hundredths (CPU seconds); most gauges are integers (bytes) or carry
two decimals (load); a minority (scrape durations, GC pauses, clocks) are full-precision
floats that change at every scrape. Overall about 30 % of consecutive samples differ
(the reference dataset: 28 %).

Deterministic for a given seed. Values come out in time slices (`Fleet.advance`) so long
runs never hold the whole matrix.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import product

import numpy as np
import numpy.typing as npt

from vigilops.tsdb.model import Labels

F64 = npt.NDArray[np.float64]

CONST, COUNTER, GAUGE, JITTER, CLOCK, HIST_BUCKET, HIST_SUM, HIST_COUNT = range(8)

#: Decimals a value is printed with; FULL means all 17 significant digits.
FULL = -1


@dataclass(frozen=True)
class SeriesSpec:
    """One series of one host (before `instance` and `job` are added)."""

    labels: tuple[tuple[str, str], ...]
    kind: int
    level: float = 0.0  # constant value, counter start, gauge mean, jitter median
    rate: float = 0.0  # counters: mean increase per second; gauges: std dev of a 1 s step
    p_change: float = 0.0  # probability that the value moves within one second
    decimals: int = 0
    group: int = -1  # histogram: which handler
    frac: float = 0.0  # histogram bucket: share of requests at or below `le`


def _family(
    name: str,
    dims: Sequence[tuple[str, Sequence[str]]],
    kind: int,
    level: float = 0.0,
    rate: float = 0.0,
    p_change: float = 0.0,
    decimals: int = 0,
) -> list[SeriesSpec]:
    names = [d[0] for d in dims]
    out = []
    for values in product(*(d[1] for d in dims)) if dims else [()]:
        labels = (("__name__", name),) + tuple(zip(names, values))
        out.append(SeriesSpec(labels, kind, level, rate, p_change, decimals))
    return out


CPUS = ("0", "1")
CPU_MODES = {  # mode: (CPU-seconds per second, probability of change within 1 s)
    "idle": (0.96, 0.97),
    "iowait": (0.0002, 0.02),
    "irq": (0.0, 0.0),
    "nice": (0.0, 0.0),
    "softirq": (0.001, 0.09),
    "steal": (0.0001, 0.006),
    "system": (0.0045, 0.34),
    "user": (0.035, 0.3),
}
COLLECTORS = (
    "arp bcache bonding btrfs conntrack cpu cpufreq diskstats dmi edac entropy fibrechannel "
    "filefd filesystem hwmon infiniband ipvs loadavg mdadm meminfo netclass netdev netstat "
    "nfs nfsd nvme os powersupplyclass pressure rapl schedstat selinux sockstat softnet stat "
    "systemd tapestats textfile thermal_zone time timex udp_queues uname vmstat xfs zfs"
).split()
DISKS = ("vda", "zram0")
FILESYSTEMS = (("/dev/vda1", "ext4", "/"),)
NET_DEVICES = ("eth0", "lo", "docker0", "veth3f1a2c9")
NET_BUSY = ("eth0", "lo", "docker0")  # devices whose traffic counters are exported
MEMINFO_CHANGING = {  # field: (typical 1 s step in bytes, probability of change within 1 s)
    "Active": (5e6, 0.41), "Active_anon": (1.5e4, 0.13), "Active_file": (5e6, 0.41),
    "AnonPages": (1.2e7, 0.98), "Buffers": (3.6e5, 0.21), "Cached": (1.8e7, 0.38),
    "Committed_AS": (3.8e7, 0.21), "Dirty": (8.3e5, 0.37), "Inactive": (1.6e7, 0.79),
    "Inactive_anon": (1.4e7, 0.77), "Inactive_file": (1.3e7, 0.39),
    "KReclaimable": (1.6e5, 0.2), "KernelStack": (4.2e4, 0.17), "Mapped": (2e6, 0.16),
    "MemAvailable": (1.2e7, 0.55), "MemFree": (2.2e7, 0.41), "PageTables": (1.8e5, 0.25),
    "SReclaimable": (1.6e5, 0.2), "SUnreclaim": (2.7e4, 0.64), "Slab": (1.2e5, 0.67),
    "Unevictable": (2.5e4, 0.12), "VmallocUsed": (5.5e4, 0.08), "Writeback": (4.2e4, 0.05),
}
MEMINFO_CONSTANT = (
    "AnonHugePages Bounce CmaFree CmaTotal CommitLimit DirectMap1G DirectMap2M DirectMap4k "
    "FileHugePages FilePmdMapped HardwareCorrupted HugePages_Free HugePages_Rsvd HugePages_Surp "
    "HugePages_Total Hugepagesize Hugetlb MemTotal Mlocked NFS_Unstable Percpu ShmemHugePages "
    "ShmemPmdMapped Shmem SwapCached SwapFree SwapTotal VmallocChunk VmallocTotal WritebackTmp"
).split()
NETSTAT_BUSY = {  # field: packets or bytes per second
    "IpExt_InOctets": 6e4, "IpExt_OutOctets": 2e4, "Tcp_ActiveOpens": 1.0,
    "Tcp_InSegs": 34.0, "Tcp_OutSegs": 34.0, "Tcp_PassiveOpens": 1.0,
}
NETSTAT_QUIET = (
    "Icmp_InErrors Icmp_InMsgs Icmp_OutMsgs Icmp6_InErrors Icmp6_InMsgs Icmp6_OutMsgs "
    "Ip_Forwarding Ip6_InOctets Ip6_OutOctets TcpExt_ListenDrops TcpExt_ListenOverflows "
    "TcpExt_SyncookiesFailed TcpExt_SyncookiesRecv TcpExt_SyncookiesSent TcpExt_TCPSynRetrans "
    "TcpExt_TCPTimeouts Tcp_CurrEstab Tcp_InErrs Tcp_OutRsts Tcp_RetransSegs Udp6_InDatagrams "
    "Udp6_InErrors Udp6_NoPorts Udp6_OutDatagrams Udp6_RcvbufErrors Udp6_SndbufErrors "
    "UdpLite6_InErrors UdpLite_InErrors Udp_InDatagrams Udp_InErrors Udp_NoPorts Udp_OutDatagrams "
    "Udp_RcvbufErrors Udp_SndbufErrors"
).split()
NET_INFO = (
    "address_assign_type carrier carrier_changes_total carrier_down_changes_total "
    "carrier_up_changes_total device_id dormant flags iface_id iface_link iface_link_mode "
    "info mtu_bytes name_assign_type protocol_type transmit_queue_length up"
).split()
SOCKSTAT = (
    "FRAG_inuse FRAG_memory RAW_inuse TCP_alloc TCP_inuse TCP_mem TCP_mem_bytes TCP_orphan "
    "UDPLITE_inuse UDP_inuse UDP_mem UDP_mem_bytes FRAG6_inuse FRAG6_memory RAW6_inuse "
    "TCP6_inuse UDP6_inuse UDPLITE6_inuse"
).split()
TIMEX_CONSTANT = (
    "estimated_error_seconds frequency_adjustment_ratio loop_time_constant pps_calibration_total "
    "pps_error_total pps_frequency_hertz pps_jitter_seconds pps_jitter_total pps_shift_seconds "
    "pps_stability_exceeded_total pps_stability_hertz status sync_status tai_offset_seconds "
    "tick_seconds maxerror_seconds offset_seconds"
).split()
NF_CONNTRACK = (
    "entries entries_limit stat_drop stat_early_drop stat_found stat_ignore stat_insert "
    "stat_insert_failed stat_invalid stat_search_restart"
).split()
HIST_NAME = "synthetic_http_request_duration_seconds"
HIST_HANDLERS = {"/api/v1/query": (40.0, 0.04), "/api/v1/write": (8.0, 0.12)}  # req/s, median s
HIST_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _go_runtime() -> list[SeriesSpec]:
    s: list[SeriesSpec] = []
    for q, p in (("0", 0.05), ("0.25", 0.09), ("0.5", 0.2), ("0.75", 0.13), ("1", 0.02)):
        s += _family("go_gc_duration_seconds", [("quantile", [q])], GAUGE, 4e-5, 2e-5, p, 9)
    s += _family("go_gc_duration_seconds_sum", [], COUNTER, 0.004, 1.5e-5, 0.38, 9)
    s += _family("go_gc_duration_seconds_count", [], COUNTER, 120, 0.38, 0.38)
    s += _family("go_goroutines", [], GAUGE, 8, 1, 0.03)
    s += _family("go_info", [("version", ["go1.19.8"])], CONST, 1)
    gauges = {  # name: (level, step, probability of change)
        "alloc_bytes": (1.2e6, 1.1e6, 1.0), "gc_sys_bytes": (8.9e6, 3.6e4, 0.24),
        "heap_alloc_bytes": (1.2e6, 1.1e6, 1.0), "heap_idle_bytes": (4.9e6, 8.2e5, 1.0),
        "heap_inuse_bytes": (3.1e6, 8.1e5, 1.0), "heap_objects": (1.3e4, 1.6e4, 1.0),
        "heap_released_bytes": (3.2e6, 1.8e5, 0.14), "heap_sys_bytes": (8e6, 4.8e4, 0.25),
        "mspan_inuse_bytes": (6.1e4, 5.9e3, 0.44), "mspan_sys_bytes": (6.5e4, 8e3, 0.006),
        "next_gc_bytes": (4.2e6, 1e5, 0.38), "other_sys_bytes": (5.9e5, 2.6e4, 0.68),
        "stack_inuse_bytes": (4.3e5, 5.6e4, 0.11), "stack_sys_bytes": (4.3e5, 5.6e4, 0.11),
        "sys_bytes": (1.9e7, 9.3e4, 0.017),
    }
    for name, (level, step, p) in gauges.items():
        s += _family(f"go_memstats_{name}", [], GAUGE, level, step, p)
    for name, rate in (("alloc_bytes_total", 1.0e6), ("frees_total", 1.4e4), ("mallocs_total", 1.4e4)):
        s += _family(f"go_memstats_{name}", [], COUNTER, 3e6, rate, 1.0)
    s += _family("go_memstats_buck_hash_sys_bytes", [], COUNTER, 1.4e6, 270, 0.65)
    s += _family("go_memstats_last_gc_time_seconds", [], JITTER, 1.7e9, 0.0, 0.38, 7)
    for name in ("lookups_total", "mcache_inuse_bytes", "mcache_sys_bytes"):
        s += _family(f"go_memstats_{name}", [], CONST, 2400)
    s += _family("go_threads", [], CONST, 7)
    return s


def _node() -> list[SeriesSpec]:
    s: list[SeriesSpec] = []
    s += _family("node_arp_entries", [("device", ["eth0"])], GAUGE, 3, 1, 0.05)
    s += _family("node_boot_time_seconds", [], CONST, 1.79e9)
    s += _family("node_context_switches_total", [], COUNTER, 5e5, 214, 1.0)
    for cpu, (mode, (rate, p)) in product(CPUS, CPU_MODES.items()):
        s += _family("node_cpu_seconds_total", [("cpu", [cpu]), ("mode", [mode])], COUNTER, 300, rate, p, 2)
    s += _family("node_cpu_guest_seconds_total", [("cpu", CPUS), ("mode", ["nice", "user"])], CONST, 0)
    s += _family("node_entropy_available_bits", [], GAUGE, 256, 30, 0.05)
    s += _family("node_entropy_pool_size_bits", [], CONST, 256)
    s += _family("node_filefd_allocated", [], GAUGE, 306, 26, 0.08)
    s += _family("node_filefd_maximum", [], CONST, 9.2e18)
    s += _family("node_exporter_build_info", [("version", ["1.5.0"])], CONST, 1)
    s += _family("node_forks_total", [], COUNTER, 6600, 3.9, 0.2)
    s += _family("node_intr_total", [], COUNTER, 2.5e5, 153, 1.0)
    disk_counters = {  # name: (rate, probability of change, decimals) for the busy disk
        "discard_time_seconds_total": (1e-4, 0.07, 3), "discarded_sectors_total": (3.4, 0.18, 0),
        "discards_completed_total": (0.4, 0.18, 0), "flush_requests_total": (0.3, 0.2, 0),
        "flush_requests_time_seconds_total": (2e-4, 0.2, 3), "io_time_seconds_total": (7e-4, 0.08, 3),
        "io_time_weighted_seconds_total": (0.017, 0.18, 3), "read_bytes_total": (7.8e5, 0.16, 0),
        "read_time_seconds_total": (0.016, 0.11, 3), "reads_completed_total": (16.5, 0.16, 0),
        "reads_merged_total": (0.38, 0.03, 0), "write_time_seconds_total": (5e-4, 0.07, 3),
        "writes_completed_total": (1.0, 0.27, 0), "writes_merged_total": (1.3, 0.06, 0),
        "written_bytes_total": (4.9e4, 0.27, 0),
    }
    for disk, busy in zip(DISKS, (0.5, 0.0)):
        for name, (rate, p, dec) in disk_counters.items():
            s += _family(f"node_disk_{name}", [("device", [disk])], COUNTER, 1e4, rate * busy, p * busy, dec)
        s += _family("node_disk_discards_merged_total", [("device", [disk])], CONST, 0)
        s += _family("node_disk_info", [("device", [disk]), ("major", ["254"]), ("minor", ["0"])], CONST, 1)
        s += _family("node_disk_io_now", [("device", [disk])], GAUGE, 0, 1, 0.02 * busy)
    for dev, fstype, mnt in FILESYSTEMS:
        dims = [("device", [dev]), ("fstype", [fstype]), ("mountpoint", [mnt])]
        moving = mnt in ("/", "/run")
        for name in ("avail_bytes", "free_bytes"):
            s += _family(f"node_filesystem_{name}", dims, GAUGE, 8.4e10, 1.7e4 if moving else 0, 0.12 if moving else 0)
        s += _family("node_filesystem_files_free", dims, GAUGE, 1.6e7, 7 if moving else 0, 0.07 if moving else 0)
        for name, value in (("device_error", 0), ("files", 1.6e7), ("readonly", 0), ("size_bytes", 2.6e11)):
            s += _family(f"node_filesystem_{name}", dims, CONST, value)
    for name, step, p in (("load1", 0.02, 0.14), ("load5", 0.01, 0.06), ("load15", 0.01, 0.011)):
        s += _family(f"node_{name}", [], GAUGE, 0.2, step, p, 2)
    for name, (step, p) in MEMINFO_CHANGING.items():
        s += _family(f"node_memory_{name}_bytes", [], GAUGE, 2e8, step, p)
    for name in MEMINFO_CONSTANT:
        s += _family(f"node_memory_{name}_bytes", [], CONST, 1.2e9)
    for name, rate in NETSTAT_BUSY.items():
        s += _family(f"node_netstat_{name}", [], COUNTER, 1e5, rate, 1.0)
    for name in NETSTAT_QUIET:
        s += _family(f"node_netstat_{name}", [], CONST, 0)
    for name in NET_INFO:
        s += _family(f"node_network_{name}", [("device", NET_DEVICES)], CONST, 1)
    for dev in NET_BUSY:
        busy = {"eth0": 0.01}.get(dev, 0.0)  # an idle host: traffic counters mostly still
        for d in ("receive", "transmit"):
            s += _family(f"node_network_{d}_bytes_total", [("device", [dev])], COUNTER, 8e7, 6e4 * busy, busy)
            s += _family(f"node_network_{d}_packets_total", [("device", [dev])], COUNTER, 9e4, 40 * busy, busy)
            quiet = ("compressed", "drop", "errs", "fifo") + (
                ("frame", "multicast", "nohandler") if d == "receive" else ("carrier", "colls")
            )
            for q in quiet:
                s += _family(f"node_network_{d}_{q}_total", [("device", [dev])], CONST, 0)
    for name in NF_CONNTRACK:
        s += _family(f"node_nf_conntrack_{name}", [], CONST, 0)
    s += _family("node_os_info", [("id", ["debian"]), ("version_id", ["12"])], CONST, 1)
    s += _family("node_os_version", [("id", ["debian"])], CONST, 12)
    s += _family("node_procs_blocked", [], CONST, 0)
    s += _family("node_procs_running", [], GAUGE, 2, 1, 0.5)
    s += _family("node_selinux_enabled", [], CONST, 0)
    for name, rate, p in (("cpu_waiting", 0.004, 0.98), ("io_stalled", 2e-4, 0.21), ("io_waiting", 2e-4, 0.21)):
        s += _family(f"node_pressure_{name}_seconds_total", [], COUNTER, 7, rate, p, FULL)
    for name in ("memory_stalled", "memory_waiting"):
        s += _family(f"node_pressure_{name}_seconds_total", [], CONST, 0)
    for c in COLLECTORS:
        s += _family("node_scrape_collector_duration_seconds", [("collector", [c])], JITTER, 5e-5, 0, 1.0, 9)
    s += _family("node_scrape_collector_success", [("collector", COLLECTORS)], CONST, 1)
    for name in SOCKSTAT:
        s += _family(f"node_sockstat_{name}", [], CONST, 3)
    s += _family("node_sockstat_TCP_tw", [], GAUGE, 2, 1, 0.98)
    s += _family("node_sockstat_sockets_used", [], GAUGE, 15, 1, 0.46)
    s += _family("node_softnet_processed_total", [("cpu", CPUS)], COUNTER, 3000, 17, 0.7)
    for name in ("dropped_total", "times_squeezed_total"):
        s += _family(f"node_softnet_{name}", [("cpu", CPUS)], CONST, 0)
    s += _family("node_textfile_scrape_error", [], CONST, 0)
    s += _family("node_time_clocksource_available_info", [("clocksource", ["kvm-clock", "tsc"])], CONST, 1)
    s += _family("node_time_clocksource_current_info", [("clocksource", ["kvm-clock"])], CONST, 1)
    s += _family("node_time_seconds", [], CLOCK, 0, 1.0, 1.0, 7)
    s += _family("node_time_zone_offset_seconds", [("time_zone", ["UTC"])], CONST, 0)
    for name in TIMEX_CONSTANT:
        s += _family(f"node_timex_{name}", [], CONST, 1)
    s += _family("node_udp_queues", [("ip", ["v4", "v6"]), ("queue", ["rx", "tx"])], CONST, 0)
    s += _family("node_uname_info", [("machine", ["x86_64"]), ("release", ["6.1.0-18-amd64"])], CONST, 1)
    for name, rate, p in (("pgfault", 690, 1.0), ("pgmajfault", 0.1, 0.13), ("pgpgin", 9, 0.16), ("pgpgout", 60, 0.27)):
        s += _family(f"node_vmstat_{name}", [], COUNTER, 1e6, rate, p)
    for name in ("oom_kill", "pswpin", "pswpout"):
        s += _family(f"node_vmstat_{name}", [], CONST, 0)
    return s


def _process() -> list[SeriesSpec]:
    s: list[SeriesSpec] = []
    s += _family("process_cpu_seconds_total", [], COUNTER, 1, 0.008, 0.7, 2)
    s += _family("process_max_fds", [], CONST, 524288)
    s += _family("process_open_fds", [], CONST, 10)
    s += _family("process_resident_memory_bytes", [], GAUGE, 1.9e7, 1.8e5, 0.11)
    s += _family("process_start_time_seconds", [], CONST, 1.79e9)
    s += _family("process_virtual_memory_bytes", [], GAUGE, 1e9, 9e4, 0.02)
    s += _family("process_virtual_memory_max_bytes", [], CONST, 1.8e19)
    s += _family("promhttp_metric_handler_errors_total", [("cause", ["encoding", "gathering"])], CONST, 0)
    s += _family("promhttp_metric_handler_requests_in_flight", [], CONST, 1)
    s += _family("promhttp_metric_handler_requests_total", [("code", ["200"])], COUNTER, 100, 1 / 15, 1.0)
    s += _family("promhttp_metric_handler_requests_total", [("code", ["500", "503"])], CONST, 0)
    return s


def _histogram() -> list[SeriesSpec]:
    s: list[SeriesSpec] = []
    for g, (handler, (rate, median)) in enumerate(HIST_HANDLERS.items()):
        h = (("handler", handler),)
        for b in HIST_BOUNDS + (math.inf,):
            le = "+Inf" if b == math.inf else f"{b:g}"
            frac = 1.0 if b == math.inf else 0.5 * (1 + math.erf(math.log(b / median) / math.sqrt(2)))
            labels = (("__name__", f"{HIST_NAME}_bucket"),) + h + (("le", le),)
            s.append(SeriesSpec(labels, HIST_BUCKET, 0, rate, 1.0, 0, g, frac))
        s.append(SeriesSpec((("__name__", f"{HIST_NAME}_sum"),) + h, HIST_SUM, 0, rate, 1.0, 6, g, median))
        s.append(SeriesSpec((("__name__", f"{HIST_NAME}_count"),) + h, HIST_COUNT, 0, rate, 1.0, 0, g))
    return s


@lru_cache(maxsize=1)
def host_series() -> tuple[SeriesSpec, ...]:
    """The series every simulated host exposes, in exposition order."""
    return tuple(_go_runtime() + _node() + _process() + _histogram())


def instance(target: int) -> str:
    return f"host-{target:02d}:9100"


class Fleet:
    """`n_series` series: whole hosts of `host_series()` in order, the last one possibly
    cut short. Series ``i`` belongs to host ``i // len(host_series())``."""

    def __init__(self, n_series: int, step_s: float = 15.0, start_ms: int = 1_795_222_800_000, seed: int = 1) -> None:
        specs = host_series()
        per = len(specs)
        self.n = n_series
        self.step_s = step_s
        self.step_ms = int(round(step_s * 1000))
        self.t_ms = start_ms  # timestamp of the next row `advance` returns
        hosts = -(-n_series // per)
        self.hosts = hosts
        idx = np.arange(n_series)
        self._host = idx // per
        spec_of = [specs[i % per] for i in range(n_series)]
        self._specs = spec_of
        rng = np.random.default_rng(seed)
        self._rng = rng
        self.kind = np.array([sp.kind for sp in spec_of], dtype=np.int8)
        self.dec = np.array([sp.decimals for sp in spec_of], dtype=np.int8)
        level = np.array([sp.level for sp in spec_of])
        self.rate = np.array([sp.rate for sp in spec_of])
        # Probability of a change between two scrapes `step_s` apart.
        p1 = np.clip(np.array([sp.p_change for sp in spec_of]), 0.0, 1.0)
        self.p = 1.0 - (1.0 - p1) ** step_s
        # Hosts differ: uptime (counter starting points), load (rates), resting levels.
        load_h = rng.uniform(0.5, 2.0, hosts)
        uptime_h = rng.uniform(2 * 86400, 60 * 86400, hosts)
        load = load_h[self._host]
        uptime_s = uptime_h[self._host]
        self.rate = self.rate * load
        spread = rng.uniform(0.7, 1.3, n_series)
        self.level = level * spread
        self.state = self.level.copy()
        c = self.kind == COUNTER
        self.state[c] = level[c] + self.rate[c] * uptime_s[c]
        self._scale = np.where(self.dec >= 0, 10.0 ** np.maximum(self.dec, 0), 1.0)
        # Counters with decimals count in units of 10**-decimals so they stay exact.
        cd = c & (self.dec >= 0)
        self.state[cd] = np.round(self.state[cd] * self._scale[cd])
        g = self.kind == GAUGE
        self.state[g] = _round(self.level[g], self.dec[g])
        # Histogram: requests served so far per (host, handler).
        self._hist_groups = sorted({(int(h), sp.group) for h, sp in zip(self._host, spec_of) if sp.group >= 0})
        hist_rate = list(HIST_HANDLERS.values())
        self._hist_total = {
            (h, g): math.floor(uptime_h[h] * 0.01 * hist_rate[g][0] * load_h[h]) for h, g in self._hist_groups
        }
        self._hist_sum = {key: 0.0 for key in self._hist_groups}

    def label_sets(self) -> list[Labels]:
        """Fresh `Labels` for every series (new objects at each call)."""
        per = len(host_series())
        return [
            Labels(sp.labels + (("instance", instance(i // per)), ("job", "node")))
            for i, sp in enumerate(self._specs)
        ]

    def timestamps(self, steps: int) -> npt.NDArray[np.int64]:
        return self.t_ms + self.step_ms * np.arange(steps, dtype=np.int64)

    def advance(self, steps: int) -> F64:
        """The next `steps` scrapes: a C-contiguous [steps, n] matrix of values."""
        rng, dt, n = self._rng, self.step_s, self.n
        out = np.empty((steps, n))
        kind = self.kind
        out[:, kind == CONST] = self.level[kind == CONST]
        # Counters: increments arrive with probability p per scrape, gamma-sized.
        c = np.flatnonzero(kind == COUNTER)
        if len(c):
            p = np.clip(self.p[c], 1e-9, 1.0)
            mean = self.rate[c] * dt / p * self._scale[c]
            inc = rng.gamma(4.0, 0.25, (steps, len(c))) * mean
            inc *= rng.random((steps, len(c))) < p
            whole = self.dec[c] >= 0
            inc[:, whole] = np.where(inc[:, whole] > 0, np.maximum(np.round(inc[:, whole]), 1), 0)
            cum = np.cumsum(inc, axis=0) + self.state[c]
            self.state[c] = cum[-1]
            out[:, c] = cum / self._scale[c]
        # Gauges: bounded mean-reverting walk that moves with probability p.
        g = np.flatnonzero(kind == GAUGE)
        if len(g):
            x = self.state[g].copy()
            mu, step, lo = self.level[g], self.rate[g], np.where(self.level[g] >= 0, 0.0, -np.inf)
            dec = self.dec[g]
            moves = rng.random((steps, len(g))) < self.p[g]
            noise = rng.standard_normal((steps, len(g))) * (step * math.sqrt(dt))
            theta = min(1.0, dt / 300.0)
            for k in range(steps):
                nxt = _round(np.maximum(x + theta * (mu - x) + noise[k], lo), dec)
                x = np.where(moves[k], nxt, x)
                out[k, g] = x
            self.state[g] = x
        # Full-precision jitter around a median (scrape durations, GC timestamps).
        j = np.flatnonzero(kind == JITTER)
        if len(j):
            moves = rng.random((steps, len(j))) < self.p[j]
            fresh = _round(self.level[j] * np.exp(0.3 * rng.standard_normal((steps, len(j)))), self.dec[j])
            prev = self.state[j]
            vals = np.empty((steps, len(j)))
            for k in range(steps):
                prev = np.where(moves[k], fresh[k], prev)
                vals[k] = prev
            self.state[j] = prev
            out[:, j] = vals
        # Clocks: the scrape time plus a few milliseconds.
        ck = np.flatnonzero(kind == CLOCK)
        if len(ck):
            t_s = self.timestamps(steps) / 1000.0
            out[:, ck] = np.round(t_s[:, None] + rng.uniform(0.001, 0.01, (steps, len(ck))), 7)
        self._advance_histograms(out, steps)
        self.t_ms += self.step_ms * steps
        return out

    def _advance_histograms(self, out: F64, steps: int) -> None:
        if not self._hist_groups:
            return
        kind = self.kind
        per = len(host_series())
        for key in self._hist_groups:
            host, group = key
            base = host * per
            cols = [
                i for i in range(base, min(base + per, self.n))
                if self._specs[i].group == group and kind[i] in (HIST_BUCKET, HIST_SUM, HIST_COUNT)
            ]
            rate = float(self.rate[cols[0]]) * self.step_s
            req = self._rng.poisson(rate * self._rng.uniform(0.6, 1.4, steps))
            total = np.cumsum(req) + self._hist_total[key]
            self._hist_total[key] = int(total[-1])
            for i in cols:
                sp = self._specs[i]
                if sp.kind == HIST_BUCKET:
                    out[:, i] = np.floor(total * sp.frac)
                elif sp.kind == HIST_COUNT:
                    out[:, i] = total
                else:
                    spent = req * sp.frac * 1.65 * self._rng.gamma(20, 0.05, steps)
                    sums = np.cumsum(spent) + self._hist_sum[key]
                    self._hist_sum[key] = float(sums[-1])
                    out[:, i] = np.round(sums, 6)


def _round(x: F64, decimals: npt.NDArray[np.int8]) -> F64:
    """Round each element to its own number of decimals (FULL: unchanged)."""
    out = x.copy()
    for d in np.unique(decimals).tolist():
        if d < 0:
            continue
        sel = decimals == d
        out[..., sel] = np.round(x[..., sel], d)
    return out


def change_fraction(values: F64) -> float:
    """Share of consecutive samples (per series) that differ: a realism check."""
    if len(values) < 2:
        return 0.0
    return float((values[1:] != values[:-1]).mean())


def constant_fraction(values: F64) -> float:
    return float((values == values[0]).all(axis=0).mean())


def describe(fleet: Fleet, values: F64) -> dict[str, float]:
    return {
        "series": float(fleet.n),
        "series_per_host": float(len(host_series())),
        "constant_fraction": constant_fraction(values),
        "changed_fraction": change_fraction(values),
    }


def iter_scrapes(fleet: Fleet, steps: int, slice_steps: int = 240) -> Iterable[tuple[int, F64]]:
    """(timestamp ms, values row) for `steps` scrapes, generated `slice_steps` at a time."""
    done = 0
    while done < steps:
        k = min(slice_steps, steps - done)
        t0 = fleet.t_ms
        block = fleet.advance(k)
        for i in range(k):
            yield t0 + i * fleet.step_ms, block[i]
        done += k
