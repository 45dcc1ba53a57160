"""Training of learned reward heads (DESIGN §3): regression on an engagement label, or
Bradley–Terry on preference pairs. The encoder stays frozen; only the head (learned.py) trains.

Data use, all seeded:
- records are split by tweet (`replyrl.data.splits`); the head trains on `train_splits` (default
  sft ∪ rl) and never sees the gold/test tweets. Their ids are saved beside the model
  (`train_tweets.json`) so `reward validate` can drop them from any data file it is given.
- a validation set of whole tweets (`val_frac`) is held out *inside* the training tweets for early
  stopping and model selection; the held-out test tweets are never used to tune anything.
- preference pairs: `pairs: shp` (default) uses the SHP-style pairs of `replyrl.data.pairs` (later
  reply wins by `pair_ratio`); `pairs: all` uses every within-tweet pair whose scores differ by
  `pair_ratio`, earlier winners included, with *context nuisance terms* in the loss:
  P(a ≻ b) = σ(s(a) − s(b) + γ_t·(log1p t_a − log1p t_b) + γ_f·(log1p f_a − log1p f_b)) for the
  reply delay t and the author's followers f. Timing explains most of Reddit engagement (an earlier
  comment wins 83 % of clear pairs), so a text model trained on those pairs without the term learns
  "long replies come early" or noise; with it, γ absorbs the context's advantage and s(·) is left
  the text's share. γ is used in training only; the saved reward sees text alone. Extra pairs (e.g.
  user picks from `replyrl serve`) join the training pairs.
- Bradley–Terry loss is symmetric in (a, b), so swapping pairs as augmentation changes nothing;
  regularization comes from weight decay, dropout and early stopping instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import torch

from replyrl.config import ConfigError
from replyrl.data.splits import SplitConfig
from replyrl.errors import InputError
from replyrl.rewards.heuristic import HeuristicConfig
from replyrl.rewards.learned import EnsembleHead, HeadConfig

Objective = Literal["regression", "preference"]


@dataclass
class RewardTrainConfig:
    """`replyrl reward train`: what to learn, from which data, and how."""

    objective: Objective = "preference"
    """`regression` (MSE/Huber on `label`) or `preference` (Bradley–Terry on pairs)."""
    label: Literal["ratio", "log", "residual", "rank"] = "residual"
    """Engagement label for regression and for the validation report."""
    loss: Literal["mse", "huber"] = "mse"
    """Regression loss."""
    huber_delta: float = 0.1
    """Huber transition point (labels are in [0, 1])."""
    pairs: Literal["shp", "all"] = "all"
    """Preference pairs: SHP-style only, or all within-tweet pairs with context nuisance terms."""
    pair_ratio: float = 2.0
    """A reply beats another when its engagement is at least this many times higher."""
    max_pairs_per_tweet: int = 8
    """Cap on SHP-style pairs per tweet (`pairs: shp`)."""
    margin_weight: bool = False
    """Weight each pair's loss by its log engagement margin."""
    head: HeadConfig = field(default_factory=HeadConfig)
    """Head shape, dropout and surface features."""
    encoder: str | None = None
    """Sentence encoder (None: the packaged all-MiniLM-L6-v2)."""
    split: SplitConfig = field(default_factory=SplitConfig)
    """Tweet-level split (seeded); the head trains on `train_splits` only."""
    train_splits: list[str] = field(default_factory=lambda: ["sft", "rl"])
    """Splits whose tweets the reward model may train on."""
    val_frac: float = 0.15
    """Share of training tweets held out for early stopping and model selection."""
    lr: float = 1e-3
    """AdamW learning rate."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    batch_size: int = 256
    """Pairs (or replies) per step."""
    epochs: int = 60
    """Most epochs."""
    patience: int = 8
    """Stop after this many epochs without a better validation score."""
    seed: int = 0
    """Seed of the validation split, initialization and batch order."""
    heuristic: HeuristicConfig = field(default_factory=HeuristicConfig)
    """Heuristic whose training-set statistics are stored for the composite reward."""
    cache_dir: str | bool | None = None
    """Folder persisting the embedding cache so re-runs skip encoding (None/true: `$REPLYRL_CACHE/embeddings/<encoder>`; off/false: none)."""

    def __post_init__(self) -> None:
        if not 0.0 < self.val_frac < 0.5:
            raise ConfigError(f"val_frac must be in (0, 0.5), got {self.val_frac}")
        if not self.pair_ratio >= 1.0 or math.isinf(self.pair_ratio):
            raise ConfigError(f"pair_ratio must be a finite number >= 1, got {self.pair_ratio}")
        if not (
            0 < self.lr < math.inf
            and 0 <= self.weight_decay < math.inf
            and self.batch_size >= 1
            and self.epochs >= 1
            and self.patience >= 1
        ):
            raise ConfigError(
                "need a finite lr > 0, a finite weight_decay >= 0, batch_size >= 1, epochs >= 1, "
                f"patience >= 1; got lr={self.lr}, weight_decay={self.weight_decay}, "
                f"batch_size={self.batch_size}, epochs={self.epochs}, patience={self.patience}"
            )
        bad = [s for s in self.train_splits if s not in ("sft", "rl", "gold", "test")]
        if bad or not self.train_splits:
            raise ConfigError(
                f"train_splits must name splits among sft, rl, gold, test; got {self.train_splits}"
            )
        if self.max_pairs_per_tweet < 1 or not 0 < self.huber_delta < math.inf:
            raise ConfigError(
                "max_pairs_per_tweet must be >= 1 and huber_delta a finite number > 0, got "
                f"{self.max_pairs_per_tweet}, {self.huber_delta}"
            )


@dataclass
class Batch:
    """Encoded replies: tweet and reply embeddings, surface features, log delay."""

    et: torch.Tensor
    """(n, d) tweet embeddings."""
    er: torch.Tensor
    """(n, d) reply embeddings."""
    x: torch.Tensor
    """(n, k) raw surface features."""
    context: torch.Tensor
    """(n, 2) log1p(reply delay in seconds), log1p(reply author's followers); 0 when unknown
    (training-time nuisance terms only, never a scoring input)."""


def pairwise_accuracy(scores: np.ndarray, pairs: np.ndarray) -> float:
    """Share of (chosen, rejected) index pairs where the chosen scores higher (ties count half)."""
    if len(pairs) == 0:
        return float("nan")
    s = np.asarray(scores, dtype=np.float64)
    a, b = s[pairs[:, 0]], s[pairs[:, 1]]
    return float(np.mean(a > b) + 0.5 * np.mean(a == b))


def split_val(tweet_ids: Sequence[str], frac: float, seed: int) -> set[str]:
    """A seeded set of whole tweets held out inside the training split."""
    ids = sorted(set(tweet_ids))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(ids))
    n_val = max(1, int(round(frac * len(ids))))
    return {ids[i] for i in order[:n_val]}


def within_tweet_pairs(
    engagement: Sequence[float],
    tweet_ids: Sequence[str],
    ratio: float,
    delays: Sequence[float | None] | None = None,
    later_only: bool = False,
) -> np.ndarray:
    """(m, 2) index pairs (winner, loser) within each tweet: winner ≥ ratio·max(loser, 1) and above it.

    With `later_only`, the winner must not be earlier than the loser (SHP rule) where both times are known.
    """
    groups: dict[str, list[int]] = {}
    for i, t in enumerate(tweet_ids):
        groups.setdefault(t, []).append(i)
    out = []
    for idx in groups.values():
        for a in idx:
            for b in idx:
                sa, sb = engagement[a], engagement[b]
                if a == b or sa <= sb or sa < ratio * max(sb, 1):
                    continue
                if later_only and delays is not None:
                    ta, tb = delays[a], delays[b]
                    if ta is not None and tb is not None and ta < tb:
                        continue
                out.append((a, b))
    return np.array(out, dtype=np.int64).reshape(-1, 2)


def bt_loss(z: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Bradley–Terry negative log-likelihood −log σ(z), z = s(chosen) − s(rejected) (+ nuisance)."""
    nll = torch.nn.functional.softplus(-z)  # = −log σ(z), stable for large |z|
    if weight is None:
        return nll.mean()
    return (nll * weight).sum() / weight.sum().clamp_min(1e-12)


def regression_loss(pred: torch.Tensor, y: torch.Tensor, kind: str, delta: float) -> torch.Tensor:
    if kind == "huber":
        return torch.nn.functional.huber_loss(pred, y, delta=delta)
    return torch.nn.functional.mse_loss(pred, y)


def _context(records: Sequence) -> list[tuple[float | None, float | None]]:
    return [(r.reply_time_diff_seconds, r.reply_author_followers) for r in records]


def _encode_batch(
    cache,
    tweets: Sequence[str],
    replies: Sequence[str],
    context: Sequence[tuple[float | None, float | None]],
    head_cfg: HeadConfig,
) -> Batch:
    from replyrl.rewards.learned import surface_features

    return Batch(
        et=torch.from_numpy(cache.encode(tweets)),
        er=torch.from_numpy(cache.encode(replies)),
        x=torch.from_numpy(surface_features(replies, head_cfg.extra_features)).float(),
        context=torch.tensor(
            [[math.log1p(v) if v is not None else 0.0 for v in c] for c in context],
            dtype=torch.float32,
        ).reshape(-1, 2),
    )


def _score(head, b: Batch) -> np.ndarray:
    """The full score (all heads): what the labels are fitted to, so what model selection uses."""
    head.eval()
    with torch.no_grad():
        return head(b.et, b.er, b.x, heads="all").double().numpy()


def abs_corr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """|Pearson correlation| of two (n,) tensors (0 when either is constant), differentiable."""
    a, b = a - a.mean(), b - b.mean()
    return ((a * b).sum() / (a.norm() * b.norm()).clamp_min(1e-8)).abs()


def fit_head(
    cfg: RewardTrainConfig,
    train: Batch,
    val: Batch,
    *,
    pairs: np.ndarray | None = None,
    pair_weight: np.ndarray | None = None,
    timing: bool = False,
    y: np.ndarray | None = None,
    val_pairs: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
):
    """Train a head with early stopping on the validation metric; returns (head, history).

    Preference (`pairs` given): BT loss; validation metric = pairwise accuracy on `val_pairs`.
    Regression (`y` given): MSE/Huber; validation metric = Spearman with `y_val`.
    """
    from scipy.stats import spearmanr

    from replyrl.rewards.learned import RewardHead

    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    head = RewardHead(cfg.head)
    if cfg.head.n_extra:
        head.x_mean.copy_(train.x.mean(0))
        head.x_std.copy_(train.x.std(0).clamp_min(1e-6))
    if cfg.head.kind == "odin":
        head.set_length_knots(train.x[:, 0])
    gamma = torch.nn.Parameter(torch.zeros(2))  # timing and reach nuisance, training only
    groups = [{"params": list(head.parameters())}]
    if timing:
        # γ (two scalars) must reach O(1) before the head can stop explaining timing with
        # text: a larger step and no decay let it get there in the first epoch.
        groups.append({"params": [gamma], "lr": cfg.lr * 50, "weight_decay": 0.0})
    opt = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    preference = pairs is not None
    odin = cfg.head.kind == "odin" and cfg.head.decorrelation > 0
    n = len(pairs) if preference else len(y)
    P = torch.from_numpy(pairs) if preference else None
    W = torch.from_numpy(pair_weight).float() if preference and pair_weight is not None else None
    Y = torch.from_numpy(np.asarray(y, dtype=np.float32)) if not preference else None
    best, best_state, best_epoch, history = -math.inf, None, -1, []
    for epoch in range(cfg.epochs):
        head.train()
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for i in range(0, n, cfg.batch_size):
            idx = perm[i : i + cfg.batch_size]
            if preference:
                a, b = P[idx, 0], P[idx, 1]  # (B,), (B,)
                qa, la = head.heads(train.et[a], train.er[a], train.x[a])
                qb, lb = head.heads(train.et[b], train.er[b], train.x[b])
                z = (qa + la) - (qb + lb)
                if timing:
                    z = z + (train.context[a] - train.context[b]) @ gamma
                loss = bt_loss(z, W[idx] if W is not None else None)
                items, quality = torch.cat([a, b]), torch.cat([qa, qb])
            else:
                quality, length = head.heads(train.et[idx], train.er[idx], train.x[idx])
                loss = regression_loss(quality + length, Y[idx], cfg.loss, cfg.huber_delta)
                items = idx
            if odin:
                # ODIN: the quality head must not carry length (x[:, 0] is log chars)
                loss = loss + cfg.head.decorrelation * abs_corr(quality, train.x[items, 0])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        sv = _score(head, val)
        if preference:
            metric = pairwise_accuracy(sv, val_pairs)
        else:
            metric = float(spearmanr(sv, y_val).statistic) if np.std(sv) > 0 else 0.0
        metric = metric if math.isfinite(metric) else -math.inf
        history.append(
            {
                "epoch": epoch,
                "train_loss": total / n,
                "val_metric": metric,
                "gamma": gamma.detach().tolist() if timing else None,
            }
        )
        if metric > best:
            best, best_epoch = metric, epoch
            best_state = {k: v.detach().clone() for k, v in head.state_dict().items()}
        elif epoch - best_epoch >= cfg.patience:
            break
    head.load_state_dict(best_state)
    head.eval()
    return head, {
        "best_epoch": best_epoch,
        "val_metric": best,
        "epochs_run": len(history),
        "history": history,
    }


def _cache_folder(cfg: RewardTrainConfig):
    from replyrl.rewards.embeddings import default_cache_dir

    if cfg.cache_dir is False or cfg.cache_dir == "off":
        return None
    if cfg.cache_dir is None or cfg.cache_dir is True:
        return default_cache_dir(cfg.encoder)
    return cfg.cache_dir


def _fit_member(
    cfg: RewardTrainConfig,
    train: Sequence,
    extra_pairs: Sequence,
    labeler,
    cache,
    log=print,
    member: str = "",
):
    """One head on `train` (its inner validation split drawn with cfg.seed); (head, history, summary)."""
    from replyrl.data.labels import engagement_raw
    from replyrl.data.pairs import preference_pairs

    val_ids = split_val([r.tweet_id for r in train], cfg.val_frac, cfg.seed)
    tr = [r for r in train if r.tweet_id not in val_ids]
    va = [r for r in train if r.tweet_id in val_ids]
    log(
        f"training {cfg.objective} reward head{member}: {len(tr)} replies / {len({r.tweet_id for r in tr})} tweets "
        f"(+{len(va)} / {len(val_ids)} for validation), {len(extra_pairs)} extra pairs"
    )
    # Item table: training replies, then the texts of extra pairs (no timing, no label).
    tweets = [r.tweet for r in tr] + [t for p in extra_pairs for t in (p.tweet, p.tweet)]
    replies = [r.reply for r in tr] + [t for p in extra_pairs for t in (p.chosen, p.rejected)]
    context = _context(tr) + [(None, None)] * (2 * len(extra_pairs))
    tb = _encode_batch(cache, tweets, replies, context, cfg.head)
    vb = _encode_batch(cache, [r.tweet for r in va], [r.reply for r in va], _context(va), cfg.head)
    eng_va = [engagement_raw(r) for r in va]
    val_pairs = within_tweet_pairs(
        eng_va,
        [r.tweet_id for r in va],
        cfg.pair_ratio,
        [r.reply_time_diff_seconds for r in va],
        later_only=True,
    )
    y_tr = labeler.transform(tr)
    y_va = labeler.transform(va)
    summary: dict = {
        "objective": cfg.objective,
        "n_train_replies": len(tr),
        "n_val_replies": len(va),
        "n_val_pairs": len(val_pairs),
        "n_extra_pairs": len(extra_pairs),
    }
    if cfg.objective == "preference":
        if cfg.pairs == "shp":
            index = {(r.tweet_id, r.reply): i for i, r in enumerate(tr)}
            plist = preference_pairs(tr, cfg.pair_ratio, cfg.max_pairs_per_tweet, seed=cfg.seed)
            pairs = [
                (index[(p.tweet_id, p.chosen)], index[(p.tweet_id, p.rejected)]) for p in plist
            ]
            margins = [p.margin for p in plist]
        else:
            eng = [engagement_raw(r) for r in tr]
            arr = within_tweet_pairs(eng, [r.tweet_id for r in tr], cfg.pair_ratio)
            pairs = arr.tolist()
            margins = [math.log((eng[a] + 1) / (eng[b] + 1)) for a, b in pairs]
        base = len(tr)
        for j, p in enumerate(extra_pairs):
            pairs.append((base + 2 * j, base + 2 * j + 1))
            margins.append(
                p.margin if p.margin > 0 else 1.0
            )  # a human pick has no counts: weight 1
        pairs_arr = np.array(pairs, dtype=np.int64).reshape(-1, 2)
        if len(pairs_arr) == 0:
            raise InputError(
                "no preference pairs in the training tweets: lower pair_ratio or add --pairs"
            )
        if len(val_pairs) == 0:
            raise InputError(
                "no SHP-style pairs among the validation tweets: raise val_frac or add data"
            )
        weight = np.asarray(margins, dtype=np.float32) if cfg.margin_weight else None
        summary["n_train_pairs"] = len(pairs_arr)
        head, hist = fit_head(
            cfg,
            tb,
            vb,
            pairs=pairs_arr,
            pair_weight=weight,
            timing=cfg.pairs == "all",
            val_pairs=val_pairs,
        )
    else:
        y_full = np.concatenate([y_tr, np.full(2 * len(extra_pairs), np.nan)])
        keep = np.flatnonzero(np.isfinite(y_full))
        sub = Batch(tb.et[keep], tb.er[keep], tb.x[keep], tb.context[keep])
        head, hist = fit_head(cfg, sub, vb, y=y_full[keep], y_val=y_va)
    summary.update({k: v for k, v in hist.items() if k != "history"})
    summary["history"] = hist["history"]
    return head, hist, summary


def train_reward_model(
    cfg: RewardTrainConfig,
    records: Sequence,
    extra_pairs: Sequence = (),
    embeddings=None,
    log=print,
):
    """Train a reward model on `records` (split by tweet, seeded) plus `extra_pairs`.

    Returns:
        (RewardModel, summary dict, training tweet ids).
    """
    from replyrl.data.labels import fit_labeler
    from replyrl.data.splits import split_records
    from replyrl.rewards.embeddings import EmbeddingCache
    from replyrl.rewards.heuristic import HeuristicReward
    from replyrl.rewards.learned import RewardModel

    splits = split_records(records, cfg.split)
    train = [r for s in cfg.train_splits for r in splits[s]]
    if len({r.tweet_id for r in train}) < 4:
        raise InputError(
            f"too few training tweets ({len({r.tweet_id for r in train})}) in splits "
            f"{cfg.train_splits}: a reward model needs many tweets with several replies each"
        )
    labeler = fit_labeler(train, cfg.label)
    cache = embeddings if embeddings is not None else EmbeddingCache(encoder_name=cfg.encoder)
    disk = _cache_folder(cfg)
    if disk is not None:
        cache.load(disk)
    extra_pairs = list(extra_pairs)
    n = cfg.head.ensemble
    heads, hists, members = [], [], []
    for i in range(n):
        tag = f" {i + 1}/{n}" if n > 1 else ""
        one, hist, part = _fit_member(
            replace(cfg, seed=cfg.seed + i), train, extra_pairs, labeler, cache, log, tag
        )
        if disk is not None and i == 0:
            cache.save(disk)  # every member encodes the same texts: save once
        heads.append(one)
        hists.append(hist)
        members.append(part)
        log(
            f"head{tag}: best epoch {hist['best_epoch']} of {hist['epochs_run']}, validation "
            f"{'pairwise accuracy' if cfg.objective == 'preference' else 'Spearman'} "
            f"{hist['val_metric']:.4f}"
        )
    head = EnsembleHead(cfg.head, heads) if n > 1 else heads[0]
    head.eval()
    val_metric = float(np.mean([h["val_metric"] for h in hists]))
    summary = {k: v for k, v in members[0].items() if k != "history"}
    summary["val_metric"] = val_metric
    if n > 1:
        summary["best_epoch"] = [m["best_epoch"] for m in hists]
        summary["epochs_run"] = [m["epochs_run"] for m in hists]
        summary["members"] = members
    else:
        summary["history"] = members[0]["history"]
    model = RewardModel(head, encoder=cfg.encoder, embeddings=cache)
    # Fixed normalization statistics for the composite reward (composite.py): over training replies.
    all_tw, all_rp = [r.tweet for r in train], [r.reply for r in train]
    s = model.score(all_tw, all_rp)
    h = HeuristicReward(cfg.heuristic, embeddings=cache).score(all_tw, all_rp)
    model.meta = {
        "objective": cfg.objective,
        "label": cfg.label,
        "pairs": cfg.pairs,
        "score_mean": float(s.mean()),
        "score_std": float(s.std()) or 1.0,
        "heuristic_mean": float(h.mean()),
        "heuristic_std": float(h.std()) or 1.0,
        "labeler": labeler.to_dict(),
        "context_labeler": fit_labeler(train, "log").to_dict(),
        "split": {"seed": cfg.split.seed, **cfg.split.fractions()},
        "train_splits": list(cfg.train_splits),
        "n_train_tweets": len({r.tweet_id for r in train}),
        "val": {
            "metric": "pairwise_accuracy" if cfg.objective == "preference" else "spearman",
            "value": val_metric,
            "best_epoch": [m["best_epoch"] for m in hists] if n > 1 else hists[0]["best_epoch"],
        },
    }
    return model, summary, sorted({r.tweet_id for r in train})
