"""The suggestion API and `replyrl suggest` take what the data layer and the sampler take
(issue 26): the data layer's text rule for tweets and past replies, the sampler's seed range
(0..2^32 - 1, as configs and `--seed`), exact JSON types (true is not k = 1), and a 4xx naming the
field for a body the JSON parser cannot hold (a number of thousands of digits, nesting past the
parser's recursion limit). Every case is refused before any generation; none is a 5xx."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from replyrl.cli import app as cli_app
from replyrl.config import SEED_MAX
from replyrl.records import text_problem
from replyrl.serve.app import create_app
from replyrl.serve.fakes import fake_suggester
from replyrl.serve.feedback import FeedbackLog

TWEET = "Just shipped my first open source library!"


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
    client, _, _ = api
    message = _suggest_refused(client, {"tweet": TWEET, "k": 1, "seed": seed}, "seed")
    assert str(SEED_MAX) in message or ">= 0" in message or "greater than" in message


def test_the_largest_seed_is_served_and_every_round_stays_in_range(api):
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


@pytest.fixture()
def no_model(monkeypatch):
    import replyrl.serve.loading as loading

    loads = []
    monkeypatch.setattr(loading, "load_suggester", lambda *a, **k: loads.append(a) or None)
    return loads


@pytest.mark.parametrize(
    "args,hint",
    [
        (["--seed", str(SEED_MAX + 1)], "--seed"),
        (["--seed", "-1"], "--seed"),
        (["--seed", str(2**63)], "--seed"),
    ],
)
def test_suggest_cli_seed_out_of_range_before_any_model(no_model, args, hint):
    r = CliRunner().invoke(cli_app, ["suggest", TWEET, *args])
    assert r.exit_code == 2 and hint in r.output and "Traceback" not in r.output, r.output
    assert no_model == []


@pytest.mark.parametrize("tweet", ["\u200b\u200b", "\x00", "hi\x00there"])
def test_suggest_cli_takes_the_data_layers_text_rule(no_model, tweet):
    r = CliRunner().invoke(cli_app, ["suggest", tweet])
    assert r.exit_code == 2 and "TWEET" in r.output and "Traceback" not in r.output, r.output
    assert no_model == []
