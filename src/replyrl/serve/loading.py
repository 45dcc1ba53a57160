"""Build a ready `Suggester` from names on the command line: the policy, the encoder, the reward —
or all three from a finished pipeline run (`--run DIR`).

Kept apart from `suggest.py` so the sampling/ranking logic can be tested with fakes without
importing torch or the reward stack.

**Which model `--run` takes.** A pipeline folder holds `eval/summary.json`, whose `models` maps each
evaluated model (`base`, each recipe or named run) to its metrics (`{"mean": ...}`). Without
`--recipe`, the winner is the model with the highest mean on the first of `WINNER_METRICS` that any
model has: the simulated audience (synthetic data: the exact engagement), else the gold reward model
(never seen in training), else the proxy; ties go to the model listed first. The base model can win;
then suggestions come from it, ranked by the run's reward. Of a recipe trained over several seeds
the first seed listed is used (the summary holds no per-seed ranking, and picking the luckiest seed
would overstate it). The ranking reward is the one the chosen run optimised (the `reward` section of
its config.yaml; the pipeline's for the base model): the proxy reward model (`learned`), the proxy
RM plus the heuristic with the run's weights (`composite`), or the heuristic; a run trained on the
simulated audience (synthetic data only) is ranked by the proxy composite. The prompt is the
instruction the chosen adapter was trained with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from replyrl.errors import ArtifactError, UserError
from replyrl.io import read_json
from replyrl.models import DEFAULT_INSTRUCTION, is_adapter_dir
from replyrl.serve.style import Style
from replyrl.serve.suggest import RewardRanker, SuggestConfig, Suggester, policy_generator

SERVE_CACHE_ITEMS = 20_000
"""Embeddings kept by a long-running server (~30 MB at 384 dims): bounded so memory does not grow."""
WINNER_METRICS = ("audience", "gold", "proxy")
"""Metrics the `--run` winner is chosen by, in order of trust (higher mean wins)."""


class RunError(UserError, ValueError):
    """A `--run` folder that is not a finished pipeline run, or a `--recipe` it does not hold."""


class RewardFolderError(UserError, ValueError):
    """A reward-model folder that exists but cannot be loaded (corrupt or not ours)."""


@dataclass
class RunChoice:
    """What `--run DIR` picked from a finished pipeline run."""

    run_dir: Path
    """The pipeline output folder."""
    name: str
    """Model name in the summary (a recipe, a named run, or `base`)."""
    adapter: Path | None
    """LoRA adapter folder; None for the base model."""
    seed: int | None
    """Training seed of the adapter."""
    reward: Path | None
    """Proxy reward-model folder to rank by; None ranks by the heuristic alone."""
    reward_kind: str
    """How to rank: `learned` (the proxy RM), `composite` (RM + heuristic) or `heuristic`."""
    learned_weight: float
    """Composite weight of the learned reward."""
    heuristic_weight: float
    """Composite weight of the heuristic."""
    instruction: str
    """The instruction the adapter was trained with."""
    reason: str
    """One line saying why this model (metric and value, or `--recipe`)."""

    @property
    def label(self) -> str:
        """How the page and the table name the model."""
        seed = f", seed {self.seed}" if self.seed is not None else ""
        return f"{self.name}{seed} from {self.run_dir.name}"


def _finite_mean(metrics: Any, key: str) -> float | None:
    try:
        v = float(metrics[key]["mean"])
    except (KeyError, TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def pick_winner(models: dict[str, Any]) -> tuple[str, str, float]:
    """(model name, metric, mean) of the winner by `WINNER_METRICS` (see the module docstring).

    >>> pick_winner({"base": {"metrics": {"gold": {"mean": 0.1}}},
    ...              "sft": {"metrics": {"gold": {"mean": 0.3}, "proxy": {"mean": 0.0}}}})
    ('sft', 'gold', 0.3)
    """
    for metric in WINNER_METRICS:
        scored = [
            (name, m)
            for name, info in models.items()
            if isinstance(info, dict)
            and (m := _finite_mean(info.get("metrics"), metric)) is not None
        ]
        if scored:
            best = max(m for _, m in scored)
            name = next(n for n, m in scored if m == best)  # ties: the first listed
            return name, metric, best
    raise RunError(f"no model has a finite mean for any of {', '.join(WINNER_METRICS)}")


def _read_json(path: Path, what: str) -> Any:
    """replyrl.io.read_json, its error reported as a --run error."""
    try:
        return read_json(path, what)
    except ArtifactError as e:
        raise RunError(f"cannot read {what}: {e}") from None


def _adapter_of(run_dir: Path, name: str, runs: Any) -> tuple[Path, int | None]:
    """The first seed's adapter folder of model `name` (experiments/<name>/seed_<s>/adapter, or
    the path the evaluation recorded)."""
    runs = runs if isinstance(runs, list) else []
    tried: list[Path] = []
    for run in runs:
        if not isinstance(run, dict):
            continue
        seed = run.get("seed")
        candidates = []
        if isinstance(seed, int):
            candidates.append(run_dir / "experiments" / name / f"seed_{seed}" / "adapter")
        if isinstance(run.get("path"), str) and run["path"] not in ("", "base", "default"):
            candidates.append(Path(run["path"]).expanduser())
        for c in candidates:
            if is_adapter_dir(c):
                return c, seed if isinstance(seed, int) else None
            tried.append(c)
    where = ", ".join(str(t) for t in dict.fromkeys(tried)) or f"{run_dir}/experiments/{name}/"
    raise RunError(
        f"{run_dir}: model {name!r} is in eval/summary.json but its adapter is missing "
        f"(looked in {where}); rerun `replyrl pipeline` or pick another with --recipe"
    )


def _run_config(adapter: Path | None) -> dict:
    """The merged training config (config.yaml) of the run that wrote `adapter`, or {}."""
    if adapter is None:
        return {}
    import yaml

    try:
        cfg = yaml.safe_load((adapter.parent / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}  # an adapter copied without its run folder: defaults below
    return cfg if isinstance(cfg, dict) else {}


def _instruction_of(run_cfg: dict) -> str:
    """The `data.instruction` the run trained with (DEFAULT_INSTRUCTION when not recorded)."""
    data = run_cfg.get("data")
    instruction = data.get("instruction") if isinstance(data, dict) else None
    if isinstance(instruction, str) and instruction.strip():
        return instruction
    return DEFAULT_INSTRUCTION


def _weights(section: dict, where: Path) -> dict[str, float]:
    weights = {}
    for key, default in (("learned_weight", 0.6), ("heuristic_weight", 0.4)):
        value = section.get(key, default)
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not (number and math.isfinite(value) and value >= 0):
            raise RunError(f"{where}: reward.{key} must be a finite number >= 0, got {value!r}")
        weights[key] = float(value)
    if sum(weights.values()) <= 0:
        raise RunError(f"{where}: reward.learned_weight + reward.heuristic_weight must be > 0")
    return weights


def _ranking_reward(root: Path, run_cfg: dict, adapter: Path | None) -> tuple[str, dict, str]:
    """(kind, weights, note): the reward the chosen run optimised, as a ranker can use it.

    The run's own `reward` section (its config.yaml; the pipeline's `reward` for the base model)
    says the kind: `learned` (the proxy RM), `composite` (proxy RM + heuristic, with its weights) or
    `heuristic`. The simulated audience (`audience`) exists only for synthetic tweets, so it ranks
    by the proxy composite instead; without a proxy RM folder, by the heuristic.
    """
    where = adapter.parent / "config.yaml" if adapter is not None else root / "pipeline_config.json"
    section = run_cfg.get("reward")
    if adapter is None:
        pipeline_cfg = _read_json(where, "the pipeline config") if where.is_file() else {}
        section = pipeline_cfg.get("reward") if isinstance(pipeline_cfg, dict) else None
    section = section if isinstance(section, dict) else {}
    kind = section.get("kind", "composite")
    has_proxy = (root / "rewards" / "proxy" / "config.json").is_file()
    if kind not in ("learned", "composite", "heuristic", "audience"):
        raise RunError(f"{where}: unknown reward kind {kind!r}")
    if kind == "audience":
        pipeline_cfg = root / "pipeline_config.json"
        outer = _read_json(pipeline_cfg, "the pipeline config") if pipeline_cfg.is_file() else {}
        outer = outer.get("reward") if isinstance(outer, dict) else None
        weights = _weights(outer if isinstance(outer, dict) else {}, pipeline_cfg)
        kind, note = "composite", "trained on the simulated audience (synthetic only): "
    else:
        weights, note = _weights(section, where) if kind == "composite" else {}, ""
    if kind != "heuristic" and not has_proxy:
        return "heuristic", {}, note + f"no proxy reward model in {root / 'rewards'}: heuristic"
    return (
        kind,
        weights,
        note
        + {
            "learned": "ranked by its proxy reward model",
            "composite": "ranked by its proxy reward model + heuristic",
            "heuristic": "ranked by the heuristic it trained against",
        }[kind],
    )


def resolve_run(run_dir: str | Path, recipe: str | None = None) -> RunChoice:
    """Pick the model, reward and instruction of a finished pipeline run (module docstring).

    Raises RunError naming the folder or file when the pipeline has not finished (no
    eval/summary.json), the summary is unreadable, `recipe` is not one of its models, or the
    chosen adapter is missing.
    """
    root = Path(run_dir).expanduser()
    if not root.is_dir():
        raise RunError(
            f"--run {root}: no such folder (give a pipeline output folder, e.g. "
            "output/pipeline/cpu-demo)"
        )
    summary_file = root / "eval" / "summary.json"
    if not summary_file.is_file():
        raise RunError(
            f"--run {root} is not a finished pipeline run: {summary_file} is missing (run "
            "`replyrl pipeline` to the end, or pass --model/--reward yourself)"
        )
    summary = _read_json(summary_file, "the pipeline summary")
    models = summary.get("models") if isinstance(summary, dict) else None
    if not isinstance(models, dict) or not models:
        raise RunError(f"{summary_file} lists no evaluated models (`models` is missing or empty)")
    if recipe is not None:
        if recipe not in models:
            raise RunError(
                f"--recipe {recipe!r} is not in {summary_file}; it has {', '.join(models)}"
            )
        name, reason = recipe, f"{recipe}: chosen with --recipe"
    else:
        name, metric, mean = pick_winner(models)
        reason = f"{name}: highest mean {metric} ({mean:.3f}) of {len(models)} evaluated models"
    info = models[name] if isinstance(models[name], dict) else {}
    if name == "base":
        adapter, seed = None, None
    else:
        adapter, seed = _adapter_of(root, name, info.get("runs"))
    run_cfg = _run_config(adapter)
    kind, weights, note = _ranking_reward(root, run_cfg, adapter)
    return RunChoice(
        run_dir=root,
        name=name,
        adapter=adapter,
        seed=seed,
        reward=root / "rewards" / "proxy" if kind != "heuristic" else None,
        reward_kind=kind,
        learned_weight=weights.get("learned_weight", 0.6),
        heuristic_weight=weights.get("heuristic_weight", 0.4),
        instruction=_instruction_of(run_cfg),
        reason=f"{reason}; {note}",
    )


def build_ranker(
    reward_dir: str | Path | None,
    embeddings: Any = None,
    learned_weight: float = 0.6,
    heuristic_weight: float = 0.4,
    kind: str = "composite",
) -> RewardRanker:
    """The ranking reward: with `reward_dir`, the composite reward (learned RM + heuristic, DESIGN §3
    seed weights 0.6/0.4; `kind="learned"`: the RM alone); without, the heuristic reward alone (no
    training needed).

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
    rcfg = RewardConfig(
        kind="learned" if kind == "learned" else "composite",
        model=str(path),
        learned_weight=learned_weight,
        heuristic_weight=heuristic_weight,
    )
    try:
        fn = build_reward(rcfg, embeddings=embeddings)
    except (ValueError, KeyError, TypeError) as e:  # a corrupt or foreign folder: say which
        raise RewardFolderError(f"cannot rank by the reward model in {path}: {e}") from None
    return RewardRanker(fn, f"{rcfg.kind}({path.name})")


