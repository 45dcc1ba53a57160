"""Learned engagement reward model (DESIGN §3): a frozen sentence encoder and a small head.

    features = [e_t, e_r, e_t·e_r, |e_t − e_r|]          (4·384 for MiniLM; unit-norm embeddings)

    kind mlp:   score = MLP(features ⊕ x) + w·x                 MLP: 4·384(+k) → hidden → 1
    kind odin:  q = MLP(features ⊕ cos(e_t, e_r) ⊕ x_style)   the quality head: no length input
                l = spline(log chars)                          the length head: piecewise linear
                                                               over training-quantile knots, flat
                                                               beyond the first and last knot
                trained as q + l, with a penalty on |corr(q, log length)|; RL scores with q alone

The `odin` kind follows ODIN (Chen et al. 2024, "ODIN: Disentangled Reward Mitigates Hacking in
RLHF"): the reward is split into a length head and a quality head, the quality head is decorrelated
from length during training, and the policy optimises the quality head, so the share of the
engagement signal that length explains (most of it, on short noisy replies) cannot be bought by
writing longer replies. The explicit tweet–reply cosine gives the quality head the interaction
(is the reply about the tweet?) as one direct input rather than 384 products to sum.

`x` are optional text-only surface features of the reply (`length`: log chars and log words; `style`:
question/exclamation/link/line counts), standardized with training statistics (a feature constant in
training is ignored, the rest clipped to ±5 standard deviations: see `RewardHead.standardize`). They enter the MLP
and a linear skip term: on real engagement data reply length alone is a strong baseline (64 % of
SHP-style pairs on reddit-college), and a linear path lets the head keep that signal instead of
rediscovering it through 1,536 noisy inputs. Context (timing, author reach) is never a feature: the
reward must credit the text (DESIGN §2).

With `ensemble: N` > 1 the model is N such heads of one shape, trained with seeds seed..seed+N-1,
and its score is the mean of theirs (EnsembleHead): one head trained on a few thousand noisy pairs
moves by points with its seed alone, the mean of several does not (docs/rewards.md#ensemble).

A saved model is a folder: `config.json` (head shape, feature set, encoder name/path, training
summary, normalization stats) and `head.safetensors`. Loading reads JSON and tensors; nothing is
unpickled. Training lives in `replyrl.rewards.train`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from replyrl.config import ConfigError
from replyrl.errors import ArtifactError, ArtifactNotFoundError
from replyrl.io import atomic_write_bytes, atomic_write_json
from replyrl.rewards.base import (
    check_lengths,
    check_rewards,
    completion_texts,
    log_components,
    tweets_from,
)
from replyrl.rewards.embeddings import EmbeddingCache

FORMAT_VERSION = 1
MIN_FEATURE_STD = 1e-3
"""A surface feature whose training standard deviation is below this was constant in training: the
head learned nothing about it, so it is ignored at scoring (its weight is still the random init)."""
FEATURE_CLIP = 5.0
"""Standardized surface features are clipped to +-this many training standard deviations, so a value
the training data never showed (a reply made of line breaks) cannot buy an unbounded score."""
EXTRA_FEATURES = {
    "length": ("log_chars", "log_words"),
    "style": ("question", "exclaim", "link", "lines"),
}
_WORD = re.compile(r"\S+")


def surface_features(replies: Sequence[str], groups: Sequence[str]) -> np.ndarray:
    """Text-only features of each reply for the named groups (see EXTRA_FEATURES), shape (n, k)."""
    cols: list[np.ndarray] = []
    for g in groups:
        if g not in EXTRA_FEATURES:
            raise ValueError(
                f"unknown extra feature group {g!r}; choose from {sorted(EXTRA_FEATURES)}"
            )
        if g == "length":
            cols.append(np.log1p([len(r.strip()) for r in replies]))
            cols.append(np.log1p([len(_WORD.findall(r)) for r in replies]))
        elif g == "style":
            cols.append(np.array([float("?" in r) for r in replies]))
            cols.append(np.array([float("!" in r) for r in replies]))
            cols.append(np.array([float("http" in r or "www." in r) for r in replies]))
            cols.append(np.log1p([r.strip().count("\n") for r in replies]))
    if not cols:
        return np.zeros((len(replies), 0))
    return np.stack(cols, axis=1).astype(np.float64)


def pair_features(et: torch.Tensor, er: torch.Tensor) -> torch.Tensor:
    """[e_t, e_r, e_t·e_r, |e_t − e_r|] for (n, d) embeddings -> (n, 4d)."""
    return torch.cat([et, er, et * er, (et - er).abs()], dim=-1)


@dataclass
class HeadConfig:
    """Shape and features of a reward head (saved in config.json)."""

    emb_dim: int = 384
    """Sentence embedding size (384 for all-MiniLM-L6-v2)."""
    hidden: int = 128
    """MLP hidden width."""
    dropout: float = 0.1
    """Dropout on the MLP input and hidden layer (training only)."""
    extra_features: list[str] = field(default_factory=lambda: ["length", "style"])
    """Surface feature groups added to the input and a linear skip ('length', 'style'); for the
    odin kind, `length` (first) feeds the length head and the rest the quality head."""
    kind: Literal["mlp", "odin"] = "odin"
    """mlp: one head on embeddings and surface features; odin: a quality head and a length head."""
    decorrelation: float = 0.1
    """odin: weight of the |corr(quality score, log length)| penalty in the training loss."""
    length_knots: int = 8
    """odin: knots of the length head's piecewise-linear function of log chars."""
    score_heads: Literal["quality", "all"] = "quality"
    """odin: what `score` returns — the quality head (for RL), or quality + length."""
    ensemble: int = 5
    """Heads trained independently (member i: seed + i for its initialization, batch order and
    inner validation split) whose scores are averaged; 1 is a single head (a folder written before
    this field existed loads as 1)."""

    def __post_init__(self) -> None:
        if self.kind == "odin" and (not self.extra_features or self.extra_features[0] != "length"):
            raise ValueError(
                "the odin head's length head reads the length features: extra_features must "
                f"start with length, e.g. [length] or [length, style] (got {self.extra_features})"
            )
        if not (math.isfinite(self.decorrelation) and self.decorrelation >= 0):
            raise ValueError(f"decorrelation must be finite and >= 0, got {self.decorrelation}")
        if isinstance(self.ensemble, bool) or self.ensemble < 1:
            raise ConfigError(f"ensemble must be an integer >= 1, got {self.ensemble}")
        if self.length_knots < 2:
            raise ValueError(f"length_knots must be >= 2, got {self.length_knots}")
        if self.emb_dim < 1 or self.hidden < 1:
            raise ConfigError(f"emb_dim and hidden must be >= 1, got {self.emb_dim}, {self.hidden}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        for g in self.extra_features:
            if g not in EXTRA_FEATURES:
                raise ConfigError(
                    f"unknown extra feature group {g!r}; choose from {sorted(EXTRA_FEATURES)}"
                )

    @property
    def n_extra(self) -> int:
        return sum(len(EXTRA_FEATURES[g]) for g in self.extra_features)


class RewardHead(nn.Module):
    """The reward head of HeadConfig.kind (see the module docstring)."""

    def __init__(self, cfg: HeadConfig):
        super().__init__()
        self.cfg = cfg
        odin = cfg.kind == "odin"
        n_len = len(EXTRA_FEATURES["length"])
        d_in = 4 * cfg.emb_dim + (1 + cfg.n_extra - n_len if odin else cfg.n_extra)
        self.mlp = nn.Sequential(
            nn.Dropout(cfg.dropout),
            nn.Linear(d_in, cfg.hidden),
            nn.GELU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden, 1),
        )
        # Standardization of x, fixed from the training set (buffers, so they are saved with the head).
        self.register_buffer("x_mean", torch.zeros(cfg.n_extra))
        self.register_buffer("x_std", torch.ones(cfg.n_extra))
        if odin:  # the length head: values at knots of log chars (knots set from the training data)
            self.skip = None
            self.length_values = nn.Parameter(torch.zeros(cfg.length_knots))
            self.register_buffer("length_knots", torch.linspace(0.0, 8.0, cfg.length_knots))
        else:  # a linear skip on the surface features
            self.skip = nn.Linear(cfg.n_extra, 1, bias=False) if cfg.n_extra else None

    def set_length_knots(self, log_chars: torch.Tensor) -> None:
        """odin: knots at evenly spaced quantiles of the training replies' log chars."""
        q = torch.linspace(0, 1, self.cfg.length_knots, dtype=log_chars.dtype)
        knots = torch.quantile(log_chars, q)
        # strictly increasing, so every interval has a width
        knots = torch.maximum(knots, knots[0] + 1e-3 * torch.arange(len(knots)))
        self.length_knots.copy_(torch.cummax(knots, 0).values)

    def length_score(self, log_chars: torch.Tensor) -> torch.Tensor:
        """Piecewise-linear interpolation of the knot values; flat outside the knots."""
        k = self.length_knots
        z = log_chars.clamp(k[0], k[-1])
        i = torch.bucketize(z, k[1:-1])  # interval index in [0, K-2]
        t = (z - k[i]) / (k[i + 1] - k[i]).clamp_min(1e-6)
        return self.length_values[i] * (1 - t) + self.length_values[i + 1] * t

    def standardize(self, x: torch.Tensor) -> torch.Tensor:
        """Raw surface features (n, k) -> standardized with the training statistics, features that
        were constant in training set to 0, the rest clipped to +-FEATURE_CLIP."""
        learned = self.x_std >= MIN_FEATURE_STD
        xs = (x - self.x_mean) / self.x_std.clamp_min(MIN_FEATURE_STD)
        return torch.where(learned, xs, torch.zeros_like(xs)).clamp(-FEATURE_CLIP, FEATURE_CLIP)

    def heads(self, et: torch.Tensor, er: torch.Tensor, x: torch.Tensor):
        """(quality, length) scores (n,) of an odin head; for mlp, (score, 0)."""
        xs = self.standardize(x)  # (n, k)
        if self.cfg.kind == "mlp":
            out = self.mlp(torch.cat([pair_features(et, er), xs], dim=-1)).squeeze(-1)  # (n,)
            if self.skip is not None:
                out = out + self.skip(xs).squeeze(-1)
            return out, torch.zeros_like(out)
        cos = (et * er).sum(-1, keepdim=True)  # (n, 1)
        style = xs[:, len(EXTRA_FEATURES["length"]) :]  # non-length surface features, if any
        quality = self.mlp(torch.cat([pair_features(et, er), cos, style], dim=-1)).squeeze(-1)
        return quality, self.length_score(x[:, 0])  # x[:, 0]: log chars

    def forward(
        self, et: torch.Tensor, er: torch.Tensor, x: torch.Tensor, heads: str | None = None
    ) -> torch.Tensor:
        """et, er: (n, d) unit embeddings; x: (n, k) raw surface features -> scores (n,);
        `heads` (odin): quality or all (default: cfg.score_heads)."""
        quality, length = self.heads(et, er, x)
        if (heads or self.cfg.score_heads) == "all":
            return quality + length
        return quality


