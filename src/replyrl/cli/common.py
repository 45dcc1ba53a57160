"""Shared CLI helpers: a console, and turning our errors into clean messages and exit codes."""

from __future__ import annotations

import contextlib
import sys

import typer
from rich.console import Console
from rich.markup import escape

console = Console()
err_console = Console(stderr=True)


@contextlib.contextmanager
def user_errors():
    """Print known user-facing errors (bad data, bad config, missing model) without a traceback."""
    from replyrl.config import ConfigError
    from replyrl.errors import UserError
    from replyrl.models import ModelNotFoundError
    from replyrl.records import DataError

    try:
        yield
    except (UserError, DataError, ConfigError, ModelNotFoundError, FileNotFoundError) as e:
        # escape: values in data errors may look like markup ("[/x]"); soft_wrap: keep each
        # file:line error on one line so it can be copied and grepped
        err_console.print(
            f"[bold red]error:[/] {escape(str(e))}", markup=True, highlight=False, soft_wrap=True
        )
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        sys.exit(130)
