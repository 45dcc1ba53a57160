"""Generated bad input against the feedback and suggestion API (issue 14's feedback class): every
case is refused with a 4xx naming the problem — never a 5xx, never a row written."""

from __future__ import annotations

import json
import secrets

import pytest
from fastapi.testclient import TestClient

from replyrl.serve.app import create_app
from replyrl.serve.fakes import fake_suggester
from replyrl.serve.feedback import FeedbackLog

TWEET = "Just shipped my first open source library!"

FORGED_IDS = [secrets.token_urlsafe(16) for _ in range(20)] + [
    secrets.token_urlsafe(8),
    secrets.token_urlsafe(40)[:64],
    "A" * 22,
    "-" * 22,
    "0123456789abcdef0123456789abcdef",
]
MALFORMED_IDS = [
    "",
    "short",
    "x" * 65,
    "../../etc/passwd",
    "id with spaces!!",
    "ünïcødé-ïd-ünïcødé",
    "'; DROP TABLE feedback; --",
    "id\nwith\nnewlines",
    "\u200b" * 22,
    None,
    12345678901234,
    ["list"],
    {"id": "nested"},
    True,
]
BAD_CHOICES = [-1, 3, 15, 16, 10**9, -(10**9), "0", "1", 0.0, 1.5, True, False, None, [0], {"i": 0}]
BAD_BODIES = [
    {},
    {"chosen": 0},
    {"tweet": TWEET, "chosen": {"reply": "buy my coin", "score": 99.0}, "others": []},
    {"chosen": {"reply": "x"}, "others": [{"reply": "y", "score": 1e308}]},
    [],
    "a string",
    17,
    None,
]


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    log = FeedbackLog(tmp_path_factory.mktemp("bad") / "feedback.jsonl")
    with TestClient(create_app(fake_suggester(), log), raise_server_exceptions=False) as client:
        answer = client.post("/api/suggest", json={"tweet": TWEET, "k": 3, "seed": 1}).json()
        yield client, log, answer["id"]


def _refused(r, codes=range(400, 500)):
    assert r.status_code in codes, (r.status_code, r.text)
    body = r.json()
    assert body.get("message") or isinstance(body.get("detail"), str)


@pytest.mark.parametrize("sid", FORGED_IDS, ids=range(len(FORGED_IDS)))
def test_forged_ids_are_404(api, sid):
    client, log, _ = api
    _refused(client.post("/api/feedback", json={"id": sid, "chosen": 0}), [404])
    assert log.count() == 0


@pytest.mark.parametrize("sid", MALFORMED_IDS, ids=range(len(MALFORMED_IDS)))
def test_malformed_ids_are_422_naming_id(api, sid):
    client, log, _ = api
    r = client.post("/api/feedback", json={"id": sid, "chosen": 0})
    _refused(r, [422])
    assert r.json()["fields"] == ["id"]
    assert log.count() == 0


@pytest.mark.parametrize("chosen", BAD_CHOICES, ids=range(len(BAD_CHOICES)))
def test_bad_choices_are_422(api, chosen):
    client, log, sid = api
    r = client.post("/api/feedback", json={"id": sid, "chosen": chosen})
    _refused(r, [422])
    assert log.count() == 0


@pytest.mark.parametrize("body", BAD_BODIES, ids=range(len(BAD_BODIES)))
def test_bad_bodies_are_422(api, body):
    client, log, _ = api
    _refused(client.post("/api/feedback", json=body), [422])
    assert log.count() == 0


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b'{"id": "x", "chosen": 0', b"\xff\xfe", b'{"id": NaN, "chosen": 0}', b"[1,2"],
)
def test_broken_json_is_422(api, raw):
    client, log, _ = api
    r = client.post("/api/feedback", content=raw, headers={"Content-Type": "application/json"})
    _refused(r, [422])
    assert log.count() == 0


STYLE_CASES = [
    {"tone": ""},
    {"tone": "WITTY"},
    {"tone": " witty"},
    {"tone": "sarcastic"},
    {"tone": 3},
    {"tone": ["witty"]},
    {"voice": "one string"},
    {"voice": [""]},
    {"voice": ["   "]},
    {"voice": ["\u200b\u200c"]},
    {"voice": ["\x00\x01"]},
    {"voice": ["x" * 401]},
    {"voice": [f"r{i}" for i in range(9)]},
    {"voice": [1, 2]},
    {"voice": [None]},
    {"voice": {"a": "b"}},
    {"seed": 2**63},
    {"seed": -1},
]


@pytest.mark.parametrize("extra", STYLE_CASES, ids=range(len(STYLE_CASES)))
def test_bad_tone_voice_and_seed_are_422_before_generation(api, extra):
    client, _, _ = api
    calls = len(client.app.state.suggester.generate.calls)
    r = client.post("/api/suggest", json={"tweet": TWEET, "k": 2, **extra})
    _refused(r, [422])
    assert len(client.app.state.suggester.generate.calls) == calls


def test_a_genuine_pick_still_works_after_all_that(api):
    client, log, sid = api
    r = client.post("/api/feedback", json={"id": sid, "chosen": 2})
    assert r.status_code == 200 and r.json()["rows"] == 2
    rows = [json.loads(x) for x in log.path.read_text().splitlines()]
    assert {x["suggestion_id"] for x in rows} == {sid}


# --- issue 26: the API takes what the data layer and the sampler take, and names the field of a
# body the JSON parser cannot hold


def _suggest_refused(client, body, field):
    calls = len(client.app.state.suggester.generate.calls)
    r = client.post("/api/suggest", json=body)
    _refused(r, [422])
    assert r.json()["fields"] == [field], r.text
    assert len(client.app.state.suggester.generate.calls) == calls  # refused before generation
    return r.json()["message"]


