"""Decoding the target-group lists of file_sd and http_sd files, as Prometheus 2.42 reads them.

The format is a list of ``{"targets": [<address>, …], "labels": {<name>: <value>, …}}``.
Prometheus decodes JSON with Go's `encoding/json` (field names matched case-insensitively,
unknown fields rejected, ``null`` read as "nothing") and YAML with `yaml.v2` in strict mode
(unknown and repeated keys rejected, any scalar read as its source text, ``null`` as the
empty string). Both reject a ``null`` list item and label names that are not
``[a-zA-Z_][a-zA-Z0-9_]*``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from vigilops.tsdb.model import go_quote, valid_label_name

_YAML_NULL = "tag:yaml.org,2002:null"


class GroupDecodeError(ValueError):
    """A target-group file or response could not be decoded; the message says why."""


@dataclass(frozen=True)
class RawGroup:
    """One decoded group, before its source and meta labels are attached."""

    targets: tuple[str, ...]
    labels: dict[str, str]


def decode_json(data: bytes) -> list[RawGroup]:
    """Decode a JSON list of target groups (``null`` is an empty list)."""
    text = data.decode("utf-8", errors="replace")
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except (json.JSONDecodeError, _ConstantError) as exc:
        raise GroupDecodeError(f"invalid JSON: {exc}") from None
    if doc is None:
        return []
    if not isinstance(doc, list):
        raise GroupDecodeError(f"expected a list of target groups, got {_json_kind(doc)}")
    return [_json_group(i, item) for i, item in enumerate(doc)]


class _ConstantError(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity; Go's does not.
    raise _ConstantError(f"invalid literal {name}")


def _json_kind(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


def _json_group(index: int, item: object) -> RawGroup:
    if item is None:
        raise GroupDecodeError("nil target group item found")
    if not isinstance(item, dict):
        raise GroupDecodeError(f"target group {index}: expected an object, got {_json_kind(item)}")
    targets: object = None
    labels: object = None
    for key, value in item.items():
        # encoding/json matches field names case-insensitively; the last duplicate wins.
        field = key.lower()
        if field == "targets":
            targets = value
        elif field == "labels":
            labels = value
        else:
            raise GroupDecodeError(f"target group {index}: unknown field {go_quote(key)}")
    addresses: list[str] = []
    if targets is not None:
        if not isinstance(targets, list):
            raise GroupDecodeError(
                f"target group {index}: targets must be a list, got {_json_kind(targets)}"
            )
        for t in targets:
            if t is not None and not isinstance(t, str):
                raise GroupDecodeError(
                    f"target group {index}: a target must be a string, got {_json_kind(t)}"
                )
            addresses.append(t or "")
    label_map: dict[str, str] = {}
    if labels is not None:
        if not isinstance(labels, dict):
            raise GroupDecodeError(
                f"target group {index}: labels must be an object, got {_json_kind(labels)}"
            )
        for name, value in labels.items():
            if value is not None and not isinstance(value, str):
                raise GroupDecodeError(
                    f"target group {index}: label {go_quote(name)} must have a string value, "
                    f"got {_json_kind(value)}"
                )
            label_map[name] = value or ""
        _check_names(label_map)
    return RawGroup(tuple(addresses), label_map)


def _check_names(labels: dict[str, str]) -> None:
    for name in labels:
        if not valid_label_name(name):
            raise GroupDecodeError(f"{go_quote(name)} is not a valid label name")


def decode_yaml(data: bytes) -> list[RawGroup]:
    """Decode a YAML list of target groups (an empty document is an empty list).

    Only the first document of a multi-document stream is read, as yaml.v2 does.
    """
    try:
        node = next(iter(yaml.compose_all(data, Loader=yaml.SafeLoader)), None)
    except yaml.YAMLError as exc:
        raise GroupDecodeError(f"invalid YAML: {exc}") from None
    if node is None or _is_null(node):
        return []
    if not isinstance(node, yaml.SequenceNode):
        raise GroupDecodeError(f"expected a list of target groups, got {_yaml_kind(node)}")
    return [_yaml_group(i, item) for i, item in enumerate(node.value)]


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _YAML_NULL


def _yaml_kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return f"the scalar {go_quote(str(node.value))}"


def _yaml_text(node: yaml.Node, what: Callable[[], str]) -> str:
    """A scalar's source text, as yaml.v2 stores any scalar into a Go string."""
    if not isinstance(node, yaml.ScalarNode):
        raise GroupDecodeError(f"{what()} must be a scalar, got {_yaml_kind(node)}")
    return "" if node.tag == _YAML_NULL else str(node.value)


def _yaml_group(index: int, node: yaml.Node) -> RawGroup:
    if _is_null(node):
        raise GroupDecodeError("nil target group item found")
    if not isinstance(node, yaml.MappingNode):
        raise GroupDecodeError(f"target group {index}: expected a mapping, got {_yaml_kind(node)}")
    fields: dict[str, yaml.Node] = {}
    for key_node, value_node in node.value:
        key = _yaml_text(key_node, lambda: f"target group {index}: a key")
        if key not in ("targets", "labels"):
            raise GroupDecodeError(f"target group {index}: unknown field {go_quote(key)}")
        if key in fields:
            raise GroupDecodeError(f"target group {index}: field {go_quote(key)} already set")
        fields[key] = value_node
    addresses: list[str] = []
    targets = fields.get("targets")
    if targets is not None and not _is_null(targets):
        if not isinstance(targets, yaml.SequenceNode):
            raise GroupDecodeError(
                f"target group {index}: targets must be a list, got {_yaml_kind(targets)}"
            )
        for t in targets.value:
            addresses.append(_yaml_text(t, lambda: f"target group {index}: a target"))
    label_map: dict[str, str] = {}
    labels = fields.get("labels")
    if labels is not None and not _is_null(labels):
        if not isinstance(labels, yaml.MappingNode):
            raise GroupDecodeError(
                f"target group {index}: labels must be a mapping, got {_yaml_kind(labels)}"
            )
        for name_node, value_node in labels.value:
            name = _yaml_text(name_node, lambda: f"target group {index}: a label name")
            if name in label_map:
                raise GroupDecodeError(
                    f"target group {index}: label {go_quote(name)} already set"
                )
            label_map[name] = _yaml_text(
                value_node, lambda: f"target group {index}: the value of label {go_quote(name)}"
            )
        _check_names(label_map)
    return RawGroup(tuple(addresses), label_map)
