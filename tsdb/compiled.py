"""Compiling the few sequential loops of the read path to machine code (numba).

A loop is written as plain typed Python over numpy arrays and compiled on first use. The
machine code is cached on disk (next to the source when that is writable, else in the
user's cache directory), so later processes load it in milliseconds. Compiled loops hold
no Python objects and release the GIL. Division by zero gives inf/NaN as in numpy, and
there is no fast-math: IEEE arithmetic in the order written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba


def compile_loop(loop: Callable[..., None]) -> Any:
    """`loop`, compiled (lazily, at its first call)."""
    return numba.njit(cache=True, nogil=True, error_model="numpy")(loop)
