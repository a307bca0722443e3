"""`selfparam versions RUN` and `selfparam rollback RUN --to N`: thin shells over `selfparam.store`.

RUN is a store, a folder written by `selfparam inject --out`, or a RECIPE repository folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from .errors import user_errors

console = Console()
Run = Annotated[Path, typer.Argument(help="a store, a saved injection (selfparam inject --out) or a RECIPE repository")]


def register(app: typer.Typer) -> None:
    app.command()(versions)
    app.command()(rollback)


@user_errors
def versions(run: Run, as_json: Annotated[bool, typer.Option("--json", help="one JSON list instead of a table")] = False
             ) -> None:
    """List the versions: step, parent, time, contexts (id, digest, characters), pairs and recorded figures."""
    from ..store import open_versions

    rows = open_versions(run).versions()
    if as_json:
        typer.echo(json.dumps([v.to_dict() for v in rows], indent=2))
        return
    table = Table(title=str(run))
    for column in ("", "version", "parent", "created (UTC)", "contexts", "pairs", "metrics"):
        table.add_column(column)
    for v in rows:
        contexts = ", ".join(f"{c['id']} ({c['chars']} chars, {c['sha256'][:8]})" for c in v.contexts)
        metrics = ", ".join(f"{k}={val:.3f}" if isinstance(val, float) else f"{k}={val}"
                            for k, val in v.metrics.items())
        table.add_row("*" if v.current else "", str(v.number), "" if v.parent is None else str(v.parent), v.created,
                      (f"{v.note}: " if v.note else "") + contexts, str(v.pairs), metrics)
    console.print(table)


@user_errors
def rollback(run: Run, to: Annotated[int, typer.Option("--to", help="the version to make current (0: the base model)")]
             ) -> None:
    """Make version N current; later versions are kept and can be made current again the same way."""
    from ..store import StoreLockedError, open_versions

    store = open_versions(run)
    previous = store.current
    try:
        store.activate(to)
    except StoreLockedError as e:
        typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{run}: version {to} is current (was {previous})")
