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

import importlib
import logging
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import numba
import numpy.typing as npt

log = logging.getLogger(__name__)
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


#: Decorates a function that compiled loops call (not called from Python itself): compiled
#: with its callers' argument types, cached with them.
compile_helper = numba.njit(cache=True, nogil=True, error_model="numpy")


def readonly(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """`a`, made read-only: example arguments of the read-only variants of a loop (numba
    compiles one per combination of read-only and writable arrays)."""
    a.flags.writeable = False
    return a


def warm_up() -> int:
    """Compile (or load from the cache) every loop registered so far, by calling each on
    its example arguments; returns how many. Import the modules whose loops you want
    first."""
    for kernel, example in _registered:
        kernel(*example())
    return len(_registered)


def warm_up_in_child(timeout_s: float = 900.0) -> int:
    """`warm_up`, with any compiling done by a child process that fills numba's disk
    cache first: compiling holds this process's GIL for seconds at a time (LLVM's passes
    run under it), which a server's event loop must not wait through on its first start
    after an install. Then the loops are loaded here from the cache, in milliseconds.
    If the child fails, they are compiled here; after `stop_warm_up`, not at all (0)."""
    global _child
    modules = sorted({kernel.py_func.__module__ for kernel, _ in _registered})
    try:
        with _child_lock:
            if _stopped:
                return 0
            _child = subprocess.Popen(
                [sys.executable, "-m", __name__, *modules],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )
        _, err = _child.communicate(timeout=timeout_s)
        if _child.returncode != 0:
            raise subprocess.SubprocessError(err.decode(errors="replace").strip()[-500:])
    except (OSError, subprocess.SubprocessError) as exc:
        if _child is not None and _child.poll() is None:
            _child.kill()
            _child.wait()
        if _stopped:
            return 0
        log.warning("compiling the query loops in a child process failed (%s); compiling here", exc)
    return warm_up()


_child: subprocess.Popen[bytes] | None = None
_child_lock = threading.Lock()
_stopped = False


def stop_warm_up() -> None:
    """End a `warm_up_in_child` under way (a server stopping): its child is killed."""
    global _stopped
    with _child_lock:
        _stopped = True
        if _child is not None and _child.poll() is None:
            _child.kill()


if __name__ == "__main__":  # the child of `warm_up_in_child`: the modules to compile
    for name in sys.argv[1:]:
        importlib.import_module(name)
    # The loops registered with the module as imported (this file runs as __main__).
    importlib.import_module("vigilops.tsdb.compiled").warm_up()
