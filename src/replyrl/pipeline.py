"""The whole pipeline as resumable stages: data → split → reward models → runs → evaluate.

Stage records cannot go stale. Each stage's record (`<out>/stages/<stage>.json`) holds the hash of
everything that determines its result — its own config, the *content* of every upstream stage's
outputs (not their input hashes), and a fingerprint of the code (replyrl's source files and the
versions of the libraries that train and score) — and the content hash of what it wrote. A rerun
skips a stage only when that input hash matches and its outputs are still what it wrote; so
`--force reward_proxy` reruns the proxy RM and, if the retrained model differs, every stage that
reads it; a code change reruns everything; an unchanged rerun of an upstream stage reruns nothing
downstream. An interrupted pipeline resumes at the first incomplete stage, and an interrupted
training stage resumes from its last checkpoint (same config, same seed).

Runs: `recipes:` trains one run per recipe (named after it); `runs:` adds named variants (a recipe
with overrides, a reward kind, a start point), e.g. the evidence ladder's oracle-reward GRPO.
RL runs start from the SFT run's adapter (`rl_init: sft`, the seed's plan) unless told otherwise.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from rich.console import Console

from replyrl.data.splits import SplitConfig
from replyrl.evaluation.verdict import GainRatio, Hypothesis
from replyrl.io import atomic_write_json, atomic_write_text
from replyrl.rewards.build import LengthGuard, check_weights
from replyrl.training.objective import RECIPES

console = Console(stderr=True)
REWARD_KINDS = ("learned", "composite", "heuristic", "audience")


@dataclass
class RewardStage:
    """The proxy and gold reward models, and the reward RL runs optimise."""

    proxy_config: str = "../reward/debiased.yaml"
    """Reward-training YAML of the proxy RM (trained on the sft + rl tweets); relative to this file."""
    gold_config: str = "../reward/preference.yaml"
    """Reward-training YAML of the gold RM (trained on the held-out gold tweets only)."""
    proxy_set: list[str] = field(default_factory=list)
    """Overrides of the proxy reward config (key=value)."""
    gold_set: list[str] = field(default_factory=list)
    """Overrides of the gold reward config (key=value)."""
    kind: Literal["learned", "composite", "heuristic", "audience"] = "learned"
    """The RL reward: the proxy RM alone (learned), proxy RM + heuristic (composite), the heuristic,
    or the simulated audience (audience: synthetic data only, the oracle)."""
    learned_weight: float = 0.6
    """Composite: weight of the proxy RM (check its validation margin over length)."""
    heuristic_weight: float = 0.4
    """Composite: weight of the heuristic."""
    length_guard: LengthGuard = field(default_factory=LengthGuard)
    """DAPO-style overlong penalty added to the RL reward (off unless max_chars > 0)."""

    def __post_init__(self):
        check_weights(learned_weight=self.learned_weight, heuristic_weight=self.heuristic_weight)


@dataclass
class RunSpec:
    """One trained model of the pipeline (trained once per seed)."""

    name: str
    """Run name: its folder, its stage and its model name in the report."""
    recipe: str
    """A registered recipe (sft, polychromic, grpo, hybrid, dpo)."""
    set: list[str] = field(default_factory=list)
    """Training overrides of this run (key=value), after train_set and recipe_set."""
    reward: str | None = None
    """RL reward kind for this run (learned, composite, heuristic, audience); None: reward.kind."""
    init: Literal["default", "sft", "base"] = "default"
    """Start from the SFT run's adapter (sft) or a fresh adapter (base); default: rl_init."""
    checkpoints: bool = False
    """Evaluate this run's saved checkpoints along training (the over-optimisation curve)."""

    def __post_init__(self):
        if not self.name or self.name == "base" or "/" in self.name or self.name.startswith("."):
            raise ValueError(
                f"run name {self.name!r} must be a plain folder name other than 'base'"
            )
        if self.recipe not in RECIPES:
            raise ValueError(
                f"run {self.name}: unknown recipe {self.recipe!r}; choose from {', '.join(RECIPES)}"
            )
        if self.reward is not None and self.reward not in REWARD_KINDS:
            raise ValueError(f"run {self.name}: reward must be one of {list(REWARD_KINDS)}")


