"""CLI: `replyrl suggest` ranks distinct replies to one tweet; `replyrl serve` runs the local web app."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape

from replyrl.cli.common import console, err_console, user_errors

_MODEL_HELP = "Policy: HF id, checkpoint or adapter folder (default: packaged SmolLM2)."
_DEVICE_HELP = "Where the model and encoder run: auto (cuda → mps → cpu), cpu, cuda, cuda:N, mps."
_REWARD_HELP = "Reward model folder: rank by the composite reward (learned + heuristic). Default: heuristic alone."
_RUN_HELP = (
    "A finished pipeline folder (output/pipeline/NAME): use its best model (or --recipe) and its "
    "reward. Replaces --model/--reward."
)
_RECIPE_HELP = "With --run: the model to use (a recipe or run name in its report, or 'base')."
_TONE_HELP = "Tone preset: supportive, curious, witty or expert (default: the model's own prompt)."
_VOICE_HELP = "Text file of a few of your past replies, one per line, used as style examples."


def _prepare(model, reward, run, recipe, tone, voice):
    """Validate the style and the --run choice before any model loads; returns (run, style)."""
    from replyrl.serve.loading import RunError, resolve_run
    from replyrl.serve.style import Style, load_voice

    style = Style(tone, load_voice(voice) if voice is not None else ())
    if run is None:
        if recipe is not None:
            raise RunError("--recipe picks a model of a pipeline run: give the run with --run DIR")
        return None, style
    if model is not None or reward is not None:
        raise RunError("--run picks the model and the reward itself: leave out --model/--reward")
    choice = resolve_run(run, recipe)
    err_console.print(
        f"[dim]--run: {escape(choice.reason)}; adapter {choice.adapter or 'none (base model)'}; "
        f"reward {choice.reward or 'heuristic'}[/]",
        highlight=False,
    )
    return choice, style


def _load(model, reward, run, recipe, tone, voice, max_new_tokens, cfg, device, announce=False):
    """Check the options (before any model loads), then load the suggester `suggest` and `serve`
    share; returns (suggester, the --run choice or None)."""
    from replyrl.serve.loading import load_suggester

    chosen, style = _prepare(model, reward, run, recipe, tone, voice)
    if announce:
        err_console.print("[dim]loading the model, encoder and reward (once)...[/]")
    suggester = load_suggester(
        model,
        reward,
        max_new_tokens=max_new_tokens,
        cfg=cfg,
        device=device,
        run=chosen,
        style=style,
    )
    return suggester, chosen


def suggest(
    tweet: str = typer.Argument(..., help="The tweet to reply to."),
    k: int = typer.Option(5, "-k", help="How many distinct replies to show (1..16)."),
    model: str = typer.Option(None, "--model", help=_MODEL_HELP),
    reward: str = typer.Option(None, "--reward", help=_REWARD_HELP),
    run: str = typer.Option(None, "--run", help=_RUN_HELP),
    recipe: str = typer.Option(None, "--recipe", help=_RECIPE_HELP),
    tone: str = typer.Option(None, "--tone", help=_TONE_HELP),
    voice: str = typer.Option(None, "--voice", help=_VOICE_HELP),
    temperature: float = typer.Option(0.9, help="Sampling temperature in (0, 2]."),
    seed: int = typer.Option(0, help="Sampling seed (same seed, same replies)."),
    oversample: float = typer.Option(3.0, help="Candidates sampled per requested reply."),
    dedup_threshold: float = typer.Option(
        0.9, help="Encoder cosine above which replies are near-duplicates."
    ),
    max_new_tokens: int = typer.Option(48, help="Token budget per reply."),
    device: str = typer.Option("auto", help=_DEVICE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Sample candidates in one batched call, drop near-duplicates, and print the best K, ranked."""
    from replyrl.serve.suggest import SuggestConfig

    if not 1 <= k <= 16:
        raise typer.BadParameter(f"must be in 1..16, got {k}", param_hint="-k")
    if not 0 < temperature <= 2:
        raise typer.BadParameter(
            f"must be in (0, 2], got {temperature}", param_hint="--temperature"
        )
    from replyrl.config import SEED_MAX
    from replyrl.records import text_problem

    if not 0 <= seed <= SEED_MAX:
        raise typer.BadParameter(f"must be in 0..{SEED_MAX}, got {seed}", param_hint="--seed")
    if problem := text_problem("tweet", tweet):  # the data layer's rule, as the web API's
        raise typer.BadParameter(f"the tweet is unusable: {problem}", param_hint="TWEET")
    with user_errors():
        cfg = SuggestConfig(oversample=oversample, dedup_threshold=dedup_threshold)
        suggester, _ = _load(model, reward, run, recipe, tone, voice, max_new_tokens, cfg, device)
        result = suggester.suggest(tweet, k=k, temperature=temperature, seed=seed)
    if as_json:
        out = {**result.to_dict(), "model": suggester.model_name, "reward": suggester.ranker.name}
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return
    _print_table(result, suggester.ranker.name, suggester.model_name)
    if len(result.suggestions) < k:
        err_console.print(
            f"[yellow]only {len(result.suggestions)} distinct replies in {result.n_sampled} samples; "
            "raise --temperature or --oversample for more[/]"
        )


