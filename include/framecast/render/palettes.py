"""Colour palettes from files: ``.rgba`` tables, GMT ``.cpt`` tables and lists of colours.

Chart sites keep their palettes as files (GMT colour tables, NCL-style ``.rgba`` lists); a
product names a palette and gets exactly those colours, in order, one per level interval. A
``.cpt`` also carries its own level boundaries and its below/above/no-data colours (``B``,
``F``, ``N`` lines), which a product may use instead of listing levels again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.colors import ListedColormap, to_rgba

from framecast.errors import SpecError

RGBA = tuple[float, float, float, float]
PALETTE_SUFFIXES = (".rgba", ".rgb", ".cpt", ".txt")


@dataclass(frozen=True)
class Palette:
    """An ordered list of colours, optionally with the level boundaries they belong to."""

    name: str
    colors: tuple[RGBA, ...]
    levels: tuple[float, ...] | None = None  # n + 1 boundaries for n colours (from a .cpt)
    under: RGBA | None = None
    over: RGBA | None = None
    bad: RGBA | None = None
    source: str = ""

    def cmap(self, bins: int | None = None, extend: str = "neither") -> ListedColormap:
        """A colormap with one colour per level interval, plus the below/above colours
        ``extend`` asks for, in the order matplotlib's ``BoundaryNorm`` indexes them.

        With ``bins`` different from the palette's length the colours are picked evenly
        across the palette (a 10-colour humidity palette also serves 5 classes); below/above
        are the file's B/F colours or else the first/last colour.
        """
        body = list(self.colors)
        if bins is not None and bins != len(body):
            pick = np.round(np.linspace(0, len(body) - 1, bins)).astype(int)
            body = [body[i] for i in pick]
        under = [self.under or body[0]] if extend in ("min", "both") else []
        over = [self.over or body[-1]] if extend in ("max", "both") else []
        cm = ListedColormap(under + body + over, name=self.name)
        return cm.with_extremes(bad=self.bad) if self.bad is not None else cm


def _rgb_numbers(parts: Sequence[str], where: str) -> RGBA:
    try:
        nums = [float(x) for x in parts]
    except ValueError:
        raise SpecError(f"{where}: expected 3 or 4 numbers, got {' '.join(parts)!r}") from None
    if len(nums) not in (3, 4):
        raise SpecError(f"{where}: expected 3 or 4 numbers (r g b [a]), got {len(nums)}")
    # 0..255 integers (the usual .rgba/.cpt form, alpha too) or 0..1 fractions.
    scale = 255.0 if any(x > 1.0 for x in nums) else 1.0
    rgb = [x / scale for x in nums[:3]]
    a = nums[3] / scale if len(nums) == 4 else 1.0
    if not all(0.0 <= x <= 1.0 for x in (*rgb, a)):
        raise SpecError(f"{where}: colour values out of range: {' '.join(parts)!r}")
    return (rgb[0], rgb[1], rgb[2], a)


def color(value: object, where: str) -> RGBA:
    """One colour: a matplotlib colour ('#rrggbb[aa]', a name) or 'r/g/b' (GMT)."""
    if isinstance(value, str) and re.fullmatch(r"[\d.]+/[\d.]+/[\d.]+(/[\d.]+)?", value):
        return _rgb_numbers(value.split("/"), where)
    if isinstance(value, list | tuple) and all(isinstance(x, int | float) for x in value):
        return _rgb_numbers([str(x) for x in value], where)
    try:
        return tuple(float(x) for x in to_rgba(value))  # type: ignore[return-value]
    except (ValueError, TypeError):
        raise SpecError(f"{where}: not a colour: {value!r}") from None


def _lines(path: Path) -> list[tuple[int, str]]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"{path}: cannot read palette: {exc.strerror}") from None
    out = []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if line:
            out.append((n, line))
    return out


def read_rgba(path: Path, name: str | None = None) -> Palette:
    """A ``.rgba``/``.rgb``/``.txt`` table: one colour per line (``r g b [a]``, 0-255 or 0-1,
    or any colour name/hex); an NCL-style ``ncolors=N`` header line is allowed."""
    colors = []
    for n, line in _lines(path):
        if line.lower().startswith("ncolors"):
            continue
        parts = line.replace(",", " ").split()
        where = f"{path}:{n}"
        colors.append(_rgb_numbers(parts, where) if len(parts) > 1 else color(parts[0], where))
    if len(colors) < 2:
        raise SpecError(f"{path}: a palette needs at least 2 colours, found {len(colors)}")
    return Palette(name or path.stem, tuple(colors), source=str(path))


def _cpt_color(parts: list[str], where: str) -> tuple[RGBA, list[str]]:
    """Parse a colour at the start of ``parts`` (r g b, r/g/b, a name or -), return the rest."""
    if len(parts) >= 3 and all(re.fullmatch(r"[\d.]+", p) for p in parts[:3]):
        return _rgb_numbers(parts[:3], where), parts[3:]
    return color(parts[0], where), parts[1:]


def read_cpt(path: Path, name: str | None = None) -> Palette:
    """A GMT colour palette table: ``z0 colour z1 colour`` per interval, plus B/F/N lines.

    Each interval's colour is its lower colour (a discrete table, as chart sites use them);
    the z values become the palette's level boundaries.
    """
    colors: list[RGBA] = []
    levels: list[float] = []
    special: dict[str, RGBA] = {}
    for n, line in _lines(path):
        where = f"{path}:{n}"
        parts = line.split()
        if parts[0] in ("B", "F", "N"):
            special[parts[0]], _ = _cpt_color(parts[1:], where)
            continue
        try:
            z0 = float(parts[0])
            c0, rest = _cpt_color(parts[1:], where)
            z1 = float(rest[0])
            _c1, _ = _cpt_color(rest[1:], where)
        except (ValueError, IndexError):
            raise SpecError(f"{where}: expected 'z0 colour z1 colour', got {line!r}") from None
        if levels and not np.isclose(levels[-1], z0):
            raise SpecError(f"{where}: interval starts at {z0}, the previous one ended at "
                            f"{levels[-1]}: intervals must be contiguous")
        if z1 <= z0:
            raise SpecError(f"{where}: interval {z0}..{z1} is empty or reversed")
        if not levels:
            levels.append(z0)
        levels.append(z1)
        colors.append(c0)
    if len(colors) < 1:
        raise SpecError(f"{path}: no colour intervals found")
    return Palette(name or path.stem, tuple(colors), tuple(levels), special.get("B"),
                   special.get("F"), special.get("N"), str(path))


def read_palette(path: str | Path, name: str | None = None) -> Palette:
    """Read a palette file, choosing the format by its suffix."""
    p = Path(path)
    if p.suffix == ".cpt":
        return read_cpt(p, name)
    if p.suffix in PALETTE_SUFFIXES:
        return read_rgba(p, name)
    raise SpecError(f"{p}: unknown palette format {p.suffix!r}; expected one of "
                    f"{', '.join(PALETTE_SUFFIXES)}")


def palette_from_list(name: str, values: Sequence[object], where: str) -> Palette:
    """A palette written in YAML as a list of colours."""
    if not isinstance(values, list | tuple) or len(values) < 2:
        raise SpecError(f"{where}: expected a list of at least 2 colours, got {values!r}")
    return Palette(name, tuple(color(v, f"{where}[{i}]") for i, v in enumerate(values)),
                   source=where)
