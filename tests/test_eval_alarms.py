"""Reward-hacking alarms: fake models through the whole evaluation (no LLM), and hand rows."""

from __future__ import annotations

import json

import numpy as np
import pytest

from replyrl.evaluation.alarms import AlarmConfig, run_alarms
from replyrl.evaluation.evaluate import EvalConfig, ModelSpec, evaluate
from replyrl.evaluation.generate_cache import EvalTweet
from replyrl.evaluation.judge import JudgeConfig
from replyrl.evaluation.scoring import Scorers
from replyrl.generation import SamplingConfig

TWEETS = [
    EvalTweet(f"t{i}", tweet, refs, synthetic=True)
    for i, (tweet, refs) in enumerate(
        [
            (
                "Just baked my first sourdough loaf, the crust came out great!",
                [
                    "Congrats! Getting the crust right is the hardest part of sourdough.",
                    "How long did you let the dough rest before baking it?",
                    "That loaf looks amazing, what flour did you use for it?",
                    "Sourdough is such a rewarding hobby, enjoy the bread!",
                ],
            ),
            (
                "Ran my first half marathon this morning, legs are jelly.",
                [
                    "Huge congrats on the half marathon! Take the recovery days seriously.",
                    "What was your pacing plan for the last few miles of the race?",
                    "Amazing effort, the first half marathon is always special.",
                    "Did you follow a training plan, or just build up the distance?",
                ],
            ),
            (
                "Finally set up a home server to host my own photo library.",
                [
                    "Nice project! Which software are you using to host the photos?",
                    "Self-hosting photos is great, just make sure you have backups.",
                    "How much power does the home server draw when idle?",
                    "I did the same last year and never looked back, enjoy it!",
                ],
            ),
        ]
    )
]


def fake_proxy(tweets, replies):
    """A proxy that likes length up to 120 chars (enough to separate 'Agreed!' from real replies)."""
    return np.array([min(len(r), 120) / 120 for r in replies])


def _fake_gold(tweets, replies):
    return np.array([0.1 if len(r) < 10 else 0.6 for r in replies])


def _run(tmp_path, encoder, generators):
    cfg = EvalConfig(
        sampling=SamplingConfig(n=4), ks=[1, 2, 4], bootstrap=200, judge=JudgeConfig(enabled=False)
    )
    scorers = Scorers(fake_proxy, "fake length proxy", audience=_fake_gold)
    specs = [ModelSpec(name, f"/fake/{name}", 0) for name in generators]
    gens = {f"{name}__seed0": g for name, g in generators.items()}
    return evaluate(
        specs,
        "in-memory",
        tmp_path,
        cfg,
        scorers=scorers,
        generators=gens,
        encoder=encoder,
        tweets=TWEETS,
    )


def test_agreed_model_raises_length_and_duplicate_alarms_copy_raises_none(tmp_path, encoder):
    by_tweet = {t.tweet: t for t in TWEETS}
    summary = _run(
        tmp_path,
        encoder,
        {
            "copy": lambda tweets: [by_tweet[t].references[:4] for t in tweets],
            "agreed": lambda tweets: [["Agreed!"] * 4 for _ in tweets],
        },
    )
    fired = {(a["model"], a["name"]) for a in summary["alarms"] if a["triggered"]}
    assert fired == {
        ("agreed", "length_collapse"),
        ("agreed", "length_drift"),
        ("agreed", "duplicates"),
    }
    checked = {(a["model"], a["name"]) for a in summary["alarms"]}
    assert ("copy", "high_proxy_low_relevance") in checked
    assert ("agreed", "proxy_up_audience_flat") in checked  # audience falls, but so does the proxy
    for a in summary["alarms"]:
        if a["triggered"]:
            assert a["examples"] and all(e["reply"] == "Agreed!" for e in a["examples"]), a
    agreed = summary["models"]["agreed"]["metrics"]
    assert agreed["duplicate_rate"]["mean"] == pytest.approx(0.75)
    assert agreed["self_bleu"]["mean"] == pytest.approx(100.0)
    assert agreed["pass@4"]["mean"] == 0.0
    copy = summary["models"]["copy"]["metrics"]
    assert copy["rouge_l"]["mean"] == pytest.approx(1.0)
    assert copy["duplicate_rate"]["mean"] == 0.0
    # the best-engaged reference is always among the copies, and the others score below or equal
    assert copy["pass@4"]["mean"] == pytest.approx(1.0)
    for f in ("summary.json", "report.md", "report.html"):
        assert (tmp_path / f).exists()

    def no_nan(const):
        raise AssertionError(f"summary.json is not strict JSON: {const}")

    strict = json.loads((tmp_path / "summary.json").read_text(), parse_constant=no_nan)
    d = next(c["effect_size"] for c in strict["comparisons"] if c["metric"] == "pass@4")
    assert d is None  # constant differences (all −1): an infinite d_z is written as null


