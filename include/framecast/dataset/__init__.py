"""Lazy access to one model run's fields: ``RunDataset.open(dir).field("t2m", 6)``.

A run is hundreds of files (DWD: one per variable, level and step) or a few large multi-field
files (GFS). Opening a run only indexes which bytes hold which (variable, step) and checks each
file's GRIB framing; values are decoded when a frame asks for them, one message at a time, and
a small LRU keeps the last few fields (a precipitation difference or a wind speed needs two).

Names come from the variable catalogue (``config/variables.yaml``, :mod:`framecast.variables`):
canonical base names across models (``t2m``, ``msl``, ``tp``, ``t850``, ``gh500``, ...),
MetPy-derived quantities (``wind850``, ``tp_24h``, ``theta_e850``, ...) and any other GRIB
field by its ecCodes name (``skt``, ``r@isobaricInhPa:700``). Values are float32 in the
catalogue's units ('K', 'Pa', 'kg m**-2', 'm s**-1', '%', 'gpm', 'J kg**-1'), or the GRIB
header's for fields outside it; :meth:`framecast.field.Field.to` converts.

A file set with several analysis times (a reanalysis, an archive) is ordered by valid time:
``run_time`` is the first analysis time and a "step" is hours after it, so each valid time is
one frame; every field keeps its own analysis time in ``attrs["analysis_time"]``.

Decoding uses ecCodes (the library under cfgrib) directly on the indexed message bytes: xarray
and cfgrib would re-scan whole multi-field files and build a dataset per open, which costs more
than the frame needs; cfgrib stays the independent reference decoder in the tests.
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from framecast.dataset.grib import Message, eccodes, message_from_bytes, read_bytes, validate_grib
from framecast.dataset.index import (
    CENTRE_LABELS,
    SUPPORTED_GRIDS,
    Entry,
    RunIndex,
    _index_headers,
    build_index,
    find_files,
)
from framecast.dataset.names import LISTED_TP_PERIODS, grib_name
from framecast.errors import ClimatologyError, DataError, GribError, SpecError
from framecast.field import Field, Grid
from framecast.variables import Catalogue, Derived, GribName, load_catalogue, qualified
from framecast.variables.derived import CLIMATOLOGY_FUNCTIONS, compute

if TYPE_CHECKING:
    import xarray

    from framecast.dataset.climatology import Climatology

__all__ = ["DECODERS", "RunDataset", "ReadStats", "validate_grib"]

#: Ways to decode a field: ecCodes on the indexed bytes (default, fastest) or xarray + cfgrib.
DECODERS = ("eccodes", "cfgrib")

#: Derived functions that need a regular lat-lon grid (finite differences).
REGULAR_GRID_ONLY = frozenset({"vorticity", "divergence", "convergence"})

#: Fields kept decoded (about 3.6 MB each for ICON-EU): enough for tp(step) - tp(step - N)
#: and u/v pairs of consecutive frames.
LRU_SIZE = 6


FIELD_CACHE_ENV = "FRAMECAST_FIELD_CACHE_MB"


def _decoded_budget() -> int:
    """Bytes of decoded fields a process keeps (``FRAMECAST_FIELD_CACHE_MB``, default 160 MB:
    44 ICON-EU fields of 3.6 MB, enough for one product's 24 h window of 2 steps on both
    regions; 0 turns it off)."""
    raw = os.environ.get(FIELD_CACHE_ENV, "").strip() or "160"
    try:
        mb = float(raw)
    except ValueError:
        raise DataError(f"{FIELD_CACHE_ENV}={raw!r}: expected a size in MB (e.g. 160)") from None
    if mb < 0:
        raise DataError(f"{FIELD_CACHE_ENV}={raw!r}: expected a size in MB >= 0")
    return int(mb * 2**20)


class _DecodedFields:
    """Decoded fields shared by every dataset of this process (see
    ``RunDataset._decode_shared``), least recently used first, bounded in bytes."""

    def __init__(self) -> None:
        self.fields: OrderedDict[tuple, Field] = OrderedDict()
        self.nbytes = 0

    def get(self, key: tuple) -> Field | None:
        hit = self.fields.get(key)
        if hit is not None:
            self.fields.move_to_end(key)
        return hit

    def clear(self) -> None:
        self.fields.clear()
        self.nbytes = 0

    def put(self, key: tuple, fld: Field, budget: int) -> None:
        self.fields[key] = fld
        self.nbytes += fld.values.nbytes
        while len(self.fields) > 1 and self.nbytes > budget:
            self.nbytes -= self.fields.popitem(last=False)[1].values.nbytes


_DECODED = _DecodedFields()


class Keys(Protocol):
    """GRIB header keys of one message: an ecCodes message or cfgrib's attribute mapping."""

    def get(self, key: str) -> Any: ...


