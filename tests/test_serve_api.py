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
from replyrl.serve.feedback import FeedbackLog, feedback_tweet_id

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
    assert set(body["suggestions"][0]["components"]) == {"uniqueness", "length"}
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
    with TestClient(
        create_app(suggester, FeedbackLog(tmp_path / "f.jsonl"), queue_size=8)
    ) as client, ThreadPoolExecutor(4) as pool:
        codes = list(
            pool.map(
                lambda i: (
                    client.post("/api/suggest", json={"tweet": f"t{i}", "k": 1}).status_code
                ),
                range(8),
            )
        )
    assert codes == [200] * 8 and peak[0] == 1


def test_feedback_rows_are_preference_pairs(served):
    client, _, log = served
    body = {
        "tweet": TWEET,
        "chosen": {"reply": "Congrats!", "score": 0.8},
        "others": [
            {"reply": "Nice.", "score": 0.5},
            {"reply": "Star it", "score": 0.4},
            {"reply": "Congrats!", "score": 0.8},
        ],
    }
    r = client.post("/api/feedback", json=body)
    assert r.status_code == 200 and r.json() == {"rows": 2, "file": "feedback.jsonl"}
    rows = [json.loads(line) for line in log.path.read_text().splitlines()]
    assert [(x["chosen"], x["rejected"]) for x in rows] == [
        ("Congrats!", "Nice."),
        ("Congrats!", "Star it"),
    ]
    for x in rows:
        assert (
            x["tweet_id"] == feedback_tweet_id(TWEET)
            and x["tweet_id"].startswith("feedback:")
            and len(x["tweet_id"]) == 21
        )
        assert (
            x["tweet"] == TWEET
            and x["margin"] == 1.0
            and x["source"] == "feedback"
            and x["model"] == "fake"
        )
        assert (
            x["chosen_score"] is None and x["rejected_score"] is None
        )  # no like counts for a pick
        assert x["chosen_reward"] == 0.8 and x["rejected_reward"] in (0.5, 0.4)
        assert x["time"].endswith("Z")
    assert client.get("/healthz").json()["feedback_rows"] == 2


def test_feedback_validation(served):
    client, _, log = served
    r = client.post("/api/feedback", json={"tweet": TWEET, "chosen": {"reply": ""}})
    assert r.status_code == 422 and r.json()["fields"] == ["chosen.reply"]
    r = client.post("/api/feedback", json={"tweet": "", "chosen": {"reply": "ok"}})
    assert r.status_code == 422 and r.json()["fields"] == ["tweet"]
    assert not log.path.exists()


def test_fifty_concurrent_feedback_posts_leave_fifty_rows(served):
    client, _, log = served

    def post(i):
        # Near-limit texts make each line ~5.8 kB, more than one atomic pipe write (4 kB), so
        # interleaved writes would show up as broken JSON.
        return client.post(
            "/api/feedback",
            json={
                "tweet": f"{TWEET} #{i} " + "t" * 1900,
                "chosen": {"reply": f"chosen {i} " + "a" * 1900, "score": 0.9},
                "others": [{"reply": f"rejected {i} " + "b" * 1900, "score": 0.1}],
            },
        ).status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(post, range(50)))
    assert codes == [200] * 50
    lines = log.path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 50
    rows = [json.loads(line) for line in lines]
    assert sorted(int(r["chosen"].split()[1]) for r in rows) == list(range(50))
    assert all(r["rejected"].startswith(f"rejected {r['chosen'].split()[1]} ") for r in rows)


def test_page_health_and_docs_work_offline(served):
    client, _, _ = served
    page = client.get("/")
    assert page.status_code == 200 and 'id="suggest"' in page.text and "/static/app.js" in page.text
    for path in ("/static/app.js", "/static/app.css", "/docs"):
        r = client.get(path)
        assert r.status_code == 200
        assert "cdn" not in r.text.lower() and "https://" not in r.text and "http://" not in r.text
    spec = client.get("/openapi.json").json()
    assert {"/api/suggest", "/api/feedback", "/healthz"} <= set(spec["paths"])
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
