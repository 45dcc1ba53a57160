"""Time per GRPO optimizer step: our trainer vs plain TRL, side by side in one run (DESIGN §8).

Three trainers on the same model (the packaged SmolLM2-135M-Instruct), LoRA config, prompts,
K, completion length, temperature, seed and CPU settings:

  (a) trl      plain TRL `GRPOTrainer` with a trivial reward (reply length in characters)
  (b) grpo     our `ObjectiveGRPOTrainer` (built by `replyrl.training.run.build_trainer`) with the
               composite engagement reward (the heuristic alone unless --rm names a reward model)
               plus the additive diversity credit: α = 0, β = 1, λ = 0.2
  (c) hybrid   the same with the SFT term: α = 0.3, β = 0.5, λ = 0.2
  (d) fast     (b) with fast rollouts (`grpo.rollout_backend=fast`: replyrl's decode loop in
               TRL's generation hook, replyrl.training.rollout); target ≤ 0.6× plain TRL on a CPU

(a)–(c) sample with TRL's `generate` (`grpo.rollout_backend=trl`), so b/a and c/a measure our
objective's overhead alone; d/a is what `grpo.rollout_backend: fast` buys.

All three are built once. After `--warmup` untimed rounds, each of `--rounds` rounds runs one
optimizer step of every trainer, in an order that rotates from round to round, so that load from
other processes on a shared machine falls on all three alike. A timed step is what the Trainer's
inner loop does for one optimizer step (gradient accumulation 1): TRL's `training_step`
(generation of K completions per prompt, reward scoring, reference and old log-probs, loss,
backward), then gradient clipping, `optimizer.step()`, the LR scheduler and `zero_grad()`.

Printed: the median seconds/step of each trainer (wall and process CPU time: on a shared machine
CPU time is the steadier of the two; generation time also follows the completions' length, printed
too), the ratios b/a, c/a and d/a against the targets (≤ 1.10, ≤ 1.30 and ≤ 0.60), where each trainer's time goes (rollout generation, reward functions, the rest
of TRL's scoring, and loss+backward+optimizer), and the process's peak RSS (target ≤ 4 GB;
with three trainers in one process this overstates one trainer's peak: run `--variants grpo` for that).

    python benchmarks/bench_grpo_step.py [--rounds 5] [--warmup 1] [--k 4] [--tokens 32] [--prompts 2]
                                         [--threads 1] [--variants trl,grpo,hybrid,fast] [--rm RM_DIR]
                                         [--device cpu]
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"grpo": 1.10, "hybrid": 1.30, "fast": 0.60}
PHASES = ("generate", "rewards", "scoring_other", "loss_backward_opt")


def trivial_reward(completions, **kwargs) -> list[float]:
    """Length of each completion in characters: the cheapest reward that still varies."""
    return [float(len(c[0]["content"] if isinstance(c, list) else c)) for c in completions]


@dataclass
class Variant:
    """One trainer under test, with its per-step timings."""

    name: str
    trainer: object
    steps: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    """Process CPU seconds per step: less sensitive than wall time to other processes' load."""
    lengths: list[float] = field(default_factory=list)
    """Mean completion length (tokens) of each step: generation time follows it."""
    phases: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    batches: object = None


def train_config(recipe: str, args: argparse.Namespace, out: Path):
    """Our TrainConfig for `recipe` with the benchmark's shared settings."""
    from replyrl.config import load_config
    from replyrl.training.config import TrainConfig

    weights = {
        "fast": [
            "objective.sft_weight=0",
            "objective.pg_weight=1",
            "objective.diversity_weight=0.2",
        ],
        "grpo": [
            "objective.sft_weight=0",
            "objective.pg_weight=1",
            "objective.diversity_weight=0.2",
        ],
        "hybrid": [
            "objective.sft_weight=0.3",
            "objective.pg_weight=0.5",
            "objective.diversity_weight=0.2",
        ],
    }
    overrides = [
        f"output_dir={out}",
        "seed=0",
        "data.path=",
        "model.name=default",
        "reward.kind=composite",
        *([f"reward.model={args.rm}"] if args.rm else []),
        f"grpo.num_generations={args.k}",
        f"grpo.prompts_per_step={args.prompts}",
        f"grpo.max_completion_length={args.tokens}",
        "grpo.temperature=1.0",
        f"grpo.rollout_backend={'fast' if recipe == 'fast' else 'trl'}",
        f"device={args.device}",
        "optim.gradient_checkpointing=false",
        "optim.report_to=[]",
        "optim.sample_every=0",
        "optim.logging_steps=1000000",
        "optim.save_steps=1000000",
        f"optim.max_steps={args.rounds + args.warmup}",
        *weights[recipe],
    ]
    path = ROOT / "configs" / "train" / f"{'grpo' if recipe == 'fast' else recipe}.yaml"
    return load_config(TrainConfig, path, overrides)


