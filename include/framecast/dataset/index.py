"""Which file (and byte range) holds which (variable, step) of a run, found without decoding.

Three sources, cheapest first:

* DWD open-data file names carry model, run, step, level and variable: no read at all apart
  from a 16-byte header check and the last 4 bytes (``7777``) of each file.
* A wgrib2 ``.idx`` next to a multi-field file (GFS) gives each record's byte offset (used
  when its offsets match the file's message boundaries: 16 bytes read per message).
* Any other GRIB file (edition 1 or 2): its headers are read with ecCodes (``headers_only``),
  values skipped. Fields the catalogue knows get their canonical name; every other field is
  indexed under its full GRIB name ``shortName@typeOfLevel:level`` so it can be plotted too.

Files holding several analysis times (reanalyses) are indexed per analysis time; the dataset
then orders them by valid time (see :meth:`RunIndex.by_valid_time`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from framecast.dataset.grib import (
    check_bz2_head,
    check_message_at,
    eccodes,
    is_bz2,
    message_spans,
)
from framecast.dataset.names import DWD_FILE, DWD_MODELS, dwd_name, grib_name
from framecast.dataset.names import idx_name as idx_canonical
from framecast.errors import DataError, GribError
from framecast.variables.gribname import qualified

#: Grid types the renderer draws: regular lat-lon directly, everything whose points ecCodes
#: can locate (Lambert, polar stereographic, reduced/regular Gaussian, rotated lat-lon,
#: Mercator, ICON's unstructured cells with CLAT/CLON) through per-point coordinates.
SUPPORTED_GRIDS = frozenset({
    "regular_ll", "unstructured_grid", "lambert", "polar_stereographic", "reduced_gg",
    "regular_gg", "rotated_ll", "mercator", "lambert_azimuthal_equal_area", "reduced_ll",
})

#: Short labels of the originating centres most users meet (GRIB ``centre`` key).
CENTRE_LABELS = {"ecmf": "ECMWF", "kwbc": "NCEP", "edzw": "DWD", "lfpw": "Meteo-France",
                 "egrr": "UKMO", "cwao": "CMC", "rjtd": "JMA", "babj": "CMA", "ammc": "BoM",
                 "lowm": "GeoSphere", "eswi": "SMHI", "enmi": "MET Norway", "knmi": "KNMI",
                 "lssw": "MeteoSwiss", "ekmi": "DMI", "efkl": "FMI"}

GFS_FILE = re.compile(r"^gfs\.t(?P<hh>\d{2})z\.pgrb2\.(?P<res>\w+)\.f(?P<step>\d{3,4})$")
IDX_LINE = re.compile(r"^(?P<n>\d+(?:\.\d+)?):(?P<offset>\d+):d=(?P<run>\d{10}):"
                      r"(?P<var>[^:]+):(?P<level>[^:]+):(?P<fcst>[^:]*):")
IDX_FCST = re.compile(r"^(?:(?P<h>\d+) hour fcst|(?P<a>\d+)-(?P<b>\d+) hour (?:acc|max|ave|min)"
                      r" fcst|(?P<anl>anl))$")


@dataclass(frozen=True)
class Entry:
    """One field's location: file, byte offset/length (None: to the end), start of period."""

    name: str
    step: int
    path: Path
    offset: int = 0
    length: int | None = None
    start_step: int = 0
    run_time: datetime | None = None  # analysis time of this message (None: the run's)


