"""Bytes-level GRIB2 handling: cheap structural checks, one-message decoding, file validation.

A GRIB2 message starts with ``GRIB``, byte 7 is the edition and bytes 8-15 the total length;
it ends with ``7777``. Checking those needs two tiny reads per message, which is how a run of
hundreds of files is checked at open time without decoding anything. Values are decoded with
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


def section0(head: bytes, path: Path, offset: int = 0) -> int:
    """Total length of the GRIB2 message whose first 16 bytes are ``head``."""
    if len(head) < 16 or head[:4] != b"GRIB":
        raise GribError(f"{path}: no GRIB message at byte {offset} (not a GRIB file?)")
    if head[7] != 2:
        raise GribError(f"{path}: message at byte {offset} is GRIB edition {head[7]}, not 2")
    return struct.unpack(">Q", head[8:16])[0]


def check_message_at(path: Path, offset: int, size: int | None = None) -> int:
    """Check the structure of the message at ``offset`` (magic, length, end) and return length.

    Raises GribError naming the file when it is not GRIB2 or is truncated.
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


def iter_file_messages(path: Path) -> Iterator[tuple[int, bytes]]:
    """(offset, message bytes) of every message of a file, read one message at a time.

    Same checks as :func:`iter_messages`, but only one message is in memory; ``.bz2`` files are
    decompressed as a stream. A header claiming more bytes than the file has is refused before
    anything that large is read.
    """
    plain_size = None if is_bz2(path) else path.stat().st_size
    try:
        fh = bz2.open(path, "rb") if is_bz2(path) else open(path, "rb")  # noqa: SIM115
        with fh:
            pos = 0
            while True:
                head = fh.read(16)
                if not head:
                    break
                length = section0(head, path, pos)
                if length < 20 or (plain_size is not None and pos + length > plain_size):
                    left = "?" if plain_size is None else plain_size - pos
                    raise GribError(f"{path}: truncated: message at byte {pos} needs {length} "
                                    f"bytes, {left} left")
                rest = fh.read(length - 16)
                raw = head + rest
                if len(raw) != length:
                    raise GribError(f"{path}: truncated: message at byte {pos} needs {length} "
                                    f"bytes, {len(raw)} left")
                if raw[-4:] != b"7777":
                    raise GribError(f"{path}: message at byte {pos} does not end with '7777'")
                yield pos, raw
                pos += length
    except (OSError, EOFError, ValueError) as exc:
        raise GribError(f"{path}: cannot read/decompress: {exc}") from None
    if pos == 0:
        raise GribError(f"{path}: empty file")


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
    """Check that ``path`` is complete, valid GRIB2 and return its number of messages.

    Every message must be structurally whole and parse with ecCodes; with ``expect`` (GRIB
    keys, e.g. ``{"shortName": "2t"}``) at least one message must match all of them. Used by
    the download code on every file before it is accepted; ``.bz2`` is decompressed first.
    Raises GribError naming the file otherwise. Reads one message at a time, so memory is
    bounded by the largest message, not the file.
    """
    path = Path(path)
    if not path.is_file():
        raise GribError(f"{path}: no such file")
    count = 0
    matched = expect is None
    for offset, raw in iter_file_messages(path):
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