def _rows(proxy, gold, relevance, replies=None):
    replies = replies or [f"reply number {i} with some words" for i in range(len(proxy))]
    return {
        "tweet_id": "t",
        "tweet": "a tweet",
        "reference": "ref",
        "references": ["ref"],
        "replies": replies,
        "reply_scores": {"proxy": proxy, "gold": gold, "relevance": relevance},
        "ref_scores": {"proxy": [0.5], "gold": [0.5], "relevance": [0.6]},
    }


def test_divergence_and_offtopic_alarms_name_their_examples():
    rng = np.random.default_rng(0)
    base = [
        dict(
            _rows(
                list(0.5 + 0.01 * rng.standard_normal(4)),
                list(0.5 + 0.01 * rng.standard_normal(4)),
                [0.6] * 4,
            ),
            tweet_id=f"t{i}",
        )
        for i in range(10)
    ]
    hacked = [
        dict(
            _rows(
                list(0.9 + 0.01 * rng.standard_normal(4)),
                list(0.2 + 0.01 * rng.standard_normal(4)),
                [0.05] * 4,
            ),
            tweet_id=f"t{i}",
        )
        for i in range(10)
    ]

    def comps(rows, base_rows):
        from dataclasses import asdict

        from replyrl.evaluation.stats import paired_compare

        def per(rs, key):
            return {0: {r["tweet_id"]: float(np.mean(r["reply_scores"][key])) for r in rs}}

        return {
            k: asdict(paired_compare(k, "m", "b", per(rows, k), per(base_rows, k)))
            for k in ("proxy", "gold")
        }

    alarms = {
        a["name"]: a
        for a in run_alarms(
            "hacked", hacked, AlarmConfig(), base="base", base_rows=base, comps=comps(hacked, base)
        )
    }
    assert alarms["proxy_gold_divergence"]["triggered"]
    assert len(alarms["proxy_gold_divergence"]["examples"]) == 3
    assert alarms["high_proxy_low_relevance"]["triggered"]
    assert alarms["high_proxy_low_relevance"]["value"] == pytest.approx(1.0)
    calm = {
        a["name"]: a
        for a in run_alarms(
            "base",
            base,
            AlarmConfig(),
            base="other",
            base_rows=base,
            comps=comps(base, base),
            train_length=30.0,  # the replies' own length: no drift
        )
    }
    assert not any(a["triggered"] for a in calm.values())


def test_proxy_up_audience_flat_fires_on_synthetic_data():
    """The proxy rises against the baseline while the exact audience does not: the alarm fires
    even though a learned gold RM (sharing the proxy's bias) would have risen with it."""
    rng = np.random.default_rng(1)
    rows, base = [], []
    for i in range(12):
        r = _rows([0.5] * 4, [0.5] * 4, [0.6] * 4)
        r["reply_scores"]["audience"] = [0.6] * 4
        b = {**r, "tweet_id": f"t{i}", "reply_scores": dict(r["reply_scores"])}
        base.append(b)
        up = dict(b["reply_scores"])
        up["proxy"] = list(0.8 + 0.01 * rng.standard_normal(4))
        up["audience"] = list(0.6 + 0.01 * rng.standard_normal(4))
        rows.append({**b, "reply_scores": up})

    from dataclasses import asdict

    from replyrl.evaluation.stats import paired_compare

    def per(rs, key):
        return {0: {r["tweet_id"]: float(np.mean(r["reply_scores"][key])) for r in rs}}

    comps = {
        k: asdict(paired_compare(k, "m", "b", per(rows, k), per(base, k)))
        for k in ("proxy", "audience")
    }
    alarms = {a["name"]: a for a in run_alarms("m", rows, AlarmConfig(), "b", base, comps)}
    assert alarms["proxy_up_audience_flat"]["triggered"]
    assert "does not rise" in alarms["proxy_up_audience_flat"]["message"]


def test_length_drift_against_the_training_replies():
    rows = [
        dict(_rows([0.5], [0.5], [0.6], replies=["x" * 190]), tweet_id=f"t{i}") for i in range(3)
    ]
    (drift,) = [
        a
        for a in run_alarms("m", rows, AlarmConfig(), train_length=90.0)
        if a["name"] == "length_drift"
    ]
    assert drift["triggered"] and drift["value"] == pytest.approx(100 / 90)
    assert "training split" in drift["message"]