def build_variants(args: argparse.Namespace, out: Path) -> list[Variant]:
    from transformers import set_seed
    from trl import GRPOTrainer

    from replyrl.training.run import _lora, _policy, build_trainer, runtime

    built: dict[str, object] = {}
    for name in sorted(
        args.variants, key=lambda n: n == "trl"
    ):  # ours first: trl borrows their args
        set_seed(0)
        if name != "trl":
            built[name] = build_trainer(train_config(name, args, out / name), out / name)
            continue
        # plain TRL with the very same GRPOConfig, dataset, tokenizer and LoRA config as ours
        cfg = train_config("grpo", args, out / "trl")
        ours = next(iter(built.values()), None) or build_trainer(cfg, out / "trl")
        model, tok = _policy(cfg, runtime(cfg)[1])
        set_seed(0)
        built[name] = GRPOTrainer(
            model=model,
            reward_funcs=[trivial_reward],
            args=ours.args,
            train_dataset=ours.train_dataset,
            processing_class=tok,
            peft_config=_lora(cfg),
        )
    return [Variant(name, built[name]) for name in args.variants]


def instrument(v: Variant) -> None:
    """Time the trainer's rollout generation, reward functions and whole scoring pass."""
    t = v.trainer

    def timed(phase: str, fn):
        @functools.wraps(fn)
        def wrapper(*a, **kw):
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                v.phases[phase].append(time.perf_counter() - t0)

        return wrapper

    t._generate = timed("_generate", t._generate)
    t._calculate_rewards = timed("_rewards", t._calculate_rewards)
    t._generate_and_score_completions = timed("_prepare", t._generate_and_score_completions)


def prepare(v: Variant) -> None:
    """What `Trainer.train` does before its first step: optimizer, scheduler, train mode, data."""
    t = v.trainer
    t.create_optimizer_and_scheduler(num_training_steps=t.args.max_steps)
    t.model.train()
    t.current_gradient_accumulation_steps = 1
    v.batches = iter(t.get_train_dataloader())
    instrument(v)


def one_step(v: Variant) -> tuple[float, float, float]:
    """One optimizer step, as the Trainer's inner loop does it with gradient accumulation 1.

    Returns (wall seconds, process CPU seconds, mean completion length in tokens)."""
    t = v.trainer
    batch = next(v.batches)
    n = {k: len(v.phases[k]) for k in ("_generate", "_rewards", "_prepare")}
    c0 = time.process_time()
    t0 = time.perf_counter()
    t.training_step(t.model, batch, None)
    if t.args.max_grad_norm > 0:
        t._clip_grad_norm(t.model)
    t.optimizer.step()
    t.lr_scheduler.step()
    t.model.zero_grad()
    t.state.global_step += 1
    dt = time.perf_counter() - t0
    cpu = time.process_time() - c0
    length = float(
        statistics.mean(t._metrics["train"].get("completions/mean_length") or [float("nan")])
    )
    got = {k: sum(v.phases[k][n[k] :]) for k in n}
    for k in n:
        del v.phases[k][n[k] :]
    v.phases["generate"].append(got["_generate"])
    v.phases["rewards"].append(got["_rewards"])
    v.phases["scoring_other"].append(got["_prepare"] - got["_generate"] - got["_rewards"])
    v.phases["loss_backward_opt"].append(dt - got["_prepare"])
    for m in t._metrics.values():  # what `Trainer.log` would consume; keep memory flat
        m.clear()
    return dt, cpu, length


