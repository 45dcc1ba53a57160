"""The generation cache: n sampled replies per test tweet, one JSONL line per tweet.

A cache file is keyed by the model (its path plus the size and mtime of its weight and config
files, so a retrained adapter in the same folder gets a new key) and by the sampling config. Re-
running an evaluation reads the lines it has and generates only the tweets that are missing, so
metrics can be recomputed without generating again. A line that is corrupt or of the wrong shape
(not JSON, replies that are not n strings) is reported with its file and line and generated again:
it is never returned as replies.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from replyrl.errors import InputError
from replyrl.generation import SamplingConfig
from replyrl.io import iter_jsonl, write_jsonl

log = logging.getLogger(__name__)


@dataclass
class EvalTweet:
    """One test tweet with its human replies, best-engaged first."""

    tweet_id: str
    """The tweet's id."""
    tweet: str
    """The tweet text."""
    references: list[str]
    """Human replies, sorted by engagement (likes + 2·retweets), highest first."""
    synthetic: bool = False
    """True when the records carry `source: synthetic` (the simulated audience is a gold)."""

    @property
    def reference(self) -> str:
        """The human reference reply: the best-engaged one."""
        return self.references[0]


def group_tweets(records, max_tweets: int | None = None) -> list[EvalTweet]:
    """Group test records by tweet_id (in order of first appearance), references by engagement."""
    groups: dict[str, list] = {}
    for r in records:
        groups.setdefault(r.tweet_id, []).append(r)
    out = []
    for tid, recs in groups.items():
        # Stable sort: ties keep file order, so the reference is deterministic.
        recs = sorted(recs, key=lambda r: -(r.reply_likes + 2 * r.reply_retweets))
        out.append(
            EvalTweet(
                tid,
                recs[0].tweet,
                [r.reply for r in recs],
                any(r.extra.get("source") == "synthetic" for r in recs),
            )
        )
    if not out:
        raise InputError("the test data has no records; pass a non-empty --data file")
    check_audience_version(records)
    return out[:max_tweets] if max_tweets else out


def check_audience_version(records) -> None:
    """Synthetic records must come from the audience that will score them (data/synth.py)."""
    from replyrl.data.synth import AUDIENCE_VERSION

    versions = {
        repr(r.extra.get("audience_version", 1))
        for r in records
        if r.extra.get("source") == "synthetic"
    }
    old = sorted(versions - {repr(AUDIENCE_VERSION)})
    if old:
        raise InputError(
            f"the synthetic test records were made by simulated-audience version(s) {', '.join(old)}, "
            "but "
            f"this replyrl scores with version {AUDIENCE_VERSION} (echo-aware): regenerate the "
            "sample (`replyrl data synth`, or rerun the pipeline's data stage) so old and new "
            "audience scores are not mixed"
        )


def model_fingerprint(path: str | None) -> dict:
    """What identifies a model for caching: its resolved path and its files' sizes and mtimes."""
    from replyrl.models import DEFAULT_POLICY, resolve_policy

    name = path or DEFAULT_POLICY
    p = Path(name).expanduser()
    if not p.exists() and name in ("default", DEFAULT_POLICY):
        p = Path(resolve_policy(None))
    files = {}
    if p.is_dir():
        for f in sorted(p.iterdir()):
            if f.suffix in (".safetensors", ".json", ".bin") and f.is_file():
                st = f.stat()
                files[f.name] = [st.st_size, int(st.st_mtime)]
    return {"model": str(p.resolve()) if p.exists() else name, "files": files}


def cache_key(model_path: str | None, sampling: SamplingConfig) -> str:
    """A short hash of the model fingerprint and the sampling config."""
    payload = {"model": model_fingerprint(model_path), "sampling": dataclasses.asdict(sampling)}
    # batch_prompts changes speed, not the replies' distribution: keep it out of the key.
    payload["sampling"].pop("batch_prompts", None)
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def cache_path(
    cache_dir: str | Path, name: str, model_path: str | None, sampling: SamplingConfig
) -> Path:
    """`<cache_dir>/<name>-<key>.jsonl`."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return Path(cache_dir) / f"{safe}-{cache_key(model_path, sampling)}.jsonl"


Generator = Callable[[list[str]], list[list[str]]]
"""Maps tweets to n replies each (a loaded policy, or a fake one in tests)."""


def policy_generator(
    model_path: str | None, sampling: SamplingConfig, device: str = "auto"
) -> Generator:
    """A generator that loads the policy on first use (a full cache hit loads nothing), sampling
    with `sampling.backend` on `device` (see replyrl.generation.load_sampler)."""
    from replyrl.generation import load_sampler

    sample = load_sampler(model_path, sampling, device)
    return lambda tweets: sample(tweets, progress=True)


def cached_generations(
    path: Path, tweets: Sequence[EvalTweet], generate: Generator, n: int
) -> list[dict]:
    """Replies for every tweet, from the cache file where present, generating the rest.

    Returns one row per tweet, in the order of `tweets`:
    `{tweet_id, tweet, reference, references, replies}`.
    """
    have: dict[str, dict] = {}
    if path.exists():
        for line, row, problem in iter_jsonl(path):
            problem = problem or _row_problem(row, n)
            if problem:
                log.warning("%s:%d: %s; generating this tweet's replies again", path, line, problem)
                continue
            have[row["tweet_id"]] = row
    missing = [t for t in tweets if t.tweet_id not in have or have[t.tweet_id]["tweet"] != t.tweet]
    if missing:
        replies = generate([t.tweet for t in missing])
        if len(replies) != len(missing) or any(len(r) != n for r in replies):
            raise RuntimeError(
                f"generator returned {len(replies)} reply lists for {len(missing)} "
                f"tweets (expected {n} replies each)"
            )
        for t, rs in zip(missing, replies):
            have[t.tweet_id] = {
                "tweet_id": t.tweet_id,
                "tweet": t.tweet,
                "reference": t.reference,
                "references": t.references,
                "replies": list(rs),
            }
        # Rewrite the whole file atomically: a kill mid-write never leaves a torn line.
        write_jsonl(path, list(have.values()))
    # the cache supplies replies only: the references come from the current test data
    return [
        {**have[t.tweet_id], "reference": t.reference, "references": t.references} for t in tweets
    ]


def _row_problem(row: dict, n: int) -> str:
    """Why a cache row cannot be used as n replies to its tweet ('' when it can)."""
    for key in ("tweet_id", "tweet"):
        if not isinstance(row.get(key), str):
            return f"field '{key}' is {type(row.get(key)).__name__}, expected a string"
    replies = row.get("replies")
    if not isinstance(replies, list) or not all(isinstance(r, str) for r in replies):
        return "field 'replies' is not a list of strings"
    if len(replies) != n:
        return f"{len(replies)} replies, expected {n}"
    return ""
