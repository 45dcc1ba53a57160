"""The whole pipeline as resumable stages: data → split → reward models → recipes → evaluate.

Each stage records a content hash of its inputs (its config section, its input files, and the
hashes of the stages it depends on) in `<out>/stages/<stage>.json` once it succeeds. A rerun
skips a stage whose hash matches and whose outputs exist, so an interrupted pipeline (Ctrl+C,
kill -9) resumes at the first incomplete stage; that stage restarts from scratch, and every stage
is seeded, so the final report equals an uninterrupted run's. `force` reruns named stages (and,
through the hashes, everything downstream of them).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console

from replyrl.data.splits import SplitConfig
from replyrl.io import atomic_write_json, atomic_write_text
from replyrl.training.objective import RECIPES

console = Console(stderr=True)


@dataclass
class RewardStage:
    """How the proxy and gold reward models are trained and used."""

    proxy_config: str = "../reward/preference.yaml"
    """Reward-training YAML of the proxy RM (trained on the sft + rl tweets); relative to this file."""
    gold_config: str = "../reward/preference.yaml"
    """Reward-training YAML of the gold RM (trained on the held-out gold tweets only)."""
    proxy_set: list[str] = field(default_factory=list)
    """Overrides of the proxy reward config (key=value)."""
    gold_set: list[str] = field(default_factory=list)
    """Overrides of the gold reward config (key=value)."""
    train_with_learned: bool = True
    """RL recipes optimise the composite (proxy RM + heuristic); false = the heuristic alone."""
    learned_weight: float = 0.6
    """Composite weight of the learned proxy RM (check its validation margin over length)."""
    heuristic_weight: float = 0.4
    """Composite weight of the heuristic."""


@dataclass
class PipelineConfig:
    """`replyrl pipeline`: which data, which recipes, which seeds, and where to write."""

    name: str = "demo"
    """Pipeline name; outputs go to <out>/<name>/."""
    out: str = "output/pipeline"
    """Root folder of pipeline outputs."""
    data: str = ""
    """Records file (JSONL/CSV); empty = the synthetic sample."""
    synth_tweets: int = 100
    """Tweets in the synthetic sample when `data` is empty."""
    skip_invalid: bool = False
    """Skip bad rows (written to a rejects file) instead of stopping."""
    split: SplitConfig = field(default_factory=SplitConfig)
    """Tweet-level split into sft / rl / gold / test."""
    seeds: list[int] = field(default_factory=lambda: [0])
    """Training seeds of every recipe (several seeds → mean ± std and pooled tests)."""
    recipes: list[str] = field(default_factory=lambda: list(RECIPES))
    """Recipes to train and compare against the base model."""
    train_configs: str = "../train"
    """Folder of the recipes' training YAMLs (<recipe>.yaml), relative to this file."""
    train_set: list[str] = field(default_factory=list)
    """Overrides applied to every recipe (key=value)."""
    recipe_set: dict = field(default_factory=dict)
    """Per-recipe overrides: {recipe: [key=value, ...]}."""
    reward: RewardStage = field(default_factory=RewardStage)
    """Proxy and gold reward models."""
    eval_config: str = "../eval/default.yaml"
    """Evaluation YAML, relative to this file."""
    eval_set: list[str] = field(default_factory=list)
    """Overrides of the evaluation config (key=value)."""

    def __post_init__(self):
        bad = [r for r in self.recipes if r not in RECIPES]
        if bad or not self.recipes:
            raise ValueError(
                f"recipes must be a non-empty subset of {list(RECIPES)}, got {self.recipes}"
            )
        unknown = [r for r in self.recipe_set if r not in RECIPES]
        if unknown:
            raise ValueError(f"recipe_set names unknown recipes {unknown}")
        if not self.seeds:
            raise ValueError("seeds must name at least one seed")
        if self.synth_tweets < 8:
            raise ValueError(f"synth_tweets must be >= 8, got {self.synth_tweets}")


