"""Time columns of any SQL type: DATE, TIMESTAMP (with or without time zone), epoch numbers.

Tables keyed by Unix time (integer or float seconds or milliseconds: the usual way to group
by arbitrary intervals in SQL) need other SQL than ISO dates, so the column's kind is found
once, up front, from its smallest and largest values (one index-friendly query), and every
query built afterwards uses the expressions here:

* ``filter``: a range condition on the raw column, so an index on it is used;
* ``epoch``: seconds since 1970-01-01 UTC (fixed intervals bucket on it);
* ``datetime``: a UTC timestamp without zone (calendar intervals extract year and month).

Zone-aware timestamps are converted to UTC explicitly: the session's ``TimeZone`` never
changes which frame a row falls in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from framecast.errors import DataError, SpecError

TIME_UNITS = ("s", "ms")
TIME_KINDS = ("date", "timestamp", "timestamptz", "iso_text", "epoch_s", "epoch_ms")
_EPOCH = datetime(1970, 1, 1)
# Plausible data years for telling epoch seconds from milliseconds.
_LO = (datetime(1800, 1, 1) - _EPOCH).total_seconds()
_HI = (datetime(2300, 1, 1) - _EPOCH).total_seconds()


def validate_time_unit(value: Any, where: str) -> str | None:
    if value is not None and value not in TIME_UNITS:
        raise SpecError(f"{where}: {value!r} is not one of {TIME_UNITS} (or leave it out to "
                        f"detect it)")
    return value


@dataclass(frozen=True)
class TimeColumn:
    """How one time column is read in SQL; ``kind`` is one of :data:`TIME_KINDS`."""

    kind: str
    column: str            # quoted column expression

    @property
    def is_epoch(self) -> bool:
        return self.kind.startswith("epoch")

    @property
    def per_second(self) -> int:
        return 1000 if self.kind == "epoch_ms" else 1

    def to_units(self, t: datetime) -> int:
        """A naive UTC time as a value of the epoch column."""
        return int((t - _EPOCH).total_seconds()) * self.per_second

    def filter(self, dialect: str, lo: datetime, hi: datetime) -> tuple[str, dict[str, Any]]:
        """``column`` in [lo, hi) (a superset for ISO text: whole days), with parameters."""
        ts = self.column
        if self.is_epoch:
            return f"{ts} >= :lo AND {ts} < :hi", {"lo": self.to_units(lo),
                                                   "hi": self.to_units(hi)}
        if self.kind == "timestamptz" and dialect == "postgresql":
            return f"{ts} >= :lo AND {ts} < :hi", {"lo": lo.replace(tzinfo=UTC),
                                                   "hi": hi.replace(tzinfo=UTC)}
        # Whole days, so ISO text (any time part or zone suffix) compares correctly; the exact
        # cut is on the frame number.
        from datetime import timedelta

        lo_day = datetime(lo.year, lo.month, lo.day) - (timedelta(days=1) if
                                                       self.kind == "timestamptz" else timedelta())
        hi_day = datetime(hi.year, hi.month, hi.day) + timedelta(days=1)
        if dialect == "sqlite":
            return (f"{ts} >= :lo AND {ts} < :hi",
                    {"lo": lo_day.strftime("%Y-%m-%d"), "hi": hi_day.strftime("%Y-%m-%d")})
        return f"{ts} >= :lo AND {ts} < :hi", {"lo": lo_day, "hi": hi_day}

    def epoch(self, dialect: str, col: str = "ts") -> str:
        """SQL for seconds since the epoch of column ``col`` (an alias of this column)."""
        if self.kind == "epoch_s":
            return col
        if self.kind == "epoch_ms":
            return f"({col} / 1000.0)"
        if dialect == "sqlite":
            import sqlite3

            # unixepoch() (SQLite >= 3.38) parses about twice as fast as strftime('%s').
            return (f"unixepoch({col})" if sqlite3.sqlite_version_info >= (3, 38)
                    else f"CAST(strftime('%s', {col}) AS INTEGER)")
        return f"EXTRACT(EPOCH FROM {col})"

    def utc_datetime(self, dialect: str, col: str = "ts") -> str:
        """SQL for the column as a UTC timestamp without zone (ISO text in SQLite)."""
        if dialect == "sqlite":
            if self.is_epoch:
                return f"datetime({self.epoch(dialect, col)}, 'unixepoch')"
            return f"datetime({col})" if self.kind == "timestamptz" else col
        if self.kind == "epoch_s":
            return f"(TIMESTAMP '1970-01-01' + {col} * INTERVAL '1 second')"
        if self.kind == "epoch_ms":
            return f"(TIMESTAMP '1970-01-01' + {col} * INTERVAL '1 millisecond')"
        if self.kind == "timestamptz":
            return f"({col} AT TIME ZONE 'UTC')"
        return col


def _kind_of(v: Any, dialect: str) -> str:
    if isinstance(v, datetime):
        return "timestamptz" if v.tzinfo is not None else "timestamp"
    if isinstance(v, date):
        return "date"
    if isinstance(v, bool):
        return "other"
    if isinstance(v, (int, float, Decimal)):
        return "number"
    if isinstance(v, str):
        try:
            dt = datetime.fromisoformat(v.strip().replace("Z", "+00:00"))
        except ValueError:
            return "text"
        if dialect != "sqlite":
            return "text"
        return "timestamptz" if dt.tzinfo is not None else "iso_text"
    return "other"


def epoch_unit(lo: float, hi: float) -> str | None:
    """'s' or 'ms' from the range of an epoch column (data years 1800-2300), None if neither."""
    if lo >= _LO and hi < _HI:
        return "s"
    if lo >= _LO * 1000 and hi < _HI * 1000:
        return "ms"
    return None


def classify(lo: Any, hi: Any, *, dialect: str, declared_unit: str | None, column: str,
             where: str) -> str:
    """The kind of a time column from its MIN and MAX values (as the driver returns them)."""
    kinds = {_kind_of(lo, dialect), _kind_of(hi, dialect)}
    if kinds == {"number"}:
        unit = declared_unit or epoch_unit(float(lo), float(hi))
        if unit is None:
            raise DataError(
                f"{where}: time column {column!r} holds numbers {lo}..{hi} that are neither "
                f"epoch seconds nor milliseconds of the years 1800-2300; set source.time_unit")
        return f"epoch_{unit}"
    if "text" in kinds or "other" in kinds or len(kinds) > 1:
        sample = lo if _kind_of(lo, dialect) in ("text", "other") else hi
        what = ("text" if isinstance(sample, str) else type(sample).__name__)
        hint = ("" if dialect == "sqlite" or not isinstance(sample, str)
                else "; cast it in source.query (e.g. CAST(col AS TIMESTAMP))")
        raise DataError(
            f"{where}: time column {column!r} holds {what} values such as {sample!r}, not "
            f"dates, timestamps or epoch numbers{hint}")
    kind = kinds.pop()
    if declared_unit is not None:
        raise DataError(f"{where}: source.time_unit {declared_unit!r} is for epoch number "
                        f"columns, but time column {column!r} holds {kind} values "
                        f"(e.g. {lo!r}); remove time_unit")
    return kind
