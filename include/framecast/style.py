"""House style as data: named palettes and per-site branding (logo, footer, fonts, titles).

One YAML file (the shipped ``framecast/config/style.yaml`` or an operator's own) holds

* ``palettes``: name -> a palette file (``.rgba``, GMT ``.cpt``; relative to the YAML) or a list
  of colours. Products name them in ``cmap:`` (and may take a ``.cpt``'s own levels);
* ``sites``: name -> logo image, its height and corner, footer text, font, title size and
  title template. Products pick a site with ``site:`` (default: ``default_site``).

Everything is validated when loaded; errors name the file and the entry.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from framecast.errors import SpecError
from framecast.render.palettes import Palette, palette_from_list, read_palette

CONFIG_DIR = Path(__file__).resolve().parent / "config"
LOGO_CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")
#: Placeholders a footer may use: it is drawn once per product and region, not per frame.
FOOTER_FIELDS = {"product", "region", "title"}


@dataclass(frozen=True)
class SiteStyle:
    """Branding of one publishing site."""

    name: str = "default"
    logo: Path | None = None
    logo_height: int = 30  # pixels
    logo_corner: str = "top-left"
    footer: str = ""
    footer_size: float = 6.5
    footer_color: str = "#555555"
    font_family: str = "DejaVu Sans"
    font_file: Path | None = None  # a .ttf/.otf registered with matplotlib at render time
    title_size: float | None = None  # points; None: scaled to the image width
    title_template: str | None = None

    def format_footer(self, *, product: str, region: str, title: str) -> str:
        return self.footer.format(product=product, region=region, title=title)


@dataclass(frozen=True)
class Style:
    """All palettes and sites of a deployment."""

    palettes: dict[str, Palette] = field(default_factory=dict)
    sites: dict[str, SiteStyle] = field(default_factory=lambda: {"default": SiteStyle()})
    default_site: str = "default"
    source: str = ""

    def site(self, name: str | None) -> SiteStyle:
        key = name or self.default_site
        try:
            return self.sites[key]
        except KeyError:
            raise SpecError(f"{self.source}: unknown site {key!r}; known: "
                            f"{sorted(self.sites)}") from None

    def palette(self, name: str) -> Palette:
        try:
            return self.palettes[name]
        except KeyError:
            raise SpecError(f"{self.source}: unknown palette {name!r}; known: "
                            f"{sorted(self.palettes)}") from None


def _check_keys(d: Any, where: str, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(d, Mapping):
        raise SpecError(f"{where}: expected a mapping, got {d!r}")
    unknown = set(d) - allowed
    if unknown:
        raise SpecError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: "
                        f"{sorted(allowed)}")
    return d


def _file(base: Path, value: Any, where: str) -> Path:
    if not isinstance(value, str) or not value:
        raise SpecError(f"{where}: expected a file path, got {value!r}")
    p = Path(value)
    p = p if p.is_absolute() else base / p
    if not p.is_file():
        raise SpecError(f"{where}: no such file {p}")
    return p


def _parse_palette(name: str, d: Any, base: Path, where: str) -> Palette:
    if isinstance(d, list):
        return palette_from_list(name, d, where)
    _check_keys(d, where, {"file", "colors", "description"})
    if ("file" in d) == ("colors" in d):
        raise SpecError(f"{where}: give exactly one of 'file' or 'colors'")
    if "colors" in d:
        return palette_from_list(name, d["colors"], f"{where}.colors")
    return read_palette(_file(base, d["file"], f"{where}.file"), name)


def _parse_site(name: str, d: Any, base: Path, where: str) -> SiteStyle:
    from framecast.products import _TEMPLATE_FIELDS

    _check_keys(d, where, {"logo", "logo_height", "logo_corner", "footer", "footer_size",
                           "footer_color", "font_family", "font_file", "title_size",
                           "title_template"})
    logo = _file(base, d["logo"], f"{where}.logo") if d.get("logo") else None
    if logo is not None:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(logo) as im:
                im.verify()
        except (UnidentifiedImageError, OSError) as exc:
            raise SpecError(f"{where}.logo: {logo} is not a readable image: {exc}") from None
    corner = d.get("logo_corner", "top-left")
    if corner not in LOGO_CORNERS:
        raise SpecError(f"{where}.logo_corner: expected one of {LOGO_CORNERS}, got {corner!r}")
    height = d.get("logo_height", 30)
    if not isinstance(height, int) or not 8 <= height <= 400:
        raise SpecError(f"{where}.logo_height: expected 8..400 pixels, got {height!r}")
    footer = str(d.get("footer", ""))
    try:
        names = {f[1] for f in string.Formatter().parse(footer) if f[1]}
    except ValueError as exc:
        raise SpecError(f"{where}.footer: malformed template {footer!r}: {exc}") from None
    if names - FOOTER_FIELDS:
        raise SpecError(f"{where}.footer: unknown placeholder(s) {sorted(names - FOOTER_FIELDS)};"
                        f" allowed: {sorted(FOOTER_FIELDS)}")
    template = d.get("title_template")
    if template is not None:
        try:
            tnames = {f[1].split(".")[0].split("[")[0]
                      for f in string.Formatter().parse(template) if f[1]}
        except ValueError as exc:
            raise SpecError(f"{where}.title_template: malformed {template!r}: {exc}") from None
        if tnames - _TEMPLATE_FIELDS:
            raise SpecError(f"{where}.title_template: unknown placeholder(s) "
                            f"{sorted(tnames - _TEMPLATE_FIELDS)}")
    font_file = _file(base, d["font_file"], f"{where}.font_file") if d.get("font_file") \
        else None
    size = d.get("title_size")
    if size is not None and (not isinstance(size, int | float) or not 4 <= size <= 40):
        raise SpecError(f"{where}.title_size: expected 4..40 points, got {size!r}")
    from matplotlib.colors import is_color_like

    fcolor = d.get("footer_color", "#555555")
    if not is_color_like(fcolor):
        raise SpecError(f"{where}.footer_color: not a colour: {fcolor!r}")
    return SiteStyle(name=name, logo=logo, logo_height=height, logo_corner=corner,
                     footer=footer, footer_size=float(d.get("footer_size", 6.5)),
                     footer_color=fcolor, font_family=str(d.get("font_family", "DejaVu Sans")),
                     font_file=font_file, title_size=None if size is None else float(size),
                     title_template=template)


def load_style(path: str | Path | None = None) -> Style:
    """Load and validate a style file (the shipped ``style.yaml`` when not given)."""
    p = Path(path) if path else CONFIG_DIR / "style.yaml"
    try:
        doc = yaml.safe_load(p.read_text())
    except OSError as exc:
        raise SpecError(f"{p}: cannot read style file: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{p}: malformed YAML: {exc}") from None
    _check_keys(doc, str(p), {"palettes", "sites", "default_site"})
    base = p.parent
    palettes = {str(n): _parse_palette(str(n), d, base, f"{p}: palettes.{n}")
                for n, d in (doc.get("palettes") or {}).items()}
    sites = {str(n): _parse_site(str(n), d or {}, base, f"{p}: sites.{n}")
             for n, d in (doc.get("sites") or {"default": {}}).items()}
    default = str(doc.get("default_site", next(iter(sites))))
    if default not in sites:
        raise SpecError(f"{p}: default_site {default!r} is not among sites {sorted(sites)}")
    return Style(palettes, sites, default, str(p))
