"""How every command reports a failure: one clear line, a non-zero exit, nothing half-written."""

from __future__ import annotations

import functools
from typing import Callable, TypeVar

import typer
from rich.console import Console

err = Console(stderr=True, soft_wrap=True)  # one line per error, for logs and greps
F = TypeVar("F", bound=Callable)

# Errors the user can act on; anything else is a bug and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, FileExistsError, UnicodeDecodeError,
                                                 PermissionError, IsADirectoryError)


def user_errors(fn: F) -> F:
    """Turn user errors into `error: ...` and exit code 2, and Ctrl-C into exit code 130."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/]: nothing was written")
            raise typer.Exit(130) from None
        except UnicodeDecodeError as e:
            err.print(f"[red]error[/]: a file is not valid UTF-8 text ({e})")
            raise typer.Exit(2) from None
        except USER_ERRORS as e:
            err.print(f"[red]error[/]: {e}")
            raise typer.Exit(2) from None
    return wrapper  # type: ignore[return-value]


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

