"""GRIB field names: ``shortName`` or ``shortName@typeOfLevel[:level]`` (``r@isobaricInhPa:700``).

Any field ecCodes can name is plottable without a catalogue entry; the qualified form picks one
message when a shortName occurs on several levels (``t`` at 850 and 500 hPa).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_GRIB_NAME = re.compile(r"^(?P<short>[A-Za-z0-9_.\-]+)(?:@(?P<tol>[A-Za-z0-9_]+)"
                        r"(?::(?P<level>-?[0-9]+))?)?$")


@dataclass(frozen=True)
class GribName:
    """A field named by its GRIB header keys (any level when ``type_of_level`` is None)."""

    text: str
    short_name: str
    type_of_level: str | None = None
    level: int | None = None

    def matches(self, short_name: str, type_of_level: str, level: int) -> bool:
        return (short_name == self.short_name
                and (self.type_of_level is None or type_of_level == self.type_of_level)
                and (self.level is None or int(level) == self.level))


def parse_grib_name(text: str) -> GribName | None:
    """The parsed name, or None when ``text`` is not of that form."""
    m = _GRIB_NAME.match(text)
    if not m:
        return None
    level = m["level"]
    return GribName(text, m["short"], m["tol"], int(level) if level is not None else None)


def qualified(short_name: str, type_of_level: str, level: int) -> str:
    """The full name of a message: ``shortName@typeOfLevel:level``."""
    return f"{short_name}@{type_of_level}:{int(level)}"
