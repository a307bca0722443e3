"""How every command reports a failure: one clear line on stderr, exit code 2, nothing half-written.

Two layers, both applied in `selfparam.cli` to every command, present and future:
- `user_errors` wraps each command's function: errors the user can act on (a missing file, a bad value,
  an untrained editor) become `error: ...`; anything else is a bug and keeps its traceback.
- `OneLineErrors` is the root command group: mistakes caught while parsing the command line (an unknown
  option, a missing or malformed value) become `error: ... (see `selfparam X --help`)` instead of a
  usage panel.
"""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

err = Console(stderr=True, soft_wrap=True)  # one line per error, for logs and greps
F = TypeVar("F", bound=Callable)

# Errors the user can act on; anything else is a bug and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, FileExistsError, UnicodeDecodeError,
                                                 PermissionError, IsADirectoryError, NotADirectoryError)


def error_line(message: str) -> None:
    """Print `error: message` as one line on stderr (newlines inside the message are folded)."""
    text = " ".join(str(message).split())
    err.print(f"[red]error[/]: {escape(text)}", highlight=False)


def user_errors(fn: F) -> F:
    """Turn user errors into one `error: ...` line and exit code 2, and Ctrl-C into exit code 130."""
    if getattr(fn, "__user_errors__", False):
        return fn

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/]: nothing was written")
            raise typer.Exit(130) from None
        except UnicodeDecodeError as e:
            error_line(f"a file is not valid UTF-8 text ({e})")
            raise typer.Exit(2) from None
        except typer.BadParameter as e:  # raised by a command's own checks: the message names the option
            error_line(e.format_message() if getattr(e, "param", None) is not None else e.message)
            raise typer.Exit(2) from None
        except USER_ERRORS as e:
            error_line(str(e))
            raise typer.Exit(2) from None
    wrapper.__user_errors__ = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def guard_commands(app: typer.Typer) -> typer.Typer:
    """Wrap every command of `app` and of its sub-apps in `user_errors` (in place; returns `app`)."""
    for info in app.registered_commands:
        info.callback = user_errors(info.callback)
    for group in app.registered_groups:
        guard_commands(group.typer_instance)
    return app


class OneLineErrors(TyperGroup):
    """The root group: command-line parsing errors as one line, exit code 2 (typer prints a panel)."""

    def main(self, args: Any = None, prog_name: Any = None, complete_var: Any = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.TyperException as e:  # click's UsageError and friends
            if type(e).__name__ != "NoArgsIsHelpError":  # that one has printed the help already
                ctx = getattr(e, "ctx", None)
                hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
                error_line(e.format_message() + hint)
            sys.exit(getattr(e, "exit_code", 2))
        except typer.Abort:
            err.print("[yellow]aborted[/]")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)  # non-standalone returns an Exit's code, or None


def read_text_file(path: str) -> str:
    """A context file as text: missing, a folder, or not UTF-8 is a clear error."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not UTF-8 text (byte {e.start}: {e.reason})") from None
    except IsADirectoryError:
        raise ValueError(f"{path} is a folder, not a text file") from None
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
