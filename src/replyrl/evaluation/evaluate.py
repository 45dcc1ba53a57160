"""`replyrl evaluate`: generate (cached) -> score -> judge -> summarize -> report.

Output folder layout:

    <out>/eval_config.json          the merged, validated config
    <out>/runs.json                 the evaluated runs and the report's header facts
    <out>/cache/generations/*.jsonl one line per tweet: n replies (keyed by model + sampling)
    <out>/cache/judge-*.json        every judge verdict
    <out>/results/<run>.jsonl       per-tweet rows: replies, their scores, per-tweet metrics
    <out>/summary.json, report.md, report.html

`rebuild(out)` (the `replyrl report DIR` command) recomputes summary and report from
`results/` and `runs.json` alone, without loading any model.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from replyrl.config import ConfigError
from replyrl.device import check_device_name
from replyrl.errors import ArtifactError, ArtifactNotFoundError, InputError, missing_path_error
from replyrl.evaluation.alarms import AlarmConfig
from replyrl.evaluation.generate_cache import (
    EvalTweet,
    Generator,
    cache_path,
    cached_generations,
    group_tweets,
    policy_generator,
)
from replyrl.evaluation.judge import Judge, JudgeConfig
from replyrl.evaluation.scoring import (
    Scorers,
    add_judge,
    add_scorer_judge,
    score_references,
    score_run,
)
from replyrl.evaluation.summary import build_summary
from replyrl.evaluation.verdict import GainRatio, Hypothesis
from replyrl.generation import SamplingConfig
from replyrl.io import atomic_write_json, read_json, read_jsonl, write_jsonl

BERTSCORE_NOTE = (
    "BERTScore F1: greedy token matching (Zhang et al. 2020) on the last-layer token "
    "embeddings of {encoder}, no idf weighting, no baseline rescaling, best over the "
    "tweet's human replies (the bert-score package is not used: it downloads "
    "roberta-large)."
)


@dataclass
class EvalConfig:
    """How `replyrl evaluate` samples, scores and judges."""

    sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(n=8, batch_prompts=16))
    """Sampling of the n replies per tweet (n >= max k); 16 x 8 = 128 rows per pass (docs/evaluation.md#speed)."""
    ks: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    """The k values of pass@k."""
    max_tweets: int | None = None
    """Evaluate only the first N test tweets (None: all)."""
    proxy_reward: str | None = None
    """Reward-model folder of the proxy RM (None: the heuristic reward, noted in the report)."""
    gold_reward: str | None = None
    """Reward-model folder of the gold RM trained on the held-out split (None: gold omitted)."""
    encoder: str | None = None
    """Sentence encoder for relevance, semantic diversity and BERTScore (None: packaged MiniLM)."""
    pass_judge: Literal["proxy", "gold", "audience"] = "proxy"
    """Which score decides whether a reply passes."""
    pass_criterion: Literal["reference", "tweet_quantile", "global_quantile"] = "reference"
    """Pass when the score is >= the best-engaged reference's, or >= a quantile of the tweet's /
    all references' scores."""
    pass_quantile: float = 0.5
    """q for the quantile criteria."""
    baseline: str | None = None
    """The model every other is compared with (paired tests, divergence alarms); None: the first
    --model."""
    bootstrap: int = 1000
    """Bootstrap resamples per confidence interval."""
    seed: int = 0
    """Seed of the bootstrap."""
    device: str = "auto"
    """Where the policies, the judge and the encoder run: auto (cuda → mps → cpu), cpu, cuda[:N], mps."""
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    """Judge settings (default: the strongest offline scorer; an LLM judge is an option)."""
    alarms: AlarmConfig = field(default_factory=AlarmConfig)
    """Reward-hacking alarm thresholds."""
    hypotheses: list[Hypothesis] = field(default_factory=list)
    """Pre-registered claims; the report opens with their verdicts (evaluation/verdict.py)."""
    ratios: list[GainRatio] = field(default_factory=list)
    """Ratios of gains to report (e.g. learned/oracle audience gain)."""
    checkpoint_curves: str | None = None
    """JSON of checkpoint evaluations (evaluation/checkpoints.py) to plot in the report."""
    train_reply_length: float | None = None
    """Mean length (chars) of the engaged human replies of the training split, the length-drift
    alarm's reference (the pipeline sets it; None: the test tweets' replies)."""

    def __post_init__(self):
        if not self.ks or min(self.ks) < 1:
            raise ConfigError(f"ks must be a non-empty list of k >= 1, got {self.ks}")
        if max(self.ks) > self.sampling.n:
            raise ConfigError(
                f"max k = {max(self.ks)} exceeds sampling.n = {self.sampling.n}; "
                "pass@k needs n >= k samples per tweet"
            )
        if not 0 <= self.pass_quantile <= 1:
            raise ConfigError(f"pass_quantile must be in [0, 1], got {self.pass_quantile}")
        if self.max_tweets is not None and self.max_tweets < 1:
            raise ConfigError(f"max_tweets must be >= 1, got {self.max_tweets}")
        if self.bootstrap < 100:
            raise ConfigError(f"bootstrap must be >= 100 resamples, got {self.bootstrap}")
        self.ks = sorted(set(self.ks))
        check_device_name(self.device, "device")


@dataclass
class ModelSpec:
    """One `--model NAME=PATH` argument: a run of a named model (several with one name = seeds)."""

    name: str
    """Display name; runs sharing it are aggregated over seeds."""
    path: str | None
    """Model path (HF id, checkpoint, adapter folder); None/'base'/'default' = the default policy."""
    seed: int
    """Seed label (from a `seed_<s>` folder in the path, else the order among runs of the name)."""


def parse_models(specs: list[str]) -> list[ModelSpec]:
    """Parse `NAME=PATH` (or a bare PATH, named by its folder) arguments."""
    if not specs:
        raise InputError(
            "pass at least one --model NAME=PATH (PATH may be 'base' for the default model)"
        )
    out: list[ModelSpec] = []
    for s in specs:
        name, sep, path = s.partition("=")
        if not sep:
            name, path = Path(s).name or s, s
        name, path = name.strip(), path.strip()
        if not name or not path:
            raise InputError(f"--model expects NAME=PATH, got {s!r}")
        if (
            path not in ("base", "default")
            and "/" in path
            and not Path(path).expanduser().exists()
            and Path(path).expanduser().is_absolute()
        ):
            raise missing_path_error(path, f"--model {name}: path")
        m = re.search(r"seed_(\d+)", path)
        seed = int(m.group(1)) if m else sum(o.name == name for o in out)
        if any(o.name == name and o.seed == seed for o in out):
            seed = max(o.seed for o in out if o.name == name) + 1
        out.append(ModelSpec(name, None if path in ("base", "default") else path, seed))
    return out


def build_scorers(cfg: EvalConfig, synthetic: bool, encoder, device: str | None = None) -> Scorers:
    """Proxy (RM folder or heuristic), gold (RM folder or none) and, on synthetic data, the audience.

    Reward-model encoders run on `device` (None: `auto`)."""
    notes = []
    if cfg.proxy_reward:
        from replyrl.rewards.learned import load_reward_model

        proxy, proxy_name = (
            load_reward_model(cfg.proxy_reward, device=device).score,
            f"reward model {cfg.proxy_reward}",
        )
    else:
        from replyrl.rewards.embeddings import EmbeddingCache
        from replyrl.rewards.heuristic import HeuristicReward

        proxy = HeuristicReward(embeddings=EmbeddingCache(device=device)).score
        proxy_name = "heuristic reward (no proxy_reward given)"
        notes.append(
            "No proxy reward model was given (proxy_reward): the proxy score is the "
            "heuristic reward ensemble."
        )
    gold = gold_name = None
    if cfg.gold_reward:
        from replyrl.rewards.learned import load_reward_model

        gold, gold_name = (
            load_reward_model(cfg.gold_reward, device=device).score,
            f"reward model {cfg.gold_reward}",
        )
    else:
        notes.append("No gold reward model was given (gold_reward): gold-RM columns are omitted.")
    audience = None
    if synthetic:
        from replyrl.data.synth import audience_engagement

        audience = lambda t, r: audience_engagement(t, r, encoder=encoder)  # noqa: E731
    return Scorers(proxy, proxy_name, gold, gold_name, audience, notes)


def _run_id(spec: ModelSpec) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", spec.name)
    return f"{safe}__seed{spec.seed}"


def evaluate(
    specs: list[ModelSpec],
    data: str | Path,
    out: str | Path,
    cfg: EvalConfig,
    scorers: Scorers | None = None,
    generators: dict[str, Generator] | None = None,
    judge_backend=None,
    encoder=None,
    tweets: list[EvalTweet] | None = None,
) -> dict:
    """Evaluate every run and write the report; returns the summary.

    Args:
        specs: the runs (`parse_models`).
        data: test records file (JSONL/CSV) — read unless `tweets` is given.
        out: output folder.
        cfg: the evaluation config.
        scorers: override the reward scorers (tests); default `build_scorers`.
        generators: run id -> generator override (tests use fake models); default the policy.
        judge_backend: override the judge backend (tests).
        encoder: the sentence encoder (default `load_encoder(cfg.encoder)`).
        tweets: pre-grouped test tweets instead of reading `data`.
    """
    from replyrl.device import resolve_device
    from replyrl.models import DEFAULT_ENCODER, load_encoder
    from replyrl.records import load_records

    device = resolve_device(cfg.device)  # a missing GPU fails before any model loads
    out = Path(out)
    if tweets is None:
        tweets = group_tweets(load_records(data).records, cfg.max_tweets)
    elif cfg.max_tweets:
        tweets = tweets[: cfg.max_tweets]
    synthetic = all(t.synthetic for t in tweets)
    encoder = encoder or load_encoder(cfg.encoder, device)
    scorers = scorers or build_scorers(cfg, synthetic, encoder, device)
    judge = None
    judge_key = next(k for k, _ in scorers.items()[::-1])  # audience, else gold, else proxy
    if cfg.judge.enabled and cfg.judge.backend != "scorer":
        tag = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{cfg.judge.backend}-{cfg.judge.model or 'default'}")
        judge = Judge(
            cfg.judge, out / "cache" / f"judge-{tag}.json", backend=judge_backend, device=device
        )
    atomic_write_json(out / "eval_config.json", dataclasses.asdict(cfg))
    runs, rows_by_run, ref_scores = [], {}, None
    for spec in specs:
        rid = _run_id(spec)
        path = cache_path(out / "cache" / "generations", spec.name, spec.path, cfg.sampling)
        gen = (generators or {}).get(rid) or policy_generator(spec.path, cfg.sampling, device)
        gens = cached_generations(path, tweets, gen, cfg.sampling.n)
        if ref_scores is None:
            ref_scores = score_references(gens, scorers, encoder)
        rows = score_run(
            gens,
            ref_scores,
            scorers,
            encoder,
            cfg.ks,
            cfg.pass_judge,
            cfg.pass_criterion,
            cfg.pass_quantile,
            progress=True,
        )
        if judge is not None:
            add_judge(rows, judge, cfg.judge.replies_per_tweet, cfg.judge.max_tweets)
        elif cfg.judge.enabled:
            add_scorer_judge(rows, judge_key, cfg.judge.replies_per_tweet, cfg.judge.max_tweets)
        write_jsonl(out / "results" / f"{rid}.jsonl", rows)
        runs.append(
            {"id": rid, "name": spec.name, "path": spec.path, "seed": spec.seed, "cache": str(path)}
        )
        rows_by_run[rid] = rows
    notes = list(scorers.notes)
    if synthetic:
        notes.insert(
            0,
            "These results are on SYNTHETIC data (replyrl.data.synth): the "
            "'audience' column is the simulated audience's known engagement.",
        )
    if judge is not None and cfg.judge.backend == "local":
        notes.append(
            f"LLM judge: local model {cfg.judge.model or 'SmolLM2-135M-Instruct (default)'}, "
            "P(A) from next-token log-probs of 'A' vs 'B', position-swapped."
        )
    meta = {
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "data": str(data),
        "synthetic": synthetic,
        "n_tweets": len(tweets),
        "proxy": scorers.proxy_name,
        "gold": scorers.gold_name,
        "encoder": cfg.encoder or DEFAULT_ENCODER,
        "bertscore": BERTSCORE_NOTE.format(encoder=cfg.encoder or DEFAULT_ENCODER),
        "pass": {
            "judge": cfg.pass_judge,
            "criterion": cfg.pass_criterion,
            "quantile": cfg.pass_quantile,
        },
        "judge": None
        if not cfg.judge.enabled
        else {
            "backend": cfg.judge.backend,
            "model": {
                "audience": "the simulated audience (exact gold)",
                "gold": scorers.gold_name,
                "proxy": scorers.proxy_name,
            }[judge_key]
            if cfg.judge.backend == "scorer"
            else cfg.judge.model or "default policy",
        },
        "notes": notes,
        "train_reply_length": cfg.train_reply_length,
        "reward_validation": _reward_validation(cfg),
        "audience_version": _audience_version() if synthetic else None,
        "config": dataclasses.asdict(cfg),
        "runs": runs,
    }
    atomic_write_json(out / "runs.json", meta)
    return _finish(out, meta, runs, rows_by_run, cfg)


def _reward_validation(cfg: EvalConfig) -> dict:
    """The proxy and gold RMs' validation reports (validation/validation.json), when present."""
    out = {}
    for key, folder in (("proxy", cfg.proxy_reward), ("gold", cfg.gold_reward)):
        f = Path(folder) / "validation" / "validation.json" if folder else None
        if f is not None and f.exists():
            out[key] = read_json(f, "reward validation")
    return out


def _audience_version() -> int:
    from replyrl.data.synth import AUDIENCE_VERSION

    return AUDIENCE_VERSION


def _finish(out: Path, meta: dict, runs: list[dict], rows_by_run: dict, cfg: EvalConfig) -> dict:
    from replyrl.evaluation.report import write_report

    summary = build_summary(
        meta,
        runs,
        rows_by_run,
        cfg.alarms,
        n_boot=cfg.bootstrap,
        seed=cfg.seed,
        baseline=cfg.baseline,
        hypotheses=cfg.hypotheses,
        ratios=cfg.ratios,
    )
    if cfg.checkpoint_curves and Path(cfg.checkpoint_curves).exists():
        summary["checkpoints"] = read_json(Path(cfg.checkpoint_curves), "checkpoint curves")
    # Strict JSON for other tools: NaN/inf (undefined tests, constant samples) become null.
    atomic_write_json(out / "summary.json", _strict_json(summary))
    write_report(out, summary, rows_by_run)
    return summary


def _strict_json(obj):
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strict_json(v) for v in obj]
    return obj


