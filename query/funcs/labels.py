"""``label_replace`` and ``label_join`` (Prometheus 2.42).

Both rewrite label sets and leave values alone, so they loop over series (labels are per
series) and never over steps. The metric name is kept. Argument errors are raised even
when the vector is empty, as 2.42 checks them on every call.

`label_replace` matches the regular expression fully anchored (``^(?:re)$``, RE2 syntax,
linear time: see `vigilops.tsdb.re2`) and expands the replacement like Go's
``Regexp.Expand`` (``$1``, ``${1}``, ``$name``, ``${name}``, ``$$``); no match leaves the
series untouched and an empty result deletes the destination label.
"""

from __future__ import annotations

from vigilops.query.funcs._args import string_arg, vector_arg
from vigilops.query.values import ExecutionError, FunctionContext, Value, Vector
from vigilops.tsdb.model import Labels, valid_label_name
from vigilops.tsdb.re2 import compile_re2


def label_replace(args: list[Value], ctx: FunctionContext) -> Value:
    """``label_replace(v, dst, replacement, src, regex)``."""
    vec = vector_arg(args, 0)
    dst, repl, src, regex = (string_arg(args, i) for i in range(1, 5))
    try:
        # Only the wrapped text must be a regex: "a)|(b" is one as "^(?:a)|(b)$".
        pattern = compile_re2(regex, standalone=False)
    except ValueError:
        raise ExecutionError(f"invalid regular expression in label_replace(): {regex}") from None
    if not valid_label_name(dst):
        raise ExecutionError(f"invalid destination label name in label_replace(): {dst}")
    labels: list[Labels] = []
    for ls in vec.labels:
        m = pattern.match(ls.get(src))
        if m is None:
            labels.append(ls)
            continue
        pairs = ls.to_dict()
        pairs[dst] = m.expand(repl)
        labels.append(Labels(pairs))
    return Vector(labels, vec.values.copy(), vec.present.copy())


def label_join(args: list[Value], ctx: FunctionContext) -> Value:
    """``label_join(v, dst, separator, src_1, src_2, …)``."""
    vec = vector_arg(args, 0)
    dst, sep = string_arg(args, 1), string_arg(args, 2)
    sources = [string_arg(args, i) for i in range(3, len(args))]
    for src in sources:
        if not valid_label_name(src):
            raise ExecutionError(f"invalid source label name in label_join(): {src}")
    if not valid_label_name(dst):
        raise ExecutionError(f"invalid destination label name in label_join(): {dst}")
    labels: list[Labels] = []
    for ls in vec.labels:
        pairs = ls.to_dict()
        pairs[dst] = sep.join(ls.get(src) for src in sources)
        labels.append(Labels(pairs))
    return Vector(labels, vec.values.copy(), vec.present.copy())
