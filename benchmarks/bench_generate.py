"""Evaluation generation: batched sampling across prompts vs a per-prompt loop (DESIGN §8, ≥ 4×).

Both sides use `replyrl.generation.generate_replies` on the same model, tweets and sampling
config; the only difference is `batch_prompts` (all prompts in one `generate` call, each expanded
to n sequences, vs one call per prompt). Runs alternate so machine load hits both alike, and the
ratio of replies/s is printed side by side.

    python benchmarks/bench_generate.py [--tweets 12] [--n 4] [--max-new-tokens 16] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="policy (default: packaged SmolLM2-135M-Instruct)")
    ap.add_argument("--tweets", type=int, default=12, help="test tweets")
    ap.add_argument("--n", type=int, default=4, help="replies per tweet")
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2, help="alternating timed runs per side")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    import torch
    from rich.console import Console
    from rich.table import Table

    from replyrl.data.synth import synthesize
    from replyrl.generation import SamplingConfig, generate_replies
    from replyrl.models import load_policy

    console = Console()
    records = synthesize(n_tweets=args.tweets, seed=0)
    tweets = list(dict.fromkeys(r.tweet for r in records))[:args.tweets]
    model, tok = load_policy(args.model, device=args.device)
    common = dict(n=args.n, max_new_tokens=args.max_new_tokens, seed=0)
    sides = {"batched": SamplingConfig(batch_prompts=len(tweets), **common),
             "per-prompt loop": SamplingConfig(batch_prompts=1, **common)}
    # Warm-up at the full batch shape: the first large allocation is slow and would bias the
    # first batched run (observed: 103 s vs 54 s for the same work).
    generate_replies(model, tok, tweets, sides["batched"])
    times: dict[str, list[float]] = {k: [] for k in sides}
    for rep in range(args.repeats):
        for name, cfg in sides.items():
            t0 = time.perf_counter()
            out = generate_replies(model, tok, tweets, cfg)
            times[name].append(time.perf_counter() - t0)
            assert sum(len(r) for r in out) == len(tweets) * args.n
            console.print(f"[dim]run {rep + 1}: {name:16s} {times[name][-1]:7.1f} s")
    n_replies = len(tweets) * args.n
    rate = {k: n_replies / statistics.median(v) for k, v in times.items()}
    table = Table(title=f"generation: {len(tweets)} tweets x {args.n} replies, {args.max_new_tokens} "
                        f"new tokens, {args.device}, torch threads {torch.get_num_threads()}")
    table.add_column("")
    for k in sides:
        table.add_column(k, justify="right")
    table.add_row("median seconds", *(f"{statistics.median(times[k]):.1f}" for k in sides))
    table.add_row("replies/s", *(f"{rate[k]:.2f}" for k in sides))
    console.print(table)
    ratio = rate["batched"] / rate["per-prompt loop"]
    verdict = "meets" if ratio >= 4 else "MISSES"
    console.print(f"batched / per-prompt = {ratio:.2f}x ({verdict} the >= 4x target)")


if __name__ == "__main__":
    main()
