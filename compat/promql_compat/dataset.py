"""The compatibility data set: a deterministic OpenMetrics file both systems import.

Two hours of 15 s "scrapes" ending at `END_MS`, about 220 series:

* five targets in three jobs (``api``, ``db``, ``web``), each exposing counters
  (``demo_requests_total``, ``demo_cpu_seconds_total``), gauges (``demo_memory_bytes``,
  ``demo_num_cpus``, ``demo_disk_usage_bytes``, ``demo_batch_last_success_timestamp_seconds``,
  ``demo_bool_flag``, ``up``), a classic histogram (``demo_request_duration_seconds``) and
  a summary (``demo_rpc_latency_seconds``);
* counter resets (a target restarts), a one-minute scrape gap, a target that appears an
  hour in and one that disappears 40 minutes before the end;
* ``demo_temperature_celsius`` with NaN, +Inf and -Inf samples and awkward label values
  (quotes, backslashes, a newline, unicode, a lone space, ``{}=,``);
* ``demo_churn_items`` whose pods each live about half an hour, and ``demo_intermittent``
  with a short gap (inside the 5 m lookback) and a long one (outside it);
* ``job:demo_requests:rate5m``, a name with colons;
* ``demo_special{kind=…}``: NaN, ±Inf, values near the float64 maximum, the smallest
  denormal, -0, 1e21, 1e20 and -1e20 (cancellation), 1 and 1e15 alternating;
* ``demo_edge_bucket{case=…, le=…}``: histograms without +Inf, only +Inf, all zero,
  negative bounds, duplicate and unparsable ``le``, non-monotonic counts, NaN counts.

Each target scrapes at its own millisecond offset with a few ms of jitter; ``h1`` is exactly
on the 15 s grid, so range-selector boundaries (closed on both ends in 2.42) are exercised.
The file is a pure function of `SEED` (numpy's PCG64 generator).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

#: Seed of every random choice in the file.
SEED = 20231201
#: The scrape interval of every series.
SCRAPE_INTERVAL_MS = 15_000
#: Last scrape slot: 2023-12-01T01:00:00Z, so the data crosses a day, a month and a 2 h
#: block boundary (midnight), which the date functions and both importers must handle.
END_MS = 1_701_392_400_000
#: Two hours of data.
DURATION_MS = 2 * 3_600_000
START_MS = END_MS - DURATION_MS
#: Scrape slots ``START_MS + k * SCRAPE_INTERVAL_MS`` for k in ``range(SLOTS)``.
SLOTS = DURATION_MS // SCRAPE_INTERVAL_MS + 1

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Target:
    """One scraped endpoint: where its samples sit on the time axis."""

    job: str
    instance: str
    offset_ms: int  # scrape phase inside the 15 s interval
    jitter_ms: int  # +- uniform jitter of each scrape
    first_slot: int = 0
    last_slot: int = SLOTS - 1
    restart_slot: int | None = None  # counters reset at this slot
    missed: tuple[int, int] | None = None  # slots [a, b) without a successful scrape


TARGETS: tuple[Target, ...] = (
    Target("api", "h1:9100", 0, 0),
    Target("api", "h2:9100", 250, 4, restart_slot=200, missed=(100, 104)),
    Target("db", "h3:9100", 617, 3, restart_slot=350),
    Target("db", "h4:9100", 903, 2, first_slot=240),
    Target("web", "h5:9100", 77, 5, last_slot=SLOTS - 1 - 160),
)

#: Upper bounds of the classic histogram (``h3`` prints them the way client_python does).
BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

#: Awkward label values of ``demo_temperature_celsius{room=…}``.
ROOMS = (
    "kitchen",
    'quote"d',
    "back\\slash",
    "new\nline",
    "uni ☃ ünïcödé 日本",
    " ",
    "{}=,",
    "trailing\\",
)


@dataclass
class Family:
    """One OpenMetrics metric family and its series (labels, timestamp strings, values)."""

    name: str
    type: str
    help: str
    series: list[tuple[dict[str, str], list[str], FloatArray]] = field(default_factory=list)


@dataclass(frozen=True)
class Dataset:
    """The generated file and what it holds."""

    text: str
    start_ms: int
    end_ms: int
    series: int
    samples: int


# ---- time axis ---------------------------------------------------------------------------
def _timestamp_text(ms: int) -> str:
    return f"{ms // 1000}.{ms % 1000:03d}"


def _representable(ms: int) -> int:
    """The nearest ms at or after `ms` that parsers read back exactly: OpenMetrics
    timestamps are float seconds, which promtool (and VigilOps) turn into
    ``int64(seconds * 1000)``, truncating e.g. ``…200.137`` to ``…200136``."""
    while int(float(_timestamp_text(ms)) * 1000) != ms:
        ms += 1
    return ms


def _slot_times(offset_ms: int, jitter_ms: int, rng: np.random.Generator) -> IntArray:
    jitter = rng.integers(-jitter_ms, jitter_ms + 1, SLOTS) if jitter_ms else np.zeros(SLOTS, np.int64)
    raw = START_MS + np.arange(SLOTS, dtype=np.int64) * SCRAPE_INTERVAL_MS + offset_ms + jitter
    return np.array([_representable(int(t)) for t in raw], dtype=np.int64)


@dataclass
class _Axis:
    """The slots at which a series has samples, with their timestamp texts."""

    present: BoolArray  # (SLOTS,)
    texts: list[str]  # one per present slot

    @classmethod
    def of(cls, times: IntArray, present: BoolArray) -> _Axis:
        return cls(present, [_timestamp_text(int(t)) for t in times[present]])


def _target_axes(target: Target, rng: np.random.Generator) -> tuple[_Axis, _Axis]:
    """(every slot the target is alive, the slots with a successful scrape)."""
    times = _slot_times(target.offset_ms, target.jitter_ms, rng)
    alive = np.zeros(SLOTS, dtype=bool)
    alive[target.first_slot : target.last_slot + 1] = True
    scraped = alive.copy()
    if target.missed is not None:
        scraped[target.missed[0] : target.missed[1]] = False
    return _Axis.of(times, alive), _Axis.of(times, scraped)


# ---- value shapes --------------------------------------------------------------------------
def _counter(increments: FloatArray, restart_slot: int | None) -> FloatArray:
    """Cumulative sum of `increments`, restarting from the increment at `restart_slot`."""
    values = np.cumsum(increments)
    if restart_slot is not None:
        values[restart_slot:] -= values[restart_slot - 1]
    return values


def _random_walk(rng: np.random.Generator, start: float, scale: float) -> FloatArray:
    return start + np.cumsum(rng.normal(0.0, scale, SLOTS))


def _histogram(
    rng: np.random.Generator, rate: float, restart_slot: int | None
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Cumulative (bucket counts (len(BUCKETS)+1, SLOTS), sum, count) of a latency histogram
    whose observations are log-normal around 80 ms."""
    per_slot = rng.poisson(rate, SLOTS)
    edges = np.array((0.0, *BUCKETS, math.inf))
    cdf = np.array([_lognormal_cdf(e, math.log(0.08), 1.0) for e in edges])
    probs = np.diff(cdf)
    counts = rng.multinomial(per_slot, probs).T.astype(np.float64)  # (buckets, SLOTS)
    cumulative = np.cumsum(counts, axis=0)  # cumulative over le
    mids = np.array((*(np.array(edges[1:-1]) + np.array(edges[:-2])) / 2, 2.0))
    sums = (counts * mids[:, None]).sum(axis=0) * rng.uniform(0.9, 1.1, SLOTS)
    buckets = np.stack([_counter(row, restart_slot) for row in cumulative])
    return buckets, _counter(sums, restart_slot), buckets[-1].copy()