@dataclass
class CheckpointEval:
    """Scores of saved checkpoints on a fixed subset of test tweets (runs with checkpoints: true)."""

    tweets: int = 16
    """The first N test tweets (the same at every checkpoint)."""
    n: int = 4
    """Replies sampled per tweet and checkpoint (fixed seed)."""

    def __post_init__(self):
        if self.tweets < 1 or self.n < 1:
            raise ValueError("checkpoint_eval.tweets and checkpoint_eval.n must be >= 1")


@dataclass
class PipelineConfig:
    """`replyrl pipeline`: which data, which runs, which seeds, and where to write."""

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
    """Training seeds of every run (several seeds: the seed is the unit of the tests)."""
    recipes: list[str] = field(default_factory=lambda: list(RECIPES))
    """One run per recipe, named after the recipe."""
    runs: list[RunSpec] = field(default_factory=list)
    """More named runs (recipe variants: another reward, another start, other overrides)."""
    rl_init: Literal["sft", "base"] = "sft"
    """Where non-SFT runs start: the SFT run's adapter of the same seed (sft), or a fresh adapter."""
    train_configs: str = "../train"
    """Folder of the recipes' training YAMLs (<recipe>.yaml), relative to this file."""
    train_set: list[str] = field(default_factory=list)
    """Overrides applied to every run (key=value)."""
    recipe_set: dict = field(default_factory=dict)
    """Per-recipe overrides: {recipe: [key=value, ...]}, applied to every run of that recipe."""
    reward: RewardStage = field(default_factory=RewardStage)
    """Proxy and gold reward models, and the RL reward."""
    eval_config: str = "../eval/default.yaml"
    """Evaluation YAML, relative to this file."""
    eval_set: list[str] = field(default_factory=list)
    """Overrides of the evaluation config (key=value)."""
    baseline: str | None = None
    """The model every other is compared with (None: sft when trained, else base)."""
    hypotheses: list[Hypothesis] = field(default_factory=list)
    """Claims written before the run; the report opens with their verdicts."""
    ratios: list[GainRatio] = field(default_factory=list)
    """Gain ratios to report (e.g. learned/oracle audience gain)."""
    checkpoint_eval: CheckpointEval = field(default_factory=CheckpointEval)
    """How checkpoints of runs with `checkpoints: true` are evaluated."""
    workers: int = 1
    """Training stages run at once (each in its own process) once their dependencies are done;
    > 1 pays on a GPU, which one small-model run leaves mostly idle. 1 on a laptop CPU."""

    def __post_init__(self):
        bad = [r for r in self.recipes if r not in RECIPES]
        if bad:
            raise ValueError(f"recipes must be registered recipes {list(RECIPES)}, got {bad}")
        twice = list(dict.fromkeys(r for r in self.recipes if self.recipes.count(r) > 1))
        if twice:
            raise ValueError(
                f"recipes lists {', '.join(twice)} more than once: each recipe trains one run named "
                "after it (add variants under `runs:` with their own names)"
            )
        unknown = [r for r in self.recipe_set if r not in RECIPES]
        if unknown:
            raise ValueError(f"recipe_set names unknown recipes {unknown}")
        for recipe, sets in self.recipe_set.items():
            if not isinstance(sets, list) or not all(isinstance(x, str) for x in sets):
                one = isinstance(sets, str)
                raise ValueError(
                    f"recipe_set.{recipe} must be a list of key=value overrides, got "
                    f"{'the string ' if one else ''}{sets!r} (write "
                    f"{recipe}: [{sets if one else 'optim.max_steps=3'}])"
                )
        if not self.seeds:
            raise ValueError("seeds must name at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct, got {self.seeds}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.synth_tweets < 8:
            raise ValueError(f"synth_tweets must be >= 8, got {self.synth_tweets}")
        if not self.name or "/" in self.name or self.name in (".", ".."):
            raise ValueError(f"name must be a plain folder name, got {self.name!r}")
        specs = self.all_runs()
        if not specs:
            raise ValueError("nothing to train: list recipes or runs")
        names = [r.name for r in specs]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"run names must be unique, {dup} appear twice")
        if any(self.init_of(r) == "sft" for r in specs) and self.sft_run() is None:
            raise ValueError(
                "runs start from the SFT adapter (rl_init: sft) but no run has recipe "
                "sft: add sft to recipes, or set rl_init: base"
            )
        models = {"base", *names}
        for h in self.hypotheses:
            missing = [m for m in (h.a, h.b) if m not in models]
            if missing:
                raise ValueError(
                    f"hypothesis {h.id} names models {missing} that are not trained "
                    f"(models: {sorted(models)})"
                )
        if self.baseline is not None and self.baseline not in models:
            raise ValueError(f"baseline {self.baseline!r} is not a model: {sorted(models)}")

    def all_runs(self) -> list[RunSpec]:
        """The recipe shorthand and the named runs, SFT first (others may start from it)."""
        specs = [RunSpec(r, r) for r in self.recipes] + list(self.runs)
        return sorted(specs, key=lambda r: r.recipe != "sft")

    def sft_run(self) -> RunSpec | None:
        return next((r for r in self.all_runs() if r.recipe == "sft"), None)

    def init_of(self, run: RunSpec) -> str:
        """`sft` or `base`: where the run starts."""
        if run.recipe == "sft":
            return "base"
        return self.rl_init if run.init == "default" else run.init

    def eval_baseline(self) -> str:
        if self.baseline:
            return self.baseline
        return "sft" if any(r.name == "sft" for r in self.all_runs()) else "base"


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