def peak_rss_gb() -> float:
    return (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
    )  # ru_maxrss is KiB on Linux


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--rounds", type=int, default=5, help="timed rounds (one step of every trainer each)"
    )
    ap.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    ap.add_argument("--k", type=int, default=4, help="completions per prompt (num_generations)")
    ap.add_argument("--tokens", type=int, default=32, help="max_completion_length")
    ap.add_argument("--prompts", type=int, default=2, help="prompts per step")
    ap.add_argument(
        "--rm",
        default="",
        help="reward model folder for the composite reward (default: heuristic only)",
    )
    ap.add_argument(
        "--variants",
        default="trl,grpo,hybrid,fast",
        help="comma list of trl, grpo, hybrid, fast",
    )
    ap.add_argument("--device", default="cpu", help="auto, cpu or cuda (device=… of the runs)")
    ap.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("BENCH_THREADS", "1")),
        help="torch threads (1 by default: on a shared 2-core machine 2 threads made step times "
        "vary 3x from round to round, 1 thread within a few percent)",
    )
    args = ap.parse_args()
    args.variants = [x.strip() for x in args.variants.split(",") if x.strip()]
    if unknown := set(args.variants) - {"trl", "grpo", "hybrid", "fast"}:
        ap.error(f"unknown variants {sorted(unknown)}: choose from trl, grpo, hybrid, fast")

    import torch

    torch.set_num_threads(args.threads)
    out = Path(tempfile.mkdtemp(prefix="bench-grpo-"))
    t0 = time.perf_counter()
    variants = build_variants(args, out)
    for v in variants:
        prepare(v)
    print(
        f"built {len(variants)} trainers in {time.perf_counter() - t0:.0f} s; rss {peak_rss_gb():.2f} GB; "
        f"K={args.k} prompts={args.prompts} tokens={args.tokens} threads={args.threads}",
        flush=True,
    )

    for r in range(args.warmup + args.rounds):
        order = variants[r % len(variants) :] + variants[: r % len(variants)]
        times = {}
        for v in order:
            # Same sampling RNG state for every trainer in a round: the policies start identical
            # (LoRA B = 0) and the prompts come in the same order, so rollouts, and with them the
            # work of generation and loss, are alike rather than random in length.
            torch.manual_seed(1000 + r)
            times[v.name] = one_step(v)
        if r < args.warmup:
            for v in variants:
                v.phases.clear()
        else:
            for v in variants:
                wall, cpu, length = times[v.name]
                v.steps.append(wall)
                v.cpu.append(cpu)
                v.lengths.append(length)
        tag = "warm-up" if r < args.warmup else f"round {r - args.warmup + 1}"
        print(
            f"{tag:>9}: "
            + "  ".join(
                f"{v.name} {times[v.name][0]:.2f}s (cpu {times[v.name][1]:.2f}s, "
                f"{times[v.name][2]:.1f} tok)"
                for v in order
            ),
            flush=True,
        )

    med = {v.name: statistics.median(v.steps) for v in variants}
    cpu = {v.name: statistics.median(v.cpu) for v in variants}
    print(f"\nmedian over {args.rounds} interleaved rounds (phases: wall seconds)")
    print(
        f"{'variant':<8} {'s/step':>7} {'cpu s':>7} {'tokens':>6} "
        + " ".join(f"{p:>17}" for p in PHASES)
    )
    for v in variants:
        print(
            f"{v.name:<8} {med[v.name]:7.2f} {cpu[v.name]:7.2f} {statistics.median(v.lengths):6.1f} "
            + " ".join(f"{statistics.median(v.phases[p]):17.2f}" for p in PHASES)
        )
    by_name = {v.name: v for v in variants}
    if "trl" in med:
        for name, target in TARGETS.items():
            if name in med:
                # per-round ratios too: the steps of one round ran under about the same outside load
                per_round = [b / a for a, b in zip(by_name["trl"].steps, by_name[name].steps)]
                ratio, cpu_ratio = med[name] / med["trl"], cpu[name] / cpu["trl"]
                print(
                    f"{name}/trl = {ratio:.3f} wall (median of per-round ratios "
                    f"{statistics.median(per_round):.3f}), {cpu_ratio:.3f} cpu; target <= {target:.2f}: "
                    f"{'PASS' if max(ratio, cpu_ratio) <= target else 'MISS'}"
                )
    rss = peak_rss_gb()
    print(
        f"peak RSS {rss:.2f} GB ({len(variants)} trainer(s) in this process); target <= 4 GB: "
        f"{'PASS' if rss <= 4 else 'MISS'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
