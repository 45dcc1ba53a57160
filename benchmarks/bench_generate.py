"""Evaluation generation: batched sampling across prompts vs a per-prompt loop (DESIGN §8, ≥ 4×).

Both sides call `replyrl.generation.generate_replies` on the same model, tweets and sampling
config; the only difference is `batch_prompts`: the batched side uses the evaluation default
(`replyrl evaluate`'s own setting, so the figure is what evaluation gets), the loop one prompt
per call. The defaults are the evaluation's sampling config (n, max_new_tokens, batch_prompts).
Runs alternate so machine load hits both alike; replies/s and the ratio are printed side by side.
Because a prompt's replies depend only on the seed and the prompt, both sides sample the same
replies; the table reports how many came out identical (batch shape can change the last float
bits of a logit, and with it an occasional token). A third column runs transformers'
`model.generate(num_return_sequences=n)` over the same batches (the implementation our sampler
replaced), to show what the hand-written decode loop buys, and a fourth the batched loop with
transformers' plain `DynamicCache` instead of the reserved-room KV layer (the fallback used where
the private base class is not the tested version: replyrl.generation.KV_LAYER_TRANSFORMERS).

    python benchmarks/bench_generate.py [--tweets 16] [--n 8] [--max-new-tokens 48] [--repeats 2]
    python benchmarks/bench_generate.py --tweets 32 --sweep 1,4,8,16,32   # replies/s per batch size
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def generate_baseline(model, tok, tweets, cfg) -> list[list[str]]:
    """transformers' `generate` with the same sampling settings and batches of prompts."""
    import torch

    from replyrl.generation import clean_reply
    from replyrl.models import build_prompt

    tok.padding_side = "left"
    out = []
    for start in range(0, len(tweets), cfg.batch_prompts):
        chunk = [
            build_prompt(tok, t, cfg.instruction) for t in tweets[start : start + cfg.batch_prompts]
        ]
        enc = tok(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(
            model.device
        )
        torch.manual_seed(cfg.seed + start)
        with torch.no_grad():
            seqs = model.generate(
                **enc,
                do_sample=True,
                temperature=cfg.temperature,
                top_k=cfg.top_k,
                top_p=cfg.top_p,
                max_new_tokens=cfg.max_new_tokens,
                num_return_sequences=cfg.n,
                pad_token_id=tok.pad_token_id,
            )
        texts = tok.batch_decode(seqs[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        out += [
            [clean_reply(t) for t in texts[i * cfg.n : (i + 1) * cfg.n]] for i in range(len(chunk))
        ]
    return out


def plain_kv_replies(model, tok, tweets, cfg) -> list[list[str]]:
    """`generate_replies` with the KV-layer version guard closed: plain DynamicCache layers."""
    from replyrl import generation

    guard = generation.KV_LAYER_TRANSFORMERS
    generation.KV_LAYER_TRANSFORMERS = "<0"
    generation._kv_layer_class.cache_clear()
    try:
        return generation.generate_replies(model, tok, tweets, cfg)
    finally:
        generation.KV_LAYER_TRANSFORMERS = guard
        generation._kv_layer_class.cache_clear()


def sweep(model, tok, tweets, common: dict, sizes: list[int], console) -> None:
    """Replies/s of `generate_replies` for each prompts-per-pass value, one run each."""
    import torch
    from rich.table import Table

    from replyrl.generation import SamplingConfig, generate_replies

    generate_replies(
        model, tok, tweets[: max(sizes)], SamplingConfig(batch_prompts=max(sizes), **common)
    )
    table = Table(
        title=f"generate_replies: {len(tweets)} tweets x {common['n']} replies, "
        f"{common['max_new_tokens']} new tokens, torch threads {torch.get_num_threads()}"
    )
    for col in (
        "prompts per pass",
        "rows per pass",
        "seconds",
        "replies/s",
        f"vs {sizes[0]} prompt(s)",
    ):
        table.add_column(col, justify="right")
    first = None
    for size in sizes:
        t0 = time.perf_counter()
        generate_replies(model, tok, tweets, SamplingConfig(batch_prompts=size, **common))
        rate = len(tweets) * common["n"] / (time.perf_counter() - t0)
        first = first or rate
        table.add_row(
            str(size),
            str(size * common["n"]),
            f"{len(tweets) * common['n'] / rate:.1f}",
            f"{rate:.2f}",
            f"{rate / first:.2f}x",
        )
    console.print(table)


def main() -> None:
    from replyrl.evaluation.evaluate import EvalConfig

    default = EvalConfig().sampling
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--model", default=None, help="policy (default: packaged SmolLM2-135M-Instruct)"
    )
    ap.add_argument("--tweets", type=int, default=16, help="synthetic test tweets")
    ap.add_argument(
        "--n", type=int, default=default.n, help="replies per tweet (evaluation default)"
    )
    ap.add_argument("--max-new-tokens", type=int, default=default.max_new_tokens)
    ap.add_argument(
        "--batch-prompts",
        type=int,
        default=default.batch_prompts,
        help="prompts per forward pass on the batched side (evaluation default)",
    )
    ap.add_argument("--repeats", type=int, default=2, help="alternating timed runs per side")
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--sweep",
        default=None,
        help="comma-separated prompts-per-pass values: time one run of each instead",
    )
    args = ap.parse_args()

    import torch
    from rich.console import Console
    from rich.table import Table

    from replyrl.data.synth import synthesize
    from replyrl.generation import SamplingConfig, generate_replies
    from replyrl.models import load_policy

    console = Console()
    records = synthesize(n_tweets=args.tweets, seed=0)
    tweets = list(dict.fromkeys(r.tweet for r in records))[: args.tweets]
    model, tok = load_policy(args.model, device=args.device)
    common = dict(n=args.n, max_new_tokens=args.max_new_tokens, seed=0)
    if args.sweep:
        sweep(model, tok, tweets, common, [int(v) for v in args.sweep.split(",")], console)
        return
    sides = {
        "batched": SamplingConfig(batch_prompts=args.batch_prompts, **common),
        "per-prompt loop": SamplingConfig(batch_prompts=1, **common),
    }
    # Warm-up at the full batch shape: the first large allocation is slow and would bias the
    # first batched run (observed: 103 s vs 54 s for the same work).
    generate_replies(model, tok, tweets[: args.batch_prompts], sides["batched"])
    runners = {
        "batched": generate_replies,
        "per-prompt loop": generate_replies,
        "generate(), batched": generate_baseline,
        "batched, plain KV": plain_kv_replies,
    }
    sides["generate(), batched"] = sides["batched"]
    sides["batched, plain KV"] = sides["batched"]
    times: dict[str, list[float]] = {k: [] for k in sides}
    replies: dict[str, list[list[str]]] = {}
    for rep in range(args.repeats):
        for name, cfg in sides.items():
            t0 = time.perf_counter()
            replies[name] = runners[name](model, tok, tweets, cfg)
            times[name].append(time.perf_counter() - t0)
            assert sum(len(r) for r in replies[name]) == len(tweets) * args.n
            console.print(f"[dim]run {rep + 1}: {name:20s} {times[name][-1]:7.1f} s")
    n_replies = len(tweets) * args.n
    rate = {k: n_replies / statistics.median(v) for k, v in times.items()}
    same = sum(
        a == b for x, y in zip(replies["batched"], replies["per-prompt loop"]) for a, b in zip(x, y)
    )
    table = Table(
        title=f"generation: {len(tweets)} tweets x {args.n} replies, {args.max_new_tokens} "
        f"new tokens, {args.device}, torch threads {torch.get_num_threads()}"
    )
    table.add_column("")
    for k in sides:
        table.add_column(k, justify="right")
    b = str(args.batch_prompts)
    table.add_row("prompts per forward pass", b, "1", b, b)
    table.add_row("median seconds", *(f"{statistics.median(times[k]):.1f}" for k in sides))
    table.add_row("replies/s", *(f"{rate[k]:.2f}" for k in sides))
    console.print(table)
    console.print(f"identical replies, batched vs loop: {same}/{n_replies}")
    ratio = rate["batched"] / rate["per-prompt loop"]
    verdict = "meets" if ratio >= 4 else "MISSES"
    console.print(f"batched / per-prompt = {ratio:.2f}x ({verdict} the >= 4x target)")
    console.print(
        f"batched / transformers generate(), same batches = "
        f"{rate['batched'] / rate['generate(), batched']:.2f}x"
    )
    same_kv = sum(
        a == b
        for x, y in zip(replies["batched"], replies["batched, plain KV"])
        for a, b in zip(x, y)
    )
    console.print(
        f"batched reserved KV / plain KV = {rate['batched'] / rate['batched, plain KV']:.2f}x "
        f"(identical replies {same_kv}/{n_replies})"
    )


if __name__ == "__main__":
    main()
