"""A synthetic sample dataset and the *simulated audience* that produced its likes.

The sample exists so `make demo` and the tests run offline without real data. It is marked
`source: "synthetic"` in every record. Its likes are not random: they come from a documented
audience whose taste in reply *text* is `audience_engagement`, multiplied by context effects the
reply does not control (tweet popularity, the author's followers, how late the reply came) and
seeded noise. Because the text-only appeal is known exactly, later stages can use
`audience_engagement` as a gold reward: a reward model trained on the synthetic likes should
recover it, and a policy optimised against a proxy can be checked against it.

The audience likes replies that are
  - relevant: cosine similarity of tweet and reply under the sentence encoder (weight 0.40),
  - of tweet-like length: full marks for 50-150 characters, a smooth Gaussian falloff in
    log-length outside that band (weight 0.25),
  - warm: VADER compound sentiment mapped to [0, 1] (weight 0.20),
  - curious: asks a question (weight 0.15),
and it punishes generic one- or two-word replies ("Nice!", "Agreed!") by a factor of 0.25 and
hostile ones by `1 - 0.5·max(0, -compound)` (a snarky on-topic reply is still on-topic, but an
audience scrolls past it).

Audience version 2 (AUDIENCE_VERSION) is echo-aware: relevance is multiplied by
`1 − echo_penalty(echo(tweet, reply))` (rewards/echo.py), so a reply that copies the tweet back
pleases nobody; version 1 paid a copy of the tweet the highest relevance there is, so RL against the
audience itself (the oracle reward) could win by parroting. Every synthetic record carries
`audience_version`, and evaluation refuses to score records of another version with this audience.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

from replyrl.errors import InputError
from replyrl.records import Record

AUDIENCE_VERSION = 2
"""Version of `audience_engagement` (2: echo-aware relevance); stored in every synthetic record."""
# Appeal weights (sum to 1, so appeal is in [0, 1] before the generic penalty).
W_RELEVANCE, W_LENGTH, W_SENTIMENT, W_QUESTION = 0.40, 0.25, 0.20, 0.15
GENERIC_PENALTY = 0.25
NEGATIVITY_PENALTY = 0.5
LENGTH_BAND = (50.0, 150.0)
LENGTH_WIDTH = 0.6  # std of the log-length falloff: 25 or 300 chars keep exp(-0.5*(0.69/0.6)^2)≈0.5
GENERIC_WORDS = frozenset(
    [
        "nice",
        "agreed",
        "cool",
        "wow",
        "lol",
        "same",
        "this",
        "yes",
        "no",
        "true",
        "facts",
        "ok",
        "okay",
        "great",
        "awesome",
        "love",
        "it",
        "omg",
        "yep",
        "nope",
        "meh",
        "based",
        "congrats",
        "thanks",
        "interesting",
    ]
)

# topic -> (items a tweet can be about, details a specific reply can pick up on)
TOPICS: dict[str, tuple[list[str], list[str]]] = {
    "tech": (
        [
            "my first open source library",
            "a new mechanical keyboard",
            "a home server",
            "a tiny web app",
            "my dotfiles",
            "a Rust rewrite of my CLI tool",
        ],
        ["documentation", "test suite", "release process", "build times", "error messages"],
    ),
    "sports": (
        [
            "the marathon I trained for",
            "my Sunday league match",
            "a new climbing route",
            "the morning swim",
            "my first half marathon",
        ],
        ["pacing", "warm-up", "training plan", "recovery days", "the last mile"],
    ),
    "food": (
        [
            "homemade sourdough",
            "a ramen recipe",
            "my grandmother's lasagna",
            "a new taco place downtown",
            "cold brew at home",
        ],
        ["crust", "broth", "seasoning", "ratio of water", "resting time"],
    ),
    "science": (
        [
            "the lunar eclipse tonight",
            "a paper on octopus sleep",
            "my backyard telescope",
            "the tardigrade documentary",
            "a home chemistry kit",
        ],
        ["the methods section", "the photos", "the sample size", "the lens", "the data"],
    ),
    "gardening": (
        [
            "my tomato plants",
            "a balcony herb garden",
            "the first strawberries",
            "a compost bin",
            "my sad little cactus",
        ],
        ["watering schedule", "soil mix", "sunlight", "pruning", "the pots"],
    ),
    "books": (
        [
            "a fantasy trilogy",
            "a book on habit building",
            "a classic I avoided for years",
            "the library's new sci-fi shelf",
            "a poetry collection",
        ],
        ["the ending", "the second chapter", "the main character", "the pacing", "the prose"],
    ),
    "travel": (
        [
            "a weekend in Lisbon",
            "a night train across the Alps",
            "a solo camping trip",
            "a road trip along the coast",
            "my first hostel stay",
        ],
        ["itinerary", "packing list", "budget", "the views", "local food"],
    ),
    "music": (
        [
            "learning the guitar",
            "a vinyl I found at a flea market",
            "my first live gig",
            "a synth I built from a kit",
            "the jazz festival",
        ],
        ["chord changes", "the sound", "practice routine", "setlist", "the bass line"],
    ),
    "pets": (
        [
            "adopting a rescue dog",
            "my cat's new bed",
            "teaching the puppy to sit",
            "a parrot that learned my ringtone",
            "the hamster's escape",
        ],
        ["treats", "vet visit", "walk routine", "training", "the toys"],
    ),
    "work": (
        [
            "my first week at a new job",
            "a four-day work week trial",
            "a standing desk",
            "finally clearing my inbox",
            "a presentation to the whole company",
        ],
        ["meetings", "the slides", "morning routine", "focus time", "feedback"],
    ),
    "fitness": (
        [
            "a 30-day yoga challenge",
            "lifting three times a week",
            "a cold shower habit",
            "my step counter goal",
            "a new bike commute",
        ],
        ["form", "stretching", "consistency", "the route", "sleep"],
    ),
    "games": (
        [
            "a cozy farming game",
            "a chess opening I learned",
            "a retro console I restored",
            "a board game night",
            "a speedrun attempt",
        ],
        ["strategy", "the boss fight", "the soundtrack", "house rules", "the controls"],
    ),
}

TWEET_TEMPLATES = [
    "Just finished {item} and I'm honestly proud of it.",
    "Hot take: {item} is the best thing I did this month.",
    "Spent the whole weekend on {item}. Worth it?",
    "Anyone else obsessed with {item} lately?",
    "Day 3 of {item}. The {detail} is harder than I expected.",
    "Can't stop thinking about {item}. Tips welcome!",
    "Small win today: {item} finally worked out.",
    "Trying {item} for the first time, wish me luck.",
]

SPECIFIC = [
    "Love this! Getting the {detail} right is what makes {item} work, great job.",
    "Congrats on {item}! The {detail} is always the tricky part, glad it clicked for you.",
    "This is great. I did {item} last year and the {detail} made all the difference.",
]
QUESTION = [
    "How did you handle the {detail}? I'm thinking about trying {item} myself.",
    "What helped most with the {detail}? Asking because {item} is on my list too.",
    "Did the {detail} take long to figure out? {item} sounds really fun.",
]
GENERIC = ["Nice!", "Agreed!", "Cool.", "Wow", "lol", "Same.", "Love it", "Great!", "Facts."]
OFF_TOPIC = [
    "Does anyone know a good place to buy {other}?",
    "Unrelated but {other} is on sale this week.",
    "Reminds me I still need to sort out {other}.",
]
RAMBLING = [
    "Okay so this reminds me of the time I tried {item} and honestly it went sideways from the "
    "start, first the {detail} was all wrong, then I spent hours reading forums, then my friend "
    "said I was overthinking it, and by the end I wasn't even sure what I was trying to do anymore "
    "but anyway that is my story and I think about it a lot, more than I probably should.",
    "Long story but bear with me: I started {item} years ago, dropped it, picked it back up, "
    "argued with everyone about the {detail}, bought way too much stuff for it, and then sort of "
    "forgot about the whole thing until I saw this, so thanks I guess for reminding me of all "
    "of that, it was a ride and I'm still not sure how I feel about it honestly.",
]
SNARKY = [
    "Honestly {item} is overrated, not sure why anyone cares.",
    "This is boring. Nobody asked about {item}.",
    "Ugh, another post about {item}. Terrible idea and a waste of time.",
]
KINDS = {
    "specific": SPECIFIC,
    "question": QUESTION,
    "generic": GENERIC,
    "off_topic": OFF_TOPIC,
    "rambling": RAMBLING,
    "snarky": SNARKY,
}


def length_score(n_chars: np.ndarray | Sequence[int]) -> np.ndarray:
    """1 inside the 50-150 character band, Gaussian falloff in log-length outside it."""
    n = np.maximum(np.asarray(n_chars, dtype=float), 1.0)
    lo, hi = LENGTH_BAND
    d = np.maximum(0.0, np.maximum(np.log(lo / n), np.log(n / hi)))
    return np.exp(-0.5 * (d / LENGTH_WIDTH) ** 2)


def is_generic(reply: str) -> bool:
    """A reply of at most two words that are all stock reactions ("Nice!", "Love it")."""
    words = re.findall(r"[a-z']+", reply.lower())
    return len(words) <= 2 and all(w in GENERIC_WORDS for w in words)


def audience_engagement(
    tweets: Sequence[str], replies: Sequence[str], encoder=None, embeddings=None
) -> np.ndarray:
    """The simulated audience's text-only appeal of each reply to its tweet, in [0, 1].

    Args:
        tweets: tweet texts, one per reply.
        replies: reply texts.
        encoder: a SentenceTransformer; default `models.load_encoder()` (packaged MiniLM).
        embeddings: an EmbeddingCache to encode with instead (RL calls the audience every step).

    Returns:
        float64 array of len(replies); deterministic for given texts and encoder.
    """
    if len(tweets) != len(replies):
        raise ValueError(
            f"audience_engagement: {len(tweets)} tweets but {len(replies)} replies; "
            "pass one tweet per reply"
        )
    if len(replies) == 0:
        return np.zeros(0)
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from replyrl.rewards.echo import echo_penalty, echo_scores

    # Encode every distinct text once, in one batch (tweets repeat across their replies).
    uniq = sorted(set(tweets) | set(replies))
    index = {t: i for i, t in enumerate(uniq)}
    if embeddings is not None:
        emb = np.asarray(embeddings.encode(uniq), dtype=np.float64)
    else:
        if encoder is None:
            from replyrl.models import load_encoder

            encoder = load_encoder()
        emb = np.asarray(
            encoder.encode(uniq, batch_size=64, normalize_embeddings=True, show_progress_bar=False),
            dtype=np.float64,
        )
    t_emb = emb[[index[t] for t in tweets]]
    r_emb = emb[[index[r] for r in replies]]
    relevance = np.clip(np.sum(t_emb * r_emb, axis=1), 0.0, 1.0)
    relevance *= 1.0 - echo_penalty(echo_scores(tweets, replies))
    length = length_score([len(r.strip()) for r in replies])
    vader = SentimentIntensityAnalyzer()
    compound = np.array([vader.polarity_scores(r)["compound"] for r in replies])
    sentiment = (compound + 1.0) / 2.0
    question = np.array([1.0 if "?" in r else 0.0 for r in replies])
    appeal = (
        W_RELEVANCE * relevance
        + W_LENGTH * length
        + W_SENTIMENT * sentiment
        + W_QUESTION * question
    )
    penalty = np.array([GENERIC_PENALTY if is_generic(r) else 1.0 for r in replies])
    penalty *= 1.0 - NEGATIVITY_PENALTY * np.maximum(0.0, -compound)
    return np.clip(appeal * penalty, 0.0, 1.0)


def simulate_likes(
    appeal: np.ndarray,
    tweet_likes: np.ndarray,
    followers: np.ndarray,
    delay_s: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Reply likes: Poisson around exp(text appeal + context effects) with lognormal noise.

    Context carries a share of the variance on purpose (as in real data), so the residual label
    has something to remove: popular tweets, big accounts and early replies collect more likes.
    """
    log_rate = (
        -1.5
        + 4.0 * appeal
        + 0.30 * np.log1p(tweet_likes)
        + 0.20 * np.log1p(followers)
        - 0.35 * np.log1p(delay_s / 60.0)
        + rng.normal(0.0, 0.4, size=appeal.shape)
    )
    return rng.poisson(np.exp(log_rate)).astype(int)


