"""The variable catalogue: canonical names, units and publisher identities, loaded from YAML.

Variables are data (``config/variables.yaml``), so a forecaster adds a field by editing YAML:
the dataset layer recognises it in DWD file names, wgrib2 ``.idx`` lines and GRIB headers,
products may name it, and downloads know where it lives upstream. Three kinds of names:

* base variables (``t2m``, ``td2m``, ``sd``) and level families (``t850``, ``r700``: the
  family name followed by a pressure level in hPa), read from GRIB messages;
* derived quantities (``wind850``, ``theta_e850``, ``tp_24h``), computed with MetPy's
  ``calc`` from other names (:mod:`framecast.variables.derived`); their names may carry a
  ``{level}`` or ``{hours}`` placeholder;
* any GRIB field by its ecCodes ``shortName``, optionally qualified as
  ``shortName@typeOfLevel:level`` (``skt``, ``2d``, ``r@isobaricInhPa:700``), with the units
  its header gives (:mod:`framecast.variables.gribname`).

A name that is none of these raises :class:`UnknownVariableError` listing close matches.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from framecast.errors import SpecError
from framecast.variables.gribname import GribName, parse_grib_name

DEFAULT_VARIABLES_FILE = Path(__file__).resolve().parents[1] / "config" / "variables.yaml"
VARIABLES_FILE_ENV = "FRAMECAST_VARIABLES_FILE"
KINDS = ("temperature", "pressure", "precipitation", "snow", "wind", "cloud", "humidity",
         "height", "energy", "moisture", "radiance", "category", "anomaly", "other")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_TEMPLATE_NAME = re.compile(r"^[a-z][a-z0-9_]*(\{level\}|\{hours\})?[a-z0-9_]*$")
_PLACEHOLDERS = {"level": r"(?P<level>[1-9][0-9]*)", "hours": r"(?P<hours>[1-9][0-9]*)"}


class UnknownVariableError(SpecError):
    """A name is neither in the catalogue, nor derived, nor a GRIB shortName."""


@dataclass(frozen=True)
class GribId:
    """One way a GRIB message identifies a variable (ecCodes keys); ``None`` matches any."""

    short_name: str
    type_of_level: str | None = None
    level: int | None = None
    scale: float = 1.0

    def matches(self, short_name: str, type_of_level: str, level: int) -> bool:
        return (short_name == self.short_name
                and (self.type_of_level is None or self.type_of_level == type_of_level)
                and (self.level is None or self.level == int(level)))


@dataclass(frozen=True)
class Variable:
    """A base variable (read from one GRIB message per step)."""

    name: str
    long_name: str
    units: str
    kind: str
    dwd_var: str | None = None
    dwd_suffix: str | None = None
    dwd_level: int | None = None
    dwd_scale: float = 1.0
    idx: str | None = None
    grib: tuple[GribId, ...] = ()
    param_id: int | None = None
    accumulated: bool = False
    from_step: int = 0
    family: str | None = None
    level: int | None = None


@dataclass(frozen=True)
class Derived:
    """A quantity computed from other names (``function`` from the derived registry)."""

    name: str
    function: str
    inputs: tuple[str, ...]
    units: str
    long_name: str
    kind: str
    params: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Template:
    pattern: re.Pattern
    spec: Mapping[str, Any]
    name: str


def _where_error(where: str, msg: str) -> SpecError:
    return SpecError(f"{where}: {msg}")


def _str(d: Mapping[str, Any], key: str, where: str, required: bool = True) -> str | None:
    v = d.get(key)
    if v is None:
        if required:
            raise _where_error(where, f"missing required field {key!r}")
        return None
    if not isinstance(v, str | int | float) or isinstance(v, bool):
        raise _where_error(f"{where}.{key}", f"expected a string, got {v!r}")
    return str(v)


def _check_keys(d: Any, where: str, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(d, Mapping):
        raise _where_error(where, f"expected a mapping, got {d!r}")
    unknown = set(d) - allowed
    if unknown:
        raise _where_error(where, f"unknown field(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    return d


def _grib_ids(v: Any, where: str) -> tuple[GribId, ...]:
    if v is None:
        return ()
    if not isinstance(v, list):
        raise _where_error(where, f"expected a list of {{shortName, typeOfLevel, level}}, got {v!r}")
    out = []
    for i, item in enumerate(v):
        w = f"{where}[{i}]"
        d = _check_keys(item, w, {"shortName", "typeOfLevel", "level", "scale"})
        level = d.get("level")
        if level is not None and (isinstance(level, bool) or not isinstance(level, int)):
            raise _where_error(f"{w}.level", f"expected an integer, got {level!r}")
        scale = d.get("scale", 1.0)
        if isinstance(scale, bool) or not isinstance(scale, int | float) or scale == 0:
            raise _where_error(f"{w}.scale", f"expected a non-zero number, got {scale!r}")
        out.append(GribId(str(_str(d, "shortName", w)), _str(d, "typeOfLevel", w, False),
                          level, float(scale)))
    return tuple(out)


_VAR_KEYS = {"long_name", "units", "kind", "dwd", "idx", "grib", "paramId", "accumulated",
             "from_step"}


def _variable(name: str, d: Any, where: str, *, family: bool = False) -> Variable:
    d = _check_keys(d, where, _VAR_KEYS)
    kind = _str(d, "kind", where, False) or "other"
    if kind not in KINDS:
        raise _where_error(f"{where}.kind", f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
    dwd = _check_keys(d.get("dwd") or {}, f"{where}.dwd", {"var", "suffix", "level", "scale"})
    dwd_var = _str(dwd, "var", f"{where}.dwd", False)
    if dwd_var is not None and not re.fullmatch(r"[a-z0-9_.]+", dwd_var):
        raise _where_error(f"{where}.dwd.var", f"expected a lower-case DWD directory name, "
                                               f"got {dwd_var!r}")
    idx = _str(d, "idx", where, False)
    if idx is not None and not family and idx.count(":") != 1:
        raise _where_error(f"{where}.idx", f"expected 'VAR:LEVEL' as in a .idx line, got {idx!r}")
    from_step = d.get("from_step", 0)
    if isinstance(from_step, bool) or not isinstance(from_step, int) or from_step < 0:
        raise _where_error(f"{where}.from_step", f"expected an integer >= 0, got {from_step!r}")
    pid = d.get("paramId")
    return Variable(
        name=name, long_name=str(_str(d, "long_name", where)), units=str(_str(d, "units", where)),
        kind=kind, dwd_var=dwd_var,
        dwd_suffix=_str(dwd, "suffix", f"{where}.dwd", False) or (dwd_var.upper() if dwd_var
                                                                   else None),
        dwd_level=dwd.get("level"), dwd_scale=float(dwd.get("scale", 1.0)), idx=idx,
        grib=_grib_ids(d.get("grib"), f"{where}.grib"),
        param_id=int(pid) if pid is not None else None,
        accumulated=bool(d.get("accumulated", False)), from_step=from_step)


def _template_pattern(name: str, where: str) -> re.Pattern:
    if not _TEMPLATE_NAME.match(name):
        raise _where_error(where, "derived names use lower case letters, digits, _ and at most "
                                  "one {level} or {hours} placeholder")
    rx = re.escape(name)
    for key, sub in _PLACEHOLDERS.items():
        rx = rx.replace(re.escape("{" + key + "}"), sub)
    return re.compile(f"^{rx}$")


class Catalogue:
    """Validated variable catalogue with the name resolution the whole project uses."""

    def __init__(self, doc: Mapping[str, Any], source: str = "<catalogue>") -> None:
        self.source = source
        if not isinstance(doc, Mapping):
            raise SpecError(f"{source}: expected a mapping with 'variables:'")
        _check_keys(doc, source, {"levels", "variables", "families", "derived"})
        levels = doc.get("levels", [])
        if not isinstance(levels, list) or not all(isinstance(x, int) and x > 0 for x in levels):
            raise SpecError(f"{source}: levels: expected a list of pressure levels in hPa")
        self.levels: tuple[int, ...] = tuple(levels)
        self.variables: dict[str, Variable] = {}
        vars_doc = doc.get("variables") or {}
        if not isinstance(vars_doc, Mapping):
            raise SpecError(f"{source}: variables: expected a mapping of named entries")
        for n, d in vars_doc.items():
            where = f"{source}: variables.{n}"
            if not _NAME.match(str(n)):
                raise SpecError(f"{where}: names use lower case letters, digits and _ only")
            self.variables[str(n)] = _variable(str(n), d, where)
        self.families: dict[str, Variable] = {}
        for n, d in (doc.get("families") or {}).items():
            where = f"{source}: families.{n}"
            if not re.fullmatch(r"[a-z]+", str(n)):
                raise SpecError(f"{where}: family names are lower case letters only")
            self.families[str(n)] = _variable(str(n), d, where, family=True)
        self._family_rx = re.compile(
            r"^(?P<family>" + "|".join(sorted(self.families, key=len, reverse=True))
            + r")(?P<level>[1-9][0-9]*)$") if self.families else None
        self._exact: dict[str, Mapping[str, Any]] = {}
        self._templates: list[_Template] = []
        for n, d in (doc.get("derived") or {}).items():
            where = f"{source}: derived.{n}"
            d = _check_keys(d, where, {"function", "inputs", "units", "long_name", "kind"})
            from framecast.variables.derived import FUNCTIONS

            fn = _str(d, "function", where)
            if fn not in FUNCTIONS:
                raise _where_error(f"{where}.function",
                                   f"unknown function {fn!r}; known: {', '.join(sorted(FUNCTIONS))}")
            inputs = d.get("inputs")
            if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str)
                                                                     for i in inputs):
                raise _where_error(f"{where}.inputs", "expected a non-empty list of names")
            _str(d, "units", where)
            if fn == "anomaly" and len(inputs) != 1:
                raise _where_error(f"{where}.inputs", "an anomaly has exactly one input, the "
                                                      "field whose climatology is subtracted")
            kind = d.get("kind", "other")
            if kind not in KINDS:
                raise _where_error(f"{where}.kind", f"unknown kind {kind!r}")
            name = str(n)
            if "{" in name:
                self._templates.append(_Template(_template_pattern(name, where), d, name))
            else:
                if not _NAME.match(name):
                    raise SpecError(f"{where}: names use lower case letters, digits and _ only")
                self._exact[name] = d
        self._check_inputs()

    def _check_inputs(self) -> None:
        """Every derived input must itself resolve (catches typos in the YAML at load)."""
        for name, d in self._exact.items():
            for i in d["inputs"]:
                self._resolve_known(i, f"{self.source}: derived.{name}.inputs")
        for t in self._templates:
            sample = {"level": 850, "hours": 3}
            for i in t.spec["inputs"]:
                self._resolve_known(i.format(**sample), f"{self.source}: derived.{t.name}.inputs")

    def _resolve_known(self, name: str, where: str) -> None:
        if self.base(name) is None and self.derived(name) is None:
            raise SpecError(f"{where}: unknown input {name!r}{self._suggest(name)}")

    # -- lookups ------------------------------------------------------------------------------

    def base(self, name: str) -> Variable | None:
        """The base variable ``name`` (a catalogue entry or family + level), else None."""
        v = self.variables.get(name)
        if v is not None:
            return v
        if self._family_rx is None:
            return None
        m = self._family_rx.match(name)
        if not m:
            return None
        fam, level = self.families[m["family"]], int(m["level"])
        return Variable(name=name, long_name=f"{level} hPa {fam.long_name}", units=fam.units,
                        kind=fam.kind, dwd_var=fam.dwd_var, dwd_suffix=fam.dwd_suffix,
                        dwd_level=level, dwd_scale=fam.dwd_scale,
                        idx=f"{fam.idx}:{level} mb" if fam.idx else None,
                        grib=tuple(GribId(g.short_name, "isobaricInhPa", level, g.scale)
                                   for g in fam.grib),
                        family=fam.name, level=level)

    def derived(self, name: str) -> Derived | None:
        """The derived quantity ``name`` with its placeholders filled in, else None."""
        d = self._exact.get(name)
        params: dict[str, int] = {}
        if d is None:
            for t in self._templates:
                m = t.pattern.match(name)
                if m:
                    d, params = t.spec, {k: int(v) for k, v in m.groupdict().items()}
                    break
        if d is None:
            return None
        fmt = {k: str(v) for k, v in params.items()}
        return Derived(name=name, function=str(d["function"]),
                       inputs=tuple(i.format(**fmt) for i in d["inputs"]),
                       units=str(d["units"]),
                       long_name=str(d.get("long_name", name)).format(**fmt),
                       kind=str(d.get("kind", "other")), params=params)

    def resolve(self, name: str) -> Variable | Derived | GribName:
        """What ``name`` stands for; UnknownVariableError (with close matches) otherwise.

        Order: catalogue variables and families, derived quantities, then GRIB names
        (``shortName`` or ``shortName@typeOfLevel[:level]``), which are only checked for
        their form here: whether the data holds them is known once a file is opened.
        """
        found = self.base(name) or self.derived(name)
        if found is not None:
            return found
        grib = parse_grib_name(name)
        if grib is not None:
            known = self.variable_of_grib(grib)
            if known is not None:
                return known
            if grib.type_of_level is not None or is_grib_short_name(name):
                return grib
        raise UnknownVariableError(f"unknown variable {name!r}{self._suggest(name)}")

    def variable_of_grib(self, grib: GribName) -> Variable | None:
        """The catalogue variable a GRIB name stands for, when exactly one matches.

        ``2d`` is ``td2m``, ``r@isobaricInhPa:700`` is ``r700``; ``t`` (any level) is not
        one variable and stays a GRIB name.
        """
        found: dict[str, Variable] = {}
        for v in self.variables.values():
            for g in v.grib:
                if (g.short_name == grib.short_name
                        and (grib.type_of_level is None or g.type_of_level is None
                             or g.type_of_level == grib.type_of_level)
                        and (grib.level is None or g.level is None or g.level == grib.level)):
                    found[v.name] = v
        if grib.type_of_level in (None, "isobaricInhPa"):
            for fam in self.families.values():
                if not any(g.short_name == grib.short_name for g in fam.grib):
                    continue
                if grib.level is None:
                    return None  # a family on every level: not one variable
                v = self.base(f"{fam.name}{grib.level}")
                if v is not None and grib.type_of_level == "isobaricInhPa":
                    found[v.name] = v
        return next(iter(found.values())) if len(found) == 1 else None

    def is_known(self, name: str) -> bool:
        try:
            self.resolve(name)
        except UnknownVariableError:
            return False
        return True

    def base_inputs(self, name: str) -> set[str]:
        """The names read from GRIB that ``name`` needs (itself for base and GRIB names)."""
        found = self.resolve(name)
        if isinstance(found, Derived):
            out: set[str] = set()
            for i in found.inputs:
                out |= self.base_inputs(i)
            return out
        return {name}

    def window_inputs(self, name: str) -> set[str]:
        """The names read from GRIB that ``name`` needs at earlier steps too: the inputs of
        its windows (sums, increases, maxima, minima over the last N h). Empty for anything
        that reads only its own step, so a download need not fetch earlier steps for it."""
        from framecast.variables.derived import WINDOW_FUNCTIONS

        found = self.resolve(name)
        if not isinstance(found, Derived):
            return set()
        out: set[str] = set()
        for i in found.inputs:
            out |= (self.base_inputs(i) if found.function in WINDOW_FUNCTIONS
                    else self.window_inputs(i))
        return out

    def climatology_inputs(self, name: str) -> set[str]:
        """The names whose long-term mean ``name`` needs (the inputs of its anomalies).

        Empty for anything that is not (computed from) an anomaly; a model must have a
        climatology holding these to provide ``name``.
        """
        from framecast.variables.derived import CLIMATOLOGY_FUNCTIONS

        found = self.resolve(name)
        if not isinstance(found, Derived):
            return set()
        out: set[str] = set(found.inputs) if found.function in CLIMATOLOGY_FUNCTIONS else set()
        for i in found.inputs:
            out |= self.climatology_inputs(i)
        return out

    def units_of(self, name: str) -> str | None:
        found = self.base(name) or self.derived(name)
        return found.units if found is not None else None

    def long_name_of(self, name: str) -> str:
        found = self.base(name) or self.derived(name)
        return found.long_name if found is not None else name

    def kind_of(self, name: str) -> str:
        found = self.base(name) or self.derived(name)
        return found.kind if found is not None else "other"

    # -- publisher identities -----------------------------------------------------------------

    def from_grib(self, short_name: str, type_of_level: str, level: int
                  ) -> tuple[str, float] | None:
        """Canonical name and value scale of a GRIB message (None: not in the catalogue)."""
        for v in self.variables.values():
            for g in v.grib:
                if g.matches(short_name, type_of_level, level):
                    return v.name, g.scale
        if type_of_level == "isobaricInhPa":
            for fam in self.families.values():
                for g in fam.grib:
                    if g.short_name == short_name:
                        return f"{fam.name}{int(level)}", g.scale
        return None

    def from_idx(self, var: str, level: str) -> str | None:
        """Canonical name of a wgrib2 inventory record (``TMP``, ``2 m above ground``)."""
        key = f"{var}:{level}"
        for v in self.variables.values():
            if v.idx == key:
                return v.name
        m = re.match(r"^(\d+) mb$", level)
        if m:
            for fam in self.families.values():
                if fam.idx == var:
                    return f"{fam.name}{int(m.group(1))}"
        return None

    def from_dwd(self, suffix: str, level: int | None) -> tuple[str, float] | None:
        """Canonical name and value scale of a DWD file (suffix, pressure level or None)."""
        if level is None:
            for v in self.variables.values():
                if v.dwd_suffix == suffix:
                    return v.name, v.dwd_scale
            return None
        for fam in self.families.values():
            if fam.dwd_suffix == suffix:
                return f"{fam.name}{int(level)}", fam.dwd_scale
        return None

    # -- listing ------------------------------------------------------------------------------

    def listed_names(self) -> list[str]:
        """Base names, families at the listed levels and derived names (templates as such)."""
        names = list(self.variables)
        names += [f"{f}{lv}" for f in self.families for lv in self.levels]
        names += list(self._exact) + [t.name for t in self._templates]
        return names

    def derived_names(self) -> list[str]:
        return list(self._exact) + [t.name for t in self._templates]

    def table(self) -> list[dict[str, str]]:
        """One row per catalogue entry (for the docs and ``framecast variables``)."""
        rows = []
        for v in self.variables.values():
            rows.append({"name": v.name, "kind": "base", "units": v.units,
                         "long_name": v.long_name, "dwd": v.dwd_suffix or "",
                         "idx": v.idx or "", "grib": ", ".join(_grib_text(g) for g in v.grib)})
        for f in self.families.values():
            rows.append({"name": f"{f.name}<hPa>", "kind": "level family", "units": f.units,
                         "long_name": f.long_name, "dwd": f"{f.dwd_suffix} (pressure-level)",
                         "idx": f"{f.idx}:<hPa> mb",
                         "grib": ", ".join(f"{g.short_name}@isobaricInhPa:<hPa>" for g in f.grib)})
        for n in self.derived_names():
            spec = self._exact.get(n) or next(t.spec for t in self._templates if t.name == n)
            rows.append({"name": n, "kind": f"derived ({spec['function']})",
                         "units": str(spec["units"]), "long_name": str(spec.get("long_name", n)),
                         "dwd": "", "idx": "", "grib": "from " + ", ".join(spec["inputs"])})
        return rows

    def _suggest(self, name: str) -> str:
        pool = set(self.listed_names())
        pool |= {n.replace("{level}", "850").replace("{hours}", "3") for n in pool if "{" in n}
        close = difflib.get_close_matches(name, sorted(pool), n=5, cutoff=0.6)
        shorts = {g.short_name for v in (*self.variables.values(), *self.families.values())
                  for g in v.grib}
        close += [s for s in difflib.get_close_matches(name, sorted(shorts), n=3, cutoff=0.75)
                  if s not in close]
        if not close:
            return "; see docs/variables.md for the catalogue, or name a GRIB field as " \
                   "shortName or shortName@typeOfLevel:level"
        return f"; did you mean {', '.join(close)}?"


def _grib_text(g: GribId) -> str:
    s = g.short_name
    if g.type_of_level:
        s += f"@{g.type_of_level}"
        if g.level is not None:
            s += f":{g.level}"
    return s


@lru_cache(maxsize=512)
def is_grib_short_name(name: str) -> bool:
    """Whether ecCodes knows ``name`` (the part before ``@``) as a parameter shortName.

    Asked of ecCodes itself (WMO tables, GRIB1, and the DWD/NCEP/ECMWF local tables) by
    setting the shortName on a sample message, so a product may name a field the catalogue
    does not list (``skt``) while a typo (``tmep``) is still refused at load time.
    """
    from framecast.dataset.grib import eccodes

    short = name.split("@", 1)[0]
    saved = os.dup(2)
    with open(os.devnull, "w") as quiet:
        os.dup2(quiet.fileno(), 2)  # ecCodes' C library logs every miss to stderr
        try:
            for sample, centre in (("GRIB2", None), ("GRIB2", "edzw"), ("GRIB2", "kwbc"),
                                   ("GRIB1", None)):
                h = eccodes.codes_grib_new_from_samples(sample)
                try:
                    if centre:
                        eccodes.codes_set(h, "centre", centre)
                    eccodes.codes_set_string(h, "shortName", short)
                    if eccodes.codes_get(h, "shortName") == short:
                        return True
                except eccodes.GribInternalError:
                    continue
                finally:
                    eccodes.codes_release(h)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    return False


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    """The catalogue from ``path``, $FRAMECAST_VARIABLES_FILE or the shipped file (cached)."""
    p = Path(path or os.environ.get(VARIABLES_FILE_ENV) or DEFAULT_VARIABLES_FILE)
    return _load(str(p.resolve()), p.stat().st_mtime_ns if p.exists() else 0)


@lru_cache(maxsize=8)
def _load(path: str, _mtime: int) -> Catalogue:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise SpecError(f"{path}: cannot read variable catalogue: {exc.strerror}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: malformed YAML: {exc}") from None
    return Catalogue(doc, path)


def catalogue_names(cat: Catalogue | None = None) -> Iterable[str]:
    return (cat or load_catalogue()).listed_names()
