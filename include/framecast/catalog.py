"""The model catalog: which upstream files make up a model run, and how a run is split into work.

Everything here is a pure function of ``models.yaml`` (or an operator's own file), a run time
and the product catalog, so the Airflow DAGs, the CLI and the tests all compute the same file
list, the same download batches and the same render chunks, and a re-run of a logical date
always addresses exactly the same files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from framecast.errors import SpecError

DEFAULT_MODELS_FILE = Path(__file__).resolve().parent / "config" / "models.yaml"
MODELS_FILE_ENV = "FRAMECAST_MODELS_FILE"
LAYOUTS = ("dwd", "gfs")
SENSOR_MODES = ("last_step", "all")

_DURATION = re.compile(r"^\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m(?:in)?)?\s*$")


@dataclass(frozen=True)
class SensorSpec:
    """How the upstream sensor decides a run is complete, and how long it waits."""

    mode: str = "last_step"
    poke_interval: float = 20.0
    timeout: float = 21600.0


@dataclass(frozen=True)
class HttpSpec:
    """Per-file HTTP behaviour: timeout per connect/read, attempts, first back-off, and the
    limits that keep a hostile or broken upstream from filling disk, memory or the worker's
    time: bytes on the wire, bytes after decompression, a deadline for the whole file (all
    attempts and back-offs included) and a cap on one back-off."""

    timeout: float = 60.0
    retries: int = 5
    backoff: float = 2.0
    max_bytes: int = 256 << 20
    max_decompressed_bytes: int = 1 << 30
    deadline: float = 900.0
    max_backoff: float = 60.0


@dataclass(frozen=True)
class VariableSpec:
    """Where a canonical variable lives upstream.

    DWD layout: ``var`` is the directory name (lower case; the file suffix is its upper case)
    and ``level`` the pressure level in hPa for pressure-level fields. GFS layout: ``field`` is
    the ``VAR:LEVEL`` pair of the wgrib2 ``.idx`` line. ``from_step`` skips steps where the
    upstream has no such field (accumulations and averages do not exist at +0 in GFS).
    """

    name: str
    var: str = ""
    level: int | None = None
    field: str = ""
    from_step: int = 0


@dataclass(frozen=True)
class ClimatologySpec:
    """The long-term monthly means anomaly products subtract (``models.<m>.climatology``).

    ``path`` is a GRIB file (see :mod:`framecast.dataset.climatology`); a relative path is
    under the data root (Airflow Variable ``framecast_data_root``), ``~`` and ``$VARS`` are
    expanded. ``fields`` lists the canonical names the file holds: the DAG build checks
    anomaly products against it without opening the file.
    """

    path: str
    fields: tuple[str, ...]

    def resolve(self, data_root: Path) -> Path:
        p = Path(os.path.expandvars(os.path.expanduser(self.path)))
        return p if p.is_absolute() else Path(data_root) / p


@dataclass(frozen=True)
class PublishWindow:
    """A deadline for the first steps of a run: e.g. +0..+24 h public within 2 h 30 min."""

    upto_step: int
    within: timedelta

    @property
    def label(self) -> str:
        return f"+{self.upto_step:03d}"


LATEST_WHEN_RE = re.compile(r"^(?:complete|first_chunk|first_(\d+)h)$")


@dataclass(frozen=True)
class ModelSpec:
    """One upstream model as configured in ``models.yaml``."""

    name: str
    title: str
    layout: str
    conn_id: str
    default_base_url: str
    compression: str
    delay: timedelta
    cycles: tuple[int, ...]
    steps: tuple[int, ...]
    paths: Mapping[str, str]
    variables: Mapping[str, VariableSpec]
    products: tuple[str, ...]
    regions: tuple[str, ...]
    time_invariant: tuple[str, ...] = ()
    chunk_size: int = 2
    download_batch_size: int = 24
    download_pool: str = "framecast_download"
    download_pool_slots: int = 4
    retention_runs: int = 4
    max_active_runs: int = 2
    retries: int = 2
    retry_delay: timedelta = timedelta(seconds=60)
    owner: str = "framecast"
    sensor: SensorSpec = field(default_factory=SensorSpec)
    http: HttpSpec = field(default_factory=HttpSpec)
    publish_within: timedelta | None = None  # deadline: charts published this long after run time
    #: Names the model cannot provide although its layout's catalogue mapping exists (ICON
    #: global has no simulated satellite image; horizontal derivatives need a regular grid).
    lacks: tuple[str, ...] = ()
    #: Monthly means for anomaly products; None: the model has no anomaly products.
    climatology: ClimatologySpec | None = None
    #: When ``latest`` moves to a run still arriving: ``complete``, ``first_chunk`` or
    #: ``first_<N>h`` (every chart has every step up to +N h).
    latest_when: str = "first_24h"
    #: Hours of earlier steps a chunk's charts may read (24 h maxima, accumulations): a chunk
    #: downloads them too, so it never depends on another chunk's downloads.
    lookback_hours: int = 24
    #: Per step window deadlines: charts up to ``upto_step`` published ``within`` of run time.
    publish_windows: tuple[PublishWindow, ...] = ()

    def latest_after_step(self) -> int | None:
        """The step up to which a run must be published before ``latest`` moves to it."""
        if self.latest_when == "complete":
            return None
        if self.latest_when == "first_chunk":
            return step_chunks(self.steps, self.chunk_size)[0][-1]
        return int(LATEST_WHEN_RE.match(self.latest_when).group(1))

    def variable(self, name: str) -> VariableSpec | None:
        """Where ``name`` lives upstream: this model's own mapping, else the catalogue's.

        ``models.yaml`` maps what differs per model; every other variable is found through
        the publisher identities in the variable catalogue (``config/variables.yaml``), so a
        variable added there is downloadable without touching the model entry.
        """
        if name in self.lacks:
            return None
        own = self.variables.get(name)
        return own if own is not None else catalogue_variable(name, self.layout)

    @property
    def dag_id(self) -> str:
        """``framecast_<model>`` with dashes as underscores (``icon-eu`` -> ``framecast_icon_eu``)."""
        return "framecast_" + re.sub(r"[^A-Za-z0-9_]", "_", self.name)

    def cron(self) -> str:
        """Cron expression firing ``delay`` after each cycle (e.g. ``0 2,8,14,20 * * *``)."""
        minutes = int(self.delay.total_seconds() // 60)
        hours = sorted({(c + minutes // 60) % 24 for c in self.cycles})
        return f"{minutes % 60} {','.join(str(h) for h in hours)} * * *"


@dataclass(frozen=True)
class RemoteFile:
    """One file to download: its path on the server, its path locally, and what it must hold.

    ``url_path`` is relative to the model's base URL; ``local_path`` is relative to the run's
    raw-data directory and keeps the upstream layout (without the ``.bz2`` suffix).
    ``fields`` lists the ``.idx`` ``VAR:LEVEL`` pairs to fetch by HTTP Range (GFS); empty means
    the whole file. ``messages`` is the number of GRIB messages a complete file holds and
    ``expect`` GRIB keys at least one of them must have (run date/time and step), so a file of
    another run or step published under the expected name is rejected.
    """

    url_path: str
    local_path: str
    step: int | None
    variables: tuple[str, ...]
    compression: str = "none"
    fields: tuple[str, ...] = ()
    messages: int = 1
    expect: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, as passed between Airflow tasks through XCom."""
        d = asdict(self)
        d["variables"] = list(self.variables)
        d["fields"] = list(self.fields)
        d["expect"] = dict(self.expect)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RemoteFile:
        return cls(
            url_path=str(d["url_path"]),
            local_path=str(d["local_path"]),
            step=None if d.get("step") is None else int(d["step"]),
            variables=tuple(d.get("variables", ())),
            compression=str(d.get("compression", "none")),
            fields=tuple(d.get("fields", ())),
            messages=int(d.get("messages", 1)),
            expect={str(k): str(v) for k, v in (d.get("expect") or {}).items()},
        )