class EnsembleHead(nn.Module):
    """`cfg.ensemble` reward heads of one shape; the score is the mean of theirs.

    Members differ in seed (initialization, batch order, inner validation split), so their errors
    are partly independent and the mean is a lower-variance reward: on a few thousand noisy pairs
    one head's held-out accuracy moves by about a point with its seed alone. Averaging the raw
    Bradley–Terry scores averages the members' log-odds.
    """

    def __init__(self, cfg: HeadConfig, members: Sequence[RewardHead] | None = None):
        """`members`: heads already trained (training passes them); None: cfg.ensemble fresh ones."""
        super().__init__()
        self.cfg = cfg
        self.members = nn.ModuleList(
            members if members is not None else (RewardHead(cfg) for _ in range(cfg.ensemble))
        )

    def forward(
        self, et: torch.Tensor, er: torch.Tensor, x: torch.Tensor, heads: str | None = None
    ) -> torch.Tensor:
        """The members' mean score (n,); arguments as RewardHead.forward."""
        return torch.stack([m(et, er, x, heads) for m in self.members]).mean(0)


def build_head(cfg: HeadConfig) -> RewardHead | EnsembleHead:
    """The head that `cfg` describes: one RewardHead, or an EnsembleHead when cfg.ensemble > 1
    (a single head keeps the tensor names of folders written before ensembles existed)."""
    return EnsembleHead(cfg) if cfg.ensemble > 1 else RewardHead(cfg)


