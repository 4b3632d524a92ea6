"""Realistic sample GRIB2 runs of ICON-EU, ICON global and GFS, in the publishers' layouts.

The files have the real grids (ICON-EU 0.0625 deg 1377x657, ICON's icosahedral cells with
CLAT/CLON files, GFS 0.25 deg 1440x721), DWD's one-file-per-field naming and NCEP's multi-field
pgrb2 files with a wgrib2-style ``.idx``, and smooth deterministic weather
(:mod:`framecast.sampledata.weather`). They let the whole pipeline (index, render, publish)
run offline against data shaped exactly like upstream's.

Files are written to a temporary name and renamed, so a reader never sees half a file; the
GFS ``.idx`` is written after its data file.
"""

from __future__ import annotations

import bz2
import os
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from framecast.errors import SpecError
from framecast.sampledata.encode import GribIdentity, encode
from framecast.sampledata.grids import Sampler, UnstructuredSampler, evaluate, sampler_for
from framecast.sampledata.variables import (
    ACCUMULATED,
    CORE_VARIABLES,
    GFS_EXTRAS,
    VARIABLES,
    SampleVariable,
    model_variables,
)
from framecast.sampledata.weather import (
    CATEGORICAL,
    CATEGORICAL_INPUTS,
    STATE_FIELDS,
    Weather,
    categorical,
)
from framecast.steps import parse_steps

__all__ = ["CORE_VARIABLES", "MODELS", "VARIABLES", "generate_run", "model_steps",
           "model_variables", "dwd_path", "gfs_path", "parse_steps"]

MODELS = ("icon-eu", "icon", "gfs")

_STEP_LISTS = {
    "icon-eu": (78, 120),
    "icon": (78, 180),
    "gfs": (120, 384),
}
_DWD_PREFIX = {
    "icon-eu": "icon-eu_europe_regular-lat-lon",
    "icon": "icon_global_icosahedral",
}
#: Fields a real GFS f000 file lacks (there is nothing accumulated, averaged or extreme yet).
_GFS_NOT_AT_F000 = frozenset({"tp", "tcc", "tmax2m", "tmin2m", "crain", "csnow",
                              "frozen_precip_pct", "snow_we"})
#: Snow depth: new snow (kg m-2 water) -> metres of fresh snow (density 100 kg m-3).
_SNOW_M_PER_KG = 0.01
#: Precision of accumulated precipitation (0.1 kg m-2): fixed so packing keeps it monotonic.
_TP_DECIMALS = 1


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def _check_model(model: str) -> None:
    if model not in MODELS:
        raise SpecError(f"unknown model {model!r}: expected one of {', '.join(MODELS)}")


def model_steps(model: str) -> list[int]:
    """The model's real forecast steps (hours): hourly, then 3-hourly to the last step."""
    _check_model(model)
    hourly_to, last = _STEP_LISTS[model]
    return list(range(0, hourly_to + 1)) + list(range(hourly_to + 3, last + 1, 3))


def dwd_path(model: str, var: SampleVariable, run_time: datetime, step: int,
             bz2_suffix: bool = False) -> Path:
    """DWD open-data path of one field, relative to the model's ``grib`` directory."""
    hh = f"{run_time.hour:02d}"
    stamp = run_time.strftime("%Y%m%d%H")
    prefix = _DWD_PREFIX[model]
    if var.pressure_level is None:
        name = f"{prefix}_single-level_{stamp}_{step:03d}_{var.dwd_suffix}.grib2"
    else:
        name = (f"{prefix}_pressure-level_{stamp}_{step:03d}_{var.pressure_level}_"
                f"{var.dwd_suffix}.grib2")
    return Path(hh) / var.dwd_dir / (name + (".bz2" if bz2_suffix else ""))


def gfs_path(run_time: datetime, step: int) -> Path:
    """NOMADS path of a GFS 0.25 deg step file, relative to ``.../gfs/prod``."""
    hh = f"{run_time.hour:02d}"
    return (Path(f"gfs.{run_time:%Y%m%d}") / hh / "atmos"
            / f"gfs.t{hh}z.pgrb2.0p25.f{step:03d}")


