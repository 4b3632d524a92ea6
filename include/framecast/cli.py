"""The ``framecast`` command line: one entry point, one subcommand module per area.

Each area module exposes ``register(subparsers)`` adding its subcommand(s) with a ``func``
default. Errors of type :class:`~framecast.errors.FramecastError` print one line and exit with
the error's code; anything else is a bug and shows a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from framecast.errors import FramecastError

COMMAND_MODULES = (
    "framecast.commands.render",
    "framecast.commands.sample_data",
    "framecast.publish.cli",
    "framecast.choropleth.cli",
    "framecast.metrics.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="framecast", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        if importlib.util.find_spec(name.rsplit(".", 1)[0]) is None:
            continue
        if importlib.util.find_spec(name) is None:
            continue
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc = args.func(args)
    except FramecastError as exc:
        from framecast.redact import redact

        print(f"framecast: error: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
