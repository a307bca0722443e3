"""The `selfparam` command: each sub-command a thin shell over the library."""

from __future__ import annotations

import typer

from . import core, store
from .errors import OneLineErrors, guard_commands
from .eval import eval_app
from .lifelong import lifelong
from .recipe import recipe_app
from .serve import serve

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, cls=OneLineErrors,
                  help="Make language models self-updatable: inject knowledge, ask, export, evaluate.")
core.register(app)
store.register(app)
app.command()(serve)
eval_app.command("lifelong")(lifelong)
app.add_typer(eval_app, name="eval")
app.add_typer(recipe_app, name="recipe")
guard_commands(app)  # every command: a user's mistake is one `error:` line and exit code 2


def main() -> None:
    app()
