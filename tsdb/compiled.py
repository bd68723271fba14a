"""Compiling the few sequential loops of the read path to machine code (numba).

A loop is written as plain typed Python over numpy arrays and compiled on first use. The
machine code is cached on disk (next to the source when that is writable, else in the
user's cache directory), so later processes load it in milliseconds. Compiled loops hold
no Python objects and release the GIL. Division by zero gives inf/NaN as in numpy, and
there is no fast-math: IEEE arithmetic in the order written.

Each loop is registered with example arguments of the types it is called with (numba
compiles one version per combination of argument types, read-only arrays included), so
that `warm_up` can compile or load every loop ahead of use: a server does it at start,
before the first query would wait for it, and memory figures count it as start-up cost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba

_registered: list[tuple[Any, Callable[[], tuple[Any, ...]]]] = []


def compile_loop(
    loop: Callable[..., None], example: Callable[[], tuple[Any, ...]],
    *more_examples: Callable[[], tuple[Any, ...]],
) -> Any:
    """`loop`, compiled at its first call; `example()` gives arguments `warm_up` calls it
    with (small arrays of the production types; outputs included), `more_examples` those
    of other variants it is called with (read-only inputs, say)."""
    kernel = numba.njit(cache=True, nogil=True, error_model="numpy")(loop)
    for ex in (example, *more_examples):
        _registered.append((kernel, ex))
    return kernel


def warm_up() -> int:
    """Compile (or load from the cache) every loop registered so far, by calling each on
    its example arguments; returns how many. Import the modules whose loops you want
    first."""
    for kernel, example in _registered:
        kernel(*example())
    return len(_registered)
