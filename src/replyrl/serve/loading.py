"""Build a ready `Suggester` from names on the command line: the policy, the encoder, the reward.

Kept apart from `suggest.py` so the sampling/ranking logic can be tested with fakes without
importing torch or the reward stack.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from replyrl.serve.suggest import RewardRanker, SuggestConfig, Suggester, policy_generator

SERVE_CACHE_ITEMS = 20_000
"""Embeddings kept by a long-running server (~30 MB at 384 dims): bounded so memory does not grow."""


def build_ranker(reward_dir: str | Path | None, embeddings: Any = None) -> RewardRanker:
    """The ranking reward: with `reward_dir`, the composite reward (learned RM + heuristic, DESIGN §3
    seed weights 0.6/0.4); without, the heuristic reward alone (no training needed).

    Both come from `replyrl.rewards.build.build_reward`, the same factory training and evaluation
    use, so a suggestion is ranked by the reward the model was trained against.
    """
    from replyrl.rewards.build import RewardConfig, build_reward

    if reward_dir is None:
        fn = build_reward(RewardConfig(kind="heuristic"), embeddings=embeddings)
        return RewardRanker(fn, "heuristic")
    path = Path(reward_dir).expanduser()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"no reward model in {path} (config.json missing); train one with `replyrl reward train` "
            "or leave out --reward to rank by the heuristic reward"
        )
    fn = build_reward(RewardConfig(kind="composite", model=str(path)), embeddings=embeddings)
    return RewardRanker(fn, f"composite({path.name})")


def load_suggester(
    model: str | None = None,
    reward: str | Path | None = None,
    max_new_tokens: int = 48,
    cfg: SuggestConfig | None = None,
    device: str = "auto",
) -> Suggester:
    """Load the policy (base model or adapter folder), the encoder and the reward once, all on
    `device` (auto: cuda → mps → cpu)."""
    from transformers.utils import logging as hf_logging

    from replyrl.device import resolve_device
    from replyrl.models import load_policy
    from replyrl.rewards.embeddings import EmbeddingCache

    cfg = cfg or SuggestConfig()  # validate before any model loads
    device = resolve_device(device)
    hf_logging.disable_progress_bar()  # people read this output; weight-loading bars are noise here
    # One cache for dedup and the reward's relevance: each reply is encoded once (encoder loads lazily,
    # after a bad --reward folder has already been reported).
    embeddings = EmbeddingCache(max_items=SERVE_CACHE_ITEMS, device=device)
    ranker = build_ranker(reward, embeddings)
    # Load the encoder, VADER and the profanity model now, not inside the first person's request.
    ranker.score("warm-up", ["warming up the reward"])
    m, tok = load_policy(
        model, device=device, merge_adapter=True
    )  # merged LoRA: same outputs, faster generate
    name = "default (SmolLM2-135M-Instruct)" if model in (None, "", "default") else str(model)
    return Suggester(
        policy_generator(m, tok, max_new_tokens=max_new_tokens),
        embeddings.encode,
        ranker,
        cfg,
        name,
    )
