"""Decode one indexed field with xarray + cfgrib instead of ecCodes on the message bytes.

This is the ``decoder="cfgrib"`` path of :class:`framecast.dataset.RunDataset`: the run is
indexed the same way, but a field's values and header keys come from
``xarray.open_dataset(path, engine="cfgrib")``. It is slower than the default (cfgrib builds a
dataset per open and scans a multi-field file's headers to filter it) and exists so that the
layer's results can be checked against, and produced by, the stack analysts already trust.

cfgrib opens file paths only, so:

* a DWD single-message file is opened as it is (no filter);
* one message of a multi-field file (GFS) is selected with ``filter_by_keys`` built from that
  message's own header (shortName, typeOfLevel, level, startStep, endStep), read with ecCodes
  ``headers_only`` at the indexed offset;
* a ``.bz2`` file is decompressed into a private temporary directory that is removed at once.

The header keys the dataset layer checks (names, times, grid) are asked from cfgrib with
``read_keys`` and returned as a plain mapping, so validation and grids are shared with the
ecCodes path and both decoders give identical :class:`framecast.field.Field` objects.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from framecast.dataset.grib import eccodes, is_bz2, read_bytes
from framecast.dataset.index import Entry
from framecast.errors import GribError

#: GRIB keys the dataset layer needs from each message (names, times, grid definition).
READ_KEYS = (
    "shortName", "typeOfLevel", "level", "dataDate", "dataTime", "startStep", "endStep",
    "gridType", "Ni", "Nj", "numberOfDataPoints", "uuidOfHGrid",
    "latitudeOfFirstGridPointInDegrees", "latitudeOfLastGridPointInDegrees",
    "longitudeOfFirstGridPointInDegrees", "longitudeOfLastGridPointInDegrees",
    "iScansNegatively", "jPointsAreConsecutive",
)
#: Keys that single out one message of a multi-field file.
FILTER_KEYS = ("shortName", "typeOfLevel", "level", "startStep", "endStep")


class _NoIconCoordinateWarning(logging.Filter):
    """cfgrib warns on every unstructured-grid field that it has no coordinates; framecast
    reads them from the CLAT/CLON files, so the warning is only noise in the logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "no latitudes/longitudes for gridType='unstructured_grid'" not in (
            record.getMessage())


logging.getLogger("cfgrib.dataset").addFilter(_NoIconCoordinateWarning())


def header_filter(path: Path, offset: int, what: str = "field") -> dict[str, Any]:
    """``filter_by_keys`` selecting the message at ``offset`` of ``path`` (headers only);
    ``what`` (e.g. "variable 't2m' step 6") goes into error messages."""
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            handle = eccodes.codes_grib_new_from_file(fh, headers_only=True)
            if handle is None:
                raise GribError(f"{path}: no GRIB message at byte {offset} ({what})")
            try:
                return {k: eccodes.codes_get(handle, k) for k in FILTER_KEYS}
            finally:
                eccodes.codes_release(handle)
    except FileNotFoundError:
        raise GribError(f"{path}: file vanished after the run was opened ({what})") from None
    except eccodes.GribInternalError as exc:
        raise GribError(f"{path}: unreadable GRIB header at byte {offset} ({what}): "
                        f"{exc}") from None


def _open_values(path: Path, filter_by_keys: dict[str, Any], what: str
                 ) -> tuple[dict[str, Any], np.ndarray]:
    import xarray as xr

    kwargs: dict[str, Any] = {"indexpath": "", "read_keys": list(READ_KEYS), "errors": "raise"}
    if filter_by_keys:
        kwargs["filter_by_keys"] = filter_by_keys
    try:
        with xr.open_dataset(path, engine="cfgrib", backend_kwargs=kwargs,
                             cache=False) as ds:
            names = list(ds.data_vars)
            if len(names) != 1:
                wanted = ", ".join(f"{k}={v}" for k, v in filter_by_keys.items()) or "any"
                raise GribError(f"{path}: cfgrib found {len(names)} variables ({names}) for "
                                f"{what} ({wanted}), expected exactly one")
            var = ds[names[0]]
            values = np.asarray(var.values)
            attrs = dict(var.attrs)
    except GribError:
        raise
    except FileNotFoundError:
        raise GribError(f"{path}: file vanished after the run was opened ({what})") from None
    except (OSError, EOFError, ValueError, KeyError, TypeError, RuntimeError,
            eccodes.GribInternalError) as exc:
        raise GribError(f"{path}: cfgrib cannot decode {what}: "
                        f"{type(exc).__name__}: {exc}") from None
    keys = {k[5:]: v for k, v in attrs.items() if k.startswith("GRIB_")}
    return keys, values


def decode_entry(entry: Entry) -> tuple[dict[str, Any], np.ndarray, int]:
    """Header keys (a mapping with ``.get``), values and bytes read for one indexed field.

    Raises GribError naming the file, variable and step when cfgrib cannot decode it or the
    file holds more or fewer than one matching message.
    """
    what = f"variable {entry.name!r} step {entry.step}"
    if not is_bz2(entry.path):
        flt = header_filter(entry.path, entry.offset, what) if entry.length is not None else {}
        keys, values = _open_values(entry.path, flt, what)
        size = entry.length if entry.length is not None else _size(entry.path)
        return keys, values, size
    data = read_bytes(entry.path, 0, None)  # GribError for bad bzip2 content
    with tempfile.TemporaryDirectory(prefix="framecast-cfgrib-") as tmp:
        plain = Path(tmp) / entry.path.name[:-len(".bz2")]
        plain.write_bytes(data)
        flt = header_filter(plain, entry.offset, what) if entry.length is not None else {}
        try:
            keys, values = _open_values(plain, flt, what)
        except GribError as exc:
            raise GribError(str(exc).replace(str(plain), f"{entry.path} (decompressed)")
                            ) from None
    return keys, values, entry.length or len(data)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        raise GribError(f"{path}: file vanished after the run was opened") from None
