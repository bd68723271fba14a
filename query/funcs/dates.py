"""Calendar functions: ``minute hour day_of_week day_of_month day_of_year days_in_month
month year`` (Prometheus 2.42).

Each reads its argument's samples as Unix seconds (``time.Unix(int64(v), 0).UTC()`` in Go)
or, without an argument, the evaluation time. The conversion is Go's own, done with the
same wrapping unsigned 64-bit arithmetic as Go's `time` package (before Go 1.23), so that
results agree for every input: NaN, ±Inf and values beyond ±2**63 become
``math.MinInt64`` seconds (a date in year 292277026596), and years far outside 1..9999 are
computed, not rejected.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from vigilops.query.funcs._args import map_values
from vigilops.query.funcs._go import float_to_int64
from vigilops.query.values import Float64Array, FunctionContext, Int64Array, Value, Vector
from vigilops.tsdb.model import Labels

UInt64Array = npt.NDArray[np.uint64]

_SECONDS_PER_MINUTE = 60
_SECONDS_PER_HOUR = 3600
_SECONDS_PER_DAY = 86400
_SECONDS_PER_WEEK = 7 * _SECONDS_PER_DAY
_DAYS_PER_400_YEARS = 365 * 400 + 97
_DAYS_PER_100_YEARS = 365 * 100 + 24
_DAYS_PER_4_YEARS = 365 * 4 + 1
#: Go's `absoluteZeroYear`: the year of absolute time 0 (a Monday, 1 mod 400).
_ABSOLUTE_ZERO_YEAR = -292277022399
#: Go's ``unixToInternal + internalToAbsolute``: Unix seconds → absolute seconds.
_UNIX_TO_ABSOLUTE = 62135596800 + 292277022400 * 31556952
#: Days before each month in a non-leap year (index 12: the whole year).
_DAYS_BEFORE = np.array([0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365], dtype=np.int64)
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def _absolute(unix_seconds: Int64Array) -> UInt64Array:
    """Go's ``Time.abs()`` for UTC times: seconds since absolute zero, wrapping mod 2**64."""
    out: UInt64Array = unix_seconds.astype(np.int64).view(np.uint64) + np.uint64(_UNIX_TO_ABSOLUTE)
    return out


def _is_leap(year: Int64Array) -> npt.NDArray[np.bool_]:
    out: npt.NDArray[np.bool_] = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    return out


def _date(abs_s: UInt64Array) -> tuple[Int64Array, Int64Array, Int64Array, Int64Array]:
    """Go's ``absDate``: year, month (1-12), day of month (1-31), day of year (0-based)."""
    d = abs_s // np.uint64(_SECONDS_PER_DAY)
    n = d // np.uint64(_DAYS_PER_400_YEARS)
    y = np.uint64(400) * n
    d = d - np.uint64(_DAYS_PER_400_YEARS) * n
    n = d // np.uint64(_DAYS_PER_100_YEARS)
    n = n - (n >> np.uint64(2))
    y = y + np.uint64(100) * n
    d = d - np.uint64(_DAYS_PER_100_YEARS) * n
    n = d // np.uint64(_DAYS_PER_4_YEARS)
    y = y + np.uint64(4) * n
    d = d - np.uint64(_DAYS_PER_4_YEARS) * n
    n = d // np.uint64(365)
    n = n - (n >> np.uint64(2))
    y = y + n
    d = d - np.uint64(365) * n
    year = y.astype(np.int64) + _ABSOLUTE_ZERO_YEAR
    yday = d.astype(np.int64)
    leap = _is_leap(year)
    leap_day = leap & (yday == 31 + 29 - 1)
    day = np.where(leap & (yday > 31 + 29 - 1), yday - 1, yday)
    month = day // 31
    end = _DAYS_BEFORE[month + 1]
    later = day >= end
    begin = np.where(later, end, _DAYS_BEFORE[month])
    month = month + later + 1
    mday = day - begin + 1
    month = np.where(leap_day, 2, month)
    mday = np.where(leap_day, 29, mday)
    return year, month, mday, yday


def _seconds_field(abs_s: UInt64Array, period: int, unit: int) -> Int64Array:
    """``(abs % period) // unit``: e.g. the hour is seconds within the day over 3600."""
    out: Int64Array = ((abs_s % np.uint64(period)) // np.uint64(unit)).astype(np.int64)
    return out


def _minute(abs_s: UInt64Array) -> Int64Array:
    return _seconds_field(abs_s, _SECONDS_PER_HOUR, _SECONDS_PER_MINUTE)


def _hour(abs_s: UInt64Array) -> Int64Array:
    return _seconds_field(abs_s, _SECONDS_PER_DAY, _SECONDS_PER_HOUR)


def _day_of_week(abs_s: UInt64Array) -> Int64Array:
    # Absolute zero is a Monday; Sunday is 0.
    return _seconds_field(abs_s + np.uint64(_SECONDS_PER_DAY), _SECONDS_PER_WEEK, _SECONDS_PER_DAY)


def _days_in_month(abs_s: UInt64Array) -> Int64Array:
    year, month, _, _ = _date(abs_s)
    out: Int64Array = np.where((month == 2) & _is_leap(year), 29, _DAYS_IN_MONTH[month])
    return out


_FIELDS: dict[str, Callable[[UInt64Array], Int64Array]] = {
    "minute": _minute,
    "hour": _hour,
    "day_of_week": _day_of_week,
    "day_of_month": lambda a: _date(a)[2],
    "day_of_year": lambda a: _date(a)[3] + 1,
    "days_in_month": _days_in_month,
    "month": lambda a: _date(a)[1],
    "year": lambda a: _date(a)[0],
}

DATE_NAMES = tuple(_FIELDS)


def calendar_field(name: str, unix_seconds: Int64Array) -> Float64Array:
    """The calendar field `name` of UTC times given as Unix seconds (any shape)."""
    out: Float64Array = _FIELDS[name](_absolute(unix_seconds)).astype(np.float64)
    return out


def date_function(name: str) -> Callable[[list[Value], FunctionContext], Value]:
    """The implementation of the calendar function `name`."""

    def impl(args: list[Value], ctx: FunctionContext) -> Value:
        if not args:
            # Go's enh.Ts / 1000 truncates toward zero.
            seconds = np.sign(ctx.times) * (np.abs(ctx.times) // 1000)
            values = calendar_field(name, seconds.astype(np.int64))
            return Vector([Labels()], values[None, :], np.ones((1, len(values)), dtype=bool))
        vec = args[0]
        if not isinstance(vec, Vector):
            raise TypeError(f"{name}: expected an instant vector")
        return map_values(vec, calendar_field(name, float_to_int64(vec.values)))

    impl.__name__ = name
    impl.__doc__ = f"``{name}(v=vector(time()) instant-vector)`` in UTC."
    return impl
