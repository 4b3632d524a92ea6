"""A lazy ``xarray.Dataset`` over a :class:`framecast.dataset.RunDataset`.

Analysts use xarray on model output; the renderer uses :class:`framecast.field.Field`. This
module gives the first without giving up the second's laziness: every data variable is an
xarray ``BackendArray`` wrapped in ``LazilyIndexedArray``, so building the dataset reads no
values, and indexing decodes only the steps asked for, through ``RunDataset.field`` (same
decoder, LRU, derived quantities, checks and errors as the renderer's path). Selecting one step
of a base variable decodes one GRIB message; a derived one (``wind10``) decodes its inputs.

Layout follows cfgrib's conventions so code written for cfgrib datasets works unchanged:
dimension ``step`` (timedelta64) with ``valid_time`` along it and scalar ``time`` (the run, UTC,
naive), then ``latitude``/``longitude`` for regular grids or ``values`` with per-cell
``latitude``/``longitude`` coordinates for ICON's unstructured grid. A (variable, step) the run
lacks (e.g. ``tp_6h`` where ``tp`` at ``step - 6`` is missing) reads as NaN.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import numpy as np
import xarray as xr
from xarray.backends import BackendArray
from xarray.core import indexing

from framecast.dataset.names import long_name_of, units_of
from framecast.errors import DataError
from framecast.field import Field, Grid

FieldGetter = Callable[[str, int], Field]


def outer_index(array: np.ndarray, key: tuple) -> np.ndarray:
    """Apply an outer-indexing key (ints, slices, 1-D integer arrays) one axis at a time.

    NumPy would broadcast two index arrays against each other (vectorised indexing); xarray's
    OUTER support means each array selects along its own axis, which this does.
    """
    out, axis = array, 0
    for k in key:
        if isinstance(k, (int, np.integer)):
            out = np.take(out, int(k), axis=axis)
        else:
            out = out[(slice(None),) * axis + (k,)]
            axis += 1
    return out


class RunVariableArray(BackendArray):
    """One canonical variable over all steps of a run, decoded step by step on indexing."""

    def __init__(self, get_field: FieldGetter, name: str, steps: Sequence[int],
                 available: Sequence[bool], grid: Grid) -> None:
        self.get_field = get_field
        self.name = name
        self.steps = tuple(int(s) for s in steps)
        self.available = tuple(bool(a) for a in available)
        self.grid = grid
        self.shape = (len(self.steps), *grid.shape)
        self.dtype = np.dtype(np.float32)

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(key, self.shape,
                                                  indexing.IndexingSupport.OUTER, self._raw)

    def _raw(self, key: tuple) -> np.ndarray:
        positions = np.arange(len(self.steps))[key[0]]
        rest = key[1:]
        if np.ndim(positions) == 0:
            return outer_index(self._step(int(positions)), rest)
        if positions.size == 0:
            empty = outer_index(np.empty(self.grid.shape, np.float32), rest)
            return np.empty((0, *empty.shape), np.float32)
        return np.stack([outer_index(self._step(int(i)), rest) for i in positions])

    def _step(self, i: int) -> np.ndarray:
        step = self.steps[i]
        if not self.available[i]:
            return np.full(self.grid.shape, np.nan, np.float32)
        f = self.get_field(self.name, step)
        if f.grid is not self.grid and f.grid.key != self.grid.key:
            raise DataError(f"{self.name!r} at step {step} ({f.attrs.get('source', '?')}) is on "
                            f"another grid than the rest of the run's xarray view "
                            f"({f.grid.kind} {f.grid.shape} vs {self.grid.kind} "
                            f"{self.grid.shape}); open the variables separately")
        return f.values


def _naive_utc(t: datetime) -> np.datetime64:
    return np.datetime64(t.replace(tzinfo=None), "ns")


def build_view(get_field: FieldGetter, names: Sequence[str], steps: Sequence[int],
               available: dict[str, list[bool]], grid: Grid, run_time: datetime,
               attrs: dict[str, str]) -> xr.Dataset:
    """The lazy dataset: ``available[name][i]`` says whether step ``steps[i]`` exists."""
    step_td = (np.asarray(steps, dtype=np.int64) * np.timedelta64(3600, "s")
               ).astype("timedelta64[ns]")
    run = _naive_utc(run_time)
    coords: dict[str, xr.Variable] = {
        "time": xr.Variable((), run, {"standard_name": "forecast_reference_time",
                                      "long_name": "initial time of forecast"}),
        "step": xr.Variable(("step",), step_td, {"standard_name": "forecast_period",
                                                 "long_name": "time since forecast_reference_time"}),
        "valid_time": xr.Variable(("step",), run + step_td,
                                  {"standard_name": "time", "long_name": "time"}),
    }
    lat_attrs = {"units": "degrees_north", "standard_name": "latitude", "long_name": "latitude"}
    lon_attrs = {"units": "degrees_east", "standard_name": "longitude", "long_name": "longitude"}
    if grid.kind == "regular":
        space: tuple[str, ...] = ("latitude", "longitude")
        coords["latitude"] = xr.Variable(("latitude",), np.asarray(grid.lats), lat_attrs)
        coords["longitude"] = xr.Variable(("longitude",), np.asarray(grid.lons), lon_attrs)
    else:
        space = ("values",)
        coords["latitude"] = xr.Variable(("values",), np.asarray(grid.lats), lat_attrs)
        coords["longitude"] = xr.Variable(("values",), np.asarray(grid.lons), lon_attrs)
    data_vars = {}
    for name in names:
        backend = RunVariableArray(get_field, name, steps, available[name], grid)
        data_vars[name] = xr.Variable(
            ("step", *space), indexing.LazilyIndexedArray(backend),
            {"units": units_of(name) or "1", "long_name": long_name_of(name)})
    return xr.Dataset(data_vars, coords=coords, attrs=dict(attrs, Conventions="CF-1.7"))