def file_hash(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tree_hash(path: Path) -> str:
    """Hash of a file or of every file under a folder (names and contents)."""
    if path.is_file():
        return file_hash(path)
    h = hashlib.sha256()
    for p in sorted(x for x in path.rglob("*") if x.is_file()):
        h.update(str(p.relative_to(path)).encode())
        h.update(file_hash(p).encode())
    return h.hexdigest()


class Stages:
    """Bookkeeping of completed stages under <out>/stages/."""

    def __init__(self, root: Path, force: list[str]):
        self.dir = root / "stages"
        self.force = set(force)
        self.hashes: dict[str, str] = {}
        self.ran: list[str] = []

    def run(self, name: str, inputs: dict, outputs: list[Path], fn) -> str:
        """Run `fn()` unless a completed record with the same input hash exists; returns the hash."""
        digest = hashlib.sha256(
            json.dumps(inputs, sort_keys=True, default=str).encode()
        ).hexdigest()
        rec = self.dir / f"{name}.json"
        if name not in self.force and rec.exists() and all(p.exists() for p in outputs):
            if json.loads(rec.read_text()).get("hash") == digest:
                console.print(f"[dim]✓ {name}: up to date, skipped[/]")
                self.hashes[name] = digest
                return digest
        console.rule(f"[bold]{name}")
        t0 = time.time()
        fn()
        atomic_write_json(
            rec,
            {
                "hash": digest,
                "seconds": round(time.time() - t0, 1),
                "outputs": [str(p) for p in outputs],
            },
        )
        self.hashes[name] = digest
        self.ran.append(name)
        return digest


def _resolve(base: Path, p: str) -> Path:
    q = Path(p)
    return q if q.is_absolute() else (base / q).resolve()


def run_pipeline(cfg: PipelineConfig, config_path: Path, force: list[str] | None = None) -> dict:
    """Run (or resume) the pipeline; returns {"report": path, "summary": summary, "ran": [stages]}."""
    from replyrl.config import load_config

    base = config_path.resolve().parent
    root = Path(cfg.out) / cfg.name
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(root / "pipeline_config.json", json.dumps(asdict(cfg), indent=2))
    stages = Stages(root, force or [])
    data_dir, rm_dir = root / "data", root / "rewards"
    records_file = data_dir / "records.jsonl"

    # 1. data: validate the user's file (or synthesize the sample) into one clean records file.
    src_hash = file_hash(cfg.data) if cfg.data else f"synth:{cfg.synth_tweets}"
    h_data = stages.run(
        "data",
        {"src": src_hash, "skip_invalid": cfg.skip_invalid},
        [records_file],
        lambda: _stage_data(cfg, records_file, data_dir),
    )
    # 2. split by tweet (phase split + held-out gold/test) and engagement preference pairs.
    split_files = {s: data_dir / "splits" / f"{s}.jsonl" for s in ("sft", "rl", "gold", "test")}
    h_split = stages.run(
        "split",
        {"data": h_data, "split": asdict(cfg.split)},
        list(split_files.values()),
        lambda: _stage_split(cfg, records_file, data_dir),
    )

    # 3. reward models: proxy on sft+rl tweets, gold on the gold tweets only; both validated.
    def reward_stage(
        kind: str, yaml_path: str, overrides: list[str], train_splits: list[str], val_file: Path
    ):
        from replyrl.rewards.train import RewardTrainConfig

        path = _resolve(base, yaml_path)
        sets = [*overrides, f"train_splits={json.dumps(train_splits)}"]
        rcfg = load_config(RewardTrainConfig, path, sets, data={"split": asdict(cfg.split)})
        out = rm_dir / kind
        return stages.run(
            f"reward_{kind}",
            {"split": h_split, "cfg": asdict(rcfg)},
            [out / "config.json", out / "validation" / "validation.json"],
            lambda: _stage_reward(rcfg, records_file, out, val_file),
        )

    h_proxy = reward_stage(
        "proxy", cfg.reward.proxy_config, cfg.reward.proxy_set, ["sft", "rl"], split_files["test"]
    )
    h_gold = reward_stage(
        "gold", cfg.reward.gold_config, cfg.reward.gold_set, ["gold"], split_files["test"]
    )

    # 4. recipes × seeds.
    adapters: list[tuple[str, Path]] = []
    for recipe in cfg.recipes:
        for seed in cfg.seeds:
            tcfg = _train_config(cfg, base, recipe, seed, split_files, rm_dir / "proxy", root)
            from replyrl.training.run import run_dir_of

            run = run_dir_of(tcfg)
            deps = {
                "split": h_split,
                "proxy": h_proxy if tcfg.weights().needs_engagement else None,
                "cfg": asdict(tcfg),
            }
            stages.run(
                f"train_{recipe}_seed{seed}",
                deps,
                [run / "adapter" / "adapter_config.json"],
                lambda t=tcfg: _stage_train(t),
            )
            adapters.append((recipe, run / "adapter"))

    # 5. evaluate every model against the base on the test tweets; write the report.
    from replyrl.evaluation.evaluate import EvalConfig

    ecfg = load_config(
        EvalConfig,
        _resolve(base, cfg.eval_config),
        cfg.eval_set,
        data={"proxy_reward": str(rm_dir / "proxy"), "gold_reward": str(rm_dir / "gold")},
    )
    eval_dir = root / "eval"
    specs = ["base=base"] + [f"{recipe}={path}" for recipe, path in adapters]
    stages.run(
        "evaluate",
        {
            "train": [stages.hashes[k] for k in stages.hashes if k.startswith("train_")],
            "gold": h_gold,
            "proxy": h_proxy,
            "cfg": asdict(ecfg),
            "specs": specs,
        },
        [eval_dir / "summary.json", eval_dir / "report.html"],
        lambda: _stage_evaluate(specs, split_files["test"], eval_dir, ecfg),
    )
    summary = json.loads((eval_dir / "summary.json").read_text())
    return {"report": eval_dir / "report.html", "summary": summary, "ran": stages.ran, "root": root}


def _stage_data(cfg: PipelineConfig, records_file: Path, data_dir: Path) -> None:
    from replyrl.records import load_records, write_records, write_rejects

    if cfg.data:
        res = load_records(cfg.data, skip_invalid=cfg.skip_invalid)
        if res.errors:
            write_rejects(data_dir / "rejects.jsonl", res.rejected_lines)
            console.print(
                f"[yellow]skipped {len(res.errors)} invalid row(s); written to {data_dir / 'rejects.jsonl'}"
            )
        console.print(
            f"{res.n_rows} rows → {len(res.records)} records ({res.duplicates} duplicates removed)"
        )
        records = res.records
    else:
        from replyrl.data.synth import synthesize

        records = synthesize(n_tweets=cfg.synth_tweets, seed=0)
        console.print(
            f"synthetic sample: {len(records)} replies to {cfg.synth_tweets} tweets (simulated audience)"
        )
    write_records(records_file, records)


def _stage_split(cfg: PipelineConfig, records_file: Path, data_dir: Path) -> None:
    from replyrl.data.pairs import preference_pairs, write_pairs
    from replyrl.data.splits import split_records, write_splits
    from replyrl.records import load_records

    records = load_records(records_file).records
    splits = split_records(records, cfg.split)
    write_splits(data_dir / "splits", splits, cfg.split)
    pairs = preference_pairs(splits["sft"] + splits["rl"])
    write_pairs(data_dir / "pairs.jsonl", pairs)
    console.print(
        ", ".join(
            f"{k}: {len({r.tweet_id for r in v})} tweets / {len(v)} replies"
            for k, v in splits.items()
        )
        + f"; {len(pairs)} training preference pairs"
    )


def _stage_reward(rcfg, records_file: Path, out: Path, val_file: Path) -> None:
    from replyrl.config import to_dict
    from replyrl.records import load_records
    from replyrl.rewards.train import train_reward_model
    from replyrl.rewards.validate import held_out, validate_reward_model

    records = load_records(records_file).records
    model, summary, train_ids = train_reward_model(
        rcfg, records, log=lambda m: console.print(f"[dim]{m}")
    )
    model.meta["config"] = to_dict(rcfg)
    model.save(out)
    atomic_write_json(out / "train_tweets.json", train_ids, indent=0)
    atomic_write_json(out / "train_summary.json", summary)
    val, _ = held_out(load_records(val_file).records, out)
    report = validate_reward_model(model, val, out_dir=out / "validation")
    rows = report["rows"]
    console.print(
        f"held-out pairwise accuracy: reward model {rows['reward model']['pairwise_accuracy']:.3f}, "
        f"reply length {rows['reply length']['pairwise_accuracy']:.3f} "
        f"(margin {100 * report['margin_over_length']:+.1f} points)"
    )
    for w in report["warnings"]:
        console.print(f"[yellow]warning: {w}")


def _train_config(
    cfg: PipelineConfig,
    base: Path,
    recipe: str,
    seed: int,
    split_files: dict,
    proxy: Path,
    root: Path,
):
    from replyrl.config import load_config
    from replyrl.training.config import TrainConfig

    phase = RECIPES[recipe].phase
    reward = (
        {
            "kind": "composite",
            "model": str(proxy),
            "learned_weight": cfg.reward.learned_weight,
            "heuristic_weight": cfg.reward.heuristic_weight,
        }
        if cfg.reward.train_with_learned
        else {"kind": "heuristic"}
    )
    sets = [*cfg.train_set, *cfg.recipe_set.get(recipe, [])]
    return load_config(
        TrainConfig,
        _resolve(base, cfg.train_configs) / f"{recipe}.yaml",
        sets,
        data={
            "name": recipe,
            "seed": seed,
            "output_dir": str(root / "experiments"),
            "reward": reward,
            "data": {"path": str(split_files[phase]), "split": "all"},
        },
    )


def _stage_train(tcfg) -> None:
    from replyrl.training.run import train

    train(tcfg, overwrite=True)  # an interrupted run restarts from scratch: same seed, same result


def _stage_evaluate(specs: list[str], test_file: Path, out: Path, ecfg) -> None:
    from replyrl.evaluation.evaluate import evaluate, parse_models

    evaluate(parse_models(specs), test_file, out, ecfg)
