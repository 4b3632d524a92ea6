"""Declarative product and region specifications.

A *product* is a map panel holding plot layers (filled contours, line contours, wind barbs),
each a validated data object; a *region* is a named area (description, bounds, projection).
Both come from YAML, so adding a chart or an area is a configuration change, not new code.

The shipped defaults live in ``framecast/config/{products,regions}.yaml``; operators pass their
own files (``--products``/``--regions`` or :func:`load_catalog`). Every validation error names
the file, the product/region and the field at fault.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from framecast.errors import SpecError

if TYPE_CHECKING:
    from framecast.style import SiteStyle, Style

CONFIG_DIR = Path(__file__).resolve().parent / "config"

#: The first fifteen canonical names (kept for callers that list them); the full set of names
#: is the variable catalogue (``config/variables.yaml``, :mod:`framecast.variables`).
BASE_VARIABLES = frozenset(
    ["t2m", "msl", "tp", "gust10", "tcc", "u10", "v10", "u850", "v850", "t850", "gh850",
     "t500", "gh500", "gh1000", "cape"]
)

PROJECTIONS = {
    "platecarree": "PlateCarree",
    "lambert_conformal": "LambertConformal",
    "mercator": "Mercator",
    "robinson": "Robinson",
    "stereographic": "Stereographic",
    "north_polar_stereo": "NorthPolarStereo",
    "orthographic": "Orthographic",
    "equal_earth": "EqualEarth",
}
COASTLINE_SCALES = ("110m", "50m", "10m")


def base_variables(name: str) -> set[str]:
    """The names read from GRIB that a (possibly derived) name is computed from.

    KeyError when the catalogue does not know the name and it is no GRIB shortName.
    """
    from framecast.variables import UnknownVariableError, load_catalogue

    try:
        return load_catalogue().base_inputs(name)
    except UnknownVariableError:
        raise KeyError(name) from None


def layer_fields(product: Product) -> list[str]:
    """The names a product's layers read, as written in the spec (``tp_24h``, not ``tp``)."""
    out: list[str] = []
    for layer in product.layers:
        out.extend([layer.u, layer.v] if isinstance(layer, BarbsLayer) else [layer.field])
    return out


class _Where:
    """Builds error messages that name the file and the path inside it."""

    def __init__(self, source: str, path: str = "") -> None:
        self.source, self.path = source, path

    def __truediv__(self, part: str | int) -> _Where:
        sep = "" if isinstance(part, int) or not self.path else "."
        p = f"[{part}]" if isinstance(part, int) else str(part)
        return _Where(self.source, f"{self.path}{sep}{p}")

    def error(self, msg: str) -> SpecError:
        return SpecError(f"{self.source}: {self.path}: {msg}")


def _take(d: Mapping[str, Any], where: _Where, allowed: set[str], required: set[str]) -> None:
    if not isinstance(d, Mapping):
        raise where.error(f"expected a mapping, got {type(d).__name__} {d!r}")
    unknown = set(d) - allowed
    if unknown:
        raise where.error(
            f"unknown field(s) {sorted(unknown)}; allowed: {sorted(allowed)}"
        )
    missing = required - set(d)
    if missing:
        raise where.error(f"missing required field(s) {sorted(missing)}")


def _number(v: Any, where: _Where) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise where.error(f"expected a number, got {v!r}")
    return float(v)


def _levels(v: Any, where: _Where) -> np.ndarray:
    """Levels as a list of numbers or {start, stop, step} (stop inclusive)."""
    if isinstance(v, Mapping):
        _take(v, where, {"start", "stop", "step"}, {"start", "stop", "step"})
        start, stop, step = (_number(v[k], where / k) for k in ("start", "stop", "step"))
        if step <= 0 or stop <= start:
            raise where.error(f"need start < stop and step > 0, got {dict(v)}")
        lv = np.arange(start, stop + step / 2, step)
    elif isinstance(v, list) and len(v) >= 2:
        lv = np.array([_number(x, where / i) for i, x in enumerate(v)])
    else:
        raise where.error(f"expected a list of >= 2 numbers or {{start, stop, step}}, got {v!r}")
    if np.any(np.diff(lv) <= 0):
        raise where.error("levels must be strictly increasing")
    return lv


def _variable(v: Any, where: _Where) -> str:
    """A catalogue name, a derived name or a GRIB shortName[@typeOfLevel[:level]]."""
    from framecast.variables import UnknownVariableError, load_catalogue

    if not isinstance(v, str):
        raise where.error(f"expected a variable name, got {v!r}")
    try:
        load_catalogue().resolve(v)
    except UnknownVariableError as exc:
        raise where.error(str(exc)) from None
    return v


