"""Engagement-ranked preference pairs, SHP-style (DESIGN §2), and their JSONL format.

For two replies A and B to the same tweet, with score = reply_likes + 2·reply_retweets,
A is *chosen* over B when
  1. score(A) >= ratio · max(score(B), 1)   (and score(A) > score(B)).
     The floor of 1 matters: without it any reply with 1 like beats every reply with 0 at any
     ratio, and a single like is noise (one friend, one bot), not a preference.
  2. where both replies have reply_time_diff_seconds, A was posted no earlier than B.
     An earlier reply has had longer to collect likes and sits higher in the thread; a later
     reply that still wins by `ratio` won on its text (Stanford Human Preferences' rule).
margin = log((score(A) + 1) / (score(B) + 1)) says how clear the preference is.

At most `max_pairs_per_tweet` pairs per tweet (so a viral tweet with 50 replies does not
dominate): a seeded uniform sample of the tweet's valid pairs. Uniform rather than the largest
margins: the largest margins all share the tweet's top reply as `chosen`, so the cap would teach
"be that one reply" instead of many contrasts.

The JSONL format (one pair per line) is also what `replyrl serve` appends as user feedback, so
`read_pairs` accepts extra fields (`source`, `model`, `time`, ...) and keeps them in `extra`;
scores may be null there (a human preference has no like counts).
"""

from __future__ import annotations

import json
import math
import zlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from replyrl.data.labels import engagement_raw
from replyrl.errors import InputError, missing_path_error
from replyrl.io import atomic_write_text
from replyrl.records import MAX_TEXT_CHARS, DataError, Record, RowError, is_blank

PAIR_FIELDS = (
    "tweet_id",
    "tweet",
    "chosen",
    "rejected",
    "chosen_score",
    "rejected_score",
    "margin",
)


@dataclass
class Pair:
    """One preference: `chosen` is the better reply to `tweet` than `rejected`."""

    tweet_id: str
    """The tweet both replies answer."""
    tweet: str
    """The tweet text (the prompt)."""
    chosen: str
    """The preferred reply."""
    rejected: str
    """The other reply."""
    chosen_score: float | None
    """Engagement score of `chosen` (likes + 2·retweets); None for human feedback."""
    rejected_score: float | None
    """Engagement score of `rejected`; None for human feedback."""
    margin: float
    """log((chosen_score + 1) / (rejected_score + 1)); 0.0 when the scores are unknown."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Other fields (e.g. `source`, `model`, `time` of UI feedback), passed through."""

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in PAIR_FIELDS}
        d.update(self.extra)
        return d


def pair_margin(chosen_score: float, rejected_score: float) -> float:
    return math.log((chosen_score + 1.0) / (rejected_score + 1.0))


def is_preferred(a: Record, b: Record, ratio: float = 2.0) -> bool:
    """Whether reply `a` is preferred over `b` (same tweet) under the SHP rules above."""
    sa, sb = engagement_raw(a), engagement_raw(b)
    if sa <= sb or sa < ratio * max(sb, 1):
        return False
    ta, tb = a.reply_time_diff_seconds, b.reply_time_diff_seconds
    return ta is None or tb is None or ta >= tb


def preference_pairs(
    records: Sequence[Record], ratio: float = 2.0, max_pairs_per_tweet: int = 8, seed: int = 0
) -> list[Pair]:
    """All SHP-style pairs among replies to the same tweet, capped per tweet.

    Args:
        records: replies (any order; the result does not depend on it).
        ratio: how many times A's score must exceed max(B's score, 1). Must be >= 1.
        max_pairs_per_tweet: cap per tweet (a seeded uniform sample of the valid pairs).
        seed: sampling seed for the cap.

    Returns:
        Pairs ordered by tweet_id, then by (chosen, rejected) text.
    """
    if not ratio >= 1.0 or math.isinf(ratio):
        raise InputError(f"preference_pairs: ratio must be a finite number >= 1, got {ratio}")
    if max_pairs_per_tweet < 1:
        raise InputError(
            f"preference_pairs: max_pairs_per_tweet must be >= 1, got {max_pairs_per_tweet}"
        )
    groups: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        groups[r.tweet_id].append(r)
    out: list[Pair] = []
    for tid in sorted(groups):
        replies = sorted(groups[tid], key=lambda r: (r.reply, r.reply_id or ""))
        valid = _valid_pairs(replies, ratio)  # (n_valid, 2) indices (chosen, rejected)
        if len(valid) > max_pairs_per_tweet:
            # per-tweet generator: adding or removing another tweet does not change this sample
            rng = np.random.default_rng([seed, zlib.crc32(tid.encode("utf-8"))])
            valid = valid[np.sort(rng.choice(len(valid), size=max_pairs_per_tweet, replace=False))]
        for i, j in valid:
            a, b = replies[i], replies[j]
            sa, sb = engagement_raw(a), engagement_raw(b)
            out.append(
                Pair(
                    tweet_id=tid,
                    tweet=a.tweet,
                    chosen=a.reply,
                    rejected=b.reply,
                    chosen_score=float(sa),
                    rejected_score=float(sb),
                    margin=pair_margin(sa, sb),
                )
            )
    return out