@dataclass
class RunIndex:
    """Everything found in a run: entries, run time, model, coordinate files."""

    entries: dict[tuple[str, int], Entry] = field(default_factory=dict)
    run_times: dict[datetime, Path] = field(default_factory=dict)
    models: set[str] = field(default_factory=set)
    invariants: dict[str, Path] = field(default_factory=dict)  # CLAT/CLON -> path
    files: int = 0
    centres: set[str] = field(default_factory=set)  # GRIB centre codes seen in headers
    named_runs: set[datetime] = field(default_factory=set)  # run times from DWD/GFS names
    idx_files: list[Path] = field(default_factory=list)  # indexed from a .idx only
    by_run: dict[datetime, dict[tuple[str, int], Entry]] = field(default_factory=dict)

    def copy(self) -> RunIndex:
        """An independent copy (entries are immutable; the tables holding them are copied)."""
        return RunIndex(entries=dict(self.entries), run_times=dict(self.run_times),
                        models=set(self.models), invariants=dict(self.invariants),
                        files=self.files, centres=set(self.centres),
                        named_runs=set(self.named_runs), idx_files=list(self.idx_files),
                        by_run={k: dict(v) for k, v in self.by_run.items()})

    def add(self, entry: Entry, run_time: datetime) -> None:
        self.run_times.setdefault(run_time, entry.path)
        entry = Entry(entry.name, entry.step, entry.path, entry.offset, entry.length,
                      entry.start_step, run_time)
        key = (entry.name, entry.step)
        for table in (self.entries, self.by_run.setdefault(run_time, {})):
            old = table.get(key)
            # Prefer the accumulation from the run start when a file has several periods.
            if old is None or (entry.start_step == 0 and old.start_step != 0):
                table[key] = entry

    def by_valid_time(self) -> tuple[datetime, dict[tuple[str, int], Entry]]:
        """Entries keyed by (name, hours after the first analysis), for multi-time files.

        Where several analysis times give the same valid time, the latest analysis (the
        shortest lead) wins: it is the best estimate of that time.
        """
        base = min(self.by_run)
        out: dict[tuple[str, int], Entry] = {}
        for run in sorted(self.by_run):
            offset = int((run - base).total_seconds() // 3600)
            for (name, step), e in self.by_run[run].items():
                out[(name, step + offset)] = e
        return base, out


def _run_time(stamp: str, path: Path) -> datetime:
    try:
        return datetime.strptime(stamp, "%Y%m%d%H").replace(tzinfo=UTC)
    except ValueError:
        raise DataError(f"{path}: bad run time {stamp!r} in the file name") from None


def find_files(source: Path | list[Path]) -> list[Path]:
    """GRIB files of a run: a directory searched recursively, or an explicit list."""
    if isinstance(source, (str, os.PathLike)):
        root = Path(source)
        if not root.exists():
            raise DataError(f"run source {root} does not exist")
        if root.is_file():
            return [root]
        found = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                if name.startswith("."):
                    continue  # temporary files of writers in progress
                if (name.endswith((".grib2", ".grib2.bz2", ".grb2", ".grib", ".grb", ".grib1",
                                   ".grb1")) or GFS_FILE.match(name)):
                    found.append(Path(dirpath) / name)
        if not found:
            raise DataError(f"no GRIB files (*.grib2, *.grib2.bz2, *.grib, *.grb, gfs.*.fNNN) "
                            f"under {root}")
        return found
    files = [Path(p) for p in source]
    if not files:
        raise DataError("run source: empty file list")
    for p in files:
        if not p.is_file():
            raise DataError(f"run source file {p} does not exist")
    return files


def _check_file(path: Path) -> None:
    if is_bz2(path):
        check_bz2_head(path)
    else:
        check_message_at(path, 0)


def _index_dwd(path: Path, m: re.Match, index: RunIndex) -> None:
    index.models.add(DWD_MODELS[m["model"]])
    if m["var3"]:
        run = _run_time(m["run3"], path)
        index.run_times.setdefault(run, path)
        index.invariants[m["var3"]] = path
        _check_file(path)
        return
    if m["var1"]:
        found = dwd_name(m["var1"], None)
        run, step = m["run1"], int(m["step1"])
    else:
        found = dwd_name(m["var2"], int(m["lev"]))
        run, step = m["run2"], int(m["step2"])
    if found is None:
        return  # a DWD variable the catalogue does not list (add it to variables.yaml)
    _check_file(path)
    rt = _run_time(run, path)
    index.named_runs.add(rt)
    index.add(Entry(found[0], step, path), rt)


def _idx_matches(path: Path, offsets: list[int], size: int) -> bool:
    """True when every inventory offset starts a whole message that ends where the next begins.

    A subset download (ranged requests) or a stale inventory does not match its file; the
    file is then indexed from its own headers instead.
    """
    if offsets[0] != 0 or offsets != sorted(offsets) or offsets[-1] >= size:
        return False
    with open(path, "rb") as fh:
        for i, off in enumerate(offsets):
            fh.seek(off)
            head = fh.read(16)
            if len(head) < 16 or head[:4] != b"GRIB":
                return False
            end = offsets[i + 1] if i + 1 < len(offsets) else size
            if int.from_bytes(head[8:16], "big") != end - off:
                return False
    return True


def _parse_idx(idx: Path, data_path: Path, index: RunIndex) -> bool:
    """Index a multi-field file from its ``.idx``; False when the inventory is unusable."""
    try:
        lines = idx.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return False
    records = []
    for line in lines:
        if not line.strip():
            continue
        m = IDX_LINE.match(line)
        if not m:
            return False
        records.append(m)
    if not records:
        return False
    size = data_path.stat().st_size
    offsets = [int(r["offset"]) for r in records]
    if not _idx_matches(data_path, offsets, size):
        return False
    for i, r in enumerate(records):
        name = idx_canonical(r["var"], r["level"])
        f = IDX_FCST.match(r["fcst"])
        if name is None or f is None:
            continue
        if f["anl"]:
            start, step = 0, 0
        elif f["h"]:
            start, step = 0, int(f["h"])
        else:
            start, step = int(f["a"]), int(f["b"])
        end = offsets[i + 1] if i + 1 < len(offsets) else size
        index.add(Entry(name, step, data_path, offsets[i], end - offsets[i], start),
                  _run_time(r["run"], data_path))
    return True


def _index_headers(path: Path, index: RunIndex, *, raw_only: bool = False) -> None:
    """Index any GRIB file by reading its headers (values are skipped, not decoded).

    ``raw_only`` adds only fields the catalogue does not know (a file first indexed from its
    ``.idx``, asked later for a field by GRIB name).
    """
    if is_bz2(path):
        raise GribError(f"{path}: compressed files must use DWD's naming to be indexed; "
                        f"decompress it first (bunzip2)")
    spans = message_spans(path)  # clear errors for truncation before ecCodes sees the file
    with open(path, "rb") as fh:
        for offset, length in spans:
            fh.seek(offset)
            try:
                h = eccodes.codes_grib_new_from_file(fh, headers_only=True)
            except eccodes.GribInternalError as exc:
                raise GribError(f"{path}: unreadable GRIB message at byte {offset}: "
                                f"{exc}") from None
            if h is None:
                raise GribError(f"{path}: no GRIB message at byte {offset}")
            try:
                short = str(eccodes.codes_get(h, "shortName"))
                tol = str(eccodes.codes_get(h, "typeOfLevel"))
                level = int(eccodes.codes_get(h, "level"))
                found = grib_name(short, tol, level)
                date, time = eccodes.codes_get(h, "dataDate"), eccodes.codes_get(h, "dataTime")
                start = int(eccodes.codes_get(h, "startStep"))
                step = int(eccodes.codes_get(h, "endStep"))
                grid_type = str(eccodes.codes_get(h, "gridType"))
                centre = str(eccodes.codes_get(h, "centre"))
            except eccodes.GribInternalError as exc:
                raise GribError(f"{path}: bad GRIB header at byte {offset}: {exc}") from None
            finally:
                eccodes.codes_release(h)
            if grid_type not in SUPPORTED_GRIDS:
                raise GribError(f"{path}: message at byte {offset} ({short}@{tol}:{level}) is "
                                f"on a {grid_type!r} grid, which framecast cannot draw "
                                f"(supported: {', '.join(sorted(SUPPORTED_GRIDS))})")
            index.centres.add(centre)
            if raw_only and found is not None:
                continue
            name = found[0] if found is not None else qualified(short, tol, level)
            run = _run_time(f"{date:08d}{time // 100:02d}", path)
            index.add(Entry(name, step, path, offset, length, start), run)


#: Indexes built in this process, by the files' identities (see :func:`build_index`).
_BUILT: dict[tuple, RunIndex] = {}
_BUILT_MAX = 4


def _identity(files: list[Path]) -> tuple:
    """What makes an index still true: each file's path, inode, size and change times (a
    download replaces a file by an atomic rename: a new inode)."""
    out = []
    for p in files:
        st = p.stat()
        out.append((str(p), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return tuple(out)


def build_index(files: list[Path]) -> RunIndex:
    """Index ``files`` (see module docstring); GribError names any malformed file.

    Remembered per process while none of the files changes: a render task opens the run once
    per product and region (66 times for a shipped ICON-EU chunk), and indexing a run's
    thousands of files (names, catalogue lookups, a header read each) took 0.5-1.2 s per
    open, more the further the run got. A caller gets its own copy (it may reorder entries).
    """
    key = _identity(files)
    hit = _BUILT.get(key)
    if hit is None:
        hit = _build_index(files)
        while len(_BUILT) >= _BUILT_MAX:
            _BUILT.pop(next(iter(_BUILT)))
        _BUILT[key] = hit
    return hit.copy()


def _build_index(files: list[Path]) -> RunIndex:
    index = RunIndex()
    for path in files:
        index.files += 1
        m = DWD_FILE.match(path.name)
        if m:
            _index_dwd(path, m, index)
            continue
        named = GFS_FILE.match(path.name)
        if named:
            index.models.add("gfs")
        idx = path.with_name(path.name + ".idx")
        before = set(index.run_times)
        if idx.is_file() and _parse_idx(idx, path, index):
            check_message_at(path, 0)
            index.idx_files.append(path)
        else:
            _index_headers(path, index)
        if named:
            index.named_runs.update(set(index.run_times) - before)
    return index