def _cmap(v: Any, where: _Where):
    import matplotlib as mpl
    from matplotlib.colors import ListedColormap

    if isinstance(v, list):
        from matplotlib.colors import to_rgba

        try:
            return ListedColormap([to_rgba(c) for c in v])
        except ValueError as exc:
            raise where.error(f"bad colour in list: {exc}") from None
    if isinstance(v, str):
        try:
            return mpl.colormaps[v]
        except KeyError:
            raise where.error(f"unknown colormap {v!r}") from None
    raise where.error(f"expected a colormap name or a list of colours, got {v!r}")


def _color(v: Any, where: _Where) -> str:
    from matplotlib.colors import is_color_like

    if not is_color_like(v):
        raise where.error(f"not a colour: {v!r}")
    return v


@dataclass(frozen=True)
class FilledLayer:
    """Filled contours of a scalar field (drawn as a raster or as vector contourf)."""

    field: str
    levels: np.ndarray
    cmap: Any
    units: str | None = None
    extend: str = "both"
    mode: str = "raster"  # "raster" (pixel lookup + colour table) or "contourf" (vector)
    alpha: float = 1.0
    min_value: float | None = None  # values below are transparent (e.g. no precipitation)
    colorbar: bool = True
    colorbar_label: str = ""
    kind = "filled"

    @classmethod
    def parse(cls, d: Mapping[str, Any], where: _Where, style: Style | None = None
              ) -> FilledLayer:
        allowed = {"type", "field", "levels", "cmap", "units", "extend", "mode", "alpha",
                   "min_value", "colorbar", "colorbar_label"}
        palette = None
        cmap_name = d.get("cmap") if isinstance(d, Mapping) else None
        if style is not None and isinstance(cmap_name, str) and cmap_name in style.palettes:
            palette = style.palettes[cmap_name]
        # Levels may come from a .cpt palette (its own boundaries); otherwise they are required.
        own_levels = palette is not None and palette.levels is not None
        _take(d, where, allowed, {"type", "field", "cmap"} | (set() if own_levels
                                                                else {"levels"}))
        extend = d.get("extend", "both")
        if extend not in ("neither", "min", "max", "both"):
            raise (where / "extend").error(f"expected neither/min/max/both, got {extend!r}")
        mode = d.get("mode", "raster")
        if mode not in ("raster", "contourf"):
            raise (where / "mode").error(f"expected raster or contourf, got {mode!r}")
        mv = d.get("min_value")
        if "levels" in d:
            levels = _levels(d["levels"], where / "levels")
        else:
            levels = np.array(palette.levels)  # a .cpt's own boundaries
        if palette is not None:
            cmap = palette.cmap(levels.size - 1, extend)
        else:
            cmap = _cmap(d["cmap"], where / "cmap")
        needed = levels.size - 1 + (extend in ("min", "both")) + (extend in ("max", "both"))
        if needed > cmap.N:
            raise (where / "cmap").error(
                f"{cmap.N} colours for {needed} bins ({levels.size} levels, extend {extend!r})")
        return cls(
            field=_variable(d["field"], where / "field"),
            levels=levels,
            cmap=cmap,
            units=d.get("units"),
            extend=extend,
            mode=mode,
            alpha=_number(d.get("alpha", 1.0), where / "alpha"),
            min_value=None if mv is None else _number(mv, where / "min_value"),
            colorbar=bool(d.get("colorbar", True)),
            colorbar_label=str(d.get("colorbar_label", d.get("units") or "")),
        )

    def variables(self) -> set[str]:
        return base_variables(self.field)


