"""Does the diversity credit raise measured diversity? (DESIGN §4, issue 4 acceptance)

Two polychromic runs (α = 1, β = 0) on the synthetic sample's RL split, identical except for the
diversity weight: λ = 0.5 and λ = 0 (at λ = 0 the objective is plain SFT on the reference reply,
with the same rollouts sampled and discarded). Same seed, same data order, same steps.

Then, for the held-out tweets (the test split of `synthesize(n_tweets=100, seed=0)`: all 15, or
the first `--eval-tweets` by tweet_id), each final adapter samples K replies per tweet with one fixed
sampling seed, and we measure the mean pairwise cosine distance among each tweet's K replies with
the packaged sentence encoder (`evaluation.metrics.semantic_diversity`). Reported: both means,
their difference, and a paired Wilcoxon signed-rank test over tweets (one-sided: λ > 0 higher).

    python benchmarks/diversity_effect.py [--steps 30] [--out diversity_effect.json] [--workdir DIR] [--reuse]

The settings were chosen once, before the result was known, and are not tuned: K = 4,
1 prompt per step, 24 completion tokens, learning rate 2e-4, LoRA r = 8 (the base config).
The two runs train concurrently as single-threaded subprocesses (`--sequential` for one process);
on an idle 2-core CPU that takes ~5–10 minutes, much longer when the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Settings:
    """The experiment's fixed settings (everything but λ is shared by both runs)."""

    steps: int = 30
    """Optimizer steps per run (the acceptance criterion asks for >= 30)."""
    lambdas: tuple[float, float] = (0.5, 0.0)
    """Diversity weights compared: (treatment, control)."""
    k: int = 4
    """Completions per prompt in training, and replies sampled per tweet in evaluation."""
    prompts_per_step: int = 1
    """Prompts per optimizer step."""
    tokens: int = 24
    """max_completion_length in training and max_new_tokens in evaluation."""
    learning_rate: float = 2e-4
    """AdamW learning rate of the LoRA weights."""
    seed: int = 0
    """Training seed (weights, data order, rollouts) of both runs."""
    eval_tweets: int = 0
    """Held-out test-split tweets used for the measurement (0 = all 15 of them)."""
    eval_k: int = 0
    """Replies sampled per tweet in the measurement (0 = k); more replies, less measurement noise."""
    sample_seed: int = 1234
    """Sampling seed of the evaluation replies (the same for both adapters)."""
    overrides: list[str] = field(default_factory=list)
    """Extra `key=value` config overrides applied to both runs."""


def run_overrides(s: Settings, lam: float, workdir: Path) -> list[str]:
    return [
        f"name=lambda_{lam:g}",
        f"output_dir={workdir}",
        f"seed={s.seed}",
        "data.path=",
        "data.split=auto",
        f"objective.diversity_weight={lam}",
        f"grpo.num_generations={s.k}",
        f"grpo.prompts_per_step={s.prompts_per_step}",
        f"grpo.max_completion_length={s.tokens}",
        f"optim.max_steps={s.steps}",
        f"optim.learning_rate={s.learning_rate}",
        f"optim.save_steps={s.steps}",
        "optim.sample_every=0",
        "optim.report_to=[]",
        "device=cpu",
        *s.overrides,
    ]


def heldout_tweets(n: int) -> list[str]:
    """The first `n` (0: all) test-split tweets, by tweet_id, of the synthetic sample: never trained on."""
    from replyrl.data.splits import SplitConfig, split_records
    from replyrl.data.synth import synthesize

    test = split_records(synthesize(n_tweets=100, seed=0), SplitConfig(seed=0))["test"]
    by_id = {}
    for r in test:
        by_id.setdefault(r.tweet_id, r.tweet)
    tweets = [by_id[t] for t in sorted(by_id)][: n or None]
    if len(tweets) < n:
        raise ValueError(f"the synthetic test split has only {len(tweets)} tweets, asked for {n}")
    return tweets


def measure(
    adapter: Path, tweets: list[str], s: Settings, encoder
) -> tuple[list[float], list[list[str]]]:
    """Per tweet: mean pairwise cosine distance among K sampled replies; and the replies."""
    from replyrl.evaluation.metrics import embed, semantic_diversity
    from replyrl.generation import SamplingConfig, generate_replies
    from replyrl.models import load_policy

    model, tok = load_policy(str(adapter))
    replies = generate_replies(
        model,
        tok,
        tweets,
        SamplingConfig(n=s.eval_k or s.k, max_new_tokens=s.tokens, seed=s.sample_seed),
    )
    del model
    return [semantic_diversity(embed(encoder, rs)) for rs in replies], replies


def train_one(s: Settings, lam: float, workdir: Path) -> Path:
    """One polychromic run with diversity weight `lam`; returns its run folder."""
    from replyrl.config import load_config
    from replyrl.training.config import TrainConfig
    from replyrl.training.run import train

    cfg = load_config(
        TrainConfig, ROOT / "configs" / "train" / "polychromic.yaml", run_overrides(s, lam, workdir)
    )
    return train(cfg, overwrite=True, argv=["diversity_effect.py", f"--train-only={lam}"])


