"""``framecast variables``: the variable catalogue as a table (names, units, identities)."""

from __future__ import annotations

import argparse
from pathlib import Path


def markdown_table(rows: list[dict[str, str]]) -> str:
    """The catalogue rows as one Markdown table (the one in docs/variables.md)."""
    head = ("| name | kind | units | description | DWD file | GFS .idx | GRIB identity / "
            "inputs |\n|---|---|---|---|---|---|---|\n")

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("{", "{").strip() or "-"

    body = "".join(
        f"| `{r['name']}` | {cell(r['kind'])} | {cell(r['units'])} | {cell(r['long_name'])} | "
        f"{cell(r['dwd'])} | {cell(r['idx'])} | {cell(r['grib'])} |\n" for r in rows)
    return head + body


def _run(args: argparse.Namespace) -> int:
    from framecast.variables import load_catalogue

    cat = load_catalogue(args.variables_file)
    rows = cat.table()
    if args.markdown:
        print(markdown_table(rows), end="")
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        print(f"{r['name']:<{width}}  {r['units']:<10}  {r['long_name']}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "variables", help="list the variable catalogue (canonical and derived names)",
        description="List every name products may use: catalogue variables, pressure-level "
                    "families and MetPy-derived quantities. Any other GRIB field can be named "
                    "by its ecCodes shortName or shortName@typeOfLevel:level.")
    p.add_argument("--markdown", action="store_true", help="one Markdown table (as in the docs)")
    p.add_argument("--variables-file", type=Path, default=None,
                   help="catalogue YAML (default: $FRAMECAST_VARIABLES_FILE or the shipped one)")
    p.set_defaults(func=_run)
