"""Bytes-level GRIB handling: cheap structural checks, one-message decoding, file validation.

A GRIB message starts with ``GRIB`` and byte 7 is the edition; the total length is bytes 8-15
in GRIB2 and bytes 4-6 in GRIB1; it ends with ``7777``. Checking those needs two tiny reads
per message, which is how a run of hundreds of files is checked at open time without decoding
anything. Values are decoded with
ecCodes from exactly one message's bytes, so a field costs one read of its own bytes.
"""

from __future__ import annotations

import bz2
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from framecast.errors import GribError
from framecast.geo import ensure_cartopy

ensure_cartopy()  # pyproj/cartopy before eccodes in one process (see framecast.geo)
import eccodes  # noqa: E402

BZ2_MAGIC = b"BZh"


def is_bz2(path: Path) -> bool:
    return path.name.endswith(".bz2")


#: GRIB1 sets this bit of its 3-byte length for ECMWF's "large message" encoding (> 8 MB).
_GRIB1_LARGE = 0x800000


def section0(head: bytes, path: Path, offset: int = 0) -> int:
    """Total length of the GRIB1 or GRIB2 message whose first 16 bytes are ``head``."""
    if len(head) < 8 or head[:4] != b"GRIB":
        raise GribError(f"{path}: no GRIB message at byte {offset} (not a GRIB file?)")
    edition = head[7]
    if edition == 1:
        length = int.from_bytes(head[4:7], "big")
        if length & _GRIB1_LARGE:
            raise GribError(f"{path}: message at byte {offset} is a GRIB1 message larger than "
                            f"8 MB (ECMWF large-message encoding), which is not supported; "
                            f"convert it to GRIB2 (grib_set -s edition=2)")
        return length
    if edition != 2:
        raise GribError(f"{path}: message at byte {offset} is GRIB edition {edition}, "
                        f"not 1 or 2")
    if len(head) < 16:
        raise GribError(f"{path}: truncated: GRIB2 header at byte {offset} is incomplete")
    return struct.unpack(">Q", head[8:16])[0]


def check_message_at(path: Path, offset: int, size: int | None = None) -> int:
    """Check the structure of the message at ``offset`` (magic, length, end) and return length.

    Raises GribError naming the file when it is not GRIB or is truncated.
    """
    with open(path, "rb") as fh:
        fh.seek(offset)
        length = section0(fh.read(16), path, offset)
        if size is None:
            size = path.stat().st_size
        if offset + length > size:
            raise GribError(f"{path}: truncated: message at byte {offset} needs {length} "
                            f"bytes, the file has {size - offset}")
        fh.seek(offset + length - 4)
        if fh.read(4) != b"7777":
            raise GribError(f"{path}: message at byte {offset} does not end with '7777' "
                            f"(corrupt or truncated)")
    return length


def message_spans(path: Path) -> list[tuple[int, int]]:
    """(offset, length) of every message of a file, from its section-0 headers alone.

    Costs two tiny reads per message; raises GribError naming the file and byte offset when
    the file is truncated, has trailing junk or a corrupt message end.
    """
    size = path.stat().st_size
    if size == 0:
        raise GribError(f"{path}: empty file")
    spans, offset = [], 0
    while offset < size:
        length = check_message_at(path, offset, size)
        spans.append((offset, length))
        offset += length
    return spans


def check_bz2_head(path: Path) -> None:
    with open(path, "rb") as fh:
        if fh.read(3) != BZ2_MAGIC:
            raise GribError(f"{path}: named .bz2 but not bzip2-compressed")


def read_bytes(path: Path, offset: int, length: int | None) -> bytes:
    """The bytes of one message (whole decompressed file for ``.bz2``, whose offsets refer to
    the decompressed stream)."""
    try:
        if is_bz2(path):
            data = bz2.decompress(path.read_bytes())
            return data[offset:offset + length] if length else data[offset:]
        with open(path, "rb") as fh:
            fh.seek(offset)
            return fh.read(length) if length else fh.read()
    except FileNotFoundError:
        raise GribError(f"{path}: file vanished after the run was opened") from None
    except (OSError, EOFError, ValueError) as exc:
        raise GribError(f"{path}: cannot read/decompress: {exc}") from None


def iter_messages(data: bytes, path: Path) -> Iterator[tuple[int, bytes]]:
    """(offset, message bytes) of every message in ``data``; GribError on any defect."""
    pos = 0
    if not data:
        raise GribError(f"{path}: empty file")
    while pos < len(data):
        length = section0(data[pos:pos + 16], path, pos)
        if pos + length > len(data):
            raise GribError(f"{path}: truncated: message at byte {pos} needs {length} bytes, "
                            f"{len(data) - pos} left")
        if data[pos + length - 4:pos + length] != b"7777":
            raise GribError(f"{path}: message at byte {pos} does not end with '7777'")
        yield pos, data[pos:pos + length]
        pos += length


@dataclass
class Message:
    """Decoded header keys of one message, and access to its values (decoded on request)."""

    handle: Any
    path: Path

    def get(self, key: str) -> Any:
        try:
            return eccodes.codes_get(self.handle, key)
        except eccodes.KeyValueNotFoundError:
            return None
        except eccodes.GribInternalError as exc:
            raise GribError(f"{self.path}: cannot read GRIB key {key!r}: {exc}") from None

    def values(self) -> np.ndarray:
        """Decoded values; points a bitmap marks missing are NaN (as cfgrib gives them), not
        ecCodes' ``missingValue`` placeholder (9999), which would be drawn as real data."""
        try:
            vals = eccodes.codes_get_values(self.handle)
            if self.get("bitmapPresent"):
                vals[vals == self.get("missingValue")] = np.nan
            return vals
        except eccodes.GribInternalError as exc:
            raise GribError(f"{self.path}: cannot decode values: {exc}") from None

    def close(self) -> None:
        eccodes.codes_release(self.handle)


def message_from_bytes(data: bytes, path: Path) -> Message:
    """A :class:`Message` from one complete message's bytes (checked structurally first)."""
    length = section0(data[:16], path)
    if length != len(data) or data[-4:] != b"7777":
        raise GribError(f"{path}: incomplete GRIB message ({len(data)} of {length} bytes)")
    try:
        return Message(eccodes.codes_new_from_message(data), path)
    except eccodes.GribInternalError as exc:
        raise GribError(f"{path}: ecCodes cannot parse the message: {exc}") from None


def validate_grib(path: Path, expect: dict | None = None) -> int:
    """Check that ``path`` is complete, valid GRIB (1 or 2) and return its number of messages.

    Every message must be structurally whole and parse with ecCodes; with ``expect`` (GRIB
    keys, e.g. ``{"shortName": "2t"}``) at least one message must match all of them. Used by
    the download code on every file before it is accepted; ``.bz2`` is decompressed first.
    Raises GribError naming the file otherwise.
    """
    path = Path(path)
    if not path.is_file():
        raise GribError(f"{path}: no such file")
    data = read_bytes(path, 0, None)
    count = 0
    matched = expect is None
    for offset, raw in iter_messages(data, path):
        msg = message_from_bytes(raw, path)
        try:
            if not matched and all(str(msg.get(k)) == str(v) for k, v in expect.items()):
                matched = True
            if msg.get("numberOfDataPoints") is None:
                raise GribError(f"{path}: message at byte {offset} has no data points")
        finally:
            msg.close()
        count += 1
    if not matched:
        wanted = ", ".join(f"{k}={v}" for k, v in expect.items())
        raise GribError(f"{path}: none of its {count} GRIB message(s) has {wanted}")
    return count