def train_all(s: Settings, workdir: Path, parallel: bool, reuse: bool = False) -> dict[float, dict]:
    """Train both runs, in this process one after the other, or as two concurrent subprocesses
    (on a shared, loaded CPU two single-threaded processes finish sooner than one 2-thread run
    after another; the runs are independent, so results do not depend on this choice)."""
    t0 = time.perf_counter()
    done = [
        (workdir / f"lambda_{lam:g}" / f"seed_{s.seed}" / "metrics.json").exists()
        for lam in s.lambdas
    ]
    if reuse and all(done):
        print(f"reusing the finished runs in {workdir}", flush=True)
    elif parallel:
        procs = []
        for lam in s.lambdas:
            cmd = [
                sys.executable,
                __file__,
                f"--train-only={lam}",
                f"--steps={s.steps}",
                f"--workdir={workdir}",
                f"--seed={s.seed}",
                *(f"--set={o}" for o in s.overrides),
            ]
            log = open(workdir / f"train_lambda_{lam:g}.log", "w")
            procs.append((lam, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log))
        for lam, proc, log in procs:
            if proc.wait() != 0:
                raise RuntimeError(f"training lambda={lam:g} failed: see {log.name}")
            log.close()
    else:
        for lam in s.lambdas:
            train_one(s, lam, workdir)
    runs = {}
    for lam in s.lambdas:
        out = workdir / f"lambda_{lam:g}" / f"seed_{s.seed}"
        metrics = json.loads((out / "metrics.json").read_text())
        runs[lam] = {
            "dir": str(out),
            "train_seconds": metrics["seconds"],
            "weights": metrics["weights"],
            "global_step": metrics["global_step"],
        }
        print(
            f"trained lambda={lam:g}: {metrics['global_step']} steps in {metrics['seconds']} s",
            flush=True,
        )
    print(f"training wall time {time.perf_counter() - t0:.0f} s", flush=True)
    return runs


def run_experiment(s: Settings, workdir: Path, parallel: bool = True, reuse: bool = False) -> dict:
    """Train both runs, measure both adapters, and return the result record."""
    import numpy as np
    from scipy.stats import wilcoxon

    from replyrl.models import load_encoder

    runs = train_all(s, workdir, parallel, reuse)
    tweets = heldout_tweets(s.eval_tweets)
    encoder = load_encoder()
    for lam in s.lambdas:
        runs[lam]["per_tweet"], runs[lam]["replies"] = measure(
            Path(runs[lam]["dir"]) / "adapter", tweets, s, encoder
        )
        runs[lam]["mean_distance"] = float(np.mean(runs[lam]["per_tweet"]))

    treat, ctrl = (np.asarray(runs[lam]["per_tweet"]) for lam in s.lambdas)
    diff = treat - ctrl
    if np.all(diff == 0):
        p_greater = p_two = 1.0
    else:
        p_greater = float(wilcoxon(treat, ctrl, alternative="greater").pvalue)
        p_two = float(wilcoxon(treat, ctrl).pvalue)
    return {
        "settings": asdict(s),
        "tweets": tweets,
        "runs": {f"lambda={lam:g}": r for lam, r in runs.items()},
        "mean_distance": {f"lambda={lam:g}": runs[lam]["mean_distance"] for lam in s.lambdas},
        "difference": float(diff.mean()),
        "tweets_higher": int((diff > 0).sum()),
        "tweets_lower": int((diff < 0).sum()),
        "wilcoxon_p_greater": p_greater,
        "wilcoxon_p_two_sided": p_two,
    }


def report(result: dict) -> str:
    (ta, a), (tb, b) = result["mean_distance"].items()
    n = len(result["tweets"])
    k = result["settings"].get("eval_k") or result["settings"]["k"]
    return "\n".join(
        [
            f"mean pairwise semantic distance among K={k} replies, {n} held-out tweets:",
            f"  {ta:<12} {a:.4f}",
            f"  {tb:<12} {b:.4f}",
            f"  difference   {result['difference']:+.4f}  ({result['tweets_higher']} tweets higher, "
            f"{result['tweets_lower']} lower)",
            f"  Wilcoxon signed-rank p = {result['wilcoxon_p_greater']:.4g} (one-sided, {ta} > {tb}), "
            f"{result['wilcoxon_p_two_sided']:.4g} (two-sided)",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--steps",
        type=int,
        default=Settings.steps,
        help="optimizer steps per run (>= 30 for the claim)",
    )
    ap.add_argument(
        "--eval-tweets",
        type=int,
        default=Settings.eval_tweets,
        help="held-out tweets measured (0 = all)",
    )
    ap.add_argument("--seed", type=int, default=Settings.seed, help="training seed of both runs")
    ap.add_argument(
        "--eval-k", type=int, default=Settings.eval_k, help="replies per tweet measured (0 = k)"
    )
    ap.add_argument("--out", default="diversity_effect.json", help="result JSON")
    ap.add_argument("--workdir", default="", help="run folders go here (default: a temp dir, kept)")
    ap.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra config override for both runs (e.g. optim.max_steps=2 for a smoke run)",
    )
    ap.add_argument(
        "--sequential", action="store_true", help="train the two runs one after the other"
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch threads per training process (default: 1 when parallel, else 2)",
    )
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="measure the finished runs already in --workdir instead of training again",
    )
    ap.add_argument(
        "--train-only", type=float, default=None, help=argparse.SUPPRESS
    )  # subprocess mode
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads or (2 if args.sequential else 1))
    s = Settings(
        steps=args.steps,
        eval_tweets=args.eval_tweets,
        overrides=args.overrides,
        seed=args.seed,
        eval_k=args.eval_k,
    )
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="diversity-effect-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if args.train_only is not None:
        train_one(s, args.train_only, workdir)
        return 0
    print(f"runs in {workdir}; settings {asdict(s)}", flush=True)
    result = run_experiment(s, workdir, parallel=not args.sequential, reuse=args.reuse)
    from replyrl.io import atomic_write_json

    atomic_write_json(args.out, result)
    print(report(result))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
