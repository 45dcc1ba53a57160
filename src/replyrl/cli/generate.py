"""CLI: `replyrl generate` samples replies from a policy (base model or adapter)."""

from __future__ import annotations

import typer

from replyrl.cli.common import console, user_errors


def generate(
    tweet: str = typer.Argument(..., help="The tweet to reply to."),
    n: int = typer.Option(5, "-n", help="How many replies to sample."),
    model: str = typer.Option(
        None, "--model", help="HF id, checkpoint or adapter folder (default: packaged SmolLM2)."
    ),
    max_new_tokens: int = typer.Option(48, help="Token budget per reply."),
    temperature: float = typer.Option(0.9, help="Sampling temperature in (0, 2]."),
    seed: int = typer.Option(0, help="Sampling seed."),
) -> None:
    """Sample N replies to TWEET and print them."""
    from replyrl.generation import SamplingConfig, generate_replies
    from replyrl.models import load_policy

    with user_errors():
        cfg = SamplingConfig(n=n, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
        m, tok = load_policy(model)
        replies = generate_replies(m, tok, [tweet], cfg)[0]
    for i, r in enumerate(replies, 1):
        console.print(f"[bold]{i}.[/] {r}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)
