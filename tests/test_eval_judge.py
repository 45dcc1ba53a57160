"""LLM-as-judge: position swap, caching, API backends against a fake server on 127.0.0.1."""

from __future__ import annotations

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from replyrl.evaluation.judge import ApiBackend, Judge, JudgeConfig, JudgeError

SECRET = "sk-test-secret-123"


class FakeAPI(BaseHTTPRequestHandler):
    """OpenAI- and Anthropic-shaped answers: prefers the reply containing 'GOOD'."""

    calls: list[dict] = []
    fail_next = 0

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        FakeAPI.calls.append(
            {
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
            }
        )
        if FakeAPI.fail_next:
            FakeAPI.fail_next -= 1
            return self._send(429, {"error": "rate limited"})
        user = body["messages"][-1]["content"]
        a_part = user.split("Reply A:")[1].split("Reply B:")[0]
        letter = "A" if "GOOD" in a_part else "B"
        if self.path.endswith("/chat/completions"):
            if self.headers.get("authorization") != f"Bearer {SECRET}":
                return self._send(401, {"error": "bad key"})
            other = "B" if letter == "A" else "A"
            out = {
                "choices": [
                    {
                        "message": {"content": letter},
                        "logprobs": {
                            "content": [
                                {
                                    "token": letter,
                                    "logprob": math.log(0.8),
                                    "top_logprobs": [
                                        {"token": letter, "logprob": math.log(0.8)},
                                        {"token": other, "logprob": math.log(0.2)},
                                    ],
                                }
                            ]
                        },
                    }
                ]
            }
        elif self.path == "/v1/messages":
            if self.headers.get("x-api-key") != SECRET:
                return self._send(401, {"error": f"bad key {self.headers.get('x-api-key')}"})
            out = {"content": [{"type": "text", "text": letter}]}
        else:
            return self._send(404, {"error": "no route"})
        self._send(200, out)

    def _send(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    srv = HTTPServer(("127.0.0.1", 0), FakeAPI)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    FakeAPI.calls = []
    FakeAPI.fail_next = 0
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


TRIPLES = [("tweet one", "GOOD reply", "plain ref"), ("tweet two", "meh reply", "GOOD ref")]


def test_openai_backend_uses_logprobs_and_swaps_positions(server, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_KEY", SECRET)
    cfg = JudgeConfig(
        backend="openai", model="fake-gpt", base_url=f"{server}/v1", api_key_env="FAKE_KEY"
    )
    judge = Judge(cfg, tmp_path / "judge.json")
    probs = judge.prob_better(TRIPLES)
    # candidate GOOD: P(A)=0.8 when first, P(A)=0.2 when second -> (0.8 + (1-0.2))/2
    assert probs == pytest.approx([0.8, 0.2])
    assert len(FakeAPI.calls) == 4 and all(c["body"]["model"] == "fake-gpt" for c in FakeAPI.calls)
    cached = (tmp_path / "judge.json").read_text()
    assert SECRET not in cached
    # second judge with the same cache file answers without any request
    FakeAPI.calls = []
    assert Judge(cfg, tmp_path / "judge.json").prob_better(TRIPLES) == pytest.approx(probs)
    assert FakeAPI.calls == []


def test_anthropic_backend_parses_text_answers(server, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    cfg = JudgeConfig(backend="anthropic", model="fake-claude", base_url=server)
    probs = Judge(cfg).prob_better(TRIPLES)
    assert probs == pytest.approx([1.0, 0.0])
    call = FakeAPI.calls[0]
    assert call["path"] == "/v1/messages" and call["headers"]["anthropic-version"] == "2023-06-01"


def test_api_backend_retries_rate_limits(server, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    FakeAPI.fail_next = 1
    cfg = JudgeConfig(backend="anthropic", model="fake-claude", base_url=server)
    assert Judge(cfg).prob_better(TRIPLES[:1]) == pytest.approx([1.0])
    assert len(FakeAPI.calls) == 3  # one 429, then both orders answered


def test_api_key_only_from_env_and_never_in_errors(server, monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    with pytest.raises(JudgeError, match="NO_SUCH_KEY"):
        ApiBackend(
            JudgeConfig(backend="openai", model="m", base_url=server, api_key_env="NO_SUCH_KEY")
        )
    monkeypatch.setenv("WRONG_KEY", "sk-wrong-value")
    cfg = JudgeConfig(backend="anthropic", model="m", base_url=server, api_key_env="WRONG_KEY")
    with pytest.raises(JudgeError) as err:
        Judge(cfg).prob_better(TRIPLES[:1])
    assert "401" in str(err.value) and "sk-wrong-value" not in str(err.value)


def test_api_backend_requires_model():
    with pytest.raises(ValueError, match="judge.model"):
        JudgeConfig(backend="openai")


class BiasedBackend:
    """Always prefers position A: the swap must cancel it to exactly 0.5."""

    def prob_a(self, prompts):
        return [0.9] * len(prompts)


def test_position_swap_cancels_order_bias():
    judge = Judge(JudgeConfig(), backend=BiasedBackend())
    assert judge.prob_better(TRIPLES) == pytest.approx([0.5, 0.5])


def test_local_backend_scores_answer_tokens(policy):
    from replyrl.evaluation.judge import LocalBackend

    backend = LocalBackend.__new__(LocalBackend)  # reuse the session's loaded policy
    backend.model, backend.tok = policy
    backend.tok.padding_side = "left"
    backend.batch_size = 2
    backend.ids = {x: backend._answer_ids(x) for x in "AB"}
    assert backend.ids["A"] != backend.ids["B"]
    probs = Judge(JudgeConfig(), backend=backend).prob_better(TRIPLES[:1])
    assert 0.0 < probs[0] < 1.0
    # batching (left padding) does not change the verdict
    backend.batch_size = 1
    assert Judge(JudgeConfig(), backend=backend).prob_better(TRIPLES[:1]) == pytest.approx(
        probs, abs=1e-4
    )