@dataclass
class ReadStats:
    """Counters of real work done: what laziness promises is checkable."""

    messages_decoded: int = 0
    bytes_read: int = 0
    cache_hits: int = 0


class RunDataset:
    """One model run, opened lazily. Use :meth:`open`; close (or ``with``) when done."""

    def __init__(self, index: RunIndex, source: str, model: str,
                 decoder: str = "eccodes", catalogue: Catalogue | None = None,
                 climatology: Climatology | None = None) -> None:
        if decoder not in DECODERS:
            raise DataError(f"{source}: unknown decoder {decoder!r} (choose from "
                            f"{', '.join(DECODERS)})")
        self.decoder = decoder
        self.catalogue = catalogue or load_catalogue()
        self._index = index
        self._source = source
        self.model = model
        self.multi_time = len(index.run_times) > 1
        if self.multi_time:
            self.run_time, index.entries = index.by_valid_time()
        else:
            self.run_time = next(iter(index.run_times))
        self.steps: list[int] = sorted({s for _, s in index.entries})
        self._names = {n for n, _ in index.entries}
        self._cache: OrderedDict[tuple[str, int], Field] = OrderedDict()
        self._grids: dict[tuple, Grid] = {}
        self.stats = ReadStats()
        self._closed = False
        #: Monthly means anomalies subtract (None: anomalies are not available).
        self.climatology = climatology

    # -- opening --------------------------------------------------------------------------

    @classmethod
    def open(cls, source: Path | Sequence[Path], *, model: str | None = None,
             decoder: str = "eccodes", catalogue: Catalogue | None = None,
             climatology: str | Path | Climatology | None = None) -> RunDataset:
        """Index a run directory (searched recursively) or an explicit list of files.

        Reads no values: only file names, ``.idx`` inventories and GRIB headers. Raises
        GribError for a file that is not (complete) GRIB1/GRIB2 or whose grid cannot be
        drawn, and DataError when nothing usable is found, model files (DWD/NCEP names) of
        several runs are mixed, files of several models are mixed, ``model`` does not match
        or ``decoder`` is not one of :data:`DECODERS`. Other files with several analysis
        times are ordered by valid time (see the module docstring). Without ``model`` and
        without publisher file names, the model label is the GRIB centre (``ECMWF``,
        ``NCEP``, ``DWD``). ``decoder="cfgrib"`` decodes fields with
        ``xarray.open_dataset(engine="cfgrib")`` instead of ecCodes on the indexed bytes:
        the same fields, several times slower (see :mod:`framecast.dataset.cfgrib_decode`).
        ``climatology``: the monthly-means file (or an opened
        :class:`~framecast.dataset.climatology.Climatology`) anomalies subtract; it is
        indexed now, so a missing or unreadable file fails here (ClimatologyError).
        """
        if decoder not in DECODERS:
            raise DataError(f"{source}: unknown decoder {decoder!r} (choose from "
                            f"{', '.join(DECODERS)})")
        src = source if isinstance(source, (str, Path)) else [Path(p) for p in source]
        files = find_files(src)
        where = str(source) if isinstance(source, (str, Path)) else f"{len(files)} files"
        index = build_index(files)
        if not index.entries:
            raise DataError(f"{where}: no fields framecast knows in {len(files)} GRIB file(s)")
        if len(index.run_times) > 1 and index.named_runs:
            runs = ", ".join(f"{t:%Y%m%d%H} ({p.name})" for t, p in sorted(index.run_times.items()))
            raise DataError(f"{where}: files of several runs ({runs}); open one run at a time")
        if len(index.models) > 1:
            raise DataError(f"{where}: files of several models ({', '.join(sorted(index.models))})")
        found = next(iter(index.models), None)
        if model is not None and found is not None and model != found:
            raise DataError(f"{where}: holds {found} files, not {model}")
        clim = None
        if climatology is not None:
            from framecast.dataset.climatology import Climatology

            clim = climatology if isinstance(climatology, Climatology) \
                else Climatology.open(climatology)
        return cls(index, where, model or found or centre_label(index.centres), decoder,
                   catalogue, clim)

    def __enter__(self) -> RunDataset:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Drop cached fields and grids (the dataset holds no open file handles)."""
        self._cache.clear()
        self._grids.clear()
        self._closed = True

    def __repr__(self) -> str:
        return (f"RunDataset({self.model} {self.run_time:%Y-%m-%d %HZ}, {len(self.steps)} steps, "
                f"{len(self._names)} variables, from {self._source}, decoder {self.decoder})")

    # -- what is there --------------------------------------------------------------------

    def variables(self) -> list[str]:
        """Names available: base names present plus the derived ones their inputs allow.

        Derived names with a ``{level}`` are listed for the levels present, ``{hours}``
        windows for 1, 3, 6, 12 and 24 h; any other level or window works in :meth:`field`.
        """
        names = set(self._names)
        levels = sorted({int(m.group(1)) for n in self._names
                         if (m := re.match(r"^[a-z]+?([0-9]+)$", n))})
        for template in self.catalogue.derived_names():
            for candidate in _instances(template, levels):
                spec = self.catalogue.derived(candidate)
                if spec is not None and self._derivable(spec):
                    names.add(candidate)
        return sorted(names)

    def _derivable(self, spec: Derived) -> bool:
        if spec.function in REGULAR_GRID_ONLY and self._index.invariants:
            return False  # horizontal derivatives on ICON's cells are not implemented
        if not self._has_climatology(spec):
            return False
        for i in spec.inputs:
            sub = self.catalogue.derived(i)
            if sub is not None:
                if not self._derivable(sub):
                    return False
            elif i not in self._names:
                return False
        return True

    def _has_climatology(self, spec: Derived) -> bool:
        """Whether the climatology an anomaly needs is there (true for everything else)."""
        if spec.function not in CLIMATOLOGY_FUNCTIONS:
            return True
        return self.climatology is not None and all(self.climatology.has(i)
                                                    for i in spec.inputs)

    def climate(self, name: str, like: Field) -> Field:
        """The long-term mean of ``name`` for ``like``'s valid month, on ``like``'s grid.

        The month is the VALID time's (run + step): a 31 January run at +24 h is a February
        frame. ClimatologyError when no climatology was given or it lacks the field or month.
        """
        if self.climatology is None:
            raise ClimatologyError(
                f"the climatology of {name!r} is needed (an anomaly), but no climatology file "
                f"was given for {self.model} (models.{self.model}.climatology in models.yaml, "
                f"or --climatology)")
        values = self.climatology.on_grid(name, like.valid_time, like.grid)
        units = self.catalogue.units_of(name) or like.units
        return Field(name, units, values, like.grid, like.run_time, like.step, like.valid_time,
                     {"source": str(self.climatology.path),
                      "month": str(like.valid_time.month)})

    def files(self) -> list[Path]:
        """Every data file indexed (e.g. for a manifest or clean-up)."""
        return sorted({e.path for e in self._index.entries.values()})

    def has(self, name: str, step: int) -> bool:
        """Whether ``field(name, step)`` has its inputs in the index (nothing is decoded)."""
        step = int(step)
        spec = self.catalogue.derived(name)
        if spec is not None:
            if not self._has_climatology(spec):
                return False
            if not all(self.has(i, step) for i in spec.inputs):
                return False
            before = step - int(spec.params.get("hours", 0))
            if spec.function == "window_sum" and before > 0:
                return all(self.has(i, before) for i in spec.inputs)
            return True
        key = self._key_of(name, quiet=True)
        if key is None:
            return False
        if key in self._zero_at_start and step == 0 and key in self._names:
            return True  # synthesised zero where the file lacks it (GFS f000)
        return (key, step) in self._index.entries

    def available_steps(self, name: str) -> list[int]:
        """Steps at which ``name`` (base or GRIB name) is in the index."""
        key = self._key_of(name, quiet=True)
        if key is None:
            return []
        steps = self._steps_of(key)
        if key in self._zero_at_start and steps and 0 not in steps:
            steps = [0, *steps]
        return steps

    @property
    def _zero_at_start(self) -> frozenset[str]:
        """Accumulated catalogue variables (tp, rain, snow): zero at step 0 by definition."""
        return frozenset(n for n in self._names
                         if (v := self.catalogue.variables.get(n)) is not None and v.accumulated)

    def _key_of(self, name: str, *, quiet: bool = False, step: int | None = None) -> str | None:
        """The index name holding ``name``: itself, its catalogue name or its full GRIB name.

        ``quiet``: None instead of DataError when the data has no such field.
        """
        if name in self._names:
            return name
        try:
            found = self.catalogue.resolve(name)
        except SpecError as exc:  # UnknownVariableError, with close matches
            if quiet:
                return None
            at = "" if step is None else f" (step {step})"
            raise DataError(f"{exc}{at} (in {self._source})") from None
        if isinstance(found, Derived):
            return None
        if not isinstance(found, GribName):
            if found.name in self._names:
                return found.name
            if quiet:
                return None
            raise self._missing(found.name, step)
        matches = sorted(n for n in self._names if _grib_matches(found, n))
        if not matches and self._index.idx_files:
            for path in self._index.idx_files:  # fields a .idx inventory did not name
                _index_headers(path, self._index, raw_only=True)
            self._index.idx_files = []
            self._names = {n for n, _ in self._index.entries}
            self.steps = sorted({s for _, s in self._index.entries})
            matches = sorted(n for n in self._names if _grib_matches(found, n))
        if len(matches) == 1:
            return matches[0]
        if quiet:
            return None
        if not matches:
            raise self._missing(name, step)
        raise DataError(f"GRIB name {name!r} matches several fields in {self._source}: "
                        f"{', '.join(matches)}; name one of them")

    # -- xarray ---------------------------------------------------------------------------

    def to_xarray(self, names: Sequence[str] | None = None) -> xarray.Dataset:
        """A lazy ``xarray.Dataset`` of the run: one data variable per canonical name.

        Dimensions ``step`` and ``latitude``/``longitude`` (regular grids) or ``values``
        (ICON's cells, with per-cell ``latitude``/``longitude``); ``valid_time`` along
        ``step``; ``units`` and ``long_name`` attributes. Building it decodes no values (ICON:
        the CLAT/CLON coordinates once); indexing one step decodes one message per base
        variable involved, via :meth:`field`. Steps a variable lacks read as NaN. Keep the
        dataset open while the view is used. ``names`` default: :meth:`variables`.
        """
        from framecast.dataset.xarray_view import build_view

        if self._closed:
            raise DataError(f"{self._source}: dataset is closed")
        wanted = list(dict.fromkeys(self.variables() if names is None else names))
        available = {n: [self.has(n, s) for s in self.steps] for n in wanted}
        for n, flags in available.items():
            if not any(flags):
                raise DataError(f"variable {n!r} is not available at any step in {self._source} "
                                f"({self.model} run {self.run_time:%Y%m%d%H}); available: "
                                f"{', '.join(self.variables())}")
        grid = self._view_grid(wanted)
        attrs = {"model": self.model, "source": self._source, "decoder": self.decoder,
                 "forecast_reference_time": self.run_time.isoformat()}
        return build_view(self.field, wanted, self.steps, available, grid, self.run_time, attrs)

    def _view_grid(self, names: list[str]) -> Grid:
        """The grid of the first requested variable, from one message's header keys."""
        entry = None
        for n in names:
            inputs = sorted(self.catalogue.base_inputs(n)) if self.catalogue.derived(n) \
                else [self._key_of(n, quiet=True) or n]
            entry = next((e for (b, _), e in self._index.entries.items() if b == inputs[0]),
                         None)
            if entry is not None:
                break
        entry = entry or next(iter(self._index.entries.values()))
        raw = read_bytes(entry.path, entry.offset, entry.length)
        self.stats.bytes_read += len(raw)
        msg = message_from_bytes(raw, entry.path)
        try:
            return self._grid(msg, entry)
        finally:
            msg.close()

    def grid(self, name: str) -> Grid:
        """The grid ``name`` lives on, from one message's header (no values decoded)."""
        if self._closed:
            raise DataError(f"{self._source}: dataset is closed")
        return self._view_grid([name])

    def values_at(self, name: str, step: int, indexes: np.ndarray) -> np.ndarray:
        """Base variable ``name`` at ``step`` at flat grid ``indexes`` only (float64).

        For point forecasts: the message is read, identified and decoded as in :meth:`field`,
        but neither cached nor converted to a field: only the values at ``indexes`` are kept,
        so reading a run for many places holds one message's values at a time. (ecCodes'
        ``codes_get_double_elements`` measured no faster than decoding the whole message.)
        The result is what :meth:`field` gives at those indexes (same scale, NaN missing).
        """
        if self._closed:
            raise DataError(f"{self._source}: dataset is closed")
        step = int(step)
        idx = np.asarray(indexes, dtype=np.int64)
        key = self._key_of(name, step=step)
        cached = self._cache.get((key, step))
        if cached is not None:
            self.stats.cache_hits += 1
            return cached.values.ravel()[idx].astype(np.float64)
        entry = self._index.entries.get((key, step))
        if entry is None:
            if key in self._zero_at_start and step == 0:
                return np.zeros(idx.size)
            raise self._missing(key, step)
        if self.decoder == "cfgrib":
            return self._decode(entry).values.ravel()[idx].astype(np.float64)
        raw = read_bytes(entry.path, entry.offset, entry.length)
        self.stats.bytes_read += len(raw)
        msg = message_from_bytes(raw, entry.path)
        try:
            found, grid = self._identify(msg, entry)
            n = int(np.prod(grid.shape))
            if idx.size and (idx.min() < 0 or idx.max() >= n):
                raise DataError(f"{entry.path}: point index out of range for a grid of {n}")
            values = msg.values()[idx]
            self.stats.messages_decoded += 1
        finally:
            msg.close()
        return values * found[1] if found[1] != 1.0 else values

    # -- fields ---------------------------------------------------------------------------

    def field(self, name: str, step: int) -> Field:
        """``name`` at forecast hour ``step``, decoded now (or from the small LRU)."""
        if self._closed:
            raise DataError(f"{self._source}: dataset is closed")
        step = int(step)
        spec = self.catalogue.derived(name)
        if spec is not None:
            return compute(spec, step, self)
        return self._base(self._key_of(name, step=step), step)

    def _missing(self, name: str, step: int | None) -> DataError:
        at = "" if step is None else f" (step {step})"
        if name not in self._names:
            import difflib

            close = difflib.get_close_matches(name, sorted(self._names | set(self.variables())),
                                              n=5, cutoff=0.5)
            hint = f"; close matches: {', '.join(close)}" if close else ""
            return DataError(f"variable {name!r}{at} not found in {self._source} "
                             f"({self.model} run {self.run_time:%Y%m%d%H}){hint}; available: "
                             f"{', '.join(self.variables())}")
        return DataError(f"variable {name!r} has no step {step} in {self._source} "
                         f"({self.model} run {self.run_time:%Y%m%d%H}); steps present: "
                         f"{_ranges(self._steps_of(name))}")

    def _steps_of(self, name: str) -> list[int]:
        return sorted(s for n, s in self._index.entries if n == name)

    def _base(self, name: str, step: int) -> Field:
        key = (name, step)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            self.stats.cache_hits += 1
            return cached
        entry = self._index.entries.get(key)
        if entry is None:
            if name in self._zero_at_start and step == 0:
                return self._zero(name)
            raise self._missing(name, step)
        fld = self._decode_shared(entry)
        self._cache[key] = fld
        while len(self._cache) > LRU_SIZE:
            self._cache.popitem(last=False)
        return fld

    def _decode_shared(self, entry: Entry) -> Field:
        """:meth:`_decode` through the process-wide cache of decoded fields.

        A render task opens the run once per product and region, and the products of one
        chunk need the same few fields (mean sea-level pressure, 2 m temperature, winds) on
        every region, so each would decode them again. The key holds the file's identity
        (device, inode, size, mtime), so a file replaced by a later download is decoded anew;
        values are read-only, so no caller can change another's field.
        """
        budget = _decoded_budget()
        try:
            st = os.stat(entry.path)
        except OSError:
            return self._decode(entry)  # let the decoder name the missing file
        if budget == 0:
            return self._decode(entry)
        base = self.catalogue.base(entry.name)  # its units and scale shape the field too
        key = (str(entry.path), entry.offset, entry.length, st.st_dev, st.st_ino, st.st_size,
               st.st_mtime_ns, self.decoder, self.model, self.run_time,
               None if base is None else (base.units, base.dwd_scale))
        hit = _DECODED.get(key)
        if hit is not None:
            self.stats.cache_hits += 1
            return hit
        fld = self._decode(entry)
        _DECODED.put(key, fld, budget)
        return fld

    def _decode(self, entry: Entry) -> Field:
        if self.decoder == "cfgrib":
            from framecast.dataset.cfgrib_decode import decode_entry

            keys, values, nbytes = decode_entry(entry)
            self.stats.bytes_read += nbytes
            found, grid = self._identify(keys, entry)
            units = keys.get("units")
            scan = (keys.get("iScansNegatively"), keys.get("jPointsAreConsecutive"))
            self.stats.messages_decoded += 1
        else:
            raw = read_bytes(entry.path, entry.offset, entry.length)
            self.stats.bytes_read += len(raw)
            msg = message_from_bytes(raw, entry.path)
            try:
                found, grid = self._identify(msg, entry)
                units = msg.get("units")
                scan = (msg.get("iScansNegatively"), msg.get("jPointsAreConsecutive"))
                values = msg.values()
                self.stats.messages_decoded += 1
            finally:
                msg.close()
        if values.size != int(np.prod(grid.shape)):
            raise GribError(f"{entry.path}: {values.size} values for a grid of {grid.shape} "
                            f"(variable {entry.name!r} step {entry.step})")
        values = values.astype(np.float32)
        if grid.kind == "regular" and scan[1]:  # columns first: j varies fastest
            values = values.reshape(grid.shape[::-1]).T
        values = np.ascontiguousarray(values.reshape(grid.shape))
        if grid.kind == "regular" and scan[0]:  # east to west: the grid's lons ascend
            values = np.ascontiguousarray(values[:, ::-1])
        if found[1] != 1.0:
            values *= np.float32(found[1])
        values.flags.writeable = False  # cached and shared: callers must not change it
        units = self.catalogue.units_of(entry.name) or str(units or "1")
        run = entry.run_time or self.run_time
        valid = run + timedelta(hours=entry.step)
        step = int((valid - self.run_time).total_seconds() // 3600)
        attrs = {"model": self.model, "source": str(entry.path),
                 "analysis_time": run.isoformat(), "lead_hours": str(entry.step)}
        return Field(entry.name, units, values, grid, self.run_time, step, valid, attrs)

    def _identify(self, msg: Keys, entry: Entry) -> tuple[tuple[str, float], Grid]:
        """Check that the message is the promised (name, run, step); its name/scale and grid.

        ``msg`` is an ecCodes :class:`Message` or the key mapping cfgrib reported: both
        decoders share this check and the grids, so their fields are interchangeable.
        """
        short, tol, level = _identity(msg)
        found = grib_name(short, tol, level)
        if found is None and "@" in entry.name:
            found = (qualified(short, tol, level), 1.0)
        elif found is None and entry.length is None:
            # A publisher-named file (one field per file, named by DWD) whose header the
            # catalogue has no identity for: the file name is authoritative.
            base = self.catalogue.base(entry.name)
            found = (entry.name, base.dwd_scale if base is not None else 1.0)
        if found is None or found[0] != entry.name:
            raise GribError(f"{entry.path}: expected {entry.name!r} (step {entry.step}) at byte "
                            f"{entry.offset}, found shortName={short!r} "
                            f"typeOfLevel={tol!r} level={level}")
        self._check_times(msg, entry)
        return found, self._grid(msg, entry)

    def _check_times(self, msg: Keys, entry: Entry) -> None:
        run = datetime.strptime(f"{msg.get('dataDate'):08d}{msg.get('dataTime'):04d}",
                                "%Y%m%d%H%M").replace(tzinfo=UTC)
        step = int(msg.get("endStep"))
        expected = entry.run_time or self.run_time
        if run != expected or step != entry.step:
            raise GribError(f"{entry.path}: holds run {run:%Y%m%d%H} step {step}, the file "
                            f"name/index says run {expected:%Y%m%d%H} step {entry.step}")
        if entry.name in self._zero_at_start and not self.multi_time \
                and int(msg.get("startStep")) != 0:
            raise DataError(f"{entry.path}: {entry.name} at step {step} is accumulated from step "
                            f"{msg.get('startStep')}, not from the run start")

    # -- grids ----------------------------------------------------------------------------

    def _grid(self, msg: Keys, entry: Entry) -> Grid:
        kind = msg.get("gridType")
        if kind == "regular_ll":
            key = tuple(msg.get(k) for k in (
                "Ni", "Nj", "latitudeOfFirstGridPointInDegrees",
                "latitudeOfLastGridPointInDegrees", "longitudeOfFirstGridPointInDegrees",
                "longitudeOfLastGridPointInDegrees", "iScansNegatively", "jPointsAreConsecutive"))
            if key not in self._grids:
                self._grids[key] = _regular_grid(*key, path=entry.path)
            return self._grids[key]
        if kind == "unstructured_grid":
            n = int(msg.get("numberOfDataPoints"))
            uuid = msg.get("uuidOfHGrid")
            key = ("unstructured", n, str(uuid))
            if key not in self._grids:
                self._grids[key] = self._icon_grid(n, uuid, entry.path)
            return self._grids[key]
        if kind in SUPPORTED_GRIDS:
            key = ("points", str(kind), int(msg.get("numberOfDataPoints")),
                   str(msg.get("md5GridSection")))
            if key not in self._grids:
                self._grids[key] = self._point_grid(entry)
            return self._grids[key]
        raise GribError(f"{entry.path}: grid type {kind!r} is not supported "
                        f"(supported: {', '.join(sorted(SUPPORTED_GRIDS))})")

    def _point_grid(self, entry: Entry) -> Grid:
        """A grid given by each point's coordinates (Lambert, polar stereographic, Gaussian
        ...), computed by ecCodes from the grid definition; drawn like ICON's cells."""
        msg = message_from_bytes(read_bytes(entry.path, entry.offset, entry.length), entry.path)
        try:
            lats = eccodes.codes_get_array(msg.handle, "latitudes")
            lons = eccodes.codes_get_array(msg.handle, "longitudes")
        except eccodes.GribInternalError as exc:
            raise GribError(f"{entry.path}: cannot compute the coordinates of its "
                            f"{msg.get('gridType')!r} grid: {exc}") from None
        finally:
            msg.close()
        lons = (np.asarray(lons, dtype=np.float64) + 180.0) % 360.0 - 180.0
        return Grid("unstructured", np.asarray(lats, dtype=np.float64), lons)

    def _icon_grid(self, n: int, uuid: object, data_path: Path) -> Grid:
        coords = {}
        for name in ("CLAT", "CLON"):
            path = self._index.invariants.get(name)
            if path is None:
                raise DataError(f"{data_path}: unstructured grid needs the {name} file "
                                f"(icon_global_icosahedral_time-invariant_*_{name}.grib2[.bz2]) "
                                f"in {self._source}, none found")
            msg = message_from_bytes(read_bytes(path, 0, None), path)
            try:
                values = msg.values()
                c_uuid = msg.get("uuidOfHGrid")
            finally:
                msg.close()
            self.stats.messages_decoded += 1
            if values.size != n:
                raise DataError(f"{path}: {values.size} cells, but {data_path} has {n}: "
                                f"coordinates of a different grid")
            if uuid and c_uuid and str(uuid) != str(c_uuid):
                raise DataError(f"{path}: grid uuid {c_uuid} differs from {data_path}'s {uuid}")
            coords[name] = values
        return Grid("unstructured", coords["CLAT"], coords["CLON"])

    # -- accumulations ---------------------------------------------------------------------

    def _zero(self, name: str) -> Field:
        """An accumulation at step 0 where the file lacks it (GFS f000): nothing fell yet."""
        first = self._steps_of(name)[0]
        like = self._base(name, first)
        return Field(name, like.units, np.zeros_like(like.values), like.grid, self.run_time, 0,
                     self.run_time, dict(like.attrs, synthesized="zero at the run start"))


def centre_label(centres: set[str]) -> str:
    """A source label from GRIB centre codes (``kwbc`` -> ``NCEP``), ``grib`` if unknown."""
    if len(centres) == 1:
        code = next(iter(centres))
        return CENTRE_LABELS.get(code, code.upper() if code.isalnum() else "grib")
    if centres:
        return "+".join(CENTRE_LABELS.get(c, c.upper()) for c in sorted(centres))
    return "grib"


def _grib_matches(name: GribName, index_name: str) -> bool:
    """Whether an index name (``skt@surface:0``) is the field a GRIB name asks for."""
    if "@" not in index_name:
        return False
    short, rest = index_name.split("@", 1)
    tol, _, level = rest.partition(":")
    return name.matches(short, tol, int(level or 0))


def _instances(template: str, levels: list[int]) -> list[str]:
    if "{level}" in template:
        return [template.replace("{level}", str(lv)) for lv in levels]
    if "{hours}" in template:
        return [template.replace("{hours}", str(h)) for h in LISTED_TP_PERIODS]
    return [template]


#: GRIB keys that determine ecCodes' shortName/typeOfLevel/level (tables, parameter, level).
_IDENTITY_KEYS = ("editionNumber", "centre", "subCentre", "tablesVersion", "localTablesVersion",
                  # GRIB1 names its parameter and level with these instead
                  "table2Version", "indicatorOfParameter", "indicatorOfTypeOfLevel", "level",
                  "timeRangeIndicator", "discipline",
                  "parameterCategory", "parameterNumber", "productDefinitionTemplateNumber",
                  "typeOfStatisticalProcessing", "typeOfFirstFixedSurface",
                  "scaleFactorOfFirstFixedSurface", "scaledValueOfFirstFixedSurface",
                  "typeOfSecondFixedSurface")
_IDENTITIES: dict[tuple, tuple[str, str, int]] = {}


def _identity(msg: Keys) -> tuple[str, str, int]:
    """shortName, typeOfLevel and level of a message.

    ecCodes computes ``shortName`` by matching concept tables, about 10 ms per new message
    (more than decoding its values); the integer keys it derives from cost microseconds, so
    the answer is remembered per combination of them. cfgrib's key mappings are read as is.
    """
    if not isinstance(msg, Message):
        return (str(msg.get("shortName")), str(msg.get("typeOfLevel")),
                int(msg.get("level") or 0))
    key = tuple(msg.get(k) for k in _IDENTITY_KEYS)
    found = _IDENTITIES.get(key)
    if found is None:
        found = (str(msg.get("shortName")), str(msg.get("typeOfLevel")),
                 int(msg.get("level") or 0))
        _IDENTITIES[key] = found
    return found


def _regular_grid(ni: int, nj: int, lat1: float, lat2: float, lon1: float, lon2: float,
                  i_neg: int, j_consecutive: int, *, path: Path) -> Grid:
    """Axes of a regular lat-lon grid; rows in scanning order (north-south either way),
    longitudes ascending (values of an east-to-west message are reversed when decoded)."""
    lats = np.linspace(lat1, lat2, int(nj))
    if i_neg:
        lon1, lon2 = lon2, lon1
    if lon2 < lon1:  # crosses the date line or Greenwich as 0..360 (ICON-EU: 336.5 .. 62.5)
        lon1 -= 360.0
    lons = np.linspace(lon1, lon2, int(ni))
    return Grid("regular", lats, lons)


def _ranges(steps: list[int]) -> str:
    """Compact step list for messages: '0-12, 15-30/3'."""
    if not steps:
        return "none"
    parts, i = [], 0
    while i < len(steps):
        j = i
        if i + 1 < len(steps):
            d = steps[i + 1] - steps[i]
            while j + 1 < len(steps) and steps[j + 1] - steps[j] == d:
                j += 1
        if j - i >= 2:
            d = steps[i + 1] - steps[i]
            parts.append(f"{steps[i]}-{steps[j]}" + (f"/{d}" if d != 1 else ""))
            i = j + 1
        else:
            parts.append(str(steps[i]))
            i += 1
    return ", ".join(parts)