@dataclass(frozen=True)
class ContourLayer:
    """Line contours (e.g. isobars), optionally labelled and smoothed."""

    field: str
    levels: np.ndarray
    units: str | None = None
    color: str = "black"
    linewidth: float = 0.8
    linestyle: str = "solid"
    labels: bool = True
    label_fmt: str = "{:.0f}"
    label_size: float = 7.0
    smooth: float = 0.0  # Gaussian sigma in output pixels of the contouring grid
    kind = "contour"

    @classmethod
    def parse(cls, d: Mapping[str, Any], where: _Where) -> ContourLayer:
        allowed = {"type", "field", "levels", "units", "color", "linewidth", "linestyle",
                   "labels", "label_fmt", "label_size", "smooth"}
        _take(d, where, allowed, {"type", "field", "levels"})
        fmt = str(d.get("label_fmt", "{:.0f}"))
        try:
            fmt.format(1.0)
        except (ValueError, IndexError, KeyError):
            raise (where / "label_fmt").error(f"not a number format: {fmt!r}") from None
        ls = d.get("linestyle", "solid")
        if ls not in ("solid", "dashed", "dotted", "dashdot"):
            raise (where / "linestyle").error(f"expected solid/dashed/dotted/dashdot, got {ls!r}")
        return cls(
            field=_variable(d["field"], where / "field"),
            levels=_levels(d["levels"], where / "levels"),
            units=d.get("units"),
            color=_color(d.get("color", "black"), where / "color"),
            linewidth=_number(d.get("linewidth", 0.8), where / "linewidth"),
            linestyle=ls,
            labels=bool(d.get("labels", True)),
            label_fmt=fmt,
            label_size=_number(d.get("label_size", 7.0), where / "label_size"),
            smooth=_number(d.get("smooth", 0.0), where / "smooth"),
        )

    def variables(self) -> set[str]:
        return base_variables(self.field)


@dataclass(frozen=True)
class BarbsLayer:
    """Wind barbs (or arrows) from u/v components on a regular lattice of the output image."""

    u: str
    v: str
    units: str | None = "kt"
    spacing: int = 40  # output pixels between barbs
    length: float = 5.0
    color: str = "black"
    style: str = "barbs"  # "barbs" or "arrows"
    kind = "barbs"

    @classmethod
    def parse(cls, d: Mapping[str, Any], where: _Where) -> BarbsLayer:
        allowed = {"type", "u", "v", "units", "spacing", "length", "color", "style"}
        _take(d, where, allowed, {"type", "u", "v"})
        style = d.get("style", "barbs")
        if style not in ("barbs", "arrows"):
            raise (where / "style").error(f"expected barbs or arrows, got {style!r}")
        spacing = int(_number(d.get("spacing", 40), where / "spacing"))
        if spacing < 10:
            raise (where / "spacing").error(f"must be >= 10 pixels, got {spacing}")
        return cls(
            u=_variable(d["u"], where / "u"),
            v=_variable(d["v"], where / "v"),
            units=d.get("units", "kt"),
            spacing=spacing,
            length=_number(d.get("length", 5.0), where / "length"),
            color=_color(d.get("color", "black"), where / "color"),
            style=style,
        )

    def variables(self) -> set[str]:
        return base_variables(self.u) | base_variables(self.v)


Layer = FilledLayer | ContourLayer | BarbsLayer
_LAYER_TYPES: dict[str, type] = {"filled": FilledLayer, "contour": ContourLayer,
                                 "barbs": BarbsLayer}


@dataclass(frozen=True)
class Region:
    """A named map area: what the map shows and in which projection."""

    name: str
    description: str
    bounds: tuple[float, float, float, float] | None  # lon_min, lon_max, lat_min, lat_max
    projection: str
    projection_args: dict[str, Any] = field(default_factory=dict)
    coastline_scale: str = "50m"
    borders: bool = True
    lakes: bool = True

    def crs(self):
        """The cartopy CRS of this region (built on demand; cartopy is imported lazily)."""
        from framecast.geo import ensure_cartopy

        ensure_cartopy()
        import cartopy.crs as ccrs

        args = dict(self.projection_args)
        if "standard_parallels" in args:
            args["standard_parallels"] = tuple(args["standard_parallels"])
        return getattr(ccrs, PROJECTIONS[self.projection])(**args)

    @classmethod
    def parse(cls, name: str, d: Mapping[str, Any], where: _Where) -> Region:
        allowed = {"description", "bounds", "projection", "coastline_scale", "borders", "lakes"}
        _take(d, where, allowed, {"bounds", "projection"})
        b = d["bounds"]
        if b == "global":
            bounds = None
        elif isinstance(b, list) and len(b) == 4:
            bounds = tuple(_number(x, where / "bounds" / i) for i, x in enumerate(b))
            if not (bounds[0] < bounds[1] and -90 <= bounds[2] < bounds[3] <= 90):
                raise (where / "bounds").error(
                    f"expected [lon_min, lon_max, lat_min, lat_max] with min < max, got {b}"
                )
        else:
            raise (where / "bounds").error(f"expected 'global' or 4 numbers, got {b!r}")
        proj = d["projection"]
        if isinstance(proj, str):
            proj = {"name": proj}
        if not isinstance(proj, Mapping) or proj.get("name") not in PROJECTIONS:
            raise (where / "projection").error(
                f"unknown projection {proj!r}; known: {sorted(PROJECTIONS)}"
            )
        pargs = {k: v for k, v in proj.items() if k != "name"}
        scale = d.get("coastline_scale", "50m")
        if scale not in COASTLINE_SCALES:
            raise (where / "coastline_scale").error(f"expected one of {COASTLINE_SCALES}")
        region = cls(name=name, description=str(d.get("description", name)), bounds=bounds,
                     projection=proj["name"], projection_args=pargs, coastline_scale=scale,
                     borders=bool(d.get("borders", True)), lakes=bool(d.get("lakes", True)))
        try:
            region.crs()
        except (TypeError, ValueError) as exc:
            raise (where / "projection").error(f"invalid projection arguments: {exc}") from None
        return region


