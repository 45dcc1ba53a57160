"""The `replyrl` command line: one app, each area registers its commands from its own module."""

from __future__ import annotations

import os
import warnings

import typer

from replyrl.cli.common import BoundaryGroup, state

# Offline by default (DESIGN §6): nothing reaches the network at run time unless the user unsets it.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# TRL 1.16 still passes transformers' deprecated `gradient_checkpointing` alias internally.
warnings.filterwarnings(
    "ignore", message=r".*(gradient|is_gradient)_checkpointing.*", category=FutureWarning
)

app = typer.Typer(
    name="replyrl",
    help="Post-train language models to write engaging, diverse, on-topic replies.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=BoundaryGroup,
)


@app.callback()
def _root(
    debug: bool = typer.Option(
        False, "--debug", help="Show the traceback of expected errors too (for bug reports)."
    ),
    verbose: bool = typer.Option(
        False, "--verbose", help="Show the libraries' progress bars, logs and trainer dicts."
    ),
) -> None:
    """replyrl: data -> rewards -> training -> evaluation -> report, one CLI on top."""
    from replyrl.console import configure

    state.debug = debug
    configure(verbose)


from replyrl.cli import data as _data  # noqa: E402
from replyrl.cli import evaluate as _evaluate  # noqa: E402
from replyrl.cli import generate as _generate  # noqa: E402
from replyrl.cli import pipeline as _pipeline  # noqa: E402
from replyrl.cli import reward as _reward  # noqa: E402
from replyrl.cli import serve as _serve  # noqa: E402
from replyrl.cli import train as _train  # noqa: E402

for _m in (_data, _generate, _reward, _train, _evaluate, _pipeline, _serve):
    _m.register(app)


def main() -> None:
    app()