def catalogue_variable(name: str, layout: str) -> VariableSpec | None:
    """The upstream location of a catalogue variable for a layout (None: not published)."""
    from framecast.variables import load_catalogue

    v = load_catalogue().base(name)
    if v is None:
        return None
    if layout == "dwd":
        if not v.dwd_var:
            return None
        return VariableSpec(name, var=v.dwd_var, level=v.dwd_level)
    if not v.idx:
        return None
    return VariableSpec(name, field=v.idx, from_step=v.from_step)


# --------------------------------------------------------------------------- parsing


def parse_duration(value: Any, where: str) -> timedelta:
    """``"4h"``, ``"3h30m"``, ``"90m"`` or a number of minutes -> timedelta."""
    if isinstance(value, bool):
        raise SpecError(f"{where}: expected a duration like '4h' or '3h30m', got {value!r}")
    if isinstance(value, int | float):
        return timedelta(minutes=float(value))
    m = _DURATION.match(str(value))
    if not m or not (m.group(1) or m.group(2)):
        raise SpecError(f"{where}: expected a duration like '4h' or '3h30m', got {value!r}")
    return timedelta(hours=int(m.group(1) or 0), minutes=int(m.group(2) or 0))


def parse_steps(value: Any, where: str) -> tuple[int, ...]:
    """Steps as a list of ints and/or ``[start, stop, increment]`` ranges (stop inclusive)."""
    if not isinstance(value, list) or not value:
        raise SpecError(f"{where}: expected a non-empty list of steps or [start, stop, inc] ranges")
    steps: set[int] = set()
    for i, item in enumerate(value):
        if isinstance(item, int) and not isinstance(item, bool) and item >= 0:
            steps.add(item)
        elif (
            isinstance(item, list)
            and len(item) == 3
            and all(isinstance(x, int) and not isinstance(x, bool) for x in item)
            and item[0] >= 0
            and item[2] > 0
            and item[1] >= item[0]
        ):
            steps.update(range(item[0], item[1] + 1, item[2]))
        else:
            raise SpecError(
                f"{where}[{i}]: expected a step >= 0 or [start, stop, increment], got {item!r}"
            )
    return tuple(sorted(steps))


