"""The web app's API with a fake fast generator: validation (422 naming the field), the bounded
generation queue (503), feedback rows, and that the page and docs need no network."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from replyrl.serve.app import create_app
from replyrl.serve.fakes import fake_suggester
from replyrl.serve.feedback import (
    FeedbackDiskFull,
    FeedbackLog,
    IssuedSuggestions,
    Shown,
    UnknownSuggestion,
    feedback_tweet_id,
)
from replyrl.serve.style import TONES, Style

TWEET = "Just shipped my first open source library!"


@pytest.fixture()
def served(tmp_path):
    suggester = fake_suggester()
    log = FeedbackLog(tmp_path / "feedback.jsonl")
    app = create_app(suggester, log, queue_size=1)
    with TestClient(app) as client:  # one event loop for every request, as under uvicorn
        yield client, suggester, log


def test_suggest_returns_k_ranked_replies(served):
    client, suggester, _ = served
    r = client.post("/api/suggest", json={"tweet": TWEET, "k": 4, "temperature": 0.7, "seed": 1})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "fake" and body["reward"] == "fake" and body["seed"] == 1
    replies = [s["reply"] for s in body["suggestions"]]
    assert len(replies) == 4 and len(set(replies)) == 4
    assert [s["score"] for s in body["suggestions"]] == sorted(
        (s["score"] for s in body["suggestions"]), reverse=True
    )
    assert set(body["suggestions"][0]["components"]) == {
        "uniqueness",
        "length",
        "echo",
        "as_author",
        "penalty",
    }
    assert body["tone"] is None and body["voice"] == [] and len(body["id"]) >= 16
    assert suggester.generate.calls == [(TWEET, 12, 0.7, 1)]
    # Same seed, same answer; no seed draws a fresh one.
    again = client.post(
        "/api/suggest", json={"tweet": TWEET, "k": 4, "temperature": 0.7, "seed": 1}
    ).json()
    assert [s["reply"] for s in again["suggestions"]] == replies
    fresh = client.post("/api/suggest", json={"tweet": TWEET, "k": 4}).json()
    assert fresh["seed"] != 1 or fresh["suggestions"] != body["suggestions"]


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"tweet": ""}, "tweet"),
        ({"tweet": "   \n "}, "tweet"),
        ({"tweet": "x" * 2001}, "tweet"),
        ({}, "tweet"),
        ({"tweet": TWEET, "k": 0}, "k"),
        ({"tweet": TWEET, "k": 17}, "k"),
        ({"tweet": TWEET, "temperature": 0}, "temperature"),
        ({"tweet": TWEET, "temperature": -0.5}, "temperature"),
        ({"tweet": TWEET, "temperature": 2.01}, "temperature"),
        ({"tweet": TWEET, "k": "many"}, "k"),
        ({"tweet": TWEET, "top_k": 3}, "top_k"),
    ],
)
def test_bad_input_is_422_naming_the_field(served, payload, field):
    client, suggester, _ = served
    r = client.post("/api/suggest", json=payload)
    assert r.status_code == 422
    body = r.json()
    assert body["fields"] == [field]
    assert body["message"].startswith(f"{field}: ")
    assert body["detail"][0]["loc"][-1] == field
    assert suggester.generate.calls == []  # rejected before any generation


def test_limits_are_inclusive(served):
    client, _, _ = served
    for payload in (
        {"tweet": "x" * 2000, "k": 1, "temperature": 2.0},
        {"tweet": "y", "k": 16, "temperature": 0.05},
    ):
        assert client.post("/api/suggest", json=payload).status_code == 200


def test_full_queue_answers_503(served):
    client, suggester, _ = served
    gate = threading.Event()
    suggester.generate.gate = gate
    queue = client.app.state.queue
    with ThreadPoolExecutor(2) as pool:
        # queue_size=1: one request generates (blocked on the gate), one waits.
        held = [
            pool.submit(client.post, "/api/suggest", json={"tweet": f"{TWEET} {i}", "k": 2})
            for i in range(2)
        ]
        deadline = time.time() + 10
        while queue.admitted < 2 and time.time() < deadline:
            time.sleep(0.01)
        assert queue.admitted == 2
        r = client.post("/api/suggest", json={"tweet": TWEET, "k": 2})
        assert r.status_code == 503
        assert "busy" in r.json()["detail"] and "queue size 1" in r.json()["detail"]
        assert r.headers["retry-after"] == "5"
        gate.set()
        assert [f.result().status_code for f in held] == [200, 200]
    assert queue.admitted == 0
    assert client.post("/api/suggest", json={"tweet": TWEET, "k": 2}).status_code == 200


def test_generation_runs_one_at_a_time(tmp_path):
    suggester = fake_suggester(delay_s=0.05)
    active, peak = [0], [0]
    inner = suggester.generate

    def counting(*a):
        active[0] += 1
        peak[0] = max(peak[0], active[0])
        try:
            return inner(*a)
        finally:
            active[0] -= 1

    suggester.generate = counting
    with (
        TestClient(
            create_app(suggester, FeedbackLog(tmp_path / "f.jsonl"), queue_size=8)
        ) as client,
        ThreadPoolExecutor(4) as pool,
    ):
        codes = list(
            pool.map(
                lambda i: client.post("/api/suggest", json={"tweet": f"t{i}", "k": 1}).status_code,
                range(8),
            )
        )
    assert codes == [200] * 8 and peak[0] == 1


def _suggest(client, tweet=TWEET, **extra):
    r = client.post("/api/suggest", json={"tweet": tweet, "k": 3, "seed": 2, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def test_feedback_rows_are_built_from_what_the_server_showed(served):
    client, _, log = served
    answer = _suggest(client, tone="curious", voice=["ship it", "nice"])
    shown = answer["suggestions"]
    assert len(answer["id"]) >= 16 and answer["expires_in_s"] == 1800
    r = client.post("/api/feedback", json={"id": answer["id"], "chosen": 1})
    assert r.status_code == 200 and r.json() == {"rows": 2, "file": "feedback.jsonl"}
    rows = [json.loads(line) for line in log.path.read_text().splitlines()]
    assert [(x["chosen"], x["rejected"]) for x in rows] == [
        (shown[1]["reply"], shown[0]["reply"]),
        (shown[1]["reply"], shown[2]["reply"]),
    ]
    for x in rows:
        assert x["tweet_id"] == feedback_tweet_id(TWEET) and len(x["tweet_id"]) == 21
        assert x["tweet"] == TWEET and x["margin"] == 1.0 and x["source"] == "feedback"
        assert x["model"] == "fake" and x["reward"] == "fake" and x["seed"] == 2
        assert x["suggestion_id"] == answer["id"]
        assert x["tone"] == "curious" and x["voice"] == ["ship it", "nice"]
        assert x["chosen_score"] is None and x["rejected_score"] is None  # no like counts
        assert x["chosen_reward"] == shown[1]["score"]  # the server's own scores
        assert x["time"].endswith("Z")
    assert {x["rejected_reward"] for x in rows} == {shown[0]["score"], shown[2]["score"]}
    assert client.get("/healthz").json()["feedback_rows"] == 2


def test_forged_unknown_replayed_and_expired_feedback_is_refused(tmp_path):
    clock = [0.0]
    issued = IssuedSuggestions(ttl_s=60, clock=lambda: clock[0])
    log = FeedbackLog(tmp_path / "feedback.jsonl")
    with TestClient(create_app(fake_suggester(), log, issued=issued)) as client:
        answer = _suggest(client)
        # The old body (client-supplied texts and scores) is not accepted at all.
        old = {"tweet": TWEET, "chosen": {"reply": "buy my coin", "score": 99}, "others": []}
        r = client.post("/api/feedback", json=old)
        assert r.status_code == 422 and "id" in r.json()["fields"]
        forged = answer["id"][:-4] + ("aaaa" if not answer["id"].endswith("aaaa") else "bbbb")
        r = client.post("/api/feedback", json={"id": forged, "chosen": 0})
        assert r.status_code == 404 and "unknown suggestion id" in r.json()["detail"]
        for bad in ("x", "a" * 65, "../../etc/passwd", "id with spaces"):
            r = client.post("/api/feedback", json={"id": bad, "chosen": 0})
            assert r.status_code == 422 and r.json()["fields"] == ["id"]
        r = client.post("/api/feedback", json={"id": answer["id"], "chosen": 3})  # k=3: 0..2
        assert r.status_code == 422 and "not one of the shown replies (0..2)" in r.json()["detail"]
        r = client.post("/api/feedback", json={"id": answer["id"], "chosen": -1})
        assert r.status_code == 422
        assert (
            client.post("/api/feedback", json={"id": answer["id"], "chosen": 0}).status_code == 200
        )
        r = client.post("/api/feedback", json={"id": answer["id"], "chosen": 2})  # replay
        assert r.status_code == 409 and "already recorded" in r.json()["detail"]
        late = _suggest(client)
        clock[0] = 61.0
        r = client.post("/api/feedback", json={"id": late["id"], "chosen": 0})
        assert r.status_code == 410 and "expired" in r.json()["detail"]
        clock[0] = 10_000.0  # long gone: forgotten, so unknown
        _suggest(client)
        r = client.post("/api/feedback", json={"id": late["id"], "chosen": 0})
        assert r.status_code == 404
    assert log.count() == 2  # only the one genuine pick (k=3 -> 2 rows)


def test_issued_answers_are_bounded():
    issued = IssuedSuggestions(ttl_s=60, max_items=3)
    ids = [issued.issue("t", [Shown("a", 1.0)], "m", "r", Style(), 0).id for _ in range(5)]
    assert len(issued) == 3
    with pytest.raises(UnknownSuggestion):
        issued.take(ids[0], 0)
    assert issued.take(ids[-1], 0).tweet == "t"


def test_a_failed_write_can_be_retried(served, monkeypatch):
    client, _, log = served
    answer = _suggest(client)

    def full(rows):
        raise FeedbackDiskFull("the disk holding feedback.jsonl is full: the pick was not recorded")

    monkeypatch.setattr(log, "append", full)
    r = client.post("/api/feedback", json={"id": answer["id"], "chosen": 0})
    assert r.status_code == 507 and "is full" in r.json()["detail"]
    monkeypatch.undo()
    assert client.post("/api/feedback", json={"id": answer["id"], "chosen": 0}).status_code == 200


def test_tone_and_voice_per_request_and_server_defaults(tmp_path):
    suggester = fake_suggester()
    suggester.style = Style("witty", ("lol same",))
    with TestClient(create_app(suggester, FeedbackLog(tmp_path / "f.jsonl"))) as client:
        opts = client.get("/api/options").json()
        assert set(opts["tones"]) == set(TONES) and opts["tone"] == "witty"
        assert opts["voice"] == ["lol same"] and opts["max_voice"] == 8
        a = _suggest(client)  # omitted: the server's default style
        assert a["tone"] == "witty" and a["voice"] == ["lol same"]
        assert suggester.generate.instructions[-1].startswith(TONES["witty"])
        b = _suggest(client, tone=None, voice=[])  # explicit: none
        assert b["tone"] is None and b["voice"] == []
        assert suggester.generate.instructions[-1] == suggester.instruction
        c = _suggest(client, tone="expert")
        assert c["tone"] == "expert" and c["voice"] == ["lol same"]
        for bad, field in (
            ({"tone": "sarcastic"}, "tone"),
            ({"voice": ["ok", "   "]}, "voice"),
            ({"voice": ["x" * 401]}, "voice"),
            ({"voice": [f"r{i}" for i in range(9)]}, "voice"),
            ({"voice": "one string"}, "voice"),
        ):
            r = client.post("/api/suggest", json={"tweet": TWEET, **bad})
            assert r.status_code == 422 and r.json()["fields"] == [field], (bad, r.text)
        r = client.post("/api/suggest", json={"tweet": TWEET, "voice": ["\u200b"]})
        # the data layer's text rule, checked with the body: 422 naming the field
        assert r.status_code == 422 and "empty" in r.json()["message"]
        assert r.json()["fields"] == ["voice"]


def test_fifty_concurrent_picks_leave_fifty_rows(served):
    client, _, log = served
    # Near-limit tweets make each line > 4 kB (more than one atomic pipe write), so interleaved
    # writes would show up as broken JSON.
    answers = [
        client.post(
            "/api/suggest", json={"tweet": f"{TWEET} #{i} " + "t" * 1900, "k": 2, "seed": i}
        ).json()
        for i in range(50)
    ]

    def pick(a):
        return client.post("/api/feedback", json={"id": a["id"], "chosen": 0}).status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(pick, answers))
    assert codes == [200] * 50
    lines = log.path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 50
    rows = [json.loads(line) for line in lines]
    assert sorted(int(r["tweet"].split("#")[1].split()[0]) for r in rows) == list(range(50))
    assert len({r["suggestion_id"] for r in rows}) == 50


def test_page_health_and_docs_work_offline(served):
    client, _, _ = served
    page = client.get("/")
    assert page.status_code == 200 and 'id="suggest"' in page.text and "/static/app.js" in page.text
    for path in ("/static/app.js", "/static/app.css", "/docs"):
        r = client.get(path)
        assert r.status_code == 200
        assert "cdn" not in r.text.lower() and "https://" not in r.text and "http://" not in r.text
    spec = client.get("/openapi.json").json()
    assert {"/api/suggest", "/api/feedback", "/api/options", "/healthz"} <= set(spec["paths"])
    assert 'id="tone"' in page.text and 'id="voice"' in page.text
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["queue"] == {"admitted": 0, "queue_size": 1}


def test_a_failing_model_answers_500_with_the_reason(tmp_path):
    suggester = fake_suggester()

    def broken(*a):
        raise RuntimeError("CUDA out of memory")

    suggester.generate = broken
    with TestClient(
        create_app(suggester, FeedbackLog(tmp_path / "f.jsonl")), raise_server_exceptions=False
    ) as client:
        r = client.post("/api/suggest", json={"tweet": TWEET})
        assert (
            r.status_code == 500
            and r.json()["detail"] == "generation failed: RuntimeError: CUDA out of memory"
        )
        assert client.app.state.queue.admitted == 0  # the slot is given back
