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

SCALES = ("110m", "50m", "10m")

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
    alt_names: dict[int, tuple[str, ...]] = field(default_factory=dict, repr=False)
    level: str = "admin0"
    _names: dict[str, int] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.adm0_a3)

    @property
    def lookup(self) -> dict[str, int]:
        """Upper-case code (ISO A2/A3, ADM0_A3, World Bank) -> feature index."""
        if not self._lookup:
            self._lookup.update(_build_lookup(self))
        return self._lookup

    @property
    def name_lookup(self) -> dict[str, int]:
        """Normalised feature name (and Natural Earth's alternative names) -> feature index."""
        if not self._names:
            from framecast.choropleth.codes import normalize_name

            for i in range(len(self)):
                for n in (self.names[i], *self.alt_names.get(i, ())):
                    self._names.setdefault(normalize_name(n), i)
        return self._names

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
    alt: dict[int, tuple[str, ...]] = {}
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
        alt[i] = tuple(str(d[k]) for k in _NAME_FIELDS if _valid(d.get(k)))
        geoms.append(shape(sr.shape.__geo_interface__))
    return Countries(scale, tuple(adm0), tuple(names), tuple(a2), tuple(a3), tuple(geoms),
                     aliases, alt_names=alt)


_NAME_FIELDS = ("NAME_LONG", "ADMIN", "FORMAL_EN", "NAME_SORT", "NAME_ALT", "NAME_EN",
                "GEOUNIT", "SUBUNIT")
LEVELS = ("admin0", "admin1")
_LAYER = {"admin0": "admin_0_countries", "admin1": "admin_1_states_provinces_lakes"}


def available_scales(level: str = "admin0") -> list[str]:
    """Scales of a level's Natural Earth file that are preseeded here, finest last."""
    from framecast.geo import data_dir, ensure_cartopy

    ensure_cartopy()
    d = data_dir()
    if d is None:
        return []
    base = d / "shapefiles" / "natural_earth" / "cultural"
    return [s for s in ("110m", "50m", "10m") if (base / f"ne_{s}_{_LAYER[level]}.shp").is_file()]


@lru_cache(maxsize=8)
def feature_codes(level: str, scale: str) -> frozenset[str]:
    """Every code a level's file at a scale carries (records only, no geometry: fast)."""
    import shapefile

    path = natural_earth_path("cultural", _LAYER[level], scale)
    codes: set[str] = set()
    for rec in shapefile.Reader(str(path)).iterRecords():
        d = rec.as_dict()
        keys = ("iso_3166_2",) if level == "admin1" else ("ISO_A3", "ISO_A3_EH", "ADM0_A3",
                                                            "WB_A3", "ISO_A2", "WB_A2")
        codes |= {str(d[k]).upper() for k in keys if _valid(d.get(k))}
    return frozenset(codes)


def load_features(level: str = "admin0", scale: str = "110m") -> Countries:
    """The map features for a geography level: countries or first-level subdivisions."""
    if level == "admin1":
        return load_admin1(scale)
    return load_countries(scale)


@lru_cache(maxsize=4)
def load_admin1(scale: str = "110m") -> Countries:
    """Natural Earth admin-1 states/provinces, keyed by ISO 3166-2 code ('US-CA').

    The 110m file holds the US states only; 50m/10m files (preseeded the same way) hold more
    countries' subdivisions.
    """
    import shapefile
    from shapely.geometry import shape

    path = natural_earth_path("cultural", _LAYER["admin1"], scale)
    try:
        records = shapefile.Reader(str(path)).shapeRecords()
    except (shapefile.ShapefileException, OSError) as exc:
        raise DataError(f"cannot read Natural Earth admin-1 {path}: {exc}") from exc
    codes, names, geoms = [], [], []
    alt: dict[int, tuple[str, ...]] = {}
    for i, sr in enumerate(records):
        d = sr.record.as_dict()
        code = str(d.get("iso_3166_2") or d.get("adm1_code") or f"#{i}").upper()
        codes.append(code)
        names.append(str(d.get("name") or code))
        alt[i] = tuple(str(d[k]) for k in ("name_alt", "woe_name", "gn_name", "name_local")
                       if _valid(d.get(k)))
        geoms.append(shape(sr.shape.__geo_interface__))
    return Countries(scale, tuple(codes), tuple(names), tuple([None] * len(codes)),
                     tuple(codes), tuple(geoms), {}, alt_names=alt, level="admin1")
