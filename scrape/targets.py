"""From discovered target groups to scrape targets, exactly as Prometheus 2.42 does it.

This is Prometheus's `scrape.PopulateLabels` and `TargetsFromGroup`, plus the de-duplication
of its scrape pool. For each discovered target:

1. its labels are the group's labels overridden by the target's own;
2. ``job``, ``__scrape_interval__``, ``__scrape_timeout__``, ``__metrics_path__`` and
   ``__scheme__`` are filled from the scrape config where missing, and the first value of
   each configured URL parameter is set as ``__param_<name>`` (overriding a discovered one);
   this is the target's "discovered labels";
3. `relabel_configs` run; a target they drop becomes a `DroppedTarget`;
4. the result must have an ``__address__``; one without a port gets 80 (http) or 443
   (https), one that a port would not make valid (such as ``::1``) is left alone, and one
   with a "/" is rejected; ``__scrape_interval__`` and ``__scrape_timeout__`` must be
   non-zero durations with the timeout not above the interval;
5. ``__meta_*`` labels are removed and ``instance`` defaults to the address.

Other labels starting with ``__`` stay on the target (they make its URL and identity) but
are not part of the labels it attaches to samples. A target failing step 4 is neither active
nor dropped: the failure is returned and logged, the rest of the job carries on.

A known difference: Prometheus 2.42 shows wrong ``discoveredLabels`` in
``/api/v1/targets`` for some targets whose relabeling rewrites or removes labels, because
its relabeling reuses the memory of the discovered label set (fixed in later versions).
Here the discovered labels are always the labels before relabeling.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote, quote_plus

from vigilops.tsdb.model import Labels, go_quote

from .discovery.targetgroup import ADDRESS_LABEL, TargetGroup
from .duration import format_duration_ms, parse_duration_ms
from .relabel import relabel

if TYPE_CHECKING:
    from .config import ScrapeConfig

log = logging.getLogger("vigilops.scrape.targets")

JOB_LABEL = "job"
INSTANCE_LABEL = "instance"
SCHEME_LABEL = "__scheme__"
METRICS_PATH_LABEL = "__metrics_path__"
SCRAPE_INTERVAL_LABEL = "__scrape_interval__"
SCRAPE_TIMEOUT_LABEL = "__scrape_timeout__"
PARAM_LABEL_PREFIX = "__param_"
META_LABEL_PREFIX = "__meta_"
RESERVED_LABEL_PREFIX = "__"


@dataclass(frozen=True)
class Target:
    """One endpoint to scrape, with everything `/api/v1/targets` shows about its identity.

    `labels` are the labels attached to every sample scraped from it (Prometheus's
    "labels": no ``__``-prefixed names). `discovered_labels` are the labels before
    relabeling (Prometheus's "discoveredLabels"). `all_labels` is the complete label set
    after relabeling, with the ``__``-prefixed labels Prometheus keeps on a target (address,
    scheme, path, parameters, interval, timeout, and any other such label relabeling left).
    """

    labels: Labels
    discovered_labels: Labels
    url: str
    interval_ms: int
    timeout_ms: int
    all_labels: Labels = field(default=Labels())

    def key(self) -> tuple[object, ...]:
        """Identity for reload diffing: the same key means the running loop can be kept.

        Two targets with the same key are duplicates and are scraped once. As in Prometheus
        (which hashes all labels and the URL) a change of any label, even a hidden one,
        makes a new target.
        """
        return (self.all_labels or self.labels, self.url, self.interval_ms, self.timeout_ms)


@dataclass(frozen=True)
class DroppedTarget:
    """A discovered target that relabeling dropped; `discovered_labels` as for `Target`."""

    discovered_labels: Labels


class TargetError(ValueError):
    """A discovered target that cannot be scraped; the message is Prometheus's."""


@dataclass
class BuildResult:
    """Everything `build_targets_detailed` found for one job."""

    targets: list[Target]
    dropped: list[DroppedTarget]
    #: One message per target that could not be built, e.g.
    #: ``instance 3 in group 0: scrape interval cannot be 0``.
    failures: list[str]


def populate_labels(lset: Mapping[str, str], cfg: ScrapeConfig) -> tuple[Labels | None, Labels]:
    """Prometheus's `PopulateLabels`: return (labels after relabeling, discovered labels).

    The first is None when relabeling dropped the target. Raises TargetError when the
    target is invalid (no address, a bad interval, …).
    """
    lb = {n: v for n, v in lset.items() if v != ""}
    defaults = (
        (JOB_LABEL, cfg.job_name),
        (SCRAPE_INTERVAL_LABEL, format_duration_ms(cfg.scrape_interval_ms)),
        (SCRAPE_TIMEOUT_LABEL, format_duration_ms(cfg.scrape_timeout_ms)),
        (METRICS_PATH_LABEL, cfg.metrics_path),
        (SCHEME_LABEL, cfg.scheme),
    )
    for name, value in defaults:
        if name not in lb:
            lb[name] = value
    for name, values in cfg.params.items():
        if values:
            lb[PARAM_LABEL_PREFIX + name] = values[0]
    discovered = Labels(lb)

    relabeled = relabel(discovered, cfg.relabel_configs)
    if relabeled is None:
        return None, discovered
    out = relabeled.to_dict()

    addr = out.get(ADDRESS_LABEL, "")
    if addr == "":
        raise TargetError("no address")
    if _needs_port(addr):
        scheme = out.get(SCHEME_LABEL, "")
        if scheme in ("http", ""):
            addr += ":80"
        elif scheme == "https":
            addr += ":443"
        else:
            # Prometheus quotes the job's scheme here, not the target's.
            raise TargetError(f"invalid scheme: {go_quote(cfg.scheme)}")
        out[ADDRESS_LABEL] = addr
    if "/" in addr:
        raise TargetError(f"{go_quote(addr)} is not a valid hostname")

    interval = out.get(SCRAPE_INTERVAL_LABEL, "")
    try:
        interval_ms = parse_duration_ms(interval)
    except ValueError as exc:
        raise TargetError(f"error parsing scrape interval: {exc}") from None
    if interval_ms == 0:
        raise TargetError("scrape interval cannot be 0")
    timeout = out.get(SCRAPE_TIMEOUT_LABEL, "")
    try:
        timeout_ms = parse_duration_ms(timeout)
    except ValueError as exc:
        raise TargetError(f"error parsing scrape timeout: {exc}") from None
    if timeout_ms == 0:
        raise TargetError("scrape timeout cannot be 0")
    if timeout_ms > interval_ms:
        raise TargetError(
            "scrape timeout cannot be greater than scrape interval "
            f"({go_quote(timeout)} > {go_quote(interval)})"
        )

    for name in [n for n in out if n.startswith(META_LABEL_PREFIX)]:
        del out[name]
    if out.get(INSTANCE_LABEL, "") == "":
        out[INSTANCE_LABEL] = addr
    for name, value in out.items():
        if not _valid_utf8(value):
            raise TargetError(f"invalid label value for {go_quote(name)}: {go_quote(value)}")
    return Labels(out), discovered


def targets_from_group(group: TargetGroup, cfg: ScrapeConfig, into: BuildResult) -> None:
    """Prometheus's `TargetsFromGroup`: build the group's targets and add them to `into`.

    No de-duplication happens here (see `build_targets_detailed`).
    """
    for i, target in enumerate(group.targets):
        lset = dict(group.labels)
        lset.update(target)
        try:
            final, discovered = populate_labels(lset, cfg)
        except TargetError as exc:
            into.failures.append(f"instance {i} in group {group.source}: {exc}")
            continue
        if final is None:
            into.dropped.append(DroppedTarget(discovered))
            continue
        into.targets.append(
            Target(
                labels=_public(final),
                discovered_labels=discovered,
                url=target_url(final, cfg.params),
                interval_ms=parse_duration_ms(final.get(SCRAPE_INTERVAL_LABEL)),
                timeout_ms=parse_duration_ms(final.get(SCRAPE_TIMEOUT_LABEL)),
                all_labels=final,
            )
        )


def build_targets_detailed(groups: Sequence[TargetGroup], cfg: ScrapeConfig) -> BuildResult:
    """All targets of one job from its discovered groups, with the failures.

    Targets with the same key are scraped once: the first one is kept, with the discovered
    labels of the last (Prometheus keeps "the most updated" ones for its discovery page).
    Dropped targets are all listed, duplicates included, as in Prometheus.
    """
    result = BuildResult([], [], [])
    for group in groups:
        targets_from_group(group, cfg, result)
    unique: dict[tuple[object, ...], Target] = {}
    for t in result.targets:
        key = t.key()
        first = unique.get(key)
        if first is None:
            unique[key] = t
        elif first.discovered_labels != t.discovered_labels:
            unique[key] = dataclasses.replace(first, discovered_labels=t.discovered_labels)
    result.targets = list(unique.values())
    return result


def build_targets(
    groups: Sequence[TargetGroup], cfg: ScrapeConfig
) -> tuple[list[Target], list[DroppedTarget]]:
    """The active and dropped targets of one job; failures are logged, never raised."""
    result = build_targets_detailed(groups, cfg)
    for failure in result.failures:
        log.error("job %s: creating target failed: %s", cfg.job_name, failure)
    return result.targets, result.dropped


def _public(labels: Labels) -> Labels:
    return Labels.from_flat(
        s
        for i in range(0, len(labels), 2)
        if not labels[i].startswith(RESERVED_LABEL_PREFIX)
        for s in labels[i : i + 2]
    )


def _valid_utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates, which JSON "\ud800" can produce
        return False
    return True


# --- Go's net and net/url, as far as targets need them -----------------------------------


def split_host_port(hostport: str) -> tuple[str, str] | None:
    """Go's `net.SplitHostPort`: (host, port), or None where Go returns an error."""
    i = hostport.rfind(":")
    if i < 0:
        return None
    j = k = 0
    if hostport[0] == "[":
        end = hostport.find("]")
        if end < 0 or end + 1 != i:
            return None  # missing ']', missing port, or too many colons
        host = hostport[1:end]
        j, k = 1, end + 1
    else:
        host = hostport[:i]
        if ":" in host:
            return None
    if "[" in hostport[j:] or "]" in hostport[k:]:
        return None
    return host, hostport[i + 1 :]


def _needs_port(addr: str) -> bool:
    """Whether Prometheus appends a default port: there is none and adding one is valid."""
    return split_host_port(addr) is None and split_host_port(addr + ":1234") is not None


#: Bytes Go's `url.URL.String` leaves unescaped, beyond ASCII letters, digits and ``-_.~``.
_HOST_SAFE = "!$&'()*+,;=:[]<>\""
_PATH_SAFE = "$&+,/:;=@"


def encode_query(params: Mapping[str, Sequence[str]]) -> str:
    """Go's `url.Values.Encode`: keys sorted, ``k=v`` pairs joined by ``&``, space as ``+``."""
    return "&".join(
        f"{quote_plus(k, safe='')}={quote_plus(v, safe='')}"
        for k in sorted(params)
        for v in params[k]
    )


def go_url(scheme: str, host: str, path: str, raw_query: str) -> str:
    """Go's `url.URL{Scheme, Host, Path, RawQuery}.String()`."""
    out = []
    if scheme:
        out.append(scheme + ":")
    if scheme or host:
        if host or path:
            out.append("//")
        out.append(quote(host, safe=_HOST_SAFE))
    escaped = "*" if path == "*" else quote(path, safe=_PATH_SAFE)
    if escaped and not escaped.startswith("/") and host:
        out.append("/")
    out.append(escaped)
    if raw_query:
        out.append("?" + raw_query)
    return "".join(out)


def target_url(labels: Labels, config_params: Mapping[str, Sequence[str]]) -> str:
    """Prometheus's `Target.URL`: ``__param_<k>`` labels replace the first value of `k`."""
    params = {k: list(v) for k, v in config_params.items()}
    for name, value in labels.pairs():
        if name.startswith(PARAM_LABEL_PREFIX):
            key = name[len(PARAM_LABEL_PREFIX) :]
            if params.get(key):
                params[key][0] = value
            else:
                params[key] = [value]
    return go_url(
        labels.get(SCHEME_LABEL),
        labels.get(ADDRESS_LABEL),
        labels.get(METRICS_PATH_LABEL),
        encode_query(params),
    )
