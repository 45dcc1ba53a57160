"""Shared CLI helpers: a console, and the error boundary that turns expected errors into one line.

Every expected error (`replyrl.errors.UserError` and its subclasses: bad data, bad config, a missing
model, a corrupt artifact) and every OSError on a path the user gave (a folder where a file is
expected, permission denied, a full disk) is printed as one `error: ...` line on stderr with exit
code 2 (a data error with several bad rows lists the others below it). Anything else is a bug and
keeps its traceback. `replyrl --debug ...` shows the traceback of expected errors too.
"""

from __future__ import annotations

import contextlib
import sys

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from replyrl.errors import UserError, describe_os_error

console = Console()
err_console = Console(stderr=True)


class _State:
    debug: bool = False
    """Set by the root `--debug` flag: expected errors keep their traceback."""


state = _State()


def print_error(message: str) -> None:
    """`error: <first line>` on stderr, never wrapped; further lines (details) indented below."""
    first, *rest = str(message).strip().splitlines() or [""]
    # escape: values in data errors may look like markup ("[/x]"); soft_wrap: keep each
    # file:line error on one line so it can be copied and grepped
    err_console.print(
        f"[bold red]error:[/] {escape(first)}", markup=True, highlight=False, soft_wrap=True
    )
    for line in rest:
        err_console.print(f"  {line.strip()}", markup=False, highlight=False, soft_wrap=True)


@contextlib.contextmanager
def user_errors():
    """Print expected errors as one line and exit 2; re-raise them under `--debug`."""
    try:
        yield
    except UserError as e:
        if state.debug:
            raise
        print_error(str(e))
        raise typer.Exit(2) from None
    except OSError as e:  # a path the user gave: a folder, no permission, a full disk
        if state.debug:
            raise
        print_error(describe_os_error(e) if e.filename is not None else f"{e}")
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        sys.exit(130)


class BoundaryGroup(TyperGroup):
    """The root command group: every command runs inside the error boundary."""

    def invoke(self, ctx):
        with user_errors():
            return super().invoke(ctx)
