"""SHP-style preference pairs: the rules, the cap, the file format."""

from __future__ import annotations

import json
import math

import pytest
from conftest import shared_file

from replyrl.data.labels import engagement_raw
from replyrl.data.pairs import Pair, is_preferred, preference_pairs, read_pairs, write_pairs
from replyrl.records import DataError, Record, load_records


def rec(reply, likes, rts=0, t=None, tid="t1"):
    return Record(
        tweet_id=tid,
        tweet=f"tweet {tid}",
        reply=reply,
        reply_likes=likes,
        reply_retweets=rts,
        reply_time_diff_seconds=t,
    )


def test_ratio_floor_and_timing_rules():
    assert not is_preferred(rec("a", 1), rec("b", 0))  # 1 vs 0 is noise: floor max(0, 1)
    assert is_preferred(rec("a", 2), rec("b", 0))
    assert is_preferred(rec("a", 6), rec("b", 3)) and not is_preferred(rec("a", 5), rec("b", 3))
    assert is_preferred(rec("a", 0, rts=3), rec("b", 3))  # score = likes + 2*retweets = 6
    # timing: the winner must not be earlier
    assert not is_preferred(rec("a", 10, t=60), rec("b", 1, t=120))
    assert is_preferred(rec("a", 10, t=120), rec("b", 1, t=120))
    assert is_preferred(rec("a", 10, t=None), rec("b", 1, t=120))  # unknown timing: no rule
    # ratio 1 still needs a strict win (no pair both ways on a tie)
    assert not is_preferred(rec("a", 4), rec("b", 4), ratio=1.0)


def test_pairs_values_hand_computed():
    recs = [rec("x", 9, t=300.0), rec("y", 2, t=100.0), rec("z", 0, t=200.0), rec("w", 1, t=50.0)]
    pairs = preference_pairs(recs, ratio=2.0)
    got = {(p.chosen, p.rejected) for p in pairs}
    # x (9) beats y (2, earlier), z (0, earlier), w (1, earlier); y (2) beats w (1) and is later;
    # y vs z: 2 >= 2*max(0,1) but y (100 s) is earlier than z (200 s) -> no pair
    assert got == {("x", "y"), ("x", "z"), ("x", "w"), ("y", "w")}
    p = next(p for p in pairs if (p.chosen, p.rejected) == ("x", "z"))
    assert p.chosen_score == 9 and p.rejected_score == 0 and p.margin == pytest.approx(math.log(10))


def test_cap_is_seeded_deterministic_and_order_free():
    recs = [rec(f"r{i}", 2**i) for i in range(8)]  # every higher one beats every lower one
    full = preference_pairs(recs, max_pairs_per_tweet=1000)
    assert len(full) == 28
    a = preference_pairs(recs, max_pairs_per_tweet=5, seed=1)
    assert len(a) == 5 and len({(p.chosen, p.rejected) for p in a}) == 5
    assert a == preference_pairs(list(reversed(recs)), max_pairs_per_tweet=5, seed=1)
    assert a != preference_pairs(recs, max_pairs_per_tweet=5, seed=2)
    with pytest.raises(ValueError, match="ratio"):
        preference_pairs(recs, ratio=0.5)


def test_pairs_only_within_a_tweet():
    recs = [rec("a", 10, tid="t1"), rec("b", 0, tid="t2")]
    assert preference_pairs(recs) == []


def test_write_read_roundtrip_and_feedback_lines(tmp_path):
    pairs = preference_pairs([rec("good reply", 8), rec("meh", 1)])
    path = write_pairs(tmp_path / "pairs.jsonl", pairs)
    fb = {
        "tweet_id": 42,
        "tweet": "hi",
        "chosen": "hello!",
        "rejected": "k",
        "source": "feedback",
        "model": "runs/x",
        "time": "2026-11-25T22:00:00Z",
    }
    with open(path, "a") as f:
        f.write(json.dumps(fb) + "\n")
    back = read_pairs(path)
    assert back[0] == pairs[0]
    assert back[1].tweet_id == "42" and back[1].chosen_score is None and back[1].margin == 0.0
    assert back[1].extra == {
        "source": "feedback",
        "model": "runs/x",
        "time": "2026-11-25T22:00:00Z",
    }
    assert back[1].to_dict()["source"] == "feedback"


def test_read_pairs_errors_name_file_line_field(tmp_path):
    good = json.dumps(Pair("t", "tw", "a", "b", 4.0, 1.0, 0.9).to_dict())
    lines = [
        good,
        '{"tweet_id": "t", "tweet": "tw", "chosen": "", "rejected": "b"}',
        "{oops",
        '{"tweet_id": "t", "tweet": "tw", "chosen": "a", "rejected": "b", "margin": "big"}',
        '{"tweet_id": "t", "tweet": "tw", "chosen": "a", "rejected": "a"}',
        "[1, 2]",
        '{"tweet": "tw", "chosen": "a", "rejected": "b", "chosen_score": -1}',
    ]
    p = tmp_path / "p.jsonl"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as e:
        read_pairs(p)
    got = [(x.line, x.field) for x in e.value.errors]
    assert got == [
        (2, "chosen"),
        (3, None),
        (4, "margin"),
        (5, "rejected"),
        (6, None),
        (7, "tweet_id"),
        (7, "chosen_score"),
    ]
    assert f"{p}:4: field 'margin'" in str(e.value)


def test_pool_pairs_all_satisfy_rules():
    recs = load_records(shared_file("pool.jsonl")).records
    pairs = preference_pairs(recs, ratio=2.0, max_pairs_per_tweet=8, seed=0)
    assert len(pairs) > 1000
    by_key = {(r.tweet_id, r.reply): r for r in recs}
    per_tweet: dict[str, int] = {}
    for p in pairs:
        a, b = by_key[(p.tweet_id, p.chosen)], by_key[(p.tweet_id, p.rejected)]
        sa, sb = engagement_raw(a), engagement_raw(b)
        assert sa >= 2.0 * max(sb, 1) and sa > sb
        assert (p.chosen_score, p.rejected_score) == (sa, sb)
        if a.reply_time_diff_seconds is not None and b.reply_time_diff_seconds is not None:
            assert a.reply_time_diff_seconds >= b.reply_time_diff_seconds
        assert p.margin == pytest.approx(math.log((sa + 1) / (sb + 1)))
        assert p.tweet == a.tweet
        per_tweet[p.tweet_id] = per_tweet.get(p.tweet_id, 0) + 1
    assert max(per_tweet.values()) <= 8


def test_vectorized_rule_matches_is_preferred_on_random_replies():
    import itertools

    import numpy as np

    rng = np.random.default_rng(0)
    recs = [
        rec(
            f"r{i}",
            int(rng.integers(0, 12)),
            rts=int(rng.integers(0, 2)),
            t=None if rng.random() < 0.3 else float(rng.integers(0, 5)),
        )
        for i in range(40)
    ]
    for ratio in (1.0, 2.0, 3.5):
        got = {(p.chosen, p.rejected) for p in preference_pairs(recs, ratio, 10**6)}
        want = {
            (a.reply, b.reply)
            for a, b in itertools.permutations(recs, 2)
            if is_preferred(a, b, ratio)
        }
        assert got == want and len(want) > 50
