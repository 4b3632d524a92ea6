"""Derived quantities, computed with MetPy's ``calc`` on fields carrying pint units.

Each function takes the :class:`~framecast.variables.catalogue.Derived` spec (inputs already
resolved, ``{level}``/``{hours}`` filled in), the step and a *source* that hands out fields
by name and step (a :class:`framecast.dataset.RunDataset`), and returns one
:class:`~framecast.field.Field` in the spec's units. Physics is MetPy's (dewpoint, relative
humidity, equivalent potential temperature, vorticity, divergence, wind speed); units are
pint quantities from :data:`metpy.units.units`, so an input delivered in other units (GRIB1
``m`` of precipitation, ``%`` vs fraction) is converted, not misread. Windows over forecast
steps (precipitation over N hours, new snow, Tmax/Tmin) are plain array arithmetic on
fields read at other steps.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from framecast.errors import DataError
from framecast.field import Field

if TYPE_CHECKING:
    from framecast.variables.catalogue import Derived


class FieldSource(Protocol):
    """What derived quantities read from: fields by name and step, and the steps present."""

    def field(self, name: str, step: int) -> Field: ...

    def available_steps(self, name: str) -> list[int]: ...

    def has(self, name: str, step: int) -> bool: ...

    def climate(self, name: str, like: Field) -> Field: ...


#: cfgrib/ecCodes unit spellings pint does not parse as such.
_PINT_SPELLING = {"gpm": "m", "(0 - 1)": "dimensionless", "1": "dimensionless",
                  "Proportion": "dimensionless", "Fraction": "dimensionless", "%": "percent",
                  "m of water equivalent": "m", "~": "dimensionless", "Numeric": "dimensionless",
                  "code table (4.201)": "dimensionless"}


@lru_cache(maxsize=1)
def _units():
    from metpy.units import units

    return units


def _parse(text: str):
    """A pint quantity for a units string (magnitude 1 unless the string has a factor)."""
    import pint

    u = _units()
    try:
        q = u.Quantity(1.0, _PINT_SPELLING.get(text, text)) if text in _PINT_SPELLING \
            else u(text)
    except (pint.errors.UndefinedUnitError, pint.errors.DefinitionSyntaxError, AttributeError,
            ValueError, TypeError, AssertionError):
        raise DataError(f"units {text!r} are not understood (pint)") from None
    if not hasattr(q, "units"):  # a bare number ('1')
        q = u.Quantity(float(q), "dimensionless")
    return q


def pint_unit(text: str):
    """A pint unit from a GRIB/cfgrib units string (``m s**-1``, ``gpm``, ``%``, ``K``)."""
    q = _parse(text)
    if q.magnitude != 1:
        raise DataError(f"units {text!r} carry a factor; use them only as display units")
    return q.units


def quantity(f: Field):
    """The field's values as a pint quantity, in single precision like the decoded fields:
    MetPy's thermodynamics on a whole model grid run about five times faster than in double
    precision, and 7 significant digits are far below a chart's colour or contour steps."""
    return _units().Quantity(np.asarray(f.values, dtype=np.float32), pint_unit(f.units))


def convert(values: np.ndarray, src: str, dst: str) -> np.ndarray:
    """``values`` from units ``src`` to ``dst`` through pint; ``dst`` may carry a factor
    (``1e-5 s**-1``). DataError naming both when they do not match."""
    import pint

    qs, qd = _parse(src), _parse(dst)
    try:
        q = _units().Quantity(np.asarray(values, dtype=np.float64) * qs.magnitude, qs.units)
        return np.asarray(q.to(qd.units).magnitude / qd.magnitude, dtype=np.float32)
    except pint.errors.DimensionalityError:
        raise DataError(f"cannot convert units {src!r} to {dst!r}") from None