_TEMPLATE_FIELDS = {"product", "region", "model", "run", "step", "valid", "title"}


def _template(v: Any, where: _Where, required: set[str] = frozenset()) -> str:
    if not isinstance(v, str):
        raise where.error(f"expected a template string, got {v!r}")
    try:
        names = {f[1].split(".")[0].split("[")[0] for f in string.Formatter().parse(v) if f[1]}
    except ValueError as exc:
        raise where.error(f"malformed template {v!r}: {exc}") from None
    unknown = names - _TEMPLATE_FIELDS
    if unknown:
        raise where.error(f"unknown placeholder(s) {sorted(unknown)}; "
                          f"allowed: {sorted(_TEMPLATE_FIELDS)}")
    if not required <= names:
        raise where.error(f"template must use {sorted(required)} so names are unique: {v!r}")
    return v


@dataclass(frozen=True)
class Product:
    """A chart: one map panel of layers, its size, titles and file names."""

    name: str
    title: str
    layers: tuple[Layer, ...]
    regions: tuple[str, ...]
    size: tuple[int, int] = (1000, 800)
    dpi: int = 100
    title_template: str = "{title}\n{model} run {run:%Y-%m-%d %H} UTC  +{step:03d} h  " \
                          "valid {valid:%a %d %b %Y %H} UTC"
    filename: str = "{product}_{region}_{run:%Y%m%d%H}_{step:03d}.png"
    png_compress_level: int = 3
    png_palette: bool = True  # 8-bit palette PNG; false writes 24-bit RGB
    site: SiteStyle | None = None  # logo, footer, font (None: plain)
    description: str = ""

    @classmethod
    def parse(cls, name: str, d: Mapping[str, Any], where: _Where,
              style: Style | None = None) -> Product:
        allowed = {"title", "layers", "regions", "size", "dpi", "title_template", "filename",
                   "png_compress_level", "png_palette", "description", "site"}
        _take(d, where, allowed, {"title", "layers", "regions"})
        layers_raw = d["layers"]
        if not isinstance(layers_raw, list) or not layers_raw:
            raise (where / "layers").error("expected a non-empty list of layers")
        layers = []
        for i, ld in enumerate(layers_raw):
            lw = where / "layers" / i
            if not isinstance(ld, Mapping) or ld.get("type") not in _LAYER_TYPES:
                raise lw.error(f"layer type must be one of {sorted(_LAYER_TYPES)}, got "
                               f"{ld.get('type') if isinstance(ld, Mapping) else ld!r}")
            if ld["type"] == "filled":
                layers.append(FilledLayer.parse(ld, lw, style))
            else:
                layers.append(_LAYER_TYPES[ld["type"]].parse(ld, lw))
        if sum(isinstance(x, FilledLayer) for x in layers) > 1:
            raise (where / "layers").error("at most one filled layer per map panel")
        size = d.get("size", [1000, 800])
        if (not isinstance(size, list) or len(size) != 2
                or not all(isinstance(x, int) and 200 <= x <= 8000 for x in size)):
            raise (where / "size").error(f"expected [width, height] in pixels (200..8000), "
                                         f"got {size!r}")
        regions = d["regions"]
        if not isinstance(regions, list) or not regions or not all(isinstance(r, str)
                                                                   for r in regions):
            raise (where / "regions").error("expected a non-empty list of region names")
        level = int(_number(d.get("png_compress_level", 3), where / "png_compress_level"))
        if not 0 <= level <= 9:
            raise (where / "png_compress_level").error("expected 0..9")
        palette = d.get("png_palette", True)
        if not isinstance(palette, bool):
            raise (where / "png_palette").error(f"expected true or false, got {palette!r}")
        site = None
        if style is not None:
            try:
                site = style.site(d.get("site"))
            except SpecError as exc:
                raise (where / "site").error(str(exc)) from None
        elif d.get("site") is not None:
            raise (where / "site").error("a site needs a style file (load_catalog(style=...))")
        default_template = (site.title_template if site and site.title_template
                            else cls.title_template)
        return cls(
            name=name,
            title=str(d["title"]),
            layers=tuple(layers),
            regions=tuple(regions),
            size=(size[0], size[1]),
            dpi=int(_number(d.get("dpi", 100), where / "dpi")),
            title_template=_template(d.get("title_template", default_template),
                                     where / "title_template"),
            filename=_template(d.get("filename", cls.filename), where / "filename",
                               required={"step"}),
            png_compress_level=level,
            png_palette=palette,
            site=site,
            description=str(d.get("description", "")),
        )

    def variables(self) -> set[str]:
        """Canonical GRIB variables this product needs (what to download)."""
        out: set[str] = set()
        for layer in self.layers:
            out |= layer.variables()
        return out

    def format_title(self, *, region: str, model: str, run: datetime, step: int) -> str:
        return self.title_template.format(
            title=self.title, product=self.name, region=region, model=model, run=run,
            step=step, valid=run + timedelta(hours=step))

    def format_filename(self, *, region: str, model: str, run: datetime, step: int) -> str:
        return self.filename.format(
            title=self.title, product=self.name, region=region, model=model, run=run,
            step=step, valid=run + timedelta(hours=step))