def synthesize(n_tweets: int = 100, seed: int = 0, encoder=None) -> list[Record]:
    """A seeded synthetic dataset: `n_tweets` tweets with 4-6 replies each.

    Every reply kind (specific, question, generic, off-topic, rambling, snarky) appears, so a
    reward that learned the audience separates them. Same seed -> identical records.
    """
    if n_tweets < 1:
        raise InputError(f"synthesize: n_tweets must be >= 1, got {n_tweets}")
    rng = np.random.default_rng(seed)
    topics = sorted(TOPICS)
    rows: list[dict] = []
    for i in range(n_tweets):
        topic = topics[int(rng.integers(len(topics)))]
        items, details = TOPICS[topic]
        item, detail = _pick(rng, items), _pick(rng, details)
        tweet = _pick(rng, TWEET_TEMPLATES).format(item=item, detail=detail)
        tweet = f"{tweet[0].upper()}{tweet[1:]}"
        tweet_likes = int(rng.lognormal(3.0, 1.2))
        n_replies = int(rng.integers(4, 7))
        kinds = [str(k) for k in rng.choice(sorted(KINDS), size=n_replies, replace=False)]
        shift = 1 + int(rng.integers(len(topics) - 1))  # any topic but this one
        other_topic = topics[(topics.index(topic) + shift) % len(topics)]
        for j, kind in enumerate(kinds):
            text = _pick(rng, KINDS[kind]).format(
                item=item, detail=_pick(rng, details), other=_pick(rng, TOPICS[other_topic][0])
            )
            rows.append(
                {
                    "tweet_id": f"synth-{seed}-{i:04d}",
                    "tweet": tweet,
                    "reply_id": f"synth-{seed}-{i:04d}-{j}",
                    "reply": f"{text[0].upper()}{text[1:]}",
                    "tweet_likes": tweet_likes,
                    "kind": kind,
                    "topic": topic,
                    "followers": int(rng.lognormal(5.0, 1.5)),
                    "delay": float(round(rng.lognormal(math.log(1800.0), 1.0), 1)),
                }
            )
    appeal = audience_engagement([r["tweet"] for r in rows], [r["reply"] for r in rows], encoder)
    col = lambda k: np.array([r[k] for r in rows], dtype=float)  # noqa: E731
    likes = simulate_likes(appeal, col("tweet_likes"), col("followers"), col("delay"), rng)
    retweets = rng.binomial(likes, 0.1)
    return [
        Record(
            tweet_id=r["tweet_id"],
            tweet=r["tweet"],
            reply=r["reply"],
            reply_likes=int(likes[k]),
            reply_retweets=int(retweets[k]),
            tweet_likes=r["tweet_likes"],
            reply_author_followers=r["followers"],
            reply_time_diff_seconds=r["delay"],
            reply_id=r["reply_id"],
            extra={
                "source": "synthetic",
                "reply_kind": r["kind"],
                "topic": r["topic"],
                "audience_appeal": round(float(appeal[k]), 6),
                "audience_version": AUDIENCE_VERSION,
            },
        )
        for k, r in enumerate(rows)
    ]


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]
