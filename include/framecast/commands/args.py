"""Argument parsers shared by the CLI subcommands (steps lists, run times, name lists)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime


def parse_steps(text: str) -> list[int]:
    """``"0-12"``, ``"0-12/3"``, ``"0,3,6"`` or a mix (``"0-6,9,12-24/3"``) -> sorted hours."""
    out: set[int] = set()
    try:
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            rng, _, every = part.partition("/")
            a, sep, b = rng.partition("-")
            lo, hi = int(a), int(b) if sep else int(a)
            inc = int(every) if every else 1
            if lo < 0 or hi < lo or inc < 1:
                raise ValueError
            out.update(range(lo, hi + 1, inc))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"bad step list {text!r}: use e.g. 0-12, 0-48/3 or 0,3,6") from None
    if not out:
        raise argparse.ArgumentTypeError(f"empty step list {text!r}")
    return sorted(out)


def parse_run(text: str) -> datetime:
    """A model run time ``YYYYMMDDHH`` (or ISO 8601) as an aware UTC datetime."""
    try:
        if len(text) == 10 and text.isdigit():
            return datetime.strptime(text, "%Y%m%d%H").replace(tzinfo=UTC)
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"bad run time {text!r}: use YYYYMMDDHH, e.g. 2026112300") from None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def parse_names(text: str) -> list[str]:
    """A comma-separated list of names."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected at least one name")
    return names
