"""The `selfparam` command: each sub-command a thin shell over the library."""

from __future__ import annotations

import typer

from . import core, store
from .eval import eval_app
from .lifelong import lifelong
from .recipe import recipe_app
from .serve import serve

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Make language models self-updatable: inject knowledge, ask, export, evaluate.")
core.register(app)
store.register(app)
app.command()(serve)
eval_app.command("lifelong")(lifelong)
app.add_typer(eval_app, name="eval")
app.add_typer(recipe_app, name="recipe")


def main() -> None:
    app()
