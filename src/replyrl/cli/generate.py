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
    device: str = typer.Option(
        "auto", help="Where the model runs: auto (cuda → mps → cpu), cpu, cuda, cuda:N, mps."
    ),
    backend: str = typer.Option(
        "auto", help="Sampler: auto (loop on a CPU, generate on a GPU), loop, generate, vllm."
    ),
) -> None:
    """Sample N replies to TWEET and print them."""
    from replyrl.generation import SamplingConfig, load_sampler

    with user_errors():
        try:
            cfg = SamplingConfig(
                n=n,
                max_new_tokens=max_new_tokens,
                temperature=temperature,
                seed=seed,
                backend=backend,
            )
        except ValueError as e:
            from replyrl.config import ConfigError

            raise ConfigError(str(e)) from None
        replies = load_sampler(model, cfg, device)([tweet])[0]
    for i, r in enumerate(replies, 1):
        console.print(f"[bold]{i}.[/] {r}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)
