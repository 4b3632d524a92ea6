"""Argument types shared by the CLI subcommands: core parsers, argparse-style errors."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from framecast.catalog import parse_run as _parse_run
from framecast.errors import SpecError
from framecast.steps import parse_steps as _parse_steps

T = TypeVar("T")


def _argtype(fn: Callable[[str], T]) -> Callable[[str], T]:
    """Turn a core parser's SpecError into argparse's usage error (exit code 2, one line)."""

    def parse(text: str) -> T:
        try:
            return fn(text)
        except SpecError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = fn.__name__
    return parse


parse_steps: Callable[[str], list[int]] = _argtype(_parse_steps)
parse_run: Callable[[str], datetime] = _argtype(_parse_run)


def parse_names(text: str) -> list[str]:
    """A comma-separated list of names."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected at least one name")
    return names