def load_suggester(
    model: str | None = None,
    reward: str | Path | None = None,
    max_new_tokens: int = 48,
    cfg: SuggestConfig | None = None,
    device: str = "auto",
    run: RunChoice | None = None,
    style: Style | None = None,
) -> Suggester:
    """Load the policy (base model or adapter folder), the encoder and the reward once, all on
    `device` (auto: cuda → mps → cpu).

    With `run` (from `resolve_run`), its adapter, reward and instruction replace `model`/`reward`.
    `style` is the default tone and voice of requests.
    """
    from replyrl.console import quiet_libraries
    from replyrl.device import resolve_device
    from replyrl.models import load_policy
    from replyrl.rewards.embeddings import EmbeddingCache

    cfg = cfg or SuggestConfig()  # validate before any model loads
    device = resolve_device(device)
    quiet_libraries()  # people read this output; weight-loading bars are noise here
    weights: dict[str, Any] = {}
    instruction = DEFAULT_INSTRUCTION
    if run is not None:
        model = str(run.adapter) if run.adapter is not None else None
        reward, instruction = run.reward, run.instruction
        weights = {
            "learned_weight": run.learned_weight,
            "heuristic_weight": run.heuristic_weight,
            "kind": run.reward_kind,
        }
    # One cache for dedup and the reward's relevance: each reply is encoded once (encoder loads lazily,
    # after a bad --reward folder has already been reported).
    embeddings = EmbeddingCache(max_items=SERVE_CACHE_ITEMS, device=device)
    ranker = build_ranker(reward, embeddings, **weights)
    # Load the encoder, VADER and the profanity model now, not inside the first person's request.
    ranker.score("warm-up", ["warming up the reward"])
    m, tok = load_policy(
        model, device=device, merge_adapter=True
    )  # merged LoRA: same outputs, faster generate
    if run is not None:
        name = run.label
    else:
        name = "default (SmolLM2-135M-Instruct)" if model in (None, "", "default") else str(model)
    return Suggester(
        policy_generator(m, tok, max_new_tokens=max_new_tokens),
        embeddings.encode,
        ranker,
        cfg,
        name,
        instruction=instruction,
        style=style,
    )
