"""``airflow-omnisend``: work outside a DAG (validate a file, run the emulator, make a sample store...).

Each subcommand lives in its own module, which exposes ``configure(parser)`` and ``run(args) -> int``,
and is imported only when that subcommand runs: ``airflow-omnisend validate`` must start in well under
a second, so nothing here (or in the subcommand modules it loads) imports Airflow unless it needs to.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

#: subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("airflow_omnisend.events.validate_cli", "validate an NDJSON file of Omnisend events"),
    "plan": ("airflow_omnisend.events.plan_cli", "print what a backfill would send and how long it takes"),
    "emulator": ("airflow_omnisend.testing.emulator.cli", "run the local Omnisend emulator"),
    "demo": ("airflow_omnisend.testing.demo", "run the demo: sample store, emulator, Airflow backfill"),
    "sample-store": ("airflow_omnisend.testing.sample_store", "write a deterministic sample shop (SQLite)"),
}


def build_parser(argv: Sequence[str]) -> tuple[argparse.ArgumentParser, str | None]:
    parser = argparse.ArgumentParser(prog="airflow-omnisend", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text)
        if name == chosen:
            importlib.import_module(module).configure(sub_parser)
    return parser, chosen if chosen in COMMANDS else None


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser, chosen = build_parser(args_list)
    args = parser.parse_args(args_list)
    if chosen is None:
        parser.print_help(sys.stderr)
        return 2
    result: int = importlib.import_module(COMMANDS[chosen][0]).run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