class RewardModel:
    """A frozen encoder + trained head, usable as a TRL reward callable.

    `score(tweets, replies)` gives raw head outputs; `__call__` (the TRL interface) gives the same.
    `meta` carries what the trainer recorded: objective, label, training tweet ids file, score stats
    (`score_mean`, `score_std`, used by the composite reward to normalize), validation numbers.
    """

    __name__ = "learned"

    def __init__(
        self,
        head: RewardHead | EnsembleHead,
        encoder: str | None = None,
        embeddings: EmbeddingCache | None = None,
        meta: dict[str, Any] | None = None,
    ):
        self.head = head.eval()
        self.encoder_name = encoder
        self.embeddings = (
            embeddings if embeddings is not None else EmbeddingCache(encoder_name=encoder)
        )
        self.meta = dict(meta or {})
        self.last_components: dict[str, np.ndarray] = {}

    @property
    def cfg(self) -> HeadConfig:
        return self.head.cfg

    def score(
        self,
        tweets: Sequence[str],
        replies: Sequence[str],
        batch_size: int = 4096,
        heads: str | None = None,
    ) -> np.ndarray:
        """Head score per (tweet, reply), float64 (n,); `heads` (odin): quality (default) or all."""
        check_lengths(self.__name__, tweets=tweets, replies=replies)
        if not len(replies):
            return np.zeros(0)
        et = torch.from_numpy(self.embeddings.encode(tweets))
        er = torch.from_numpy(self.embeddings.encode(replies))
        x = torch.from_numpy(surface_features(replies, self.cfg.extra_features)).float()
        outs = []
        with torch.no_grad():
            for i in range(0, len(replies), batch_size):
                s = slice(i, i + batch_size)
                outs.append(self.head(et[s], er[s], x[s], heads).double().numpy())
        return np.concatenate(outs)

    def __call__(
        self, prompts: Sequence[Any] | None = None, completions: Sequence[Any] = (), **columns: Any
    ) -> list[float]:
        replies = completion_texts(completions)
        tweets = tweets_from(prompts, columns)
        check_lengths(self.__name__, tweets=tweets, completions=replies)
        values = self.score(tweets, replies)
        self.last_components = {"learned": values}
        log_components(columns.get("log_metric"), self.last_components)
        return check_rewards(values, len(replies), self.__name__)

    def save(self, folder: str | Path) -> Path:
        """Write `config.json` + `head.safetensors` to `folder` (atomically, no pickle)."""
        from safetensors.torch import save

        folder = Path(folder)
        state = {k: v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()}
        atomic_write_bytes(folder / "head.safetensors", save(state))
        from replyrl.models import DEFAULT_ENCODER

        config = {
            "format": "replyrl-reward-model",
            "version": FORMAT_VERSION,
            "encoder": self.encoder_name or DEFAULT_ENCODER,
            # the members this head holds, whatever count its HeadConfig was built with
            "head": {
                **asdict(self.cfg),
                "ensemble": len(self.head.members) if isinstance(self.head, EnsembleHead) else 1,
            },
            "meta": self.meta,
        }
        atomic_write_json(folder / "config.json", config)
        return folder