@dataclass(frozen=True)
class Catalog:
    """All products and regions known to a deployment."""

    products: dict[str, Product]
    regions: dict[str, Region]
    sources: tuple[str, ...] = ()
    style: Style | None = None

    def product(self, name: str) -> Product:
        try:
            return self.products[name]
        except KeyError:
            raise SpecError(f"unknown product {name!r}; known: {sorted(self.products)}") from None

    def region(self, name: str) -> Region:
        try:
            return self.regions[name]
        except KeyError:
            raise SpecError(f"unknown region {name!r}; known: {sorted(self.regions)}") from None


def _load_yaml(path: Path, key: str) -> Mapping[str, Any]:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise SpecError(f"{path}: cannot read spec file: {exc.strerror}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: malformed YAML: {exc}") from None
    if not isinstance(doc, Mapping) or not isinstance(doc.get(key), Mapping):
        raise SpecError(f"{path}: expected a top-level mapping '{key}:' of named entries")
    return doc[key]


def _stamp(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
    except OSError:
        return (0, -1)  # missing: the loader raises its SpecError
    return (st.st_mtime_ns, st.st_size)


def load_catalog(products: Path | None = None, regions: Path | None = None,
                 style: Path | None = None) -> Catalog:
    """Load and validate product, region and style specs (the shipped defaults when not given).

    The style file (palettes, sites) is read first: products refer to its palettes by name.
    Cached per process by path, modification time and size of the three files: parsing them
    takes about a second, and a render worker (or a task process forked from a prewarmed
    parent, see :mod:`framecast.render.warm`) would otherwise pay it for every chunk.
    """
    ppath = Path(products) if products else CONFIG_DIR / "products.yaml"
    rpath = Path(regions) if regions else CONFIG_DIR / "regions.yaml"
    spath = Path(style) if style else CONFIG_DIR / "style.yaml"
    return _load_catalog(str(ppath), str(rpath), str(spath),
                         (_stamp(ppath), _stamp(rpath), _stamp(spath)))


@lru_cache(maxsize=8)
def _load_catalog(products: str, regions: str, style: str, _stamps: tuple) -> Catalog:
    from framecast.style import load_style

    ppath, rpath = Path(products), Path(regions)
    house = load_style(style)
    rdoc = _load_yaml(rpath, "regions")
    regs = {n: Region.parse(n, d, _Where(str(rpath), f"regions.{n}")) for n, d in rdoc.items()}
    pdoc = _load_yaml(ppath, "products")
    prods = {}
    for n, d in pdoc.items():
        w = _Where(str(ppath), f"products.{n}")
        if not re.fullmatch(r"[a-z0-9_]+", str(n)):
            raise w.error("product names use lower case letters, digits and _ only")
        p = Product.parse(n, d, w, house)
        for r in p.regions:
            if r not in regs:
                raise (w / "regions").error(f"unknown region {r!r}; known: {sorted(regs)}")
        prods[n] = p
    return Catalog(products=prods, regions=regs, sources=(str(ppath), str(rpath), house.source),
                   style=house)
