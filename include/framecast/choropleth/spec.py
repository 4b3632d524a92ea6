"""Animation specifications: one YAML file per animation, validated up front.

Every mistake is reported with the file and the key at fault, before any database is queried
or frame rendered. The database is named either by a SQLAlchemy ``url`` (CLI, tests) or by an
Airflow ``connection`` id that the DAG resolves to a URL; the core itself only sees URLs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from framecast.choropleth.codes import validate_code_type
from framecast.choropleth.geography import LEVELS, SCALES
from framecast.choropleth.raster import PROJECTIONS
from framecast.choropleth.source import SOURCE_KEYS, SourceSpec
from framecast.choropleth.style import Style, style_from_dict
from framecast.choropleth.timeline import Timeline, parse_interval, parse_time
from framecast.errors import SpecError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_TOP_KEYS = {"name", "description", "source", "interval", "start", "end", "geography", "size",
             "fps", "style", "styles", "layout", "outputs", "render", "publish", "schedule"}
_GEO_KEYS = {"scale", "projection", "central_longitude", "extent", "level"}
_OUTPUT_KEYS = {"mp4", "gif", "png"}
LAYOUTS = ("separate", "grid")


@dataclass(frozen=True)
class Outputs:
    mp4: bool = True
    gif: bool = False
    gif_fps: float | None = None
    gif_width: int | None = None
    png: bool = False


@dataclass(frozen=True)
class RenderOptions:
    chunks: int = 2
    min_chunk_frames: int = 50
    crf: int | None = None
    preset: str | None = None
    threads: int | None = 1


@dataclass(frozen=True)
class AnimationSpec:
    name: str
    source: SourceSpec
    connection: str | None
    timeline: Timeline
    style: Style
    width: int = 1100
    height: int = 600
    fps: float = 25.0
    scale: str = "110m"
    projection: str = "robinson"
    central_longitude: float = 0.0
    extent: tuple[float, float, float, float] | None = None
    outputs: Outputs = field(default_factory=Outputs)
    render: RenderOptions = field(default_factory=RenderOptions)
    publish_dir: str | None = None
    schedule: str | None = None
    description: str = ""
    path: str | None = None
    level: str = "admin0"
    layout: str = "separate"
    styles: dict[str, Style] = field(default_factory=dict)

    def with_url(self, url: str) -> AnimationSpec:
        """The same spec reading from ``url`` (how a DAG injects its resolved connection)."""
        return replace(self, source=replace(self.source, url=url))

    @property
    def metrics(self) -> tuple[str, ...]:
        return self.source.metric_names

    @property
    def multi(self) -> bool:
        """A ``metrics:`` list drawn as separate videos named ``<name>_<metric>``."""
        return self.source.metrics is not None and self.layout == "separate"

    @property
    def grid(self) -> bool:
        """A ``metrics:`` list drawn as small multiples (one panel each) in one video."""
        return self.source.metrics is not None and self.layout == "grid"

    def grid_shape(self) -> tuple[int, int]:
        """(rows, columns) of the small-multiples grid: as square as the count allows."""
        import math

        n = len(self.metrics)
        cols = math.ceil(math.sqrt(n))
        return math.ceil(n / cols), cols

    def panel_size(self) -> tuple[int, int]:
        """(width, height) of one map: the frame, or one grid cell (even sizes for H.264)."""
        if not self.grid:
            return self.width, self.height
        rows, cols = self.grid_shape()
        return (self.width // cols) & ~1, (self.height // rows) & ~1

    def panel_origin(self, k: int) -> tuple[int, int]:
        """(x, y) of metric k's panel in the frame (row-major cells)."""
        rows, cols = self.grid_shape()
        pw, ph = self.panel_size()
        return (k % cols) * pw, (k // cols) * ph

    def style_for(self, metric: str) -> Style:
        """The style of one metric: its ``styles:`` block over the shared ``style:``."""
        return self.styles.get(metric, self.style)

    def output_names(self) -> list[str]:
        """One output base name per video: the spec's name, or name_metric per metric."""
        if self.multi:
            return [f"{self.name}_{m}" for m in self.metrics]
        return [self.name]


class _Errors:
    """Collects every problem of a spec, so one check reports them all at once."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.items: list[str] = []

    def add(self, msg: str) -> None:
        self.items.append(msg)

    def run(self, fn: Any, *args: Any, default: Any = None, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except SpecError as exc:
            text = str(exc)
            prefix = f"{self.where}: "
            self.items.append(text[len(prefix):] if text.startswith(prefix) else text)
            return default

    def unknown(self, d: dict[str, Any], known: set[str] | tuple[str, ...], place: str) -> None:
        bad = sorted(set(d) - set(known))
        if bad:
            self.add(f"{place}: unknown key(s) {bad}; known keys there: {sorted(known)}")

    def raise_if_any(self) -> None:
        if len(self.items) == 1:
            raise SpecError(f"{self.where}: {self.items[0]}")
        if self.items:
            lines = "\n".join(f"  - {m}" for m in self.items)
            raise SpecError(f"{self.where}: {len(self.items)} problems:\n{lines}")


def _mapping(d: Any, where: str) -> dict[str, Any]:
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise SpecError(f"{where}: expected a mapping, got {type(d).__name__} {d!r}")
    return d


def _int(v: Any, where: str, lo: int, hi: int) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise SpecError(f"{where}: {v!r} must be an integer between {lo} and {hi}")
    return v


def _source(src: dict[str, Any], level: str) -> tuple[SourceSpec, str | None]:
    src = dict(src)
    connection = src.pop("connection", None)
    url = src.pop("url", None)
    if connection is not None and url is not None:
        raise SpecError("source: give at most one of 'connection' (Airflow conn id) or 'url' "
                        "(SQLAlchemy URL); the CLI's --url overrides either")
    validate_code_type(src.get("code_type", "detect"), level, "source.code_type")
    return SourceSpec(url=url or "", **src), connection


def spec_from_dict(d: dict[str, Any], where: str = "<spec>") -> AnimationSpec:
    """Validate a parsed YAML document; ``where`` (the file) prefixes every error.

    Every problem found is reported in one :class:`SpecError` (one line per problem), so a
    spec is fixed in one round, not one error at a time.
    """
    d = _mapping(d, where)
    err = _Errors(where)
    err.unknown(d, _TOP_KEYS, "top level")
    name = d.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        err.add(f"name {name!r} must be letters, digits, '_', '-', '.'")
    geo = err.run(_mapping, d.get("geography"), "geography", default={})
    err.unknown(geo, _GEO_KEYS, "geography")
    level = geo.get("level", "admin0")
    if level not in LEVELS:
        err.add(f"geography.level {level!r} is not one of {LEVELS}")
        level = "admin0"
    src = err.run(_mapping, d.get("source"), "source", default=None)
    source = connection = None
    if src is not None:
        err.unknown(src, SOURCE_KEYS, "source")
        known_src = {k: v for k, v in src.items() if k in SOURCE_KEYS}
        got = err.run(_source, known_src, level)
        if got is not None:
            source, connection = got
    for key in ("start", "end"):
        if key not in d:
            err.add(f"'{key}' (date) is required")
    timeline = None
    if "start" in d and "end" in d:
        timeline = err.run(lambda: Timeline(parse_time(d["start"], "start"),
                                            parse_time(d["end"], "end"),
                                            parse_interval(d.get("interval", "day"))))
    style = err.run(style_from_dict, d.get("style"), "style", default=Style())
    styles: dict[str, Style] = {}
    per = err.run(_mapping, d.get("styles"), "styles", default={})
    if per:
        metrics = source.metric_names if source is not None else ()
        bad = sorted(set(per) - set(metrics))
        if bad and source is not None:
            err.add(f"styles: key(s) {bad} name no metric; metrics: {list(metrics)}")
        base = dict(d.get("style") or {}) if isinstance(d.get("style"), dict) else {}
        for metric, block in per.items():
            block = err.run(_mapping, block, f"styles.{metric}", default={})
            st = err.run(style_from_dict, {**base, **block}, f"styles.{metric}")
            if st is not None:
                styles[metric] = st
    layout = d.get("layout", "separate")
    if layout not in LAYOUTS:
        err.add(f"layout {layout!r} is not one of {LAYOUTS}")
    scale = geo.get("scale", "110m")
    if scale not in SCALES:
        err.add(f"geography.scale {scale!r} is not one of {SCALES}")
    projection = geo.get("projection", "robinson")
    if projection not in PROJECTIONS:
        err.add(f"geography.projection {projection!r} is not one of {PROJECTIONS}")
    extent = geo.get("extent")
    if extent is not None:
        if not (isinstance(extent, list) and len(extent) == 4):
            err.add(f"geography.extent {extent!r} must be [lon0, lon1, lat0, lat1]")
            extent = None
        else:
            extent = tuple(float(x) for x in extent)
    size = d.get("size", [1100, 600])
    width, height = 1100, 600
    if not (isinstance(size, list) and len(size) == 2):
        err.add(f"size {size!r} must be [width, height]")
    else:
        width = err.run(_int, size[0], "size[0]", 200, 7680, default=1100)
        height = err.run(_int, size[1], "size[1]", 150, 4320, default=600)
        if width % 2 or height % 2:
            err.add(f"size {size} must be even (H.264 yuv420p)")
    fps = d.get("fps", 25)
    if not isinstance(fps, (int, float)) or not 0 < fps <= 120:
        err.add(f"fps {fps!r} must be a number in (0, 120]")
        fps = 25
    out = err.run(_mapping, d.get("outputs", {"mp4": True}), "outputs", default={"mp4": True})
    err.unknown(out, _OUTPUT_KEYS, "outputs")
    gif = out.get("gif", False)
    gif_opts = err.run(_mapping, gif, "outputs.gif", default={}) if isinstance(gif, dict) else {}
    for key, low, high in (("fps", 0, 120), ("width", 16, 7680)):  # pasted into ffmpeg filters
        v = gif_opts.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))
                              or not low < v <= high or (key == "width" and v != int(v))):
            err.add(f"outputs.gif.{key} {v!r} must be a number in ({low}, {high}]")
            gif_opts = {k: x for k, x in gif_opts.items() if k != key}
    outputs = Outputs(mp4=bool(out.get("mp4", True)), gif=bool(gif),
                      gif_fps=gif_opts.get("fps"), gif_width=gif_opts.get("width"),
                      png=bool(out.get("png", False)))
    if not (outputs.mp4 or outputs.gif or outputs.png):
        err.add("outputs: nothing to produce (mp4, gif and png all off)")
    r = err.run(_mapping, d.get("render"), "render", default={})
    known_r = set(RenderOptions.__dataclass_fields__)
    err.unknown(r, known_r, "render")
    render = RenderOptions(**{k: v for k, v in r.items() if k in known_r})
    err.run(_int, render.chunks, "render.chunks", 1, 4096)
    if layout == "grid" and source is not None and source.metrics is not None:
        import math

        n = len(source.metrics)
        cols = math.ceil(math.sqrt(n))
        pw, ph = width // cols, height // math.ceil(n / cols)
        if pw < 200 or ph < 150:
            err.add(f"layout grid: {n} panels of {pw}x{ph} in size {[width, height]} are "
                    f"too small (each at least 200x150): make size larger")
    pub = err.run(_mapping, d.get("publish"), "publish", default={})
    err.unknown(pub, {"dir"}, "publish")
    err.raise_if_any()
    assert source is not None and timeline is not None
    return AnimationSpec(
        name=name, source=source, connection=connection, timeline=timeline, style=style,
        width=width, height=height, fps=float(fps), scale=scale, projection=projection,
        central_longitude=float(geo.get("central_longitude", 0.0)), extent=extent,
        outputs=outputs, render=render, publish_dir=pub.get("dir"),
        schedule=d.get("schedule"), description=str(d.get("description", "")), path=where,
        level=level, layout=layout, styles=styles)


def load_spec(path: str | Path) -> AnimationSpec:
    """Read and validate one animation YAML file."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise SpecError(f"cannot read animation spec {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from exc
    return spec_from_dict(doc, str(path))


def default_spec_dir() -> Path:
    """The example animations shipped with the package."""
    return Path(__file__).resolve().parents[1] / "config" / "animations"


def load_specs(folder: str | Path) -> list[AnimationSpec]:
    """All ``*.yaml`` specs in a folder, sorted by file name; names must be unique."""
    specs = [load_spec(p) for p in sorted(Path(folder).glob("*.yaml"))]
    seen: dict[str, str] = {}
    for s in specs:
        if s.name in seen:
            raise SpecError(f"animation name {s.name!r} is used by {seen[s.name]} and {s.path}")
        seen[s.name] = str(s.path)
    return specs
