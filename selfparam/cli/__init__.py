"""The `selfparam` command: each sub-command a thin shell over the library."""

from __future__ import annotations

import typer

from . import core

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Make language models self-updatable: inject knowledge, ask, export, evaluate.")
core.register(app)


def main() -> None:
    app()