@functools.cache
def code_fingerprint() -> str:
    """Hash of replyrl's source files and the versions of the libraries that train and score."""
    from importlib.metadata import PackageNotFoundError, version

    h = hashlib.sha256()
    pkg = Path(__file__).resolve().parent
    for p in sorted(pkg.rglob("*.py")):
        h.update(str(p.relative_to(pkg)).encode())
        h.update(file_hash(p).encode())
    for name in ("replyrl", "torch", "transformers", "trl", "peft", "sentence-transformers"):
        try:
            h.update(f"{name}=={version(name)}".encode())
        except PackageNotFoundError:
            h.update(f"{name} absent".encode())
    return h.hexdigest()


class Stages:
    """Bookkeeping of completed stages under <out>/stages/ (see the module docstring)."""

    def __init__(self, root: Path, force: list[str], code: str | None = None):
        self.dir = root / "stages"
        self.force = set(force)
        self.code = code if code is not None else code_fingerprint()
        self.outputs: dict[str, str] = {}
        """stage -> content hash of its outputs (what downstream stages depend on)."""
        self.ran: list[str] = []
        self.resumable = False
        """True while a stage runs whose earlier attempt had the same input hash (interrupted:
        what it left behind, e.g. checkpoints, may be resumed)."""

    def _record(self, name: str) -> dict | None:
        rec = self.dir / f"{name}.json"
        if not rec.exists():
            return None
        try:
            data = json.loads(rec.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or not isinstance(data.get("hash"), str):
                raise ValueError("no hash")
            return data
        except (ValueError, UnicodeDecodeError) as e:
            console.print(f"[yellow]stage record {rec} is unreadable ({e}): rerunning {name}")
            return None

    def check(self, name: str, inputs: dict, outputs: list[Path], deps: list[str] = ()) -> dict:
        """The stage's input hash, and whether its record and outputs are still current."""
        missing = [d for d in deps if d not in self.outputs]
        if missing:
            raise RuntimeError(f"stage {name} depends on {missing}, which have not run")
        upstream = {d: self.outputs[d] for d in deps}
        payload = {"inputs": inputs, "upstream": upstream, "code": self.code}
        digest = hashlib.sha256(
            json.dumps(payload, sort_keys=True, default=str).encode()
        ).hexdigest()
        rec = self._record(name)
        current = None
        if name not in self.force and rec and rec["hash"] == digest:
            if all(p.exists() for p in outputs) and rec.get("output_hash") == self._output_hash(
                outputs
            ):
                current = rec["output_hash"]
        return {
            "name": name,
            "digest": digest,
            "upstream": upstream,
            "outputs": outputs,
            "current": current,
        }

    def skip(self, state: dict) -> str:
        console.print(f"[dim]✓ {state['name']}: up to date, skipped[/]")
        self.outputs[state["name"]] = state["current"]
        return state["current"]

    def begin(self, state: dict) -> bool:
        """Mark the attempt; True when an earlier attempt with the same input hash was
        interrupted (what it left behind, e.g. checkpoints, may be resumed)."""
        attempt = self.dir / f"{state['name']}.attempt"
        resumable = attempt.exists() and attempt.read_text().strip() == state["digest"]
        atomic_write_text(attempt, state["digest"])
        state["t0"] = time.time()
        return resumable

    def finish(self, state: dict) -> str:
        out_hash = self._output_hash(state["outputs"])
        atomic_write_json(
            self.dir / f"{state['name']}.json",
            {
                "hash": state["digest"],
                "output_hash": out_hash,
                "seconds": round(time.time() - state["t0"], 1),
                "outputs": [str(p) for p in state["outputs"]],
                "upstream": state["upstream"],
            },
        )
        self.outputs[state["name"]] = out_hash
        self.ran.append(state["name"])
        return out_hash

    def run(self, name: str, inputs: dict, outputs: list[Path], fn, deps: list[str] = ()) -> str:
        """Run `fn()` unless its record matches `inputs`, the upstream `deps`' output content and
        the code, and its outputs are unchanged; returns the content hash of its outputs."""
        state = self.check(name, inputs, outputs, deps)
        if state["current"] is not None:
            return self.skip(state)
        console.rule(f"[bold]{name}")
        self.resumable = self.begin(state)
        fn()
        return self.finish(state)

    @staticmethod
    def _output_hash(outputs: list[Path]) -> str:
        h = hashlib.sha256()
        for p in outputs:
            h.update(str(p.name).encode())
            h.update(tree_hash(p).encode() if p.exists() else b"missing")
        return h.hexdigest()


def _resolve(base: Path, p: str) -> Path:
    q = Path(p)
    return q if q.is_absolute() else (base / q).resolve()


@dataclass
class _Plan:
    """Everything the stages need, built (and validated) before any stage runs."""

    root: Path
    split_files: dict[str, Path]
    train: dict[tuple[str, int], object]
    """(run name, seed) -> TrainConfig."""
    deps: dict[tuple[str, int], list[str]]
    """(run name, seed) -> stages it reads."""
    rewards: dict[str, object]
    """proxy / gold -> RewardTrainConfig."""
    eval_cfg: object


def plan(cfg: PipelineConfig, config_path: Path) -> _Plan:
    """Build every stage's config now, so a typo in a run's overrides fails before hours of
    earlier stages."""
    from replyrl.config import ConfigError, load_config
    from replyrl.evaluation.evaluate import EvalConfig
    from replyrl.training.run import run_dir_of, validate_reward

    base = config_path.resolve().parent
    root = Path(cfg.out) / cfg.name
    rm_dir = root / "rewards"
    split_files = {
        s: root / "data" / "splits" / f"{s}.jsonl" for s in ("sft", "rl", "gold", "test")
    }
    from replyrl.rewards.train import RewardTrainConfig

    rewards = {}
    for kind, yaml_path, overrides, splits in (
        ("proxy", cfg.reward.proxy_config, cfg.reward.proxy_set, ["sft", "rl"]),
        ("gold", cfg.reward.gold_config, cfg.reward.gold_set, ["gold"]),
    ):
        sets = [*overrides, f"train_splits={json.dumps(splits)}"]
        rewards[kind] = load_config(
            RewardTrainConfig, _resolve(base, yaml_path), sets, data={"split": asdict(cfg.split)}
        )
    train, deps = {}, {}
    sft = cfg.sft_run()
    for run in cfg.all_runs():
        for seed in cfg.seeds:
            try:
                tcfg = _train_config(cfg, base, run, seed, split_files, rm_dir / "proxy", root)
                validate_reward(tcfg)  # a run's reward overrides fail now, not hours later
            except ConfigError as e:
                raise ConfigError(f"run {run.name} (seed {seed}): {e}") from None
            d = ["split"]
            if (
                tcfg.recipe_spec.uses_objective
                and tcfg.weights().needs_engagement
                and (tcfg.reward.get("kind") in ("learned", "composite"))
            ):
                d.append("reward_proxy")
            if cfg.init_of(run) == "sft" and sft is not None:
                d.append(f"train_{sft.name}_seed{seed}")
                tcfg.model.init_adapter = str(run_dir_of(train[(sft.name, seed)]) / "adapter")
            if run.checkpoints:
                tcfg.optim.save_total_limit = 0  # keep every checkpoint for the curve
            train[(run.name, seed)], deps[(run.name, seed)] = tcfg, d
    eval_cfg = load_config(
        EvalConfig,
        _resolve(base, cfg.eval_config),
        cfg.eval_set,
        data={
            "proxy_reward": str(rm_dir / "proxy"),
            "gold_reward": str(rm_dir / "gold"),
            "baseline": cfg.eval_baseline(),
            "hypotheses": [asdict(h) for h in cfg.hypotheses],
            "ratios": [asdict(r) for r in cfg.ratios],
        },
    )
    uses_audience = [
        r.name
        for r in cfg.all_runs()
        if (r.reward or cfg.reward.kind) == "audience" and RECIPES[r.recipe].uses_objective
    ]
    if uses_audience and cfg.data:
        from replyrl.records import load_records
        from replyrl.rewards.audience import check_oracle_data

        check_oracle_data(
            load_records(cfg.data, skip_invalid=cfg.skip_invalid).records,
            f"runs {uses_audience} with data {cfg.data}",
        )
    return _Plan(root, split_files, train, deps, rewards, eval_cfg)


def run_pipeline(cfg: PipelineConfig, config_path: Path, force: list[str] | None = None) -> dict:
    """Run (or resume) the pipeline; returns {"report": path, "summary": summary, "ran": [stages]}."""
    from replyrl.training.run import run_dir_of

    p = plan(cfg, config_path)
    root = p.root
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(root / "pipeline_config.json", json.dumps(asdict(cfg), indent=2))
    stages = Stages(root, force or [])
    data_dir, rm_dir = root / "data", root / "rewards"
    records_file = data_dir / "records.jsonl"

    # 1. data: validate the user's file (or synthesize the sample) into one clean records file.
    src_hash = file_hash(cfg.data) if cfg.data else f"synth:{cfg.synth_tweets}"
    stages.run(
        "data",
        {"src": src_hash, "skip_invalid": cfg.skip_invalid},
        [records_file],
        lambda: _stage_data(cfg, records_file, data_dir),
    )
    # 2. split by tweet (phase split + held-out gold/test) and engagement preference pairs.
    stages.run(
        "split",
        {"split": asdict(cfg.split)},
        list(p.split_files.values()),
        lambda: _stage_split(cfg, records_file, data_dir),
        deps=["data"],
    )

    # 3. reward models: proxy on sft+rl tweets, gold on the gold tweets only; both validated.
    for kind, rcfg in p.rewards.items():
        out = rm_dir / kind
        stages.run(
            f"reward_{kind}",
            {"cfg": asdict(rcfg)},
            [out / "config.json", out / "head.safetensors"],
            lambda r=rcfg, o=out: _stage_reward(r, records_file, o, p.split_files["test"]),
            deps=["split"],
        )

    # 4. runs × seeds (SFT first: other runs may start from its adapter).
    tasks = []
    for (name, seed), tcfg in p.train.items():
        run = run_dir_of(tcfg)
        outputs = [
            run / "adapter" / "adapter_config.json",
            run / "adapter" / "adapter_model.safetensors",
        ]
        tasks.append((f"train_{name}_seed{seed}", tcfg, outputs, p.deps[(name, seed)]))
    if cfg.workers > 1:
        _train_parallel(tasks, stages, cfg.workers, root)
    else:
        for stage, tcfg, outputs, deps in tasks:
            stages.run(
                stage,
                {"cfg": asdict(tcfg)},
                outputs,
                lambda t=tcfg: _stage_train(t, stages.resumable),
                deps=deps,
            )
    adapters = [(name, run_dir_of(tcfg) / "adapter") for (name, _), tcfg in p.train.items()]
    train_stages = [stage for stage, *_ in tasks]

    # 5. checkpoints along training (runs with checkpoints: true), then the evaluation.
    eval_dir = root / "eval"
    ckpt_runs = [(r, s) for r in cfg.all_runs() if r.checkpoints for s in cfg.seeds]
    ecfg = p.eval_cfg
    if ckpt_runs:
        curves = eval_dir / "checkpoints.json"
        ckpt_deps = ["reward_proxy", "reward_gold"] + [
            f"train_{r.name}_seed{s}" for r, s in ckpt_runs
        ]
        stages.run(
            "checkpoints",
            {"eval": asdict(ecfg), "ckpt": asdict(cfg.checkpoint_eval)},
            [curves],
            lambda: _stage_checkpoints(cfg, p, ckpt_runs, curves),
            deps=ckpt_deps,
        )
        ecfg.checkpoint_curves = str(curves)
    ecfg.train_reply_length = _train_reply_length(p.split_files)
    specs = ["base=base"] + [f"{name}={path}" for name, path in adapters]
    stages.run(
        "evaluate",
        {"cfg": asdict(ecfg), "specs": specs},
        [eval_dir / "summary.json", eval_dir / "report.html"],
        lambda: _stage_evaluate(specs, p.split_files["test"], eval_dir, ecfg),
        deps=["split", "reward_proxy", "reward_gold", *train_stages]
        + (["checkpoints"] if ckpt_runs else []),
    )
    from replyrl.io import read_json

    summary = read_json(eval_dir / "summary.json")
    return {"report": eval_dir / "report.html", "summary": summary, "ran": stages.ran, "root": root}


def _stage_data(cfg: PipelineConfig, records_file: Path, data_dir: Path) -> None:
    from replyrl.records import load_records, write_records, write_rejects

    if cfg.data:
        res = load_records(cfg.data, skip_invalid=cfg.skip_invalid)
        if res.errors:
            write_rejects(data_dir / "rejects.jsonl", res.rejected_lines)
            console.print(
                f"[yellow]skipped {len(res.errors)} invalid row(s); written to "
                f"{data_dir / 'rejects.jsonl'}"
            )
        console.print(
            f"{res.n_rows} rows → {len(res.records)} records ({res.duplicates} duplicates removed)"
        )
        records = res.records
    else:
        from replyrl.data.synth import synthesize

        records = synthesize(n_tweets=cfg.synth_tweets, seed=0)
        console.print(
            f"synthetic sample: {len(records)} replies to {cfg.synth_tweets} tweets "
            "(simulated audience)"
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
    rm, length = report["rows"]["reward model"], report["rows"]["reply length"]
    line = (
        f"held-out pairwise accuracy: reward model {rm['pairwise_accuracy']:.3f}, reply length "
        f"{length['pairwise_accuracy']:.3f} (margin {100 * report['margin_over_length']:+.1f} "
        f"points); length-matched pairs ({report['n_length_matched_pairs']}): "
        f"{rm['length_matched_accuracy']:.3f}; Spearman given length {rm['spearman_given_length']:.3f}"
    )
    if report["n_audience_pairs"]:
        line += (
            f"; agreement with the audience {rm['audience_accuracy']:.3f}, length-matched "
            f"{rm['audience_length_matched_accuracy']:.3f}"
        )
    console.print(line)
    for w in report["warnings"]:
        console.print(f"[yellow]warning: {w}")


def _reward_section(cfg: PipelineConfig, run: RunSpec, proxy: Path) -> dict:
    kind = run.reward or cfg.reward.kind
    section: dict = {"kind": kind, "length_guard": asdict(cfg.reward.length_guard)}
    if kind in ("learned", "composite"):
        section["model"] = str(proxy)
    if kind == "composite":
        section["learned_weight"] = cfg.reward.learned_weight
        section["heuristic_weight"] = cfg.reward.heuristic_weight
    return section


def _train_config(
    cfg: PipelineConfig,
    base: Path,
    run: RunSpec,
    seed: int,
    split_files: dict,
    proxy: Path,
    root: Path,
):
    from replyrl.config import load_config
    from replyrl.training.config import TrainConfig

    phase = RECIPES[run.recipe].phase
    sets = [*cfg.train_set, *cfg.recipe_set.get(run.recipe, []), *run.set]
    return load_config(
        TrainConfig,
        _resolve(base, cfg.train_configs) / f"{run.recipe}.yaml",
        sets,
        data={
            "name": run.name,
            "recipe": run.recipe,
            "seed": seed,
            "output_dir": str(root / "experiments"),
            "reward": _reward_section(cfg, run, proxy),
            "data": {"path": str(split_files[phase]), "split": "all"},
        },
    )


def _stage_train(tcfg, resumable: bool) -> None:
    """Train one run. A run interrupted in an earlier attempt at this very stage (same input hash:
    same config, upstream outputs and code) resumes from its last checkpoint; anything else starts
    over, so a code change is never answered with an old run's checkpoint."""
    from replyrl.training.run import latest_checkpoint, run_dir_of, train

    out = run_dir_of(tcfg)
    ckpt = latest_checkpoint(out / "checkpoints")
    if resumable and ckpt is not None:
        console.print(f"resuming {out} from {ckpt}")
        train(tcfg, resume=True)
    else:
        train(tcfg, overwrite=True)


def _train_parallel(tasks: list, stages: Stages, workers: int, root: Path) -> None:
    """Run training stages `workers` at a time, each as a `replyrl train` process, a stage as soon
    as the stages it depends on are done (RL runs wait for the SFT run of their seed)."""
    import subprocess
    import sys
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    import yaml

    pending, running = list(tasks), {}
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    def launch(stage: str, tcfg, resumable: bool) -> None:
        cfg_file = logs / f"{stage}.yaml"
        atomic_write_text(cfg_file, yaml.safe_dump(asdict(tcfg), sort_keys=False))
        from replyrl.training.run import latest_checkpoint, run_dir_of

        resume = resumable and latest_checkpoint(run_dir_of(tcfg) / "checkpoints") is not None
        cmd = [
            sys.executable,
            "-m",
            "replyrl",
            "train",
            "-c",
            str(cfg_file),
            "--resume" if resume else "--overwrite",
        ]
        with open(logs / f"{stage}.log", "w", encoding="utf-8") as log:
            done = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
        if done.returncode:
            raise RuntimeError(
                f"training stage {stage} failed (exit {done.returncode}); its log: "
                f"{logs / f'{stage}.log'}"
            )

    with ThreadPoolExecutor(workers) as pool:
        while pending or running:
            ready = [t for t in pending if all(d in stages.outputs for d in t[3])]
            if not ready and not running:
                raise RuntimeError(
                    f"training stages {[t[0] for t in pending]} wait for stages that never run"
                )
            for task in ready:
                if len(running) >= workers:
                    break
                pending.remove(task)
                stage, tcfg, outputs, deps = task
                state = stages.check(stage, {"cfg": asdict(tcfg)}, outputs, deps)
                if state["current"] is not None:
                    stages.skip(state)
                    continue
                console.print(f"[bold]{stage}[/] started (log: {logs / f'{stage}.log'})")
                running[pool.submit(launch, stage, tcfg, stages.begin(state))] = state
            if running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    state = running.pop(future)
                    future.result()
                    stages.finish(state)
                    console.print(f"[green]✓ {state['name']}[/] done")


def _train_reply_length(split_files: dict) -> float:
    """Mean length of the engaged human replies of the training split (each tweet's replies at or
    above its median residual label, the SFT targets): the length-drift alarm's reference."""
    import numpy as np

    from replyrl.records import load_records
    from replyrl.training.config import DataConfig
    from replyrl.training.datasets import record_labels, sft_rows

    records = load_records(split_files["sft"]).records + load_records(split_files["rl"]).records
    rows = sft_rows(records, record_labels(records, "residual"), DataConfig())
    return float(np.mean([len(r["completion"][0]["content"].strip()) for r in rows]))


def _stage_checkpoints(cfg: PipelineConfig, p: _Plan, ckpt_runs, out: Path) -> None:
    import dataclasses

    from replyrl.evaluation.checkpoints import evaluate_checkpoints, write_curves
    from replyrl.evaluation.evaluate import build_scorers
    from replyrl.evaluation.generate_cache import group_tweets
    from replyrl.models import load_encoder
    from replyrl.records import load_records
    from replyrl.training.run import run_dir_of

    ecfg = p.eval_cfg
    tweets = group_tweets(load_records(p.split_files["test"]).records, cfg.checkpoint_eval.tweets)
    synthetic = all(t.synthetic for t in tweets)
    encoder = load_encoder(ecfg.encoder)
    scorers = build_scorers(ecfg, synthetic, encoder)
    sampling = dataclasses.replace(ecfg.sampling, n=cfg.checkpoint_eval.n)
    curves: dict = {}
    for run, seed in ckpt_runs:
        tcfg = p.train[(run.name, seed)]
        console.print(f"checkpoints of {run.name} seed {seed}")
        curves.setdefault(run.name, {})[str(seed)] = evaluate_checkpoints(
            run_dir_of(tcfg),
            tcfg.model.init_adapter or None,
            tweets,
            scorers,
            sampling,
            device=ecfg.device,
        )
    write_curves(out, curves)


def _stage_evaluate(specs: list[str], test_file: Path, out: Path, ecfg) -> None:
    from replyrl.evaluation.evaluate import evaluate, parse_models

    evaluate(parse_models(specs), test_file, out, ecfg)