def _out(spec: Derived, q: Any, like: Field, step: int | None = None,
         **attrs: str) -> Field:
    if hasattr(q, "to"):
        values = np.asarray(q.to(pint_unit(spec.units)).magnitude, dtype=np.float32)
    else:
        values = np.asarray(q, dtype=np.float32)
    values.flags.writeable = False
    st = like.step if step is None else step
    return Field(spec.name, spec.units, values, like.grid, like.run_time, st, like.valid_time,
                 dict(like.attrs, derived=spec.function, **attrs))


def _inputs(spec: Derived, step: int, src: FieldSource) -> list[Field]:
    return [src.field(n, step) for n in spec.inputs]


# --- instantaneous combinations ---------------------------------------------------------------

def wind_speed(spec: Derived, step: int, src: FieldSource) -> Field:
    import metpy.calc as mpcalc

    u, v = _inputs(spec, step, src)
    return _out(spec, mpcalc.wind_speed(quantity(u), quantity(v)), u)


def thickness(spec: Derived, step: int, src: FieldSource) -> Field:
    upper, lower = _inputs(spec, step, src)
    return _out(spec, quantity(upper) - quantity(lower), upper)


def total(spec: Derived, step: int, src: FieldSource) -> Field:
    fields = _inputs(spec, step, src)
    acc = quantity(fields[0])
    for f in fields[1:]:
        acc = acc + quantity(f)
    return _out(spec, acc, fields[0])


def relative_humidity_from_dewpoint(spec: Derived, step: int, src: FieldSource) -> Field:
    import metpy.calc as mpcalc

    t, td = _inputs(spec, step, src)
    return _out(spec, mpcalc.relative_humidity_from_dewpoint(quantity(t), quantity(td)), t)


def dewpoint_from_relative_humidity(spec: Derived, step: int, src: FieldSource) -> Field:
    import metpy.calc as mpcalc

    t, rh = _inputs(spec, step, src)
    rhq = np.clip(quantity(rh).to("dimensionless"), 1e-4, None)  # log(0) at a dry point
    return _out(spec, mpcalc.dewpoint_from_relative_humidity(quantity(t), rhq), t)


def equivalent_potential_temperature(spec: Derived, step: int, src: FieldSource) -> Field:
    """Theta-e on a pressure level from temperature and relative humidity there."""
    import metpy.calc as mpcalc

    t, rh = _inputs(spec, step, src)
    level = spec.params.get("level")
    if level is None:
        raise DataError(f"{spec.name}: equivalent potential temperature needs a pressure "
                        f"level in its name (e.g. theta_e850)")
    p = _units().Quantity(float(level), "hPa")
    rhq = np.clip(quantity(rh).to("dimensionless"), 1e-4, None)
    td = mpcalc.dewpoint_from_relative_humidity(quantity(t), rhq)
    return _out(spec, mpcalc.equivalent_potential_temperature(p, quantity(t), td), t)


#: Grid spacings per grid (``Grid.key``): geodesic distances between neighbouring points
#: depend only on the grid, and computing them costs more than the derivative itself.
_DELTAS: dict[str, tuple] = {}


def _grid_deltas(f: Field, spec: Derived):
    import metpy.calc as mpcalc

    if f.grid.kind != "regular":
        raise DataError(f"{spec.name}: needs a regular lat-lon grid for horizontal "
                        f"derivatives; {f.attrs.get('source', 'the data')} is on an "
                        f"{f.grid.kind} grid")
    deltas = _DELTAS.get(f.grid.key)
    if deltas is None:
        deltas = mpcalc.lat_lon_grid_deltas(np.asarray(f.grid.lons, dtype=np.float64),
                                            np.asarray(f.grid.lats, dtype=np.float64))
        _DELTAS.clear()  # one model grid per worker at a time: memory stays bounded
        _DELTAS[f.grid.key] = deltas
    return deltas


def vorticity(spec: Derived, step: int, src: FieldSource) -> Field:
    import metpy.calc as mpcalc

    u, v = _inputs(spec, step, src)
    dx, dy = _grid_deltas(u, spec)
    with np.errstate(divide="ignore", invalid="ignore"):  # dx = 0 at the poles
        q = mpcalc.vorticity(quantity(u), quantity(v), dx=dx, dy=dy)
    return _out(spec, q, u)