def _atomic_write(path: Path, chunks: Iterable[bytes]) -> None:
    """Write to a temporary file beside ``path``, then rename: readers never see a partial."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; published data is world-readable
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _utc(run_time: datetime) -> datetime:
    if run_time.tzinfo is None:
        return run_time.replace(tzinfo=UTC)
    return run_time.astimezone(UTC)


def _gfs_fcst(ident: GribIdentity, step: int) -> str:
    if ident.stat == "accum":
        return f"0-{step} hour acc fcst"
    return "anl" if step == 0 else f"{step} hour fcst"


class _RunWriter:
    """Evaluates the weather per step and writes one model's files; keeps the accumulation."""

    def __init__(self, model: str, run_time: datetime, out_dir: Path, variables: list[str],
                 bz2_out: bool, seed: int, icon_resolution: int | None) -> None:
        self.model = model
        self.run_time = run_time
        self.out_dir = out_dir
        self.variables = [VARIABLES[v] for v in variables]
        self.bz2 = bz2_out
        self.weather = Weather(seed)
        self.sampler: Sampler = sampler_for(model, icon_resolution)
        self.division = self.sampler.division if isinstance(self.sampler,
                                                            UnstructuredSampler) else 0
        names = set(variables)
        self._accumulate = sorted(names & ACCUMULATED)
        if "sd" in names:  # snow depth grows with the snowfall
            self._accumulate = sorted(set(self._accumulate) | {"snow_gsp", "snow_con"})
        self._acc_hours = 0
        self._acc: dict[str, np.ndarray] = {}
        self._t2m_at: dict[int, np.ndarray] = {}  # coarse t2m per step (Tmax/Tmin windows)
        self._snow0: np.ndarray | None = None
        self._all_steps = model_steps(model)

    def _accumulated(self, step: int) -> dict[str, np.ndarray]:
        """Precipitation since run start (total, rain/snow, grid-scale/convective), integrated
        hour by hour on the coarse points, so every split adds up to the total."""
        lat, lon = self.sampler.points()
        if not self._acc or step < self._acc_hours:
            self._acc = {n: np.zeros_like(lat) for n in ("tp", "rain_gsp", "rain_con",
                                                         "snow_gsp", "snow_con", "snow_we")}
            self._acc_hours = 0
        parts = len(self._accumulate) > 1 or self._accumulate != ["tp"]
        for h in range(self._acc_hours, step):
            if not parts:
                self._acc["tp"] += self.weather.precip_rate(lat, lon, h + 0.5)
                continue
            rate, frozen, conv = self.weather.precip_parts(lat, lon, h + 0.5)
            self._acc["tp"] += rate
            self._acc["rain_gsp"] += rate * (1.0 - frozen) * (1.0 - conv)
            self._acc["rain_con"] += rate * (1.0 - frozen) * conv
            self._acc["snow_gsp"] += rate * frozen * (1.0 - conv)
            self._acc["snow_con"] += rate * frozen * conv
            self._acc["snow_we"] += rate * frozen
        self._acc_hours = step
        return self._acc

    def _t2m(self, step: int) -> np.ndarray:
        """Coarse 2 m temperature at ``step`` (cached: consecutive windows share ends)."""
        if step not in self._t2m_at:
            lat, lon = self.sampler.points()
            valid = self.run_time + timedelta(hours=step)
            st = self.weather.state(lat, lon, float(step), valid.hour + valid.minute / 60.0)
            self._t2m_at[step] = st["t2m"]
            for old in [s for s in self._t2m_at if s < step - 3]:
                del self._t2m_at[old]
        return self._t2m_at[step]

    def _coarse(self, step: int, names: set[str]) -> dict[str, np.ndarray]:
        """Every wanted field at the coarse points, consistent with each other."""
        lat, lon = self.sampler.points()
        valid = self.run_time + timedelta(hours=step)
        utc_hour = valid.hour + valid.minute / 60.0
        out = self.weather.state(lat, lon, float(step), utc_hour)
        self._t2m_at[step] = out["t2m"]
        if names - set(STATE_FIELDS) - ACCUMULATED - {"tmax2m", "tmin2m", "sd"}:
            out |= self.weather.extended(lat, lon, float(step), out)
        if {"tmax2m", "tmin2m"} & names:
            earlier = [s for s in self._all_steps if s < step]
            start = earlier[-1] if earlier else step
            before = self._t2m(start)
            # The extremes inside the window lie beyond both ends (by half a degree here).
            out["tmax2m"] = np.maximum(before, out["t2m"]) + (0.5 if earlier else 0.0)
            out["tmin2m"] = np.minimum(before, out["t2m"]) - (0.5 if earlier else 0.0)
        if self._accumulate:
            acc = self._accumulated(step)
            out |= {n: acc[n] for n in self._accumulate}
        if "sd" in names:
            land = self.weather.land(lat, lon)
            if self._snow0 is None:  # snow cover at the start where it is cold, on land
                tsurf = self.weather.surface_temperature(lat, lon, self.weather.state(
                    lat, lon, 0.0, float(self.run_time.hour)))
                self._snow0 = land * 0.4 * np.clip((270.15 - tsurf) / 8.0, 0.0, 1.0)
            new = _SNOW_M_PER_KG * (self._acc["snow_gsp"] + self._acc["snow_con"])
            melt = np.clip(1.0 - (out["t2m"] - 274.15) / 4.0, 0.0, 1.0)
            out["sd"] = (self._snow0 + new) * melt
        return out

    def _fields(self, step: int, extra: set[str]) -> dict[str, np.ndarray]:
        names = {v.name for v in self.variables} | extra
        wanted = names - set(CATEGORICAL)
        if names & set(CATEGORICAL):
            wanted |= set(CATEGORICAL_INPUTS)
        out = evaluate(self.sampler, lambda la, lo: self._coarse(step, wanted), wanted)
        if names & set(CATEGORICAL):
            out |= categorical(names, out)
        for n in ACCUMULATED & names:
            # Round to the packing precision: monotone, so accumulations stay non-decreasing.
            out[n] = np.round(out[n].astype(np.float64), _TP_DECIMALS)
        return out

    def _message(self, var: SampleVariable, values: np.ndarray, step: int,
                 ident: GribIdentity) -> bytes:
        start = 0
        if ident.stat in ("max", "min"):
            earlier = [s for s in self._all_steps if s < step]
            start = earlier[-1] if earlier else 0
        return encode(self.model, ident, values, self.run_time, step, start_step=start,
                      division=self.division,
                      decimal_scale=_TP_DECIMALS if var.name in ACCUMULATED else None)

    def write_step(self, step: int) -> list[Path]:
        if self.model == "gfs":
            return self._write_gfs(step)
        fields = self._fields(step, set())
        jobs = [(self.out_dir / dwd_path(self.model, var, self.run_time, step, self.bz2),
                 self._message(var, fields[var.name] * var.dwd_scale, step, var.dwd))
                for var in self.variables]
        if self.bz2:
            # bzip2 dominates the cost and releases the GIL: compress on every core.
            with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
                jobs = list(zip([p for p, _ in jobs],
                                pool.map(lambda m: bz2.compress(m, 9), [m for _, m in jobs]),
                                strict=True))
        for path, data in jobs:
            _atomic_write(path, [data])
        return [path for path, _ in jobs]

    def _write_gfs(self, step: int) -> list[Path]:
        own = {v.name for v in self.variables}
        extras = [e for e in GFS_EXTRAS if e[0] not in own]  # RH 2 m may be a variable
        fields = self._fields(step, {name for name, *_ in extras})
        records: list[tuple[str, str, GribIdentity, bytes]] = []
        # PRMSL leads a real pgrb2 file; the rest follow in the table's order.
        ordered = sorted(self.variables, key=lambda v: v.name != "msl")
        if step == 0:  # like NCEP's f000: no accumulation or cloud cover at the analysis
            ordered = [v for v in ordered if v.name not in _GFS_NOT_AT_F000]
        for i, var in enumerate(ordered):
            records.append((var.gfs_name, var.gfs_level, var.gfs,
                            self._message(var, fields[var.name], step, var.gfs)))
            if i < len(extras):  # interleave the unused fields, as in the real files
                name, wgrib, level, ident = extras[i]
                records.append((wgrib, level, ident, encode(
                    "gfs", ident, fields[name], self.run_time, step)))
        path = self.out_dir / gfs_path(self.run_time, step)
        stamp = self.run_time.strftime("%Y%m%d%H")
        lines, offset = [], 0
        for n, (wgrib, level, ident, msg) in enumerate(records, start=1):
            lines.append(f"{n}:{offset}:d={stamp}:{wgrib}:{level}:{_gfs_fcst(ident, step)}:\n")
            offset += len(msg)
        _atomic_write(path, [r[3] for r in records])
        idx = path.with_name(path.name + ".idx")
        _atomic_write(idx, ["".join(lines).encode()])
        return [path, idx]

    def write_invariants(self) -> list[Path]:
        """CLAT/CLON of the icosahedral grid, as DWD ships them with ICON global."""
        if not isinstance(self.sampler, UnstructuredSampler):
            return []
        lat, lon = self.sampler.points()
        hh = f"{self.run_time.hour:02d}"
        stamp = self.run_time.strftime("%Y%m%d%H")
        written = []
        for suffix, number, values in (("CLAT", 1, lat), ("CLON", 2, lon)):
            ident = GribIdentity(0, 191, number, 1)
            # Coordinates need more than 16 bits: 24 bits resolve ~2e-5 deg.
            msg = encode("icon", ident, values, self.run_time, 0, division=self.division,
                         bits=24)
            name = f"icon_global_icosahedral_time-invariant_{stamp}_{suffix}.grib2"
            path = self.out_dir / hh / suffix.lower() / (name + (".bz2" if self.bz2 else ""))
            _atomic_write(path, [bz2.compress(msg, 9) if self.bz2 else msg])
            written.append(path)
        return written