def load_reward_model(
    folder: str | Path, embeddings: EmbeddingCache | None = None, device: str | None = None
) -> RewardModel:
    """Load a reward model folder written by `RewardModel.save` (JSON + safetensors only); its
    encoder runs on `device` unless `embeddings` is given (None: `auto`, see replyrl.device).

    Raises:
        ArtifactNotFoundError: the folder, or its config.json or head.safetensors, is missing.
        ArtifactError: a file is corrupt or does not match the other (names the file and field).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from replyrl.config import from_dict
    from replyrl.io import read_json
    from replyrl.models import DEFAULT_ENCODER

    folder = Path(folder)
    cfg_path, head_path = folder / "config.json", folder / "head.safetensors"
    missing = [p.name for p in (cfg_path, head_path) if not p.is_file()]
    if missing:
        raise ArtifactNotFoundError(
            f"{folder} is not a reward model folder (missing {' and '.join(missing)}; needs "
            "config.json and head.safetensors); train one with `replyrl reward train`"
        )
    config = read_json(cfg_path, "reward model config")
    if not isinstance(config, dict) or config.get("format") != "replyrl-reward-model":
        got = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise ArtifactError(f"{cfg_path}: not a replyrl reward model config (format={got!r})")
    version = config.get("version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise ArtifactError(f"{cfg_path}: field 'version' must be an integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise ArtifactError(
            f"{cfg_path}: written by a newer replyrl (version {version}); upgrade replyrl"
        )
    head_dict = config.get("head")
    if isinstance(head_dict, dict):
        head_dict = {"ensemble": 1, **head_dict}  # folders from before ensembles: one head
    try:
        head_cfg = from_dict(HeadConfig, head_dict, where=f"{cfg_path}: head")
    except ConfigError as e:
        raise ArtifactError(f"{e}; the model folder is corrupt: train it again") from None
    encoder = config.get("encoder")
    if encoder is not None and not (isinstance(encoder, str) and encoder.strip()):
        raise ArtifactError(f"{cfg_path}: field 'encoder' must be a name or path, got {encoder!r}")
    meta = config.get("meta", {})
    if not isinstance(meta, dict):
        raise ArtifactError(f"{cfg_path}: field 'meta' must be an object, got {meta!r}")
    for k in ("score_mean", "score_std", "heuristic_mean", "heuristic_std"):
        v = meta.get(k)
        if v is not None and (
            isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
        ):
            raise ArtifactError(f"{cfg_path}: meta.{k} must be a finite number, got {v!r}")
        if k.endswith("_std") and v is not None and v <= 0:
            # scores are divided by it: 0 is a division by zero, a negative flips the reward's sign
            raise ArtifactError(
                f"{cfg_path}: meta.{k} must be > 0 (a standard deviation), got {v!r}; the model "
                "folder is corrupt: train it again"
            )
    if (
        encoder is not None
        and _looks_like_path(encoder)
        and not Path(encoder).expanduser().exists()
    ):
        raise ArtifactNotFoundError(
            f"{cfg_path}: field 'encoder' names the folder {encoder}, which does not exist; put the "
            "encoder the model was trained with back at that path, or retrain the reward model "
            "with `replyrl reward train`"
        )
    try:
        state = load_file(str(head_path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ArtifactError(
            f"{head_path}: not a readable safetensors file ({str(e)[:80]}); train the model again"
        ) from None
    head = build_head(head_cfg)
    _check_head_state(head, state, head_path)
    head.load_state_dict(state, strict=True)
    if encoder == DEFAULT_ENCODER:
        encoder = None  # the packaged copy
    if embeddings is None:
        embeddings = EmbeddingCache(encoder_name=encoder, device=device)
    return RewardModel(head, encoder=encoder, embeddings=embeddings, meta=meta)


def _looks_like_path(name: str) -> bool:
    """A folder rather than a Hugging Face id (`org/name`): absolute, ./ or ~ relative, or deeper."""
    return (
        Path(name).is_absolute()
        or name.startswith((".", "~"))
        or name.count("/") >= 2
        or "\\" in name
    )


def _check_head_state(
    head: RewardHead | EnsembleHead, state: dict[str, torch.Tensor], path: Path
) -> None:
    """The tensors in head.safetensors are exactly the head's, with its shapes, and finite."""
    want = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    missing = sorted(set(want) - set(state))
    extra = sorted(set(state) - set(want))
    if missing:
        what = {
            "skip.weight": "the length skip",
            "length_values": "the length head",
            "length_knots": "the length head",
        }
        names = ", ".join(
            f"{k} ({what.get(k.split('.', 2)[-1] if k.startswith('members.') else k, 'head weights')})"
            for k in missing[:6]
        ) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
        raise ArtifactError(
            f"{path}: lacks {names} that a {head.cfg.kind!r} head needs (config.json describes "
            "a different head, or the file is incomplete): retrain with `replyrl reward train`"
        )
    if extra:
        raise ArtifactError(
            f"{path}: holds tensors {extra} that config.json's {head.cfg.kind!r} head does not "
            "have (the folder mixes two models): retrain with `replyrl reward train`"
        )
    for k, shape in want.items():
        if tuple(state[k].shape) != shape:
            raise ArtifactError(
                f"{path}: tensor '{k}' has shape {list(state[k].shape)}, config.json's head needs "
                f"{list(shape)}; the folder mixes two models: train it again"
            )
        if not state[k].is_floating_point() or not torch.isfinite(state[k]).all():
            raise ArtifactError(f"{path}: tensor '{k}' holds non-finite or non-float values")
        if k.rsplit(".", 1)[-1] == "x_std" and not (state[k] > 0).all():
            # training writes std >= 1e-6; features are divided by it
            raise ArtifactError(
                f"{path}: tensor '{k}' (feature standard deviations) holds values <= 0 "
                f"({state[k].tolist()[:4]}); the file is corrupt: train the model again"
            )