def rebuild(out: str | Path) -> dict:
    """Recompute summary.json, report.md and report.html from an evaluation folder's results."""
    from replyrl.config import from_dict

    out = Path(out)
    meta_file = out / "runs.json"
    if not meta_file.exists():
        raise ArtifactNotFoundError(
            f"{out} is not an evaluation folder (no runs.json); "
            "run `replyrl evaluate ... --out DIR` first"
        )
    meta = read_json(meta_file, "the evaluation's run list")
    runs = meta.get("runs") if isinstance(meta, dict) else None
    if (
        not isinstance(meta.get("config") if isinstance(meta, dict) else None, dict)
        or not isinstance(runs, list)
        or not all(isinstance(r, dict) and isinstance(r.get("id"), str) for r in runs)
    ):
        raise ArtifactError(
            f"{meta_file}: not a run list written by `replyrl evaluate` (needs 'config' and "
            "'runs' with an 'id' each); re-run `replyrl evaluate`"
        )
    cfg = from_dict(EvalConfig, meta["config"], where=str(meta_file))
    rows_by_run = {}
    for r in runs:
        f = out / "results" / f"{r['id']}.jsonl"
        if not f.exists():
            raise ArtifactNotFoundError(f"missing cached results {f}; re-run `replyrl evaluate`")
        rows_by_run[r["id"]] = list(read_jsonl(f))
    try:
        return _finish(out, meta, runs, rows_by_run, cfg)
    except (KeyError, TypeError) as e:
        raise ArtifactError(
            f"{out / 'results'}: the cached results lack a field or hold a wrong type ({e!r}); "
            "re-run `replyrl evaluate`"
        ) from None