def divergence(spec: Derived, step: int, src: FieldSource) -> Field:
    import metpy.calc as mpcalc

    u, v = _inputs(spec, step, src)
    dx, dy = _grid_deltas(u, spec)
    with np.errstate(divide="ignore", invalid="ignore"):  # dx = 0 at the poles
        q = mpcalc.divergence(quantity(u), quantity(v), dx=dx, dy=dy)
    return _out(spec, q, u)


def convergence(spec: Derived, step: int, src: FieldSource) -> Field:
    import metpy.calc as mpcalc

    u, v = _inputs(spec, step, src)
    dx, dy = _grid_deltas(u, spec)
    with np.errstate(divide="ignore", invalid="ignore"):  # dx = 0 at the poles
        q = -mpcalc.divergence(quantity(u), quantity(v), dx=dx, dy=dy)
    return _out(spec, q, u)


def fraction(spec: Derived, step: int, src: FieldSource) -> Field:
    """Share of the first input in the sum of all inputs (0 where the sum is 0)."""
    fields = _inputs(spec, step, src)
    parts = [quantity(f).to(pint_unit(fields[0].units)).magnitude for f in fields]
    tot = np.sum(parts, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(tot > 0, parts[0] / tot, 0.0)
    return _out(spec, _units().Quantity(share, "dimensionless"), fields[0])


#: Precipitation below this over the window counts as none (kg m-2 = mm).
PTYPE_MIN_MM = 0.1


def precipitation_type(spec: Derived, step: int, src: FieldSource) -> Field:
    """0 none, 1 rain, 2 mixed, 3 snow, from rain and snow amounts over the window."""
    rain, snow = _inputs(spec, step, src)
    r = quantity(rain).to("kg m**-2").magnitude
    s = quantity(snow).to("kg m**-2").magnitude
    tot = r + s
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(tot > 0, s / tot, 0.0)
    kind = np.where(share < 0.2, 1.0, np.where(share > 0.8, 3.0, 2.0))
    kind = np.where(tot < PTYPE_MIN_MM, 0.0, kind)
    kind = np.where(np.isfinite(tot), kind, np.nan)
    return _out(spec, kind, rain)


# --- departures from the climatology --------------------------------------------------------

def anomaly(spec: Derived, step: int, src: FieldSource) -> Field:
    """The field minus its long-term mean for the frame's VALID month (run + step).

    Both terms go through pint into the spec's units before subtracting, so a climatology
    in degC against a forecast in K, or gpm against m, is converted, not misread. The spec's
    units must be absolute (K, not degC: a difference of 2 K converted as a temperature would
    read -271 degC); products show the anomaly in K, which equals degrees Celsius.
    """
    (name,) = spec.inputs
    f = src.field(name, step)
    clim = src.climate(name, f)
    u = pint_unit(spec.units)
    if not _units().Quantity(1.0, u)._is_multiplicative:
        raise DataError(f"{spec.name}: anomaly units {spec.units!r} have an offset (a "
                        f"difference in them is ambiguous); use K")
    q = quantity(f).to(u) - quantity(clim).to(u)
    return _out(spec, q, f, climatology=clim.attrs.get("source", ""),
                climatology_month=str(f.valid_time.month))


# --- windows over forecast steps --------------------------------------------------------------

def _hours(spec: Derived) -> int:
    h = spec.params.get("hours")
    if h is None:
        raise DataError(f"{spec.name}: a window needs {{hours}} in the name (e.g. tp_6h)")
    return int(h)


def since_start(spec: Derived, step: int, src: FieldSource) -> Field:
    (f,) = _inputs(spec, step, src)
    return _out(spec, quantity(f), f)


def _before(spec: Derived, step: int, src: FieldSource, name: str, hours: int) -> Field:
    before = step - hours
    if not src.has(name, before):
        steps = src.available_steps(name)
        raise DataError(f"{spec.name} at step {step} needs {name} at step {before}, which is "
                        f"not in the data ({name} steps: {_ranges(steps)})")
    return src.field(name, before)


def window_sum(spec: Derived, step: int, src: FieldSource) -> Field:
    """Accumulation over the last N h: X(step) - X(step - N); from the start within N h.

    Small negative differences (packing noise in real data) are clipped to zero.
    """
    hours = _hours(spec)
    (name,) = spec.inputs
    now = src.field(name, step)
    if step - hours <= 0:
        q = quantity(now)
    else:
        q = quantity(now) - quantity(_before(spec, step, src, name, hours))
        q = np.maximum(q, 0 * q)
    return _out(spec, q, now, period_hours=str(hours))


def window_increase(spec: Derived, step: int, src: FieldSource) -> Field:
    """Increase of a state (snow depth) over the last N h, losses counted as zero."""
    hours = _hours(spec)
    (name,) = spec.inputs
    now = src.field(name, step)
    earlier = src.field(name, max(0, step - hours)) if step > 0 else now
    q = quantity(now) - quantity(earlier)
    return _out(spec, np.maximum(q, 0 * q), now, period_hours=str(hours))


def _window_steps(spec: Derived, step: int, src: FieldSource) -> tuple[str, list[int]]:
    hours = _hours(spec)
    (name,) = spec.inputs
    steps = [s for s in src.available_steps(name) if step - hours < s <= step]
    if step not in steps:
        raise DataError(f"{spec.name} at step {step}: {name} has no step {step} (steps "
                        f"present: {_ranges(src.available_steps(name))})")
    return name, steps


def _window_extreme(spec: Derived, step: int, src: FieldSource, fn: Callable) -> Field:
    """Extreme over the window of per-interval extremes (Tmax/Tmin since the last output)."""
    name, steps = _window_steps(spec, step, src)
    fields = [src.field(name, s) for s in steps]
    acc = np.asarray(fields[0].values, dtype=np.float32)
    for f in fields[1:]:
        acc = fn(acc, f.values)
    like = src.field(name, step)
    hours = _hours(spec)
    return _out(spec, _units().Quantity(acc, pint_unit(like.units)), like,
                period_hours=str(hours))


def window_max(spec: Derived, step: int, src: FieldSource) -> Field:
    return _window_extreme(spec, step, src, np.fmax)


def window_min(spec: Derived, step: int, src: FieldSource) -> Field:
    return _window_extreme(spec, step, src, np.fmin)


FUNCTIONS: dict[str, Callable[[Any, int, FieldSource], Field]] = {
    "wind_speed": wind_speed, "thickness": thickness, "total": total,
    "relative_humidity_from_dewpoint": relative_humidity_from_dewpoint,
    "dewpoint_from_relative_humidity": dewpoint_from_relative_humidity,
    "equivalent_potential_temperature": equivalent_potential_temperature,
    "vorticity": vorticity, "divergence": divergence, "convergence": convergence,
    "fraction": fraction, "precipitation_type": precipitation_type,
    "since_start": since_start, "window_sum": window_sum, "window_increase": window_increase,
    "window_max": window_max, "window_min": window_min, "anomaly": anomaly,
}

#: Functions that read a climatology besides the model run (their inputs' long-term means).
CLIMATOLOGY_FUNCTIONS = frozenset({"anomaly"})

#: Functions whose result at a step depends on other steps (used to list what exists).
WINDOW_FUNCTIONS = frozenset({"window_sum", "window_increase", "window_max", "window_min"})


def compute(spec: Derived, step: int, src: FieldSource) -> Field:
    """``spec`` at ``step`` (the function named in the catalogue)."""
    return FUNCTIONS[spec.function](spec, step, src)


def _ranges(steps: list[int]) -> str:
    from framecast.dataset import _ranges as fmt

    return fmt(steps)