def _valid_pairs(replies: Sequence[Record], ratio: float) -> np.ndarray:
    """`is_preferred` for every ordered pair at once (a viral tweet may have thousands of replies).

    Returns (i, j) index rows in the order of itertools.permutations(range(n), 2).
    """
    sc = np.array([engagement_raw(r) for r in replies], dtype=float)  # (n,)
    t = np.array(
        [
            np.nan if r.reply_time_diff_seconds is None else r.reply_time_diff_seconds
            for r in replies
        ]
    )  # (n,)
    ok = (sc[:, None] > sc[None, :]) & (sc[:, None] >= ratio * np.maximum(sc[None, :], 1.0))
    earlier = t[:, None] < t[None, :]  # False wherever either time is unknown (NaN)
    return np.argwhere(ok & ~earlier)  # (n_valid, 2), row-major


def write_pairs(path: str | Path, pairs: Sequence[Pair]) -> Path:
    """Write pairs as JSONL, atomically."""
    text = "".join(json.dumps(p.to_dict(), ensure_ascii=False) + "\n" for p in pairs)
    return atomic_write_text(path, text)


def read_pairs(path: str | Path) -> list[Pair]:
    """Read and validate a pairs JSONL file (ours, or feedback appended by `replyrl serve`).

    Raises:
        DataError: listing every bad line with file, line, field and value.
        FileNotFoundError: the file does not exist.
    """
    path = Path(path)
    if not path.exists():
        raise missing_path_error(path, "pairs file")
    pairs: list[Pair] = []
    errors: list[RowError] = []
    for i, raw in enumerate(path.read_bytes().splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError) as e:
            errors.append(
                RowError(
                    str(path),
                    i,
                    None,
                    raw[:80].decode("utf-8", "replace"),
                    f"line is not valid JSON ({e})",
                )
            )
            continue
        pair, errs = _parse_pair(row, str(path), i)
        errors += errs
        if pair is not None:
            pairs.append(pair)
    if errors:
        raise DataError(errors[:50], total=len(errors))
    return pairs


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def _parse_pair(row: Any, file: str, line: int) -> tuple[Pair | None, list[RowError]]:
    errs: list[RowError] = []
    if not isinstance(row, dict):
        kind = "array" if isinstance(row, list) else type(row).__name__
        return None, [RowError(file, line, None, row, f"row is a JSON {kind}, expected an object")]
    vals: dict[str, Any] = {}
    for f in ("tweet_id", "tweet", "chosen", "rejected"):
        v = row.get(f)
        if f == "tweet_id" and isinstance(v, int) and not isinstance(v, bool):
            v = str(v)
        if f not in row:
            errs.append(RowError(file, line, f, None, "missing required field"))
        elif not isinstance(v, str) or is_blank(v):
            errs.append(RowError(file, line, f, v, "expected a non-empty string"))
        elif len(v) > MAX_TEXT_CHARS:
            errs.append(
                RowError(file, line, f, v, f"text is longer than the {MAX_TEXT_CHARS:,} cap")
            )
        else:
            vals[f] = v
    for f in ("chosen_score", "rejected_score", "margin"):
        v = row.get(f)
        if v is None:
            vals[f] = None
        elif isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            errs.append(RowError(file, line, f, v, "expected a finite number or null"))
        elif f != "margin" and v < 0:
            errs.append(RowError(file, line, f, v, "score must be >= 0"))
        else:
            vals[f] = float(v)
    if not errs and vals["chosen"].strip() == vals["rejected"].strip():
        errs.append(RowError(file, line, "rejected", vals["rejected"], "same text as 'chosen'"))
    if errs:
        return None, errs
    if vals["margin"] is None:
        known = vals["chosen_score"] is not None and vals["rejected_score"] is not None
        vals["margin"] = pair_margin(vals["chosen_score"], vals["rejected_score"]) if known else 0.0
    extra = {k: v for k, v in row.items() if k not in PAIR_FIELDS}
    return Pair(**vals, extra=extra), []
