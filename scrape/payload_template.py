"""A target's last payload shape, so that its next payload parses without per-line work.

A steady target sends, scrape after scrape, the same bytes except for the values: the same
``#`` lines and the same series in the same order. Once a payload has been parsed the
usual way with every sample line ``KEY VALUE`` (`textparse`'s bulk path: keys validated,
metadata read), its *skeleton* (the payload with each sample line's value cut out) is
kept with those keys and that metadata. The next payload is scanned once by a compiled
loop that writes its skeleton and reads its values; if the skeleton is byte-identical,
every line splits exactly as before, so the keys and metadata are the previous ones and
only the values are new: no line strings, no key lookups.

Values: the loop reads the plain decimal syntax exactly (at most 18 significant digits
whose integer fits in 53 bits, scaled by a power of ten up to 10**22: one correctly
rounded IEEE multiplication or division, Clinger's fast path). Any other value text
(more digits, larger exponents, NaN, Inf, hex, junk) is handed to `textparse`'s Go float
reader; if that refuses one, the payload goes the usual way, which reports the error.
On a first scrape, a changed payload, or before the loop is compiled (`warm_up`), nothing
is used from here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from vigilops.tsdb.compiled import compile_loop

from .exposition_grammar import MetricMetadata

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]

_POW10 = np.array([10.0**e for e in range(23)], dtype=np.float64)
_MAX_EXACT = 2**53

# Scan status (out[0]).
SCAN_OK = 0
SCAN_NO_SPACE = 1  # a sample line without a space: the payload goes the usual way


def _scan_loop(
    buf: U8,
    pow10: F64,
    skel: U8,
    vals: F64,
    slow: I64,
    out: I64,
) -> None:
    """Write `buf`'s skeleton into `skel` and its sample values into `vals`.

    A line is a comment if it starts with '#', empty, or a sample split at its last
    space: key and space go to the skeleton, the value is read. Values the fast path
    cannot read exactly get NaN in `vals` and their (sample index, start, end) in `slow`
    (three entries each). out = [status, skeleton length, samples, slow values].
    """
    n = len(buf)
    i = 0
    s = 0
    k = 0
    ns = 0
    status = SCAN_OK
    while i < n:
        j = i
        while j < n and buf[j] != 10:
            j += 1
        if j > i and buf[i] == 35:  # '#': a comment line, kept whole
            skel[s : s + j - i] = buf[i:j]
            s += j - i
        elif j > i:
            sp = j - 1
            while sp >= i and buf[sp] != 32:
                sp -= 1
            if sp < i:
                status = SCAN_NO_SPACE
                break
            skel[s : s + sp + 1 - i] = buf[i : sp + 1]
            s += sp + 1 - i
            # Plain decimal: [+-] digits [. digits] [(e|E) [+-] digits]
            a = sp + 1
            p = a
            neg = False
            if p < j and (buf[p] == 45 or buf[p] == 43):
                neg = buf[p] == 45
                p += 1
            w = 0
            nd = 0
            frac = 0
            digits = 0
            exact = True
            dot = False
            while p < j:
                c = buf[p]
                if 48 <= c <= 57:
                    digits += 1
                    if dot:
                        frac += 1
                    if nd < 18:  # 18 digits always fit in int64
                        if w != 0 or c != 48:
                            w = w * 10 + (c - 48)
                            nd += 1
                    else:
                        exact = False
                elif c == 46 and not dot:
                    dot = True
                else:
                    break
                p += 1
            e = 0
            if p < j and digits > 0 and (buf[p] == 101 or buf[p] == 69):
                p += 1
                eneg = False
                if p < j and (buf[p] == 45 or buf[p] == 43):
                    eneg = buf[p] == 45
                    p += 1
                ed = 0
                while p < j and 48 <= buf[p] <= 57:
                    if e < 100_000:
                        e = e * 10 + (buf[p] - 48)
                    ed += 1
                    p += 1
                if ed == 0:
                    exact = False
                if eneg:
                    e = -e
            e10 = e - frac
            if p != j or digits == 0 or w > _MAX_EXACT or e10 < -22 or e10 > 22:
                exact = False
            if exact:
                if w == 0:
                    v = 0.0
                elif e10 >= 0:
                    v = float(w) * pow10[e10]
                else:
                    v = float(w) / pow10[-e10]
                vals[k] = -v if neg else v
            else:
                vals[k] = np.nan
                slow[3 * ns] = k
                slow[3 * ns + 1] = a
                slow[3 * ns + 2] = j
                ns += 1
            k += 1
        if j < n:
            skel[s] = 10
            s += 1
        i = j + 1
    out[0] = status
    out[1] = s
    out[2] = k
    out[3] = ns


_scan = compile_loop(
    _scan_loop,
    lambda: (
        np.frombuffer(b"# x\na 1\nb 2.5e-3\nc NaN\n", dtype=np.uint8),
        _POW10,
        np.empty(24, np.uint8),
        np.empty(5, np.float64),
        np.empty(15, np.int64),
        np.zeros(4, np.int64),
    ),
)


#: Whether `_scan` is compiled (`warm_up` or a first call elsewhere): set once seen.
_compiled = [False]


class Scan:
    """One payload scanned: its skeleton and values (slow ones not yet filled in)."""

    __slots__ = ("skeleton", "values", "slow")

    def __init__(self, skeleton: bytes, values: F64, slow: I64) -> None:
        self.skeleton = skeleton
        self.values = values
        #: (sample index, start, end) of each value the fast path left to the Go reader.
        self.slow = slow


def scan(body: bytes) -> Scan | None:
    """Skeleton and values of `body`; None if a sample line has no space (or the loop is
    not compiled yet: callers then parse the usual way)."""
    if not _compiled[0]:
        # (`signatures` builds a list on every call: asked only until the loop is ready.)
        if not _scan.signatures:
            return None
        _compiled[0] = True
    buf = np.frombuffer(body, dtype=np.uint8)
    # A sample line holds at least a space, and all but the last line end in a newline:
    # a bound on the samples that costs nothing to compute.
    samples = len(buf) // 2 + 2
    skel = np.empty(len(buf), dtype=np.uint8)
    vals = np.empty(samples, dtype=np.float64)
    slow = np.empty(3 * samples, dtype=np.int64)
    out = np.zeros(4, dtype=np.int64)
    _scan(buf, _POW10, skel, vals, slow, out)
    if out[0] != SCAN_OK:
        return None
    s, k, ns = int(out[1]), int(out[2]), int(out[3])
    return Scan(skel[:s].tobytes(), vals[:k], slow[: 3 * ns].reshape(-1, 3))


class PayloadTemplate:
    """What one target's last bulk-parsed payload looked like. Not thread-safe (one per
    scrape loop)."""

    __slots__ = ("skeleton", "keys", "metadata", "openmetrics", "_pending")

    def __init__(self) -> None:
        self.skeleton: bytes | None = None
        self.keys: list[str] = []
        self.metadata: dict[str, MetricMetadata] = {}
        self.openmetrics = False
        #: The scan of the payload being parsed the usual way (for `remember`).
        self._pending: Scan | None = None

    def match(
        self, body: bytes, openmetrics: bool, go_floats: Callable[[Sequence[str]], F64 | None]
    ) -> F64 | None:
        """The values of `body` if it has the remembered shape, else None (and the scan
        is kept for `remember`)."""
        self._pending = None
        sc = scan(body)
        if sc is None:
            return None
        if self.skeleton is None or openmetrics != self.openmetrics or sc.skeleton != self.skeleton:
            self._pending = sc
            return None
        values = sc.values
        if len(sc.slow):
            try:
                texts = [body[a:b].decode("ascii") for _, a, b in sc.slow.tolist()]
            except UnicodeDecodeError:
                return None
            slow_values = go_floats(texts)
            if slow_values is None:
                return None
            values[sc.slow[:, 0]] = slow_values
        return values

    def remember(self, keys: list[str], metadata: dict[str, MetricMetadata], openmetrics: bool) -> None:
        """Keep the shape of the payload `match` just declined, now parsed the usual way
        into `keys` (every sample line ``KEY VALUE``) and `metadata`."""
        sc = self._pending
        self._pending = None
        if sc is None or len(sc.values) != len(keys):
            self.skeleton = None
            return
        self.skeleton = sc.skeleton
        self.keys = keys
        self.metadata = dict(metadata)
        self.openmetrics = openmetrics

    def forget(self) -> None:
        self.skeleton = None
        self._pending = None
