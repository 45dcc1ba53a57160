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