def _require(d: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in d:
        raise SpecError(f"{where}: missing required field {key!r}")
    return d[key]


def _int(d: Mapping[str, Any], key: str, where: str, minimum: int = 0) -> int:
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise SpecError(f"{where}.{key}: expected an integer >= {minimum}, got {v!r}")
    return v


def _number(d: Mapping[str, Any], key: str, where: str) -> float:
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
        raise SpecError(f"{where}.{key}: expected a positive number, got {v!r}")
    return float(v)


def _names(v: Any, where: str) -> tuple[str, ...]:
    if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
        raise SpecError(f"{where}: expected a list of names, got {v!r}")
    return tuple(v)


def _parse_variable(name: str, d: Any, layout: str, where: str) -> VariableSpec:
    if not isinstance(d, Mapping):
        raise SpecError(f"{where}: expected a mapping, got {d!r}")
    allowed = {"var", "level", "field", "from_step"}
    unknown = set(d) - allowed
    if unknown:
        raise SpecError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    if layout == "dwd":
        var = _require(d, "var", where)
        if not isinstance(var, str) or not re.fullmatch(r"[a-z0-9_]+", var):
            raise SpecError(f"{where}.var: expected a lower-case DWD directory name, got {var!r}")
        level = d.get("level")
        if level is not None and (isinstance(level, bool) or not isinstance(level, int)):
            raise SpecError(f"{where}.level: expected a pressure level in hPa, got {level!r}")
        return VariableSpec(name, var=var, level=level, from_step=int(d.get("from_step", 0)))
    fld = _require(d, "field", where)
    if not isinstance(fld, str) or fld.count(":") != 1:
        raise SpecError(f"{where}.field: expected 'VAR:LEVEL' as in a .idx line, got {fld!r}")
    return VariableSpec(name, field=fld, from_step=int(d.get("from_step", 0)))


def _merged(defaults: Mapping[str, Any], d: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(defaults)
    for k, v in d.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = {**out[k], **v}
        else:
            out[k] = v
    return out


_MODEL_KEYS = {
    "title", "layout", "conn_id", "default_base_url", "compression", "delay", "cycles", "steps",
    "paths", "variables", "products", "regions", "time_invariant", "chunk_size",
    "download_batch_size", "download_pool", "download_pool_slots", "retention_runs",
    "max_active_runs", "retries", "retry_delay_seconds", "owner", "sensor", "http",
    "publish_within", "lacks", "climatology", "latest_when", "lookback_hours", "publish_windows",
}
_REQUIRED_PATHS = {"dwd": ("single_level",), "gfs": ("step_file",)}


def parse_model(name: str, d: Mapping[str, Any], source: str) -> ModelSpec:
    """Validate one model entry (defaults already merged in); errors name file and field."""
    where = f"{source}: models.{name}"
    unknown = set(d) - _MODEL_KEYS
    if unknown:
        raise SpecError(f"{where}: unknown field(s) {sorted(unknown)}")
    layout = _require(d, "layout", where)
    if layout not in LAYOUTS:
        raise SpecError(f"{where}.layout: expected one of {LAYOUTS}, got {layout!r}")
    compression = d.get("compression", "none")
    if compression not in ("none", "bz2"):
        raise SpecError(f"{where}.compression: expected 'none' or 'bz2', got {compression!r}")
    paths = _require(d, "paths", where)
    if not isinstance(paths, Mapping):
        raise SpecError(f"{where}.paths: expected a mapping of path templates")
    for key in _REQUIRED_PATHS[layout]:
        if key not in paths:
            raise SpecError(f"{where}.paths: missing {key!r} for layout {layout!r}")
    cycles = d.get("cycles", [0, 6, 12, 18])
    if not isinstance(cycles, list) or not cycles or not all(
        isinstance(c, int) and 0 <= c < 24 for c in cycles
    ):
        raise SpecError(f"{where}.cycles: expected a list of UTC hours 0..23, got {cycles!r}")
    variables_raw = d.get("variables") or {}
    if not isinstance(variables_raw, Mapping):
        raise SpecError(f"{where}.variables: expected a mapping of canonical names")
    variables = {
        str(k): _parse_variable(str(k), v, layout, f"{where}.variables.{k}")
        for k, v in variables_raw.items()
    }
    time_invariant = _names(d.get("time_invariant", []) or [], f"{where}.time_invariant")
    if time_invariant and "time_invariant" not in paths:
        raise SpecError(f"{where}.paths: 'time_invariant' path needed for {list(time_invariant)}")
    sensor_d = d.get("sensor", {}) or {}
    if sensor_d.get("mode", "last_step") not in SENSOR_MODES:
        raise SpecError(
            f"{where}.sensor.mode: expected one of {SENSOR_MODES}, got {sensor_d.get('mode')!r}"
        )
    sensor = SensorSpec(
        mode=sensor_d.get("mode", "last_step"),
        poke_interval=_number({"p": sensor_d.get("poke_interval", 20)}, "p", f"{where}.sensor"),
        timeout=_number({"t": sensor_d.get("timeout", 21600)}, "t", f"{where}.sensor"),
    )
    http_d = d.get("http", {}) or {}
    http = HttpSpec(
        timeout=_number({"timeout": http_d.get("timeout", 60)}, "timeout", f"{where}.http"),
        retries=_int({"retries": http_d.get("retries", 5)}, "retries", f"{where}.http", 1),
        backoff=_number({"backoff": http_d.get("backoff", 2.0)}, "backoff", f"{where}.http"),
        max_bytes=_int({"max_bytes": http_d.get("max_bytes", HttpSpec.max_bytes)},
                       "max_bytes", f"{where}.http", 1),
        max_decompressed_bytes=_int(
            {"max_decompressed_bytes": http_d.get("max_decompressed_bytes",
                                                  HttpSpec.max_decompressed_bytes)},
            "max_decompressed_bytes", f"{where}.http", 1),
        deadline=_number({"deadline": http_d.get("deadline", HttpSpec.deadline)}, "deadline",
                         f"{where}.http"),
        max_backoff=_number({"max_backoff": http_d.get("max_backoff", HttpSpec.max_backoff)},
                            "max_backoff", f"{where}.http"),
    )
    ints = {}
    for key, default, minimum in (
        ("chunk_size", 2, 1), ("download_batch_size", 24, 1), ("download_pool_slots", 4, 1),
        ("retention_runs", 4, 1), ("max_active_runs", 2, 1), ("retries", 2, 0),
        ("retry_delay_seconds", 60, 0),
    ):
        ints[key] = _int({key: d.get(key, default)}, key, where, minimum)
    return ModelSpec(
        name=name,
        title=str(d.get("title", name)),
        layout=layout,
        conn_id=str(_require(d, "conn_id", where)),
        default_base_url=str(d.get("default_base_url", "")).rstrip("/"),
        compression=compression,
        delay=parse_duration(d.get("delay", "0m"), f"{where}.delay"),
        cycles=tuple(sorted(cycles)),
        steps=parse_steps(_require(d, "steps", where), f"{where}.steps"),
        paths=dict(paths),
        variables=variables,
        products=_names(_require(d, "products", where), f"{where}.products"),
        lacks=_names(d.get("lacks", []), f"{where}.lacks") if d.get("lacks") else (),
        regions=_names(_require(d, "regions", where), f"{where}.regions"),
        time_invariant=time_invariant,
        chunk_size=ints["chunk_size"],
        download_batch_size=ints["download_batch_size"],
        download_pool=str(d.get("download_pool", "framecast_download")),
        download_pool_slots=ints["download_pool_slots"],
        retention_runs=ints["retention_runs"],
        max_active_runs=ints["max_active_runs"],
        retries=ints["retries"],
        retry_delay=timedelta(seconds=ints["retry_delay_seconds"]),
        owner=str(d.get("owner", "framecast")),
        sensor=sensor,
        http=http,
        publish_within=(parse_duration(d["publish_within"], f"{where}.publish_within")
                        if d.get("publish_within") is not None else None),
        climatology=_climatology(d.get("climatology"), f"{where}.climatology"),
        latest_when=_latest_when(d.get("latest_when", "first_24h"), f"{where}.latest_when"),
        lookback_hours=_int({"lookback_hours": d.get("lookback_hours", 24)}, "lookback_hours",
                            where, 0),
        publish_windows=_publish_windows(d.get("publish_windows") or [],
                                         f"{where}.publish_windows"),
    )


def _climatology(d: Any, where: str) -> ClimatologySpec | None:
    """``{path, fields}``; every field must be a base variable of the catalogue."""
    if d is None:
        return None
    if not isinstance(d, Mapping):
        raise SpecError(f"{where}: expected a mapping with 'path' and 'fields'")
    unknown = set(d) - {"path", "fields"}
    if unknown:
        raise SpecError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: fields, path")
    path = _require(d, "path", where)
    if not isinstance(path, str) or not path.strip():
        raise SpecError(f"{where}.path: expected a file path, got {path!r}")
    fields = _names(_require(d, "fields", where), f"{where}.fields")
    from framecast.variables import load_catalogue

    cat = load_catalogue()
    bad = [f for f in fields if cat.base(f) is None]
    if bad:
        raise SpecError(f"{where}.fields: {bad} are not base variables of the catalogue "
                        f"(climatologies hold fields as read from GRIB: t2m, gh500, t850, msl)")
    return ClimatologySpec(path.strip(), fields)


def _latest_when(value: Any, where: str) -> str:
    if not isinstance(value, str) or not LATEST_WHEN_RE.match(value):
        raise SpecError(f"{where}: expected 'complete', 'first_chunk' or 'first_<N>h' "
                        f"(e.g. first_24h), got {value!r}")
    return value


def _publish_windows(value: Any, where: str) -> tuple[PublishWindow, ...]:
    """``[{steps: 24, within: 2h30m}, ...]``: each window a step bound and a deadline."""
    if not isinstance(value, list):
        raise SpecError(f"{where}: expected a list of {{steps: N, within: DURATION}}")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, Mapping) or set(item) != {"steps", "within"}:
            raise SpecError(f"{where}[{i}]: expected {{steps: N, within: DURATION}}, got {item!r}")
        out.append(PublishWindow(_int(item, "steps", f"{where}[{i}]"),
                                 parse_duration(item["within"], f"{where}[{i}].within")))
    return tuple(sorted(out, key=lambda w: w.upto_step))


def models_file(path: str | Path | None = None) -> Path:
    """The catalog in use: ``path``, else ``$FRAMECAST_MODELS_FILE``, else the shipped one."""
    if path:
        return Path(path)
    env = os.environ.get(MODELS_FILE_ENV)
    return Path(env) if env else DEFAULT_MODELS_FILE


def load_models(path: str | Path | None = None) -> dict[str, ModelSpec]:
    """Read and validate the model catalog; SpecError names the file and field at fault."""
    p = models_file(path)
    try:
        doc = yaml.safe_load(p.read_text())
    except FileNotFoundError:
        raise SpecError(f"{p}: model catalog not found") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{p}: not valid YAML: {exc}") from None
    if not isinstance(doc, Mapping) or not isinstance(doc.get("models"), Mapping):
        raise SpecError(f"{p}: expected a top-level 'models:' mapping")
    defaults = doc.get("defaults", {}) or {}
    if not isinstance(defaults, Mapping):
        raise SpecError(f"{p}: 'defaults' must be a mapping")
    out: dict[str, ModelSpec] = {}
    for name, d in doc["models"].items():
        if not isinstance(d, Mapping):
            raise SpecError(f"{p}: models.{name}: expected a mapping")
        out[str(name)] = parse_model(str(name), _merged(defaults, d), str(p))
    return out


def get_model(name: str, path: str | Path | None = None) -> ModelSpec:
    models = load_models(path)
    try:
        return models[name]
    except KeyError:
        raise SpecError(
            f"{models_file(path)}: unknown model {name!r}; known: {sorted(models)}"
        ) from None


# --------------------------------------------------------------------------- run times


def cycle_at_or_before(spec: ModelSpec, t: datetime) -> datetime:
    """The newest cycle (run time) of ``spec`` at or before ``t`` (naive ``t`` is UTC)."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    t = t.astimezone(UTC)
    day = t.replace(hour=0, minute=0, second=0, microsecond=0)
    for back in range(0, 2):
        d = day - timedelta(days=back)
        for cycle in sorted(spec.cycles, reverse=True):
            candidate = d + timedelta(hours=cycle)
            if candidate <= t:
                return candidate
    raise SpecError(f"model {spec.name!r}: no cycle found before {t.isoformat()}")  # unreachable


def run_time_for(spec: ModelSpec, logical_date: datetime) -> datetime:
    """The model run a DAG run with this logical date processes.

    Scheduled and backfill runs have the cycle time itself as logical date (the schedule fires
    ``delay`` later, see :meth:`ModelSpec.cron`), so this is the identity for them; a manual
    run with any logical date processes the newest cycle at or before it.
    """
    return cycle_at_or_before(spec, logical_date)


def latest_complete_run(spec: ModelSpec, now: datetime) -> datetime:
    """The newest run that should be complete upstream at ``now`` (``now - delay``)."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return cycle_at_or_before(spec, now - spec.delay)


def format_run(run_time: datetime) -> str:
    return run_time.astimezone(UTC).strftime("%Y%m%d%H")


def parse_run(text: str) -> datetime:
    """``YYYYMMDDHH`` or ISO 8601 -> aware UTC datetime; SpecError names the value."""
    try:
        if re.fullmatch(r"\d{10}", text):
            return datetime.strptime(text, "%Y%m%d%H").replace(tzinfo=UTC)
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise SpecError(f"run time {text!r}: expected YYYYMMDDHH or ISO 8601") from None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


# --------------------------------------------------------------------------- file lists


def missing_inputs(spec: ModelSpec, product: Any) -> list[str]:
    """The inputs of ``product`` (layer fields and the names they derive from) that ``spec``
    cannot provide: not published in its layout, not mapped, or listed in its ``lacks``."""
    from framecast.products import BarbsLayer, base_variables
    from framecast.variables import load_catalogue

    cat = load_catalogue()
    have_clim = set(spec.climatology.fields) if spec.climatology is not None else set()
    missing: list[str] = []
    for layer in product.layers:
        names = (layer.u, layer.v) if isinstance(layer, BarbsLayer) else (layer.field,)
        for name in names:
            if name in spec.lacks:
                missing.append(name)
                continue
            if cat.is_known(name):
                missing += [f"climatology of {c}"
                            for c in sorted(cat.climatology_inputs(name) - have_clim)]
            try:
                bases = sorted(base_variables(name))
            except KeyError:
                bases = [name]
            missing += [b for b in bases if spec.variable(b) is None]
    return list(dict.fromkeys(missing))


def check_products(spec: ModelSpec, catalog: Any = None) -> None:
    """Refuse (SpecError) a model whose listed products need inputs it cannot provide.

    Called when the model's DAG is built, so a chart that could never render is an import
    error naming the product and its missing inputs, not a failed task hours later.
    """
    from framecast.products import load_catalog

    cat = catalog if catalog is not None else load_catalog()
    problems = []
    for pname in spec.products:
        if pname not in cat.products:
            raise SpecError(f"model {spec.name!r}: unknown product {pname!r}; known: "
                            f"{sorted(cat.products)}")
        missing = missing_inputs(spec, cat.products[pname])
        if missing:
            problems.append(f"{pname!r} needs {', '.join(missing)}")
    if problems:
        hint = ""
        if any("climatology of " in p for p in problems):
            hint = (f" (anomalies: models.{spec.name}.climatology "
                    + ("is not configured)" if spec.climatology is None else
                       f"lists only {', '.join(spec.climatology.fields)})"))
        raise SpecError(
            f"model {spec.name!r} ({spec.title}) cannot provide the inputs of "
            f"{len(problems)} listed product(s): {'; '.join(problems)}. Remove them from "
            f"models.{spec.name}.products, or map the inputs in models.{spec.name}.variables"
            f"{hint}")


def needed_variables(spec: ModelSpec, catalog: Any = None) -> tuple[str, ...]:
    """Canonical variables the model's products need, resolved via the product catalog."""
    from framecast.products import base_variables, load_catalog

    cat = catalog if catalog is not None else load_catalog()
    check_products(spec, cat)
    needed: set[str] = set()
    for pname in spec.products:
        try:
            product = cat.products[pname]
        except KeyError:
            raise SpecError(
                f"model {spec.name!r}: unknown product {pname!r}; known: {sorted(cat.products)}"
            ) from None
        for v in product.variables():
            try:
                needed |= base_variables(v)
            except KeyError:
                needed.add(v)
    missing = sorted(v for v in needed if spec.variable(v) is None)
    if missing:
        raise SpecError(
            f"model {spec.name!r}: products {list(spec.products)} need {missing}, which "
            f"neither models.{spec.name}.variables nor the variable catalogue maps to "
            f"upstream fields of layout {spec.layout!r}"
        )
    return tuple(sorted(needed))


def _placeholders(run_time: datetime, step: int | None) -> dict[str, str]:
    return {
        "HH": f"{run_time.hour:02d}",
        "YYYYMMDD": run_time.strftime("%Y%m%d"),
        "YYYYMMDDHH": format_run(run_time),
        "FFF": "" if step is None else f"{step:03d}",
    }


def grib_identity(run_time: datetime, step: int | None) -> dict[str, str]:
    """GRIB keys every message of a run's step file has (ecCodes key names)."""
    ident = {"dataDate": run_time.strftime("%Y%m%d"), "dataTime": str(run_time.hour * 100)}
    if step is not None:
        ident["endStep"] = str(step)
    return ident


def _local(url_path: str, compression: str) -> str:
    return url_path[: -len(".bz2")] if compression == "bz2" and url_path.endswith(".bz2") else (
        url_path
    )


def run_files(
    spec: ModelSpec,
    run_time: datetime,
    variables: Iterable[str],
    steps: Iterable[int] | None = None,
) -> list[RemoteFile]:
    """Every file of one model run that ``variables`` need, ordered by step (early first)."""
    steps = tuple(sorted(spec.steps if steps is None else steps))
    variables = tuple(sorted(set(variables)))
    mapping: dict[str, VariableSpec] = {}
    for v in variables:
        vs = spec.variable(v)
        if vs is None:
            raise SpecError(f"model {spec.name!r}: no upstream mapping for variable {v!r}")
        mapping[v] = vs
    files: list[RemoteFile] = []
    if spec.layout == "dwd":
        for name in spec.time_invariant:
            ph = _placeholders(run_time, None) | {"var": name, "VAR": name.upper()}
            url = spec.paths["time_invariant"].format(**ph)
            files.append(RemoteFile(url, _local(url, spec.compression), None, (name,),
                                    spec.compression, expect=grib_identity(run_time, None)))
        for step in steps:
            for v in variables:
                vs = mapping[v]
                if step < vs.from_step:
                    continue
                ph = _placeholders(run_time, step) | {"var": vs.var, "VAR": vs.var.upper()}
                if vs.level is None:
                    url = spec.paths["single_level"].format(**ph)
                else:
                    if "pressure_level" not in spec.paths:
                        raise SpecError(f"model {spec.name!r}: paths.pressure_level is needed "
                                        f"for variable {v!r} (level {vs.level})")
                    url = spec.paths["pressure_level"].format(**ph, LEV=vs.level)
                files.append(RemoteFile(url, _local(url, spec.compression), step, (v,),
                                        spec.compression, expect=grib_identity(run_time, step)))
    else:
        for step in steps:
            present = [v for v in variables if step >= mapping[v].from_step]
            if not present:
                continue
            fields = tuple(dict.fromkeys(mapping[v].field for v in present))
            url = spec.paths["step_file"].format(**_placeholders(run_time, step))
            files.append(RemoteFile(url, _local(url, spec.compression), step, tuple(present),
                                    spec.compression, fields, messages=len(fields),
                                    expect=grib_identity(run_time, step)))
    return files


def completion_files(spec: ModelSpec, files: list[RemoteFile]) -> list[RemoteFile]:
    """The files whose presence upstream means the run is complete (per ``sensor.mode``)."""
    if spec.sensor.mode == "all":
        return list(files)
    last = max((f.step for f in files if f.step is not None), default=None)
    return [f for f in files if f.step == last]


def batches(files: list[RemoteFile], size: int) -> list[list[dict[str, Any]]]:
    """Files in download batches of ``size``, early steps first, as XCom-ready dicts."""
    if size < 1:
        raise SpecError(f"download batch size must be >= 1, got {size}")
    ordered = sorted(files, key=lambda f: (-1 if f.step is None else f.step, f.url_path))
    return [[f.to_dict() for f in ordered[i : i + size]] for i in range(0, len(ordered), size)]


# --------------------------------------------------------------------------- render chunks


def step_chunks(steps: Iterable[int], size: int) -> list[list[int]]:
    """Consecutive groups of ``size`` steps."""
    s = sorted(steps)
    return [s[i : i + size] for i in range(0, len(s), size)]


def steps_label(steps: Iterable[int]) -> str:
    """``+024..+035``: the name of a chunk of steps in the Airflow UI and in logs."""
    s = sorted(steps)
    return f"+{s[0]:03d}..+{s[-1]:03d}"


def window_variables(spec: ModelSpec, catalog: Any = None) -> tuple[str, ...]:
    """Canonical variables the model's products read at earlier steps too (windowed charts:
    24 h maxima, 6/24 h precipitation). Only these are downloaded for a chunk's
    ``lookback_hours``: every other variable is read at the chunk's own steps only."""
    from framecast.products import layer_fields, load_catalog
    from framecast.variables import load_catalogue

    cat = catalog if catalog is not None else load_catalog()
    variables = load_catalogue()
    out: set[str] = set()
    for pname in spec.products:
        for name in layer_fields(cat.product(pname)):
            out |= variables.window_inputs(name)
    return tuple(sorted(out))


def chunk_files(spec: ModelSpec, run_time: datetime, chunk: dict[str, Any],
                variables: Iterable[str], windowed: Iterable[str]) -> list[RemoteFile]:
    """What a chunk downloads: ``variables`` at its own steps, and of those only the
    ``windowed`` ones (:func:`window_variables`) at its earlier input steps.

    Why not every variable at every input step: a shipped ICON-EU chunk would check about 900
    files of the previous 24 h again (decoding each, ~7 ms) for charts that read none of them.
    """
    variables = list(variables)
    files = run_files(spec, run_time, variables, chunk["steps"])
    earlier = [s for s in chunk["inputs"] if s not in set(chunk["steps"])]
    windowed = [v for v in variables if v in set(windowed)]
    if earlier and windowed:
        files = run_files(spec, run_time, windowed, earlier) + files
    return files


def pipeline_chunks(spec: ModelSpec) -> list[dict[str, Any]]:
    """The run's chunks of steps, each waited for, downloaded, rendered and published alone.

    ``steps`` are the chunk's own steps (what it waits for upstream and renders); ``inputs``
    adds the ``lookback_hours`` before them that windowed charts read (downloads skip files
    another chunk already fetched).
    """
    out = []
    for i, group in enumerate(step_chunks(spec.steps, spec.chunk_size)):
        first = group[0]
        inputs = [s for s in spec.steps if first - spec.lookback_hours <= s <= group[-1]]
        out.append({"index": i, "steps": group, "inputs": inputs, "label": steps_label(group)})
    return out


def chunk_label(product: str, region: str, steps: list[int]) -> str:
    """Human name of a render chunk, e.g. ``t2m_mslp/europe/+000..+012``."""
    return f"{product}/{region}/+{min(steps):03d}..+{max(steps):03d}"


def render_chunks(
    products: Iterable[str], regions: Iterable[str], steps: Iterable[int], size: int
) -> list[dict[str, Any]]:
    """All (product, region, steps) render chunks, early steps first across all products.

    Airflow starts mapped instances of one task in map-index order, so putting every
    product/region's first chunk ahead of any second chunk publishes the first charts soonest.
    """
    groups = step_chunks(steps, size)
    out: list[dict[str, Any]] = []
    for group in groups:
        for product in products:
            for region in regions:
                out.append({
                    "product": product,
                    "region": region,
                    "steps": group,
                    "label": chunk_label(product, region, group),
                })
    return out


def raw_run_dir(raw_root: Path, model: str, run_time: datetime) -> Path:
    """``<raw_root>/<model>/<YYYYMMDDHH>``: one run's downloads, in the upstream layout."""
    return Path(raw_root) / model / format_run(run_time)
