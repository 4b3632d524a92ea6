"""The animation's time axis: one frame per interval from start to end, gaps included.

Frames are numbered 0..n-1 and frame ``i`` covers ``[time(i), time(i + 1))``. The same numbering
is computed in SQL (see :mod:`framecast.choropleth.source`) as the aggregation key, so any
segment of frames can be queried, rendered and encoded independently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from framecast.errors import SpecError

_FIXED = {"s": 1, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_NAMED = {"hour": "1h", "day": "1d", "week": "1w", "month": "1mo", "year": "1y",
          "hourly": "1h", "daily": "1d", "weekly": "1w", "monthly": "1mo", "yearly": "1y"}
_RE = re.compile(r"^\s*(\d+)\s*(s|min|h|d|w|mo|y)\s*$")


@dataclass(frozen=True)
class Interval:
    """Either a fixed number of seconds or a number of calendar months."""

    seconds: int = 0
    months: int = 0

    @property
    def label(self) -> str:
        if self.months:
            return f"{self.months}mo"
        return f"{self.seconds}s"


def parse_interval(text: str, where: str = "interval") -> Interval:
    """'day', 'week', 'month', '6h', '15min', '3mo', '1y' -> Interval."""
    t = _NAMED.get(str(text).strip().lower(), str(text).strip().lower())
    m = _RE.match(t)
    if not m or int(m.group(1)) <= 0:
        raise SpecError(f"{where}: {text!r} is not an interval (e.g. day, week, month, 6h, "
                        f"15min, 3mo, 1y)")
    n, unit = int(m.group(1)), m.group(2)
    if unit == "mo":
        return Interval(months=n)
    if unit == "y":
        return Interval(months=12 * n)
    return Interval(seconds=n * _FIXED[unit])


def parse_time(value: object, where: str) -> datetime:
    """A YAML date/datetime or ISO string -> naive UTC datetime."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    else:
        try:
            dt = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise SpecError(f"{where}: {value!r} is not an ISO date or datetime") from exc
    if dt.tzinfo is not None:
        from datetime import UTC

        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt


def _add_months(t: datetime, months: int) -> datetime:
    y, m = divmod(t.month - 1 + months, 12)
    return t.replace(year=t.year + y, month=m + 1)


@dataclass(frozen=True)
class Timeline:
    """Frames from ``start`` (inclusive) to ``end`` (inclusive) stepping by ``interval``."""

    start: datetime
    end: datetime
    interval: Interval

    def __post_init__(self) -> None:
        if self.interval.months and (self.start.day != 1 or self.start.time() != datetime.min.time()):
            raise SpecError(f"start {self.start:%Y-%m-%d %H:%M}: monthly intervals need a start "
                            f"on the first of a month at 00:00")
        if self.end < self.start:
            raise SpecError(f"empty date range: end {self.end:%Y-%m-%d %H:%M} is before start "
                            f"{self.start:%Y-%m-%d %H:%M}")

    def __len__(self) -> int:
        if self.interval.months:
            months = (self.end.year - self.start.year) * 12 + self.end.month - self.start.month
            return months // self.interval.months + 1
        span = (self.end - self.start).total_seconds()
        return int(span // self.interval.seconds) + 1

    def time(self, i: int) -> datetime:
        """Start of frame i (i may be len(self), the end of the last frame)."""
        if self.interval.months:
            return _add_months(self.start, i * self.interval.months)
        return self.start + timedelta(seconds=i * self.interval.seconds)


def split_frames(n_frames: int, n_chunks: int, min_chunk: int = 1) -> list[tuple[int, int]]:
    """Split 0..n into at most n_chunks contiguous [a, b) ranges of near-equal size."""
    if n_frames <= 0:
        return []
    n_chunks = max(1, min(n_chunks, n_frames // max(1, min_chunk) or 1))
    bounds = [round(k * n_frames / n_chunks) for k in range(n_chunks + 1)]
    return [(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
