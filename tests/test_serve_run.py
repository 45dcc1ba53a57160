"""`--run DIR`: which model, reward and instruction a finished pipeline folder gives, and one clear
error for a folder that is not one."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from replyrl.errors import UserError
from replyrl.models import DEFAULT_INSTRUCTION
from replyrl.serve.loading import RunError, pick_winner, resolve_run


def _metrics(**means) -> dict:
    return {m: {"mean": v, "ci_low": v, "ci_high": v, "n": 10} for m, v in means.items()}


def make_run(
    root: Path,
    models: dict[str, dict],
    seeds: dict[str, list[int]] | None = None,
    adapters: bool = True,
    instruction: str | None = "Reply like a friend.",
    reward: dict | None = None,
    run_rewards: dict[str, dict] | None = None,
    proxy: bool = True,
) -> Path:
    """A pipeline output folder as `replyrl pipeline` leaves it (adapters are stubs): `reward` is
    the pipeline's reward section, `run_rewards` a run's own (default: the pipeline's)."""
    reward = reward or {"kind": "composite", "learned_weight": 0.7, "heuristic_weight": 0.3}
    seeds = seeds or {}
    summary = {"models": {}, "metrics": []}
    for name, metrics in models.items():
        runs = []
        for s in seeds.get(name, [0]) if name != "base" else [0]:
            path = root / "experiments" / name / f"seed_{s}" / "adapter"
            runs.append(
                {
                    "name": name,
                    "seed": s,
                    "id": f"{name}#{s}",
                    "path": "base" if name == "base" else str(path),
                }
            )
            if adapters and name != "base":
                path.mkdir(parents=True)
                (path / "adapter_config.json").write_text("{}")
                cfg = {"data": {"instruction": instruction}} if instruction else {"data": {}}
                cfg["reward"] = (run_rewards or {}).get(name, reward)
                (path.parent / "config.yaml").write_text(yaml.safe_dump(cfg))
        summary["models"][name] = {"runs": runs, "metrics": metrics}
    (root / "eval").mkdir(parents=True, exist_ok=True)
    (root / "eval" / "summary.json").write_text(json.dumps(summary))
    if proxy:
        (root / "rewards" / "proxy").mkdir(parents=True, exist_ok=True)
        (root / "rewards" / "proxy" / "config.json").write_text("{}")
    (root / "pipeline_config.json").write_text(json.dumps({"name": root.name, "reward": reward}))
    return root


def test_winner_by_audience_then_gold_then_proxy():
    models = {
        "base": {"metrics": _metrics(audience=0.2, gold=0.9, proxy=0.1)},
        "sft": {"metrics": _metrics(audience=0.5, gold=0.1, proxy=0.2)},
        "grpo": {"metrics": _metrics(audience=0.4, gold=0.2, proxy=0.9)},
    }
    assert pick_winner(models) == ("sft", "audience", 0.5)  # synthetic: the audience decides
    for m in models.values():
        del m["metrics"]["audience"]
    assert pick_winner(models) == ("base", "gold", 0.9)  # the base model can win
    for m in models.values():
        del m["metrics"]["gold"]
    assert pick_winner(models) == ("grpo", "proxy", 0.9)


def test_winner_ties_go_to_the_first_and_nan_is_no_score():
    models = {
        "a": {"metrics": _metrics(gold=math.nan, proxy=0.3)},
        "b": {"metrics": _metrics(gold=0.3)},
        "c": {"metrics": _metrics(gold=0.3)},
        "d": {"metrics": {"gold": {"mean": "high"}}},  # unreadable: ignored
        "e": "not a dict",
    }
    assert pick_winner(models) == ("b", "gold", 0.3)
    with pytest.raises(RunError, match="no model has a finite mean"):
        pick_winner({"a": {"metrics": {"judge_win": {"mean": 1.0}}}})


def test_resolve_run_picks_adapter_reward_weights_and_instruction(tmp_path):
    root = make_run(
        tmp_path / "demo",
        {
            "base": _metrics(audience=0.1),
            "hybrid": _metrics(audience=0.6),
            "dpo": _metrics(audience=0.3),
        },
        seeds={"hybrid": [2, 0]},
    )
    c = resolve_run(root)
    assert c.name == "hybrid" and c.seed == 2  # the first seed listed, not the luckiest
    assert c.adapter == root / "experiments" / "hybrid" / "seed_2" / "adapter"
    assert c.reward == root / "rewards" / "proxy" and c.reward_kind == "composite"
    assert (c.learned_weight, c.heuristic_weight) == (0.7, 0.3)
    assert c.instruction == "Reply like a friend."
    assert c.reason == (
        "hybrid: highest mean audience (0.600) of 3 evaluated models; "
        "ranked by its proxy reward model + heuristic"
    )
    assert c.label == "hybrid, seed 2 from demo"
    d = resolve_run(root, recipe="dpo")
    assert d.name == "dpo" and d.reason.startswith("dpo: chosen with --recipe; ")
    b = resolve_run(root, recipe="base")
    assert b.adapter is None and b.seed is None and b.instruction == DEFAULT_INSTRUCTION


@pytest.mark.parametrize(
    "run_reward, kind, note",
    [
        (
            {"kind": "learned", "model": "elsewhere/proxy"},
            "learned",
            "ranked by its proxy reward model",
        ),
        ({"kind": "heuristic"}, "heuristic", "ranked by the heuristic it trained against"),
        (
            {"kind": "audience"},
            "composite",
            "trained on the simulated audience (synthetic only): ranked by its proxy reward model"
            " + heuristic",
        ),
        ({}, "composite", "ranked by its proxy reward model + heuristic"),  # not recorded
    ],
)
def test_ranking_reward_is_the_one_the_run_optimised(tmp_path, run_reward, kind, note):
    root = make_run(tmp_path / "r", {"grpo": _metrics(gold=0.2)}, run_rewards={"grpo": run_reward})
    c = resolve_run(root)
    assert c.reward_kind == kind and c.reason.endswith(note)
    assert c.reward == (None if kind == "heuristic" else root / "rewards" / "proxy")
    if run_reward.get("kind") == "audience":  # the pipeline's composite weights
        assert (c.learned_weight, c.heuristic_weight) == (0.7, 0.3)


def test_resolve_run_falls_back_gracefully(tmp_path):
    # No instruction recorded; no proxy RM folder (a heuristic-only pipeline): the heuristic ranks.
    root = make_run(tmp_path / "r", {"sft": _metrics(proxy=0.2)}, instruction=None, proxy=False)
    c = resolve_run(root)
    assert c.instruction == DEFAULT_INSTRUCTION and c.reward is None
    assert c.reward_kind == "heuristic" and "no proxy reward model" in c.reason
    # The adapter moved with the folder: the recorded absolute path is stale, the layout is not.
    moved = tmp_path / "moved"
    root.rename(moved)
    assert resolve_run(moved).adapter == moved / "experiments" / "sft" / "seed_0" / "adapter"


@pytest.mark.parametrize(
    "breakage, message",
    [
        ("no-folder", "no such folder"),
        ("unfinished", "is not a finished pipeline run: "),
        ("bad-json", "cannot read the pipeline summary"),
        ("no-models", "lists no evaluated models"),
        ("no-adapter", "model 'sft' is in eval/summary.json but its adapter is missing"),
        ("unknown-recipe", "--recipe 'ppo' is not in"),
        ("bad-weight", "reward.learned_weight must be a finite number >= 0"),
        ("bad-kind", "unknown reward kind 'oracle'"),
    ],
)
def test_bad_run_folders_are_one_clear_error(tmp_path, breakage, message):
    root = tmp_path / "run"
    recipe = None
    if breakage == "no-folder":
        root = tmp_path / "missing"
    elif breakage == "unfinished":
        (root / "stages").mkdir(parents=True)  # a pipeline that stopped before evaluation
    else:
        make_run(root, {"sft": _metrics(gold=0.1)}, adapters=breakage != "no-adapter")
        if breakage == "bad-json":
            (root / "eval" / "summary.json").write_text('{"models": ')
        elif breakage == "no-models":
            (root / "eval" / "summary.json").write_text('{"models": {}}')
        elif breakage == "unknown-recipe":
            recipe = "ppo"
        elif breakage in ("bad-weight", "bad-kind"):
            bad = {"kind": "composite", "learned_weight": "lots"}
            if breakage == "bad-kind":
                bad = {"kind": "oracle"}
            cfg = root / "experiments" / "sft" / "seed_0" / "config.yaml"
            cfg.write_text(yaml.safe_dump({"reward": bad}))
    with pytest.raises(RunError) as e:
        resolve_run(root, recipe)
    assert message in str(e.value) and "\n" not in str(e.value)
    assert isinstance(e.value, UserError)
