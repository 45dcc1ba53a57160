"""The feedback log: a person's pick among suggested replies, as preference pairs for reward training.

Each choice becomes one row per (chosen, not-chosen) reply in the preference-pair JSONL format of
`replyrl.data.pairs.write_pairs` (tweet_id, tweet, chosen, rejected, chosen_score, rejected_score,
margin), plus `source: "feedback"`, `model` and `time`, so `replyrl reward train --pairs FILE`
trains on it as it does on engagement-ranked pairs.

- `tweet_id` is synthetic, `feedback:<sha1(tweet)[:12]>`: the same tweet always gets the same id,
  so pair caps per tweet and tweet-level splits treat a person's repeated picks as one tweet.
- `margin` is 1.0: engagement pairs carry a ratio of engagement scores, but a human choice has no
  such magnitude; 1.0 marks "preferred" without claiming how strongly.
- `chosen_score` / `rejected_score` are null: in the pair format they are engagement scores (likes +
  2·retweets, >= 0) and a human pick has none. The reward scores the page showed are kept as
  `chosen_reward` / `rejected_reward` (informational; a composite reward may be negative).

The file is an append-only log, not an artifact, so it is not rewritten atomically (that would be
O(file) per click); instead every append takes a thread lock (requests run in a thread pool) and an
exclusive `fcntl.flock` (other processes: two servers, a CLI), writes whole lines in one `write`,
then flushes and fsyncs before answering, so concurrent requests neither lose nor interleave rows.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from replyrl.data.pairs import Pair

FEEDBACK_MARGIN = 1.0


@dataclass
class Shown:
    """A reply as it was shown to the person."""

    reply: str
    """The reply text."""
    score: float
    """Its ranking score when shown."""


def feedback_tweet_id(tweet: str) -> str:
    """Synthetic, stable tweet id for feedback rows: `feedback:` + the first 12 hex of sha1(tweet)."""
    return "feedback:" + hashlib.sha1(tweet.strip().encode("utf-8")).hexdigest()[:12]


def feedback_rows(
    tweet: str, chosen: Shown, others: Sequence[Shown], model: str, now: float | None = None
) -> list[dict[str, Any]]:
    """One preference-pair row per not-chosen reply (others equal to the chosen text are skipped).

    >>> rows = feedback_rows("hi", Shown("a", 0.9), [Shown("b", 0.5)], model="m", now=0)
    >>> [(r["chosen"], r["rejected"], r["margin"], r["source"]) for r in rows]
    [('a', 'b', 1.0, 'feedback')]
    """
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if now is None else now))
    tid, tweet = feedback_tweet_id(tweet), tweet.strip()
    rows = []
    for o in others:
        if o.reply.strip() == chosen.reply.strip():
            continue  # read_pairs rejects a pair of identical texts; it says nothing anyway
        extra = {
            "source": "feedback",
            "model": model,
            "time": stamp,
            "chosen_reward": float(chosen.score),
            "rejected_reward": float(o.score),
        }
        rows.append(
            Pair(tid, tweet, chosen.reply, o.reply, None, None, FEEDBACK_MARGIN, extra).to_dict()
        )
    return rows


class FeedbackLog:
    """Append-only JSONL of preference rows, safe across threads and processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def append(self, rows: Sequence[dict[str, Any]]) -> int:
        """Append `rows` as whole lines under both locks, fsynced; return how many were written."""
        if not rows:
            return 0
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            # O_APPEND puts every write at the current end even if another process appended since.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    view = memoryview(data)
                    while (
                        view
                    ):  # os.write may write less than asked; finish the lines under the lock
                        view = view[os.write(fd, view) :]
                    os.fsync(fd)
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        return len(rows)

    def count(self) -> int:
        """Rows in the log (0 when it does not exist yet)."""
        if not self.path.exists():
            return 0
        n = 0
        with open(self.path, "rb") as f:  # every row ends in "\n" (whole lines only): count those
            while chunk := f.read(1 << 20):
                n += chunk.count(b"\n")
        return n