def _lognormal_cdf(x: float, mu: float, sigma: float) -> float:
    if x <= 0:
        return 0.0
    if math.isinf(x):
        return 1.0
    return 0.5 * (1.0 + math.erf((math.log(x) - mu) / (sigma * math.sqrt(2.0))))


def _format_value(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v))


def _le_text(le: float, client_python: bool) -> str:
    if math.isinf(le):
        return "+Inf"
    text = repr(le)
    return text if client_python or not text.endswith(".0") else text[:-2]


# ---- families ------------------------------------------------------------------------------
def _target_families(rng: np.random.Generator) -> list[Family]:
    up = Family("up", "gauge", "Whether the last scrape succeeded.")
    requests = Family("demo_requests", "counter", "Requests served.")
    cpu = Family("demo_cpu_seconds", "counter", "CPU time spent.")
    memory = Family("demo_memory_bytes", "gauge", "Memory by type.")
    cpus = Family("demo_num_cpus", "gauge", "Number of CPUs.")
    disk = Family("demo_disk_usage_bytes", "gauge", "Disk space used.")
    batch = Family("demo_batch_last_success_timestamp_seconds", "gauge", "Last batch run.")
    flag = Family("demo_bool_flag", "gauge", "A flag that flips.")
    latency = Family("demo_request_duration_seconds", "histogram", "Request latency.")
    rpc = Family("demo_rpc_latency_seconds", "summary", "RPC latency.")
    for i, tg in enumerate(TARGETS):
        alive, scraped = _target_axes(tg, rng)
        base = {"instance": tg.instance, "job": tg.job}

        def add(fam: Family, extra: dict[str, str], values: FloatArray, axis: _Axis = scraped) -> None:
            fam.series.append(({**base, **extra}, axis.texts, values[axis.present]))

        up_values = np.where(scraped.present, 1.0, 0.0)
        add(up, {}, up_values, alive)
        for method in ("get", "post"):
            for code in ("200", "500"):
                rate = (40.0 if method == "get" else 6.0) * (1.0 if code == "200" else 0.05)
                incs = rng.poisson(rate, SLOTS).astype(np.float64)
                add(requests, {"method": method, "code": code, "__name__": "demo_requests_total"},
                    _counter(incs, tg.restart_slot))
        for cpu_id in ("0", "1"):
            for mode in ("idle", "user"):
                incs = rng.uniform(10.0, 15.0, SLOTS) if mode == "idle" else rng.uniform(0.0, 5.0, SLOTS)
                add(cpu, {"cpu": cpu_id, "mode": mode, "__name__": "demo_cpu_seconds_total"},
                    _counter(incs, tg.restart_slot))
        for kind, start in (("free", 4e9), ("used", 2e9), ("cached", 1e9)):
            add(memory, {"type": kind}, np.abs(_random_walk(rng, start + i * 1.5e8, 2e6)))
        add(cpus, {}, np.full(SLOTS, float((2, 4, 8, 4, 2)[i])))
        slope = 1e5 * (i + 1)
        disk_values = 5e10 + slope * np.arange(SLOTS) + rng.normal(0.0, 1e4, SLOTS)
        add(disk, {}, np.round(disk_values))
        period = 40 + 7 * i  # slots between batch successes
        slots = np.arange(SLOTS)
        last_run = START_MS // 1000 - 300 + ((slots + i * 5) // period) * period * 15
        add(batch, {}, last_run.astype(np.float64))
        add(flag, {}, ((slots // (23 + i)) % 2).astype(np.float64))
        if tg.job in ("api", "db"):
            methods = ("get", "post") if tg.instance == "h1:9100" else ("get",)
            for method in methods:
                buckets, sums, counts = _histogram(rng, 25.0, tg.restart_slot)
                if tg.instance == "h4:9100":  # a non-monotonic exposition: le=0.25 > le=0.5
                    buckets[4, 300:340] = buckets[5, 300:340] + 3
                for le, row in zip((*BUCKETS, math.inf), buckets, strict=True):
                    le_text = _le_text(le, tg.instance == "h3:9100")
                    add(latency, {"method": method, "le": le_text,
                                  "__name__": "demo_request_duration_seconds_bucket"}, row)
                add(latency, {"method": method, "__name__": "demo_request_duration_seconds_sum"}, sums)
                add(latency, {"method": method, "__name__": "demo_request_duration_seconds_count"}, counts)
        if i < 3:
            for q, scale in (("0.5", 0.05), ("0.9", 0.2), ("0.99", 0.6)):
                add(rpc, {"quantile": q}, np.abs(_random_walk(rng, scale, scale / 20)))
            obs = rng.poisson(30.0, SLOTS).astype(np.float64)
            add(rpc, {"__name__": "demo_rpc_latency_seconds_sum"},
                _counter(obs * rng.uniform(0.05, 0.15, SLOTS), tg.restart_slot))
            add(rpc, {"__name__": "demo_rpc_latency_seconds_count"}, _counter(obs, tg.restart_slot))
    return [up, requests, cpu, memory, cpus, disk, batch, flag, latency, rpc]


def _loose_families(rng: np.random.Generator) -> list[Family]:
    """Series not tied to a target: awkward labels, churn, gaps, a recorded series."""
    temp = Family("demo_temperature_celsius", "gauge", "Temperature with \"odd\" rooms.")
    for i, room in enumerate(ROOMS):
        times = _slot_times(131 * i % 1000, 2, rng)
        present = np.ones(SLOTS, dtype=bool)
        values = _random_walk(rng, 18.0 + i, 0.1)
        if i % 3 == 0:
            values[::37] = math.nan
        if i == 1:
            values[123] = math.inf
            values[321] = -math.inf
        if i == 2:
            values[200:230] = math.nan
        if i == 4:
            values[-40:] = math.inf
        axis = _Axis.of(times, present)
        # An empty label value means "no such label": both importers drop it.
        labels = {"room": room, "sensor": "" if i == 5 else ("s1" if i % 2 else "s2")}
        temp.series.append((labels, axis.texts, values))
    churn = Family("demo_churn_items", "gauge", "Items of short-lived pods.")
    for k in range(6):
        times = _slot_times(400 + 13 * k, 1, rng)
        present = np.zeros(SLOTS, dtype=bool)
        present[k * 80 : k * 80 + 140] = True
        axis = _Axis.of(times, present)
        values = rng.integers(0, 100, SLOTS).astype(np.float64)
        churn.series.append(({"ns": "a" if k % 2 else "b", "pod": f"p{k}"}, axis.texts, values[present]))
    inter = Family("demo_intermittent", "gauge", "A series with gaps.")
    for j, instance in enumerate(("b1", "b2")):
        times = _slot_times(333 + 100 * j, 1, rng)
        present = np.ones(SLOTS, dtype=bool)
        present[120:128] = False  # 2 min: covered by the 5 m lookback
        present[240 + 10 * j : 300] = False  # 12-15 min: not covered
        present[440:470] = False
        axis = _Axis.of(times, present)
        values = _random_walk(rng, 100.0, 5.0)
        inter.series.append(({"instance": instance, "job": "batch"}, axis.texts, values[present]))
    recorded = Family("job:demo_requests:rate5m", "gauge", "A recording rule's output.")
    for j, job in enumerate(("api", "db", "web")):
        times = _slot_times(5_000 + j, 0, rng)
        present = np.ones(SLOTS, dtype=bool)
        axis = _Axis.of(times, present)
        recorded.series.append(({"job": job}, axis.texts, np.abs(_random_walk(rng, 40.0, 1.0))))
    return [temp, churn, inter, recorded, _special_family(rng), _edge_histogram_family(rng)]


#: ``demo_edge_bucket{case=…, le=…}``: classic-histogram shapes histogram_quantile must
#: handle (case → (le, cumulative count) pairs; counts grow by that much per slot).
EDGE_HISTOGRAMS: dict[str, tuple[tuple[str, float], ...]] = {
    "normal": (("0.1", 1), ("1", 3), ("10", 4), ("+Inf", 4)),
    "no_inf": (("0.1", 1), ("1", 3)),
    "only_inf": (("+Inf", 5),),
    "zero": (("0.1", 0), ("1", 0), ("+Inf", 0)),
    "negative_le": (("-1", 1), ("0", 2), ("1", 4), ("+Inf", 4)),
    "dup_le": (("1", 2), ("1.0", 2), ("1e0", 3), ("10", 4), ("+Inf", 5)),
    "bad_le": (("abc", 1), ("1", 2), ("+Inf", 3)),
    "nonmonotonic": (("0.1", 3), ("1", 2), ("10", 5), ("+Inf", 4)),
    "first_only": (("5", 4), ("10", 4), ("+Inf", 4)),
    "inf_heavy": (("0.1", 1), ("1", 1), ("+Inf", 9)),
    "nan_count": (("0.1", math.nan), ("1", 2), ("+Inf", 3)),
    "inf_le_value": (("1", 1), ("+Inf", math.inf)),
}


def _edge_histogram_family(rng: np.random.Generator) -> Family:
    fam = Family("demo_edge_bucket", "gauge", "Classic-histogram buckets with odd shapes.")
    times = _slot_times(700, 0, rng)
    axis = _Axis.of(times, np.ones(SLOTS, dtype=bool))
    growth = np.arange(1, SLOTS + 1, dtype=np.float64)
    for case, buckets in EDGE_HISTOGRAMS.items():
        for le, per_slot in buckets:
            fam.series.append(({"case": case, "le": le}, axis.texts, growth * per_slot))
    return fam


#: ``demo_special{kind=…}``: constant values at the edges of float64, for aggregation order,
#: overflow, NaN/Inf handling and number formatting (count_values prints them).
SPECIAL_VALUES: tuple[tuple[str, float], ...] = (
    ("nan", math.nan),
    ("inf", math.inf),
    ("neginf", -math.inf),
    ("huge_a", 1.5e308),
    ("huge_b", 1.7e308),
    ("tiny", 5e-324),
    ("negzero", -0.0),
    ("big", 1e21),
    ("small", 1.5e-7),
    ("cancel_a", 1e20),
    ("cancel_b", -1e20),
    ("one", 1.0),
)


def _special_family(rng: np.random.Generator) -> Family:
    fam = Family("demo_special", "gauge", "Values at the edges of float64.")
    times = _slot_times(500, 0, rng)
    axis = _Axis.of(times, np.ones(SLOTS, dtype=bool))
    for kind, value in SPECIAL_VALUES:
        fam.series.append(({"job": "special", "kind": kind}, axis.texts, np.full(SLOTS, value)))
    # Alternates between 1 and 1e15: variance and deriv lose precision unless computed well.
    steps = np.where(np.arange(SLOTS) % 2 == 0, 1.0, 1e15)
    fam.series.append(({"job": "special", "kind": "step"}, axis.texts, steps))
    return fam


# ---- output --------------------------------------------------------------------------------
def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _series_lines(fam: Family) -> Iterator[str]:
    yield f"# HELP {fam.name} {_escape(fam.help)}"
    yield f"# TYPE {fam.name} {fam.type}"
    for labels, texts, values in fam.series:
        name = labels.get("__name__", fam.name)
        pairs = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()) if k != "__name__")
        head = f"{name}{{{pairs}}}" if pairs else name
        for ts, v in zip(texts, values.tolist(), strict=True):
            yield f"{head} {_format_value(v)} {ts}"


def families() -> list[Family]:
    """Every family of the data set, in file order."""
    rng = np.random.default_rng(SEED)
    return _target_families(rng) + _loose_families(rng)


def generate() -> Dataset:
    """Build the OpenMetrics text (ends with ``# EOF``)."""
    fams = families()
    lines: list[str] = []
    for fam in fams:
        lines.extend(_series_lines(fam))
    lines.append("# EOF")
    series = sum(len(f.series) for f in fams)
    samples = sum(len(texts) for f in fams for _, texts, _ in f.series)
    return Dataset("\n".join(lines) + "\n", START_MS, END_MS, series, samples)


def write(path: str | Path) -> Dataset:
    """Write the file to `path` and describe it."""
    data = generate()
    Path(path).write_text(data.text, encoding="utf-8")
    return data
