"""The highest resident set of this process over a stretch of work, from the kernel.

`reset()` sets the kernel's high-water mark (VmHWM) to the current resident set (writing
5 to /proc/self/clear_refs, Linux 4.0+) and returns that; `highest()` reads the mark.
"""

from __future__ import annotations


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def reset() -> int:
    """Reset the high-water mark; the resident set now, in KiB."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_kib("VmRSS")


def highest() -> int:
    """The highest resident set since the last `reset`, in KiB."""
    return _status_kib("VmHWM")
