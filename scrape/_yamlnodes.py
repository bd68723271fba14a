"""Reading a composed YAML tree the way Prometheus's strict YAML decoder does, with positions.

Prometheus decodes its configuration with go-yaml v2 in strict mode. The rules copied here:
a string field takes the text of any scalar (``job_name: 123`` is ``"123"``); a null sets the
field's zero value (empty string, false, 0, no list); booleans are YAML 1.1's, including
``y``/``n``; unknown and repeated keys are errors. Every error carries the file, line, column
and dotted key path of the node at fault.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from typing import NoReturn

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .duration import parse_bytes, parse_duration_ms

_NULL_TAG = "tag:yaml.org,2002:null"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_GO_INT = re.compile(r"([-+]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)")
_GO_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
#: go-yaml v2 also reads these plain scalars as booleans (YAML 1.1); PyYAML does not.
_GO_ONLY_BOOLS = {"y": True, "Y": True, "n": False, "N": False}


class ConfigError(Exception):
    """A configuration file is invalid or uses something VigilOps does not support.

    `path` is the file, `line` and `column` (1-based) locate the offending node when known,
    `key` is its dotted key path (``scrape_configs[0].scrape_interval``) and `message` says
    what is wrong, in Prometheus's words where Prometheus has them. ``str()`` gives all of it:
    ``prometheus.yml:12:5: scrape_configs[0].scrape_interval: not a valid duration string:
    "fast"``.
    """

    def __init__(
        self, path: str, line: int | None, key: str, message: str, column: int | None = None
    ) -> None:
        self.path = path
        self.line = line
        self.column = column
        self.key = key
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class NodeReader:
    """Typed access to the nodes of one document; every method raises `ConfigError`."""

    def __init__(self, path: str) -> None:
        self.path = path
        # The loader is only used for its constructors (ints, floats, merge keys).
        self._loader = yaml.SafeLoader("")

    def fail(self, node: Node | None, key: str, message: str) -> NoReturn:
        if node is None:
            raise ConfigError(self.path, None, key, message)
        mark = node.start_mark
        raise ConfigError(self.path, mark.line + 1, key, message, mark.column + 1)

    # --- structure ---------------------------------------------------------------------------

    @staticmethod
    def is_null(node: Node | None) -> bool:
        return node is None or (isinstance(node, ScalarNode) and node.tag == _NULL_TAG)

    def mapping(
        self,
        node: Node | None,
        key: str,
        allowed: Collection[str],
        unsupported: Mapping[str, str] | None = None,
        what: str = "",
    ) -> dict[str, tuple[Node, Node]]:
        """Return ``{name: (key_node, value_node)}`` of a mapping (a null is an empty one).

        Keys outside `allowed` are errors; keys in `unsupported` are errors whose message is
        the mapped explanation.
        """
        if self.is_null(node):
            return {}
        assert node is not None
        if not isinstance(node, MappingNode):
            self.fail(node, key, f"expected a mapping{' (' + what + ')' if what else ''}, "
                      f"got {_kind(node)}")
        try:
            self._loader.flatten_mapping(node)  # resolve ``<<: *anchor`` merge keys
        except yaml.YAMLError as exc:
            self.fail(node, key, f"invalid merge key: {exc}")
        out: dict[str, tuple[Node, Node]] = {}
        for knode, vnode in node.value:
            sub = _join(key, knode.value if isinstance(knode, ScalarNode) else "?")
            if not isinstance(knode, ScalarNode):
                self.fail(knode, key, "mapping keys must be strings")
            name = knode.value
            if name in out:
                self.fail(knode, sub, f"field {name} already set")
            if unsupported and name in unsupported:
                self.fail(knode, sub, unsupported[name])
            if name not in allowed:
                in_what = f" in {what}" if what else ""
                self.fail(knode, sub, f"unknown field {name!r}{in_what}")
            out[name] = (knode, vnode)
        return out

    def sequence(self, node: Node | None, key: str) -> list[Node]:
        """The items of a sequence (a null is an empty one)."""
        if self.is_null(node):
            return []
        assert node is not None
        if not isinstance(node, SequenceNode):
            self.fail(node, key, f"expected a list, got {_kind(node)}")
        return list(node.value)

    # --- scalars -----------------------------------------------------------------------------

    def string(self, node: Node | None, key: str) -> str:
        """Any scalar's text, as go-yaml gives it to a string field; a null is ``""``."""
        if self.is_null(node):
            return ""
        if not isinstance(node, ScalarNode):
            self.fail(node, key, f"expected a string, got {_kind(node)}")
        value: str = node.value
        return value

    def boolean(self, node: Node | None, key: str) -> bool:
        if self.is_null(node):
            return False
        if isinstance(node, ScalarNode):
            if node.tag == _BOOL_TAG:
                return bool(self._loader.construct_yaml_bool(node))
            if node.style is None and node.value in _GO_ONLY_BOOLS:
                return _GO_ONLY_BOOLS[node.value]
        self.fail(node, key, f"expected a boolean (true or false), got {_describe(node)}")

    def uint(self, node: Node | None, key: str) -> int:
        """A non-negative integer, as go-yaml decodes into Go's `uint`."""
        if self.is_null(node):
            return 0
        if isinstance(node, ScalarNode):
            value = self._int_value(node)
            if value is not None and 0 <= value < 2**64:
                return value
        self.fail(node, key, f"expected a non-negative integer, got {_describe(node)}")

    def integer(self, node: Node | None, key: str) -> int:
        """An integer, as go-yaml decodes into Go's `int`."""
        if self.is_null(node):
            return 0
        if isinstance(node, ScalarNode):
            value = self._int_value(node)
            if value is not None and -(2**63) <= value < 2**63:
                return value
        self.fail(node, key, f"expected an integer, got {_describe(node)}")

    @staticmethod
    def _int_value(node: ScalarNode) -> int | None:
        """The integer a plain scalar stands for, resolved as go-yaml v2 resolves numbers
        (``0x1F``, ``0o17``, ``017``, ``0b101``, ``1_000``, ``1e3``); None if it is not one.

        go-yaml also truncates a fractional number stored in an integer field; VigilOps
        rejects it instead.
        """
        if node.style is not None:
            return None  # quoted: a string
        plain = node.value.replace("_", "")
        m = _GO_INT.fullmatch(plain)
        if m:
            sign, digits = m.group(1), m.group(2)
            if digits[:2] in ("0x", "0X", "0o", "0O", "0b", "0B"):
                base = {"x": 16, "o": 8, "b": 2}[digits[1].lower()]
                value = int(digits[2:], base)
            elif len(digits) > 1 and digits[0] == "0":
                value = int(digits, 8)
            else:
                value = int(digits)
            return -value if sign == "-" else value
        if _GO_FLOAT.fullmatch(plain):
            number = float(plain)
            if math.isfinite(number) and number == int(number):
                return int(number)
        return None

    def duration_ms(self, node: Node | None, key: str) -> int:
        """A Prometheus duration (``15s``, ``1m30s``) in milliseconds; a null is 0."""
        if self.is_null(node):
            return 0
        text = self.string(node, key)
        try:
            return parse_duration_ms(text)
        except ValueError as exc:
            self.fail(node, key, str(exc))

    def byte_size(self, node: Node | None, key: str) -> int:
        """A byte size (``10MB``, ``512KiB``); a null is 0."""
        if self.is_null(node):
            return 0
        text = self.string(node, key)
        try:
            return parse_bytes(text)
        except ValueError as exc:
            self.fail(node, key, str(exc))

    def string_list(self, node: Node | None, key: str) -> list[str]:
        return [self.string(item, f"{key}[{i}]") for i, item in enumerate(self.sequence(node, key))]

    def string_map(self, node: Node | None, key: str) -> dict[str, str]:
        """A mapping of strings to strings (any keys)."""
        if self.is_null(node):
            return {}
        assert node is not None
        if not isinstance(node, MappingNode):
            self.fail(node, key, f"expected a mapping, got {_kind(node)}")
        self._loader.flatten_mapping(node)
        out: dict[str, str] = {}
        for knode, vnode in node.value:
            name = self.string(knode, key)
            sub = _join(key, name)
            if name in out:
                self.fail(knode, sub, f"key {name!r} already set in map")
            out[name] = self.string(vnode, sub)
        return out

    def keys_and_nodes(self, node: Node | None, key: str) -> list[tuple[str, Node, Node]]:
        """The (name, key node, value node) triples of an arbitrary-keyed mapping."""
        if self.is_null(node):
            return []
        assert node is not None
        if not isinstance(node, MappingNode):
            self.fail(node, key, f"expected a mapping, got {_kind(node)}")
        self._loader.flatten_mapping(node)
        seen: set[str] = set()
        out = []
        for knode, vnode in node.value:
            name = self.string(knode, key)
            if name in seen:
                self.fail(knode, _join(key, name), f"key {name!r} already set in map")
            seen.add(name)
            out.append((name, knode, vnode))
        return out


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def _kind(node: Node | None) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return _describe(node)


def _describe(node: Node | None) -> str:
    if isinstance(node, ScalarNode):
        return f"{node.value!r}"
    if isinstance(node, (MappingNode, SequenceNode)):
        return _kind(node)
    return "nothing"