def generate_run(model: str, run_time: datetime, steps: Sequence[int], out_dir: Path, *,
                 variables: Sequence[str] | str | None = None, bz2: bool = False, seed: int = 0,
                 icon_resolution: int | None = None) -> list[Path]:
    """Write a sample run and return the written paths (data files, then ``.idx``/CLAT/CLON).

    ``variables`` are canonical names, ``"all"`` for every field the model's publisher ships
    (:func:`model_variables`), default the original set :data:`CORE_VARIABLES`;
    ``icon_resolution`` is the icosahedral root division for ``icon`` (cells = 20 * n**2,
    default 48: 46,080).
    """
    _check_model(model)
    if variables == "all":
        names = model_variables(model)
    else:
        names = list(variables) if variables is not None else list(CORE_VARIABLES)
    unknown = [v for v in names if v not in VARIABLES]
    if unknown:
        raise SpecError(f"unknown sample variable(s) {', '.join(unknown)}: "
                        f"expected some of {', '.join(VARIABLES)}")
    absent = [v for v in names if not VARIABLES[v].published_by(model)]
    if absent:
        raise SpecError(f"{model} does not publish {', '.join(absent)} (its publisher's "
                        f"fields: {', '.join(model_variables(model))})")
    if not names:
        raise SpecError("variables: empty list")
    step_list = sorted({int(s) for s in steps})
    if not step_list or step_list[0] < 0:
        raise SpecError(f"steps: need at least one step >= 0, got {list(steps)!r}")
    if icon_resolution is not None and icon_resolution < 1:
        raise SpecError(f"icon_resolution must be >= 1, got {icon_resolution}")
    if bz2 and model == "gfs":
        raise SpecError("bz2: NCEP publishes GFS uncompressed; bz2 applies to DWD models only")
    rt = _utc(run_time)
    writer = _RunWriter(model, rt, Path(out_dir), names, bz2, seed, icon_resolution)
    written: list[Path] = []
    for step in step_list:
        written += writer.write_step(step)
    written += writer.write_invariants()
    return written