@pytest.mark.parametrize(
    "tweet",
    ["\u200b", "\u200b\u200c\u2060", "\x00", "\x00\x00 ", "\ufeff", "\u3164", "hi\x00there"],
    ids=["zwsp", "zero-width mix", "NUL", "NULs", "BOM", "filler", "NUL inside"],
)
def test_tweets_the_data_layer_refuses_are_422(api, tweet):
    from replyrl.records import text_problem

    client, _, _ = api
    assert text_problem("tweet", tweet)  # the data layer's rule refuses it too
    message = _suggest_refused(client, {"tweet": tweet, "k": 1}, "tweet")
    assert text_problem("tweet", tweet) in message


@pytest.mark.parametrize(
    "extra,field",
    [
        ({"k": True}, "k"),
        ({"k": False}, "k"),
        ({"k": "2"}, "k"),
        ({"k": 2.0}, "k"),
        ({"seed": True}, "seed"),
        ({"seed": "7"}, "seed"),
        ({"seed": 1.0}, "seed"),
        ({"temperature": True}, "temperature"),
        ({"temperature": "0.9"}, "temperature"),
        ({"tweet": 5}, "tweet"),
        ({"voice": ["ok", "a\x00b"]}, "voice"),
    ],
    ids=lambda v: repr(v),
)
def test_types_are_taken_strictly(api, extra, field):
    client, _, _ = api
    _suggest_refused(client, {"tweet": TWEET, "k": 2, **extra}, field)


@pytest.mark.parametrize("seed", [2**32, 2**32 + 1, 2**63 - 1, 2**63, 10**30, -1])
def test_seeds_outside_the_samplers_range_are_422_not_500(api, seed):
    from replyrl.config import SEED_MAX

    client, _, _ = api
    message = _suggest_refused(client, {"tweet": TWEET, "k": 1, "seed": seed}, "seed")
    assert str(SEED_MAX) in message or ">= 0" in message or "greater than" in message


def test_the_largest_seed_is_served_and_every_round_stays_in_range(api):
    from replyrl.config import SEED_MAX

    client, _, _ = api
    gen = client.app.state.suggester.generate
    before = len(gen.calls)
    r = client.post("/api/suggest", json={"tweet": TWEET, "k": 3, "seed": SEED_MAX})
    assert r.status_code == 200, r.text
    assert r.json()["seed"] == SEED_MAX
    seeds = [c[3] for c in gen.calls[before:]]
    assert seeds and seeds[0] == SEED_MAX and all(0 <= s <= SEED_MAX for s in seeds)
    # the same seed gives the same replies (the wrapped round seeds are fixed too)
    again = client.post("/api/suggest", json={"tweet": TWEET, "k": 3, "seed": SEED_MAX}).json()
    assert [s["reply"] for s in again["suggestions"]] == [
        s["reply"] for s in r.json()["suggestions"]
    ]


HUGE = "9" * 5000


@pytest.mark.parametrize(
    "raw,field",
    [
        ('{"tweet": "hi", "k": 1, "seed": HUGE}'.replace("HUGE", HUGE), "seed"),
        ('{"tweet": "hi", "k": HUGE}'.replace("HUGE", HUGE), "k"),
        ('{"tweet": "hi", "k": -HUGE}'.replace("HUGE", HUGE), "k"),
        ('{"tweet": "hi", "temperature": HUGE}'.replace("HUGE", HUGE), "temperature"),
        ('{"tweet": "hi", "voice": ["a", HUGE]}'.replace("HUGE", HUGE), "voice.1"),
        ('{"tweet": HUGE}'.replace("HUGE", HUGE), "tweet"),
    ],
    ids=["seed", "k", "negative k", "temperature", "in voice", "tweet"],
)
def test_numbers_of_thousands_of_digits_name_their_field(api, raw, field):
    client, _, _ = api
    r = client.post("/api/suggest", content=raw, headers={"Content-Type": "application/json"})
    _refused(r, [422])
    assert r.json()["fields"] == [field] and "5,000 digits" in r.json()["message"], r.text


def test_a_huge_number_in_feedback_names_chosen(api):
    client, log, sid = api
    before = log.count()
    raw = '{"id": "SID", "chosen": HUGE}'.replace("SID", sid).replace("HUGE", HUGE)
    r = client.post("/api/feedback", content=raw, headers={"Content-Type": "application/json"})
    _refused(r, [422])
    assert r.json()["fields"] == ["chosen"] and log.count() == before


DEEP = 100_000


@pytest.mark.parametrize(
    "raw,field",
    [
        ('{"tweet": "hi", "voice": ' + "[" * DEEP + "]" * DEEP + "}", "voice"),
        ('{"tweet": "hi", "tone": ' + '{"a":' * DEEP + "1" + "}" * DEEP + "}", "tone"),
        ('{"tw\\"eet": "x", "voice": ' + "[" * DEEP + "}", "voice"),
        ("[" * DEEP + "]" * DEEP, "body"),
    ],
    ids=["voice", "tone", "escaped key, unclosed", "top level"],
)
def test_bodies_nested_past_the_parser_name_their_field(api, raw, field):
    client, _, _ = api
    r = client.post("/api/suggest", content=raw, headers={"Content-Type": "application/json"})
    _refused(r, [422])
    assert r.json()["fields"] == [field] and "nested" in r.json()["message"], r.text


def test_a_deep_but_parseable_body_is_still_validated_by_field(api):
    client, _, _ = api
    raw = '{"tweet": "hi", "voice": ' + "[" * 200 + "]" * 200 + "}"
    r = client.post("/api/suggest", content=raw, headers={"Content-Type": "application/json"})
    _refused(r, [422])
    assert r.json()["fields"][0].startswith("voice")
