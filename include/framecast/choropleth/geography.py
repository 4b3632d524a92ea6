"""Natural Earth admin-0 countries and the join from data country codes to map features.

Data sets name countries by ISO 3166 alpha-2 or alpha-3 codes, Natural Earth by its own
``ADM0_A3`` plus ISO fields that are ``-99`` for a few features (France, Norway, Kosovo,
N. Cyprus, Somaliland, ...). The lookup built here falls back to ``ADM0_A3`` and the World Bank
codes (and a short table of ISO alpha-2 codes NE leaves out), so common series join for every
country. Aliases never override another feature's primary code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from framecast.errors import DataError, SpecError
from framecast.geo import natural_earth_path

SCALES = ("110m", "50m")

# ISO alpha-2 codes Natural Earth leaves as -99 (its WB_A2 is also -99 for some of them).
_A2_FALLBACK = {"FRA": "FR", "NOR": "NO", "KOS": "XK"}


def _valid(code: Any) -> bool:
    return isinstance(code, str) and code.strip() not in ("", "-99", "-099")


@dataclass(frozen=True, eq=False)
class Countries:
    """Admin-0 features in file order with their codes; ``geometries`` are shapely objects."""

    scale: str
    adm0_a3: tuple[str, ...]
    names: tuple[str, ...]
    iso_a2: tuple[str | None, ...]
    iso_a3: tuple[str, ...]
    geometries: tuple[Any, ...] = field(repr=False)
    aliases: dict[int, tuple[str, ...]] = field(default_factory=dict, repr=False)
    _lookup: dict[str, int] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.adm0_a3)

    @property
    def lookup(self) -> dict[str, int]:
        """Upper-case code (ISO A2/A3, ADM0_A3, World Bank) -> feature index."""
        if not self._lookup:
            self._lookup.update(_build_lookup(self))
        return self._lookup

    def index_of(self, code: str) -> int | None:
        """Feature index for a data code, or None when the code matches no feature."""
        if not isinstance(code, str):
            return None
        return self.lookup.get(code.strip().upper())

    def match(self, codes: Iterable[str]) -> tuple[dict[str, int], list[str]]:
        """Split codes into a code->index mapping and the sorted list of unknown codes."""
        known: dict[str, int] = {}
        unknown: list[str] = []
        for c in codes:
            i = self.index_of(c)
            if i is None:
                unknown.append(str(c))
            else:
                known[c] = i
        return known, sorted(unknown)


def _build_lookup(c: Countries) -> dict[str, int]:
    primary: dict[str, int] = {}
    for i in range(len(c)):
        for code in (c.iso_a3[i], c.iso_a2[i]):
            if code and code not in primary:
                primary[code] = i
    extra = c.aliases
    out = dict(primary)
    for i in range(len(c)):
        for code in (c.adm0_a3[i], *extra.get(i, ())):
            if code and code not in out:
                out[code] = i
    return out


@lru_cache(maxsize=4)
def load_countries(scale: str = "110m") -> Countries:
    """Read the preseeded admin-0 shapefile once per process (cached)."""
    if scale not in SCALES:
        raise SpecError(f"geography scale {scale!r} is not one of {SCALES}")
    import shapefile
    from shapely.geometry import shape

    path = natural_earth_path("cultural", "admin_0_countries", scale)
    try:
        reader = shapefile.Reader(str(path))
        records = reader.shapeRecords()
    except (shapefile.ShapefileException, OSError) as exc:
        raise DataError(f"cannot read Natural Earth countries {path}: {exc}") from exc
    adm0, names, a2, a3, geoms = [], [], [], [], []
    aliases: dict[int, tuple[str, ...]] = {}
    for i, sr in enumerate(records):
        d = sr.record.as_dict()
        adm = str(d.get("ADM0_A3", "")).strip().upper()
        iso3 = next((str(d[k]).upper() for k in ("ISO_A3", "ISO_A3_EH") if _valid(d.get(k))),
                    adm)
        iso2 = next((str(d[k]).upper() for k in ("ISO_A2", "WB_A2") if _valid(d.get(k))),
                    _A2_FALLBACK.get(adm))
        adm0.append(adm)
        names.append(str(d.get("NAME", adm)))
        a2.append(iso2)
        a3.append(iso3)
        aliases[i] = tuple(str(d[k]).upper() for k in ("WB_A3", "WB_A2", "ADM0_A3_IS")
                           if _valid(d.get(k)))
        geoms.append(shape(sr.shape.__geo_interface__))
    return Countries(scale, tuple(adm0), tuple(names), tuple(a2), tuple(a3), tuple(geoms),
                     aliases)