def _print_table(result, reward_name: str, model_name: str) -> None:
    from rich.table import Table
    from rich.text import Text

    comps = list(result.suggestions[0].components) if result.suggestions else []
    # Replies are the point: they keep the width. When the components do not fit as columns
    # (10 with --reward), they go on a dim line under each reply instead (all of them in --json).
    as_columns = console.width >= 40 + 10 * len(comps)
    tone = f", tone {result.style.tone}" if result.style.tone else ""
    voice = f", your voice ({len(result.style.voice)} examples)" if result.style.voice else ""
    table = Table(
        title=f"Replies from {model_name}{tone}{voice}, ranked by {reward_name}", show_lines=True
    )
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("reply", ratio=1, min_width=28, overflow="fold")
    table.add_column("total", justify="right", style="bold", no_wrap=True)
    for c in comps if as_columns else []:
        table.add_column(c, justify="right", no_wrap=True)
    for i, s in enumerate(result.suggestions, 1):
        values = [f"{s.components.get(c, float('nan')):.2f}" for c in comps]
        if as_columns:
            table.add_row(str(i), s.reply, f"{s.score:.3f}", *values)
        else:
            cell = Text(s.reply)
            # name=value: one word, so a wrapped line never parts a name from its value
            cell.append("\n" + "  ".join(f"{c}={v}" for c, v in zip(comps, values)), style="dim")
            table.add_row(str(i), cell, f"{s.score:.3f}")
    console.print(table)
    console.print(
        f"[dim]{result.n_sampled} sampled in {result.rounds} round(s), {result.n_distinct} distinct, "
        f"{result.seconds:.1f} s, seed {result.seed}[/]"
    )


def serve(
    model: str = typer.Option(None, "--model", help=_MODEL_HELP),
    reward: str = typer.Option(None, "--reward", help=_REWARD_HELP),
    run: str = typer.Option(None, "--run", help=_RUN_HELP),
    recipe: str = typer.Option(None, "--recipe", help=_RECIPE_HELP),
    tone: str = typer.Option(None, "--tone", help=_TONE_HELP + " The page can change it."),
    voice: str = typer.Option(None, "--voice", help=_VOICE_HELP + " The page can edit them."),
    host: str = typer.Option(
        "127.0.0.1", help="Address to listen on (the app has no login: keep it local)."
    ),
    port: int = typer.Option(8000, help="Port to listen on."),
    feedback: str = typer.Option(
        "feedback.jsonl", help="Feedback JSONL that picks are appended to."
    ),
    queue_size: int = typer.Option(
        4, help="Requests that may wait while one generates; more get 503."
    ),
    max_new_tokens: int = typer.Option(48, help="Token budget per reply."),
    oversample: float = typer.Option(3.0, help="Candidates sampled per requested reply."),
    dedup_threshold: float = typer.Option(
        0.9, help="Encoder cosine above which replies are near-duplicates."
    ),
    suggestion_ttl: float = typer.Option(
        30.0, help="Minutes a shown answer can be picked (feedback for older ones is refused)."
    ),
    device: str = typer.Option("auto", help=_DEVICE_HELP),
) -> None:
    """Run the local web app: paste a tweet, pick a reply, and feed your picks into reward training."""
    import importlib.util

    if importlib.util.find_spec("uvicorn") is None or importlib.util.find_spec("fastapi") is None:
        err_console.print("[bold red]error:[/] replyrl serve needs: pip install 'replyrl[serve]'")
        raise typer.Exit(2)
    import uvicorn

    from replyrl.serve.app import create_app
    from replyrl.serve.feedback import FeedbackLog, IssuedSuggestions
    from replyrl.serve.suggest import SuggestConfig

    if queue_size < 0:
        raise typer.BadParameter(f"must be >= 0, got {queue_size}", param_hint="--queue-size")
    if Path(feedback).is_dir():
        raise typer.BadParameter(
            f"{feedback} is a folder; give a file (picks are appended to it)",
            param_hint="--feedback",
        )
    if not 0 < suggestion_ttl <= 24 * 60:
        raise typer.BadParameter(
            f"must be in (0, 1440] minutes, got {suggestion_ttl}", param_hint="--suggestion-ttl"
        )
    if host not in ("127.0.0.1", "localhost", "::1"):
        err_console.print(
            f"[yellow]warning: listening on {host}: anyone who can reach it can use your model "
            "and write to your feedback file[/]"
        )
    with user_errors():
        cfg = SuggestConfig(oversample=oversample, dedup_threshold=dedup_threshold)
        suggester, chosen = _load(
            model, reward, run, recipe, tone, voice, max_new_tokens, cfg, device, announce=True
        )
        app = create_app(
            suggester,
            FeedbackLog(feedback),
            queue_size=queue_size,
            issued=IssuedSuggestions(ttl_s=60 * suggestion_ttl),
            source=chosen.reason if chosen is not None else None,
        )
    err_console.print(
        f"[bold green]replyrl serve[/] on http://{host}:{port}  (feedback -> {feedback})"
    )
    uvicorn.run(app, host=host, port=port, log_level="warning", workers=1)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("suggest")(suggest)
    app.command("serve")(serve)
