"""The one reward interface (DESIGN §3): `fn(prompts, completions, **columns) -> list[float]`.

TRL 1.16's `GRPOTrainer._calculate_rewards` calls every reward function with `prompts`,
`completions`, `completion_ids`, every dataset column as a keyword list (`tweet`, `reply`,
`tweet_id`, ...), plus `trainer_state`, `log_extra` and `log_metric`. These helpers turn that call
into plain (tweets, replies) string lists, check what comes back, and log per-component means.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from replyrl.errors import UserError


class RewardError(UserError, ValueError):
    """A reward call that cannot be answered (bad inputs) or produced unusable values."""


class RewardFn(Protocol):
    """A batched reward callable that TRL's `GRPOTrainer` accepts as is."""

    __name__: str

    def __call__(
        self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any
    ) -> list[float]: ...


def message_text(x: Any, role: str | None = None) -> str:
    """Text of a plain string or of chat messages ([{"role", "content"}]); with `role`, the last
    message of that role (content may itself be a list of {"type": "text", "text": ...} blocks)."""
    if isinstance(x, str):
        return x
    if isinstance(x, Mapping):
        content = x.get("content", "")
        if isinstance(content, list):  # multimodal content blocks: keep the text parts
            return "".join(b.get("text", "") for b in content if isinstance(b, Mapping))
        return str(content) if content is not None else ""
    if isinstance(x, Sequence):
        msgs = [m for m in x if isinstance(m, Mapping)]
        if role is not None:
            msgs = [m for m in msgs if m.get("role") == role]
            return message_text(msgs[-1]) if msgs else ""
        return "".join(message_text(m) for m in msgs)
    raise RewardError(
        f"cannot read text from a {type(x).__name__}: expected a string or chat messages"
    )


def completion_texts(completions: Sequence[Any]) -> list[str]:
    """Completions as strings: plain strings pass through; chat-format completions
    ([{"role": "assistant", "content": ...}]) give their assistant text."""
    out = []
    for c in completions:
        if isinstance(c, str):
            out.append(c)
        else:
            text = message_text(c, role="assistant")
            out.append(text if text else message_text(c))
    return out


def tweets_from(prompts: Sequence[Any] | None, columns: Mapping[str, Any]) -> list[str]:
    """The tweet of each row: the `tweet` column when the dataset has one, else recovered from the
    prompt (chat prompts: the last user message; plain prompts: the whole string)."""
    tweet_col = columns.get("tweet")
    if tweet_col is not None:
        return [str(t) for t in tweet_col]
    if prompts is None:
        raise RewardError(
            "no `tweet` column and no prompts: cannot tell which tweet each reply answers"
        )
    out = []
    for p in prompts:
        out.append(p if isinstance(p, str) else message_text(p, role="user"))
    return out


def group_keys(prompts: Sequence[Any] | None, columns: Mapping[str, Any], n: int) -> list[str]:
    """A key per row naming its prompt, so the K completions of one prompt can be found by identity
    rather than by position: the `tweet_id` column when present, else the prompt text."""
    ids = columns.get("tweet_id")
    if ids is not None:
        return [str(i) for i in ids]
    if prompts is not None:
        return [
            p if isinstance(p, str) else repr([(m.get("role"), message_text(m)) for m in p])
            for p in prompts
        ]
    tweets = columns.get("tweet")
    if tweets is not None:
        return [str(t) for t in tweets]
    return [str(i) for i in range(n)]  # no identity at all: every row is its own group


def check_rewards(values: Any, n: int, name: str) -> list[float]:
    """Return `values` as a list of `n` finite floats, or raise a RewardError saying how to fix it."""
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.shape[0] != n:
        raise RewardError(
            f"reward '{name}' returned {arr.shape[0]} values for {n} completions; a reward function "
            "must return exactly one value per completion (check that prompts, completions and the "
            "dataset columns have the same length)"
        )
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise RewardError(
            f"reward '{name}' produced non-finite values at rows {bad[:10].tolist()} "
            f"(e.g. {arr[bad[0]]}); rewards must be finite — check the inputs of those rows "
            "(empty text, a reward model trained on constant labels) instead of zeroing them"
        )
    return arr.tolist()


def check_lengths(name: str, **lists: Sequence[Any]) -> int:
    """All named lists have one length; return it or raise naming the mismatch."""
    sizes = {k: len(v) for k, v in lists.items() if v is not None}
    if len(set(sizes.values())) > 1:
        raise RewardError(
            f"reward '{name}': inputs differ in length {sizes}; every column must have one entry per completion"
        )
    return next(iter(sizes.values()), 0)


def log_components(
    log_metric: Callable[[str, float], None] | None,
    components: Mapping[str, np.ndarray],
    prefix: str = "rewards",
) -> None:
    """Log the batch mean of each component as `rewards/<component>/mean` (TRL's `log_metric`)."""
    if log_metric is None:
        return
    for k, v in components.items():
        m = float(np.mean(v)) if len(v) else 0.0
        if math.isfinite(m):
            log_metric(f"{prefix}/{k}/mean", m)


def call_scorer(
    scorer: Any,
    prompts: Sequence[Any] | None,
    completions: Sequence[Any],
    columns: Mapping[str, Any],
) -> list[float]:
    """The TRL reward call shared by every scorer with `.score(tweets, replies)` and
    `.last_components`: unpack completions and tweets, score, log components, check values."""
    replies = completion_texts(completions)
    tweets = tweets_from(prompts, columns)
    check_lengths(scorer.__name__, tweets=tweets, completions=replies)
    values = scorer.score(tweets, replies)
    log_components(columns.get("log_metric"), scorer.last_components)
    return check_rewards(values, len(replies), scorer.__name__)
