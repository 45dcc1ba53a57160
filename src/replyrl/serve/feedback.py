"""The feedback log: a person's pick among suggested replies, as preference pairs for reward training.

Each choice becomes one row per (chosen, not-chosen) reply in the preference-pair JSONL format of
`replyrl.data.pairs.write_pairs` (tweet_id, tweet, chosen, rejected, chosen_score, rejected_score,
margin), plus `source: "feedback"`, `model`, `time` and the request's context (`suggestion_id`,
`reward`, `tone`, `voice`, `seed`), so `replyrl reward train --pairs FILE` trains on it as it does on
engagement-ranked pairs, and the preference data keeps the style it was asked for.

- `tweet_id` is synthetic, `feedback:<sha1(tweet)[:12]>`: the same tweet always gets the same id,
  so pair caps per tweet and tweet-level splits treat a person's repeated picks as one tweet.
- `margin` is 1.0: engagement pairs carry a ratio of engagement scores, but a human choice has no
  such magnitude; 1.0 marks "preferred" without claiming how strongly.
- `chosen_score` / `rejected_score` are null: in the pair format they are engagement scores (likes +
  2·retweets, >= 0) and a human pick has none. The ranking scores the server computed are kept as
  `chosen_reward` / `rejected_reward` (informational; a composite reward may be negative).

**Only what the server showed is accepted.** `IssuedSuggestions` keeps every answer the server gave
(tweet, replies, its own scores, style) under a random id for `ttl_s`; feedback names the id and
the index of the picked reply, and the rows are built from the server's copy. A client cannot put
words or scores into the training data, an unknown or forged id is refused (404), an expired one
too (410), and an id is good for one pick (409), so a pick cannot be replayed to weigh more.

**Appends never leave a torn line.** The file is an append-only log, not an artifact, so it is not
rewritten atomically (that would be O(file) per click). Every append takes a thread lock (requests
run in a thread pool) and an exclusive `fcntl.flock` (other processes), notes the file size, writes
whole lines, fsyncs and reads them back; on any failure — ENOSPC on a full disk included — it
truncates the file back to the noted size, so the log holds whole lines only and the next row is
never glued to a partial one. A line torn by a kill -9 mid-write (never acknowledged to a client) is
cut off by the next append, with a warning.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from replyrl.data.pairs import Pair
from replyrl.errors import UserError
from replyrl.serve.style import Style

log = logging.getLogger(__name__)
FEEDBACK_MARGIN = 1.0
SUGGESTION_TTL_S = 1800.0
"""How long a shown suggestion can be picked (30 min: time to read, not to stockpile ids)."""
MAX_ISSUED = 1000
"""Answers remembered at most; the oldest is forgotten first."""


class FeedbackError(UserError):
    """Feedback that cannot be recorded; `status` is the HTTP status the API answers with."""

    status = 400


class UnknownSuggestion(FeedbackError):
    """An id this server never issued (forged, mistyped, from before a restart, or forgotten)."""

    status = 404


class ExpiredSuggestion(FeedbackError):
    """An id older than the time-to-live."""

    status = 410


class AlreadyRecorded(FeedbackError):
    """A second pick for the same answer."""

    status = 409


class BadChoice(FeedbackError):
    """A picked index outside the shown replies."""

    status = 422


class FeedbackDiskFull(FeedbackError):
    """No space left for the feedback file (HTTP 507 Insufficient Storage)."""

    status = 507


class FeedbackWriteError(FeedbackError):
    """Any other failure to write the feedback file."""

    status = 500


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
    tweet: str,
    chosen: Shown,
    others: Sequence[Shown],
    model: str,
    now: float | None = None,
    context: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """One preference-pair row per not-chosen reply (others equal to the chosen text are skipped).

    `context` (suggestion id, reward, tone, voice, seed) is copied into every row.

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
            **(context or {}),
        }
        rows.append(
            Pair(tid, tweet, chosen.reply, o.reply, None, None, FEEDBACK_MARGIN, extra).to_dict()
        )
    return rows


@dataclass
class Issued:
    """One answer the server gave, as it gave it."""

    id: str
    """Random id the client quotes back."""
    tweet: str
    """The tweet replied to."""
    shown: list[Shown]
    """The replies shown, best first, with the server's scores."""
    model: str
    """Policy name."""
    reward: str
    """Name of the reward that ranked them."""
    style: Style
    """Tone and voice asked for."""
    seed: int
    """Sampling seed."""
    issued_at: float
    """Clock reading when issued."""
    used: bool = False
    """True once a pick was recorded (or is being written)."""

    def rows(self, chosen: int, now: float | None = None) -> list[dict[str, Any]]:
        """Preference rows for picking `shown[chosen]`."""
        context = {
            "suggestion_id": self.id,
            "reward": self.reward,
            "seed": self.seed,
            **self.style.to_record(),
        }
        others = [s for i, s in enumerate(self.shown) if i != chosen]
        return feedback_rows(self.tweet, self.shown[chosen], others, self.model, now, context)


