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

from framecast.choropleth.geography import SCALES
from framecast.choropleth.raster import PROJECTIONS
from framecast.choropleth.source import SourceSpec
from framecast.choropleth.style import Style, style_from_dict
from framecast.choropleth.timeline import Timeline, parse_interval, parse_time
from framecast.errors import SpecError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_TOP_KEYS = {"name", "description", "source", "interval", "start", "end", "geography", "size",
             "fps", "style", "outputs", "render", "publish", "schedule"}


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

    def with_url(self, url: str) -> AnimationSpec:
        """The same spec reading from ``url`` (how a DAG injects its resolved connection)."""
        return replace(self, source=replace(self.source, url=url))


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


def spec_from_dict(d: dict[str, Any], where: str = "<spec>") -> AnimationSpec:
    """Validate a parsed YAML document; ``where`` (the file) prefixes every error."""
    d = _mapping(d, where)
    unknown = sorted(set(d) - _TOP_KEYS)
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {unknown}; known: {sorted(_TOP_KEYS)}")
    name = d.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise SpecError(f"{where}: name {name!r} must be letters, digits, '_', '-', '.'")
    src = dict(_mapping(d.get("source"), f"{where}: source"))
    connection = src.pop("connection", None)
    url = src.pop("url", None)
    if (connection is None) == (url is None):
        raise SpecError(f"{where}: source needs exactly one of 'connection' (Airflow conn id) "
                        f"or 'url' (SQLAlchemy URL)")
    try:
        source = SourceSpec(url=url or "", **src)
    except TypeError as exc:
        raise SpecError(f"{where}: source: {exc}") from exc
    except SpecError as exc:
        raise SpecError(f"{where}: {exc}") from exc
    for key in ("start", "end"):
        if key not in d:
            raise SpecError(f"{where}: '{key}' (date) is required")
    try:
        timeline = Timeline(parse_time(d["start"], "start"), parse_time(d["end"], "end"),
                            parse_interval(d.get("interval", "day")))
        style = style_from_dict(d.get("style"), "style")
    except SpecError as exc:
        raise SpecError(f"{where}: {exc}") from exc
    geo = _mapping(d.get("geography"), f"{where}: geography")
    scale = geo.get("scale", "110m")
    if scale not in SCALES:
        raise SpecError(f"{where}: geography.scale {scale!r} is not one of {SCALES}")
    projection = geo.get("projection", "robinson")
    if projection not in PROJECTIONS:
        raise SpecError(f"{where}: geography.projection {projection!r} is not one of "
                        f"{PROJECTIONS}")
    extent = geo.get("extent")
    if extent is not None:
        if not (isinstance(extent, list) and len(extent) == 4):
            raise SpecError(f"{where}: geography.extent {extent!r} must be [lon0, lon1, lat0, "
                            f"lat1]")
        extent = tuple(float(x) for x in extent)
    size = d.get("size", [1100, 600])
    if not (isinstance(size, list) and len(size) == 2):
        raise SpecError(f"{where}: size {size!r} must be [width, height]")
    width = _int(size[0], f"{where}: size[0]", 200, 7680)
    height = _int(size[1], f"{where}: size[1]", 150, 4320)
    if width % 2 or height % 2:
        raise SpecError(f"{where}: size {size} must be even (H.264 yuv420p)")
    fps = d.get("fps", 25)
    if not isinstance(fps, (int, float)) or not 0 < fps <= 120:
        raise SpecError(f"{where}: fps {fps!r} must be a number in (0, 120]")
    out = _mapping(d.get("outputs", {"mp4": True}), f"{where}: outputs")
    gif = out.get("gif", False)
    gif_opts = _mapping(gif, f"{where}: outputs.gif") if isinstance(gif, dict) else {}
    for key, low, high in (("fps", 0, 120), ("width", 16, 7680)):  # pasted into ffmpeg filters
        v = gif_opts.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))
                              or not low < v <= high or (key == "width" and v != int(v))):
            raise SpecError(f"{where}: outputs.gif.{key} {v!r} must be a number in "
                            f"({low}, {high}]")
    outputs = Outputs(mp4=bool(out.get("mp4", True)), gif=bool(gif),
                      gif_fps=gif_opts.get("fps"), gif_width=gif_opts.get("width"),
                      png=bool(out.get("png", False)))
    if not (outputs.mp4 or outputs.gif or outputs.png):
        raise SpecError(f"{where}: outputs: nothing to produce (mp4, gif and png all off)")
    r = _mapping(d.get("render"), f"{where}: render")
    unknown = sorted(set(r) - set(RenderOptions.__dataclass_fields__))
    if unknown:
        raise SpecError(f"{where}: render: unknown key(s) {unknown}")
    render = RenderOptions(**r)
    _int(render.chunks, f"{where}: render.chunks", 1, 4096)
    pub = _mapping(d.get("publish"), f"{where}: publish")
    return AnimationSpec(
        name=name, source=source, connection=connection, timeline=timeline, style=style,
        width=width, height=height, fps=float(fps), scale=scale, projection=projection,
        central_longitude=float(geo.get("central_longitude", 0.0)), extent=extent,
        outputs=outputs, render=render, publish_dir=pub.get("dir"),
        schedule=d.get("schedule"), description=str(d.get("description", "")), path=where)


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
