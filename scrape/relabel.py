"""Relabeling: Prometheus 2.42's ``model/relabel`` applied to label sets.

`relabel` runs rules in order over one label set and returns the result, or None when a rule
dropped it. It is used for targets (``relabel_configs``) and for every scraped series
(``metric_relabel_configs``), so it works on one dict per call and precompiled rules. The
table in tests/scrape/test_relabel.py is checked against the real Prometheus 2.42.

Semantics, from ``relabel.go``: the values of `source_labels` (``""`` for a missing label)
are joined with `separator` and matched against the fully anchored `regex` (RE2, linear
time: see `vigilops.tsdb.re2`). Setting a label to ``""`` removes it. `replacement` and a
templated `target_label` are expanded like Go's ``regexp.Expand`` (``$1``, ``${1}``,
``$name``, ``${name}``, ``$$``; a name is the longest run of letters, digits and
underscores, so ``$1_x`` refers to a group named ``1_x`` and expands to nothing). `hashmod`
takes the MD5 of the joined values, reads its last 8 bytes as a big-endian unsigned integer
and writes it modulo `modulus`. `lowercase`/`uppercase` map each character alone, as Go's
``strings.ToLower``/``ToUpper`` do (no ``ß`` → ``SS``, no final sigma).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from vigilops.tsdb.model import Labels, valid_label_name

from .config import DEFAULT_REGEX, RelabelConfig

__all__ = ["go_lower", "go_upper", "relabel"]


def relabel(
    labels: Labels | Mapping[str, str], configs: Sequence[RelabelConfig]
) -> Labels | None:
    """Apply `configs` in order; return the resulting labels, or None if a rule dropped them.

    Labels with empty values in a mapping count as absent. The input is not modified.
    """
    if isinstance(labels, Labels):
        lb = labels.to_dict()
    else:
        lb = {k: v for k, v in labels.items() if v != ""}
    for cfg in configs:
        if not _apply(cfg, lb):
            return None
    return Labels(lb)


def _apply(cfg: RelabelConfig, lb: dict[str, str]) -> bool:
    """Apply one rule to `lb` in place; False means the label set is dropped."""
    action = cfg.action
    sources = cfg.source_labels
    if len(sources) == 1:
        val = lb.get(sources[0], "")
    else:
        val = cfg.separator.join([lb.get(name, "") for name in sources])
    if action == "replace":
        _replace(cfg, lb, val)
    elif action == "keep":
        return cfg.compiled.match(val) is not None
    elif action == "drop":
        return cfg.compiled.match(val) is None
    elif action == "keepequal":
        return lb.get(cfg.target_label, "") == val
    elif action == "dropequal":
        return lb.get(cfg.target_label, "") != val
    elif action == "hashmod":
        digest = hashlib.md5(_go_bytes(val)).digest()
        _set(lb, cfg.target_label, str(int.from_bytes(digest[8:], "big") % cfg.modulus))
    elif action == "lowercase":
        _set(lb, cfg.target_label, go_lower(val))
    elif action == "uppercase":
        _set(lb, cfg.target_label, go_upper(val))
    elif action == "labelmap":
        for name, value in sorted(lb.items()):
            m = cfg.compiled.match(name)
            if m is not None:
                _set(lb, m.expand(cfg.replacement), value)
    elif action == "labeldrop":
        for name in [n for n in lb if cfg.compiled.match(n) is not None]:
            del lb[name]
    elif action == "labelkeep":
        for name in [n for n in lb if cfg.compiled.match(n) is None]:
            del lb[name]
    else:
        raise ValueError(f"relabel: unknown relabel action type {action!r}")
    return True


def _replace(cfg: RelabelConfig, lb: dict[str, str], val: str) -> None:
    target, replacement = cfg.target_label, cfg.replacement
    if (
        val == ""
        and cfg.regex == DEFAULT_REGEX
        and "$" not in target
        and "$" not in replacement
    ):
        # Fast path (as in Prometheus): the default regex matches "" with $1 = "".
        _set(lb, target, replacement)
        return
    m = cfg.compiled.match(val)
    if m is None:
        return
    name = m.expand(target) if "$" in target else target
    value = m.expand(replacement) if "$" in replacement else replacement
    if not valid_label_name(name) or value == "":
        # Prometheus 2.42 deletes the label named by the unexpanded target_label here, so
        # an empty value under a templated target deletes nothing (3.x deletes `name`).
        lb.pop(target, None)
        return
    lb[name] = value


def _go_bytes(s: str) -> bytes:
    """The bytes of a Go string Python decoded: UTF-8, with undecodable bytes restored."""
    try:
        return s.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return s.encode("utf-8", "surrogatepass")


def _set(lb: dict[str, str], name: str, value: str) -> None:
    if value == "":
        lb.pop(name, None)
    else:
        lb[name] = value


# --- Go's simple case mapping ----------------------------------------------------------------


def go_lower(s: str) -> str:
    """``strings.ToLower``: each character mapped alone (Unicode simple case mapping)."""
    if s.isascii():
        return s.lower()
    return "".join(_simple_lower(c) for c in s)


def go_upper(s: str) -> str:
    """``strings.ToUpper``: each character mapped alone (Unicode simple case mapping)."""
    if s.isascii():
        return s.upper()
    return "".join(_simple_upper(c) for c in s)


def _simple_lower(c: str) -> str:
    low = c.lower()
    if len(low) == 1:
        return low
    # Only U+0130 (İ) has a longer full mapping; its simple mapping is "i".
    return low[0] if low[0].isascii() else c


def _simple_upper(c: str) -> str:
    up = c.upper()
    if len(up) == 1:
        return up
    # Full mappings such as ß → SS have no simple one, except the Greek letters with
    # ypogegrammeni, whose simple uppercase is their titlecase form.
    title = c.title()
    return title if len(title) == 1 else c