@dataclass
class IssuedSuggestions:
    """The answers the server gave, by id, for `ttl_s`; thread-safe."""

    ttl_s: float = SUGGESTION_TTL_S
    """Seconds an answer can be picked from."""
    max_items: int = MAX_ISSUED
    """Answers kept at most (oldest forgotten first)."""
    clock: Callable[[], float] = time.monotonic
    """Time source (a fake one in tests)."""
    _items: OrderedDict[str, Issued] = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if not self.ttl_s > 0 or self.max_items < 1:
            raise ValueError(
                f"need ttl_s > 0 and max_items >= 1, got {self.ttl_s}, {self.max_items}"
            )

    def issue(
        self,
        tweet: str,
        shown: Sequence[Shown],
        model: str,
        reward: str,
        style: Style,
        seed: int,
    ) -> Issued:
        """Remember an answer; returns it with its new id."""
        now = self.clock()
        entry = Issued(
            secrets.token_urlsafe(16), tweet, list(shown), model, reward, style, seed, now
        )
        with self._lock:
            # Expired answers are kept one more ttl, so a late pick hears "expired", not "unknown".
            while self._items and now - next(iter(self._items.values())).issued_at > 2 * self.ttl_s:
                self._items.popitem(last=False)
            self._items[entry.id] = entry
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)
        return entry

    def take(self, sid: str, chosen: int) -> Issued:
        """The answer `sid` for a pick of reply `chosen`, marked used; raises a FeedbackError."""
        with self._lock:
            entry = self._items.get(sid)
            if entry is None:
                raise UnknownSuggestion(
                    "unknown suggestion id: this server did not issue it, or no longer remembers "
                    f"it (it keeps the last {self.max_items} for {self.ttl_s / 60:g} min and "
                    "forgets them on restart); ask for suggestions again"
                )
            if self.clock() - entry.issued_at > self.ttl_s:
                raise ExpiredSuggestion(
                    f"these suggestions expired ({self.ttl_s / 60:g} min after they were shown); "
                    "ask for suggestions again"
                )
            if entry.used:
                raise AlreadyRecorded("a pick for these suggestions is already recorded")
            if not 0 <= chosen < len(entry.shown):
                raise BadChoice(
                    f"chosen: {chosen} is not one of the shown replies (0..{len(entry.shown) - 1})"
                )
            entry.used = True
            return entry

    def release(self, sid: str) -> None:
        """Make `sid` pickable again (its rows could not be written)."""
        with self._lock:
            if sid in self._items:
                self._items[sid].used = False

    def __len__(self) -> int:
        return len(self._items)


class FeedbackLog:
    """Append-only JSONL of preference rows, safe across threads and processes, never torn."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def append(self, rows: Sequence[dict[str, Any]]) -> int:
        """Append `rows` as whole lines; return how many were written.

        Raises FeedbackDiskFull (no space) or FeedbackWriteError, with the file as it was before.
        """
        if not rows:
            return 0
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # O_APPEND puts every write at the current end even if another process appended.
                fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            except OSError as e:
                raise self._error(e) from None
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                    start, prefix = _mend_tail(fd, self.path)
                except OSError as e:
                    raise self._error(e) from None
                try:
                    view = memoryview(prefix + data)
                    while view:  # os.write may write less than asked; finish under the lock
                        view = view[os.write(fd, view) :]
                    os.fsync(fd)
                    if os.pread(fd, len(prefix + data), start) != prefix + data:
                        raise OSError(errno.EIO, "the appended lines did not read back intact")
                except OSError as e:
                    # Shrinking needs no space, so this works on a full disk too.
                    os.ftruncate(fd, start)
                    try:
                        os.fsync(fd)
                    except OSError:
                        pass  # the truncate stands in the page cache; the error below is the news
                    raise self._error(e) from None
            finally:
                os.close(fd)  # closing releases the flock
        return len(rows)

    def _error(self, e: OSError) -> FeedbackError:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            return FeedbackDiskFull(
                f"the disk holding {self.path} is full: the pick was not recorded (the file is "
                "unchanged); free some space and pick again"
            )
        return FeedbackWriteError(
            f"could not write {self.path}: {e.strerror or e}; the pick was not recorded"
        )

    def count(self) -> int:
        """Rows in the log (0 when it does not exist yet)."""
        if not self.path.exists():
            return 0
        n = 0
        with open(self.path, "rb") as f:  # every row ends in "\n" (whole lines only): count those
            while chunk := f.read(1 << 20):
                n += chunk.count(b"\n")
        return n


def _mend_tail(fd: int, path: Path) -> tuple[int, bytes]:
    """Make the file end on a line break before appending; returns (size, bytes to write first).

    A last line without its line break that is a whole JSON object (an edit that dropped the
    final newline) is kept and gets its line break written first; anything else there is a line
    torn by a kill -9 mid-write — never acknowledged to a client — and is cut, with a warning.
    """
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return size, b""
    end, step = size, 1 << 16
    while end > 0:
        begin = max(0, end - step)
        chunk = os.pread(fd, end - begin, begin)
        nl = chunk.rfind(b"\n")
        if nl >= 0:
            end = begin + nl + 1
            break
        end = begin
    try:
        if isinstance(json.loads(os.pread(fd, size - end, end)), dict):
            return size, b"\n"
    except ValueError:
        pass
    log.warning("%s ended in a torn line (%d bytes, never acknowledged): cut", path, size - end)
    os.ftruncate(fd, end)
    return end, b""
