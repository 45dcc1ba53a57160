"""Reward scoring throughput with and without the embedding cache (DESIGN §8: ≥ 1,000 pairs/s on
2 CPU cores with the cache), side by side in one run, on (tweet, reply) pairs from pool.jsonl.

    python benchmarks/bench_reward.py [--n 2000] [--model RM_DIR] [--batch 256]

The composite reward (learned head + heuristic) scores the pairs in batches, three ways:
  no cache    every call encodes every text (tweets once per reply, once per component);
  cache, cold a fresh text-keyed cache: each distinct tweet and reply encoded once;
  cache, warm the same pairs again (GRPO re-scoring a prompt's tweet, evaluation re-scoring
              cached generations): no encoding at all.
Without --model, a seeded untrained head stands in for the RM (same cost as a trained one).
Then the learned reward alone on the warm cache, one head against the default's 5-head ensemble
(the cost the ensemble adds where encoding is already paid).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
DATA = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "reddit-college" / "pool.jsonl"
)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=2000, help="(tweet, reply) pairs to score")
    ap.add_argument("--batch", type=int, default=256, help="pairs per reward call")
    ap.add_argument(
        "--model", default=None, help="reward model folder (default: a seeded untrained head)"
    )
    ap.add_argument("--data", default=str(DATA))
    args = ap.parse_args()
    if not Path(args.data).exists():
        print(f"skip: {args.data} not found (see shared/data/README.md)")
        return 0

    import torch

    from replyrl.models import load_encoder
    from replyrl.records import load_records
    from replyrl.rewards.build import RewardConfig, build_reward
    from replyrl.rewards.learned import HeadConfig, RewardHead, RewardModel

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    recs = load_records(args.data).records[: args.n]
    tweets, replies = [r.tweet for r in recs], [r.reply for r in recs]
    load_encoder()  # load once, outside the timings
    model_dir = args.model
    if model_dir is None:
        torch.manual_seed(0)
        model_dir = tempfile.mkdtemp(prefix="bench-rm-")
        RewardModel(
            RewardHead(HeadConfig()),
            meta={"score_mean": 0.0, "score_std": 1.0, "heuristic_mean": 0.5, "heuristic_std": 0.1},
        ).save(model_dir)

    def run(reward) -> float:
        t = time.perf_counter()
        for i in range(0, len(recs), args.batch):
            reward(None, replies[i : i + args.batch], tweet=tweets[i : i + args.batch])
        return len(recs) / (time.perf_counter() - t)

    uncached = build_reward(RewardConfig(kind="composite", model=model_dir, cache=False))
    cached = build_reward(RewardConfig(kind="composite", model=model_dir, cache=True))
    results = {"no cache": run(uncached), "cache, cold": run(cached), "cache, warm": run(cached)}
    print(
        f"{len(recs)} pairs from {Path(args.data).name} ({len(set(tweets))} distinct tweets), "
        f"batch {args.batch}, {torch.get_num_threads()} torch threads, composite reward (learned + heuristic)"
    )
    print(f"{'mode':<14}{'pairs/s':>10}{'vs no cache':>14}")
    for k, v in results.items():
        print(f"{k:<14}{v:>10.1f}{v / results['no cache']:>13.1f}x")
    target = results["cache, warm"] >= 1000
    print(f"target >= 1,000 pairs/s with the cache (warm): {'met' if target else 'NOT met'}")

    from replyrl.rewards.embeddings import EmbeddingCache
    from replyrl.rewards.learned import EnsembleHead

    embeddings = EmbeddingCache()
    heads = {
        "1 head": RewardModel(RewardHead(HeadConfig(ensemble=1)), embeddings=embeddings),
        "5 heads": RewardModel(EnsembleHead(HeadConfig(ensemble=5)), embeddings=embeddings),
    }
    heads["1 head"].score(tweets, replies)  # warm the shared cache
    speed = {}
    for name, rm in heads.items():
        t = time.perf_counter()
        for i in range(0, len(recs), args.batch):
            rm.score(tweets[i : i + args.batch], replies[i : i + args.batch])
        speed[name] = len(recs) / (time.perf_counter() - t)
    print(
        f"learned reward alone, warm cache: {'':>2}"
        + "  ".join(f"{k} {v:.0f} pairs/s" for k, v in speed.items())
        + f"  (5 heads / 1 head: {speed['5 heads'] / speed['1 head']:.2f}x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
