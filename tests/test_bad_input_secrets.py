"""The judge's API key: never re-sent on a redirect, never shown whole or in part, never sent over
plain http to another machine. Servers are local `http.server`s on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from bad_input import assert_one_line_error, cli
from hypothesis import given, settings
from hypothesis import strategies as st

from replyrl.config import ConfigError, load_config
from replyrl.evaluation.evaluate import EvalConfig
from replyrl.evaluation.judge import (
    REDACT_MIN_CHARS,
    ApiBackend,
    JudgeConfig,
    JudgeError,
    check_base_url,
    redact,
)

KEY = "sk-proj-Ab3/De6+Gh9_Jk2.Lm5=Np8-Qr1"  # '/', '+', '=' get escaped in JSON and URLs


class Recorder(BaseHTTPRequestHandler):
    """Answers with `self.server.answer(handler)`; records every request it gets."""

    def do_POST(self):
        n = int(self.headers.get("content-length") or 0)
        self.rfile.read(n)
        self.server.seen.append({k.lower(): v for k, v in self.headers.items()})
        code, headers, body = self.server.answer(self)
        self.send_response(code)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture()
def serve():
    servers = []

    def start(answer):
        srv = HTTPServer(("127.0.0.1", 0), Recorder)
        srv.answer, srv.seen = answer, []
        threading.Thread(target=srv.serve_forever, args=(0.01,), daemon=True).start()
        servers.append(srv)
        return srv, f"http://127.0.0.1:{srv.server_address[1]}"

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def _backend(monkeypatch, url, kind="openai"):
    monkeypatch.setenv("JUDGE_TEST_KEY", KEY)
    cfg = JudgeConfig(
        backend=kind, model="m", base_url=url, api_key_env="JUDGE_TEST_KEY", retries=0
    )
    return ApiBackend(cfg)


def _no_piece_of_key(text: str) -> None:
    forms = {KEY, json.dumps(KEY)[1:-1], KEY.replace("/", "\\/")}
    for form in forms:
        for i in range(len(form) - REDACT_MIN_CHARS + 1):
            assert form[i : i + REDACT_MIN_CHARS] not in text, (
                form[i : i + REDACT_MIN_CHARS],
                text,
            )


# --- redirects ----------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_redirect_is_not_followed_with_the_key(serve, monkeypatch, code, kind):
    other, other_url = serve(lambda h: (200, {}, b'{"choices": []}'))
    _, url = serve(lambda h: (code, {"location": f"{other_url}{h.path}"}, b""))
    backend = _backend(monkeypatch, url, kind)
    with pytest.raises(JudgeError, match=f"HTTP {code}, a redirect") as e:
        backend.prob_a(["Tweet: t\n\nReply A: a\n\nReply B: b"])
    assert other.seen == []  # the key never reached the other server
    assert "not followed" in str(e.value)
    _no_piece_of_key(str(e.value))


def test_redirect_to_another_host_is_named(serve, monkeypatch):
    _, url = serve(lambda h: (302, {"location": "https://collector.example/steal"}, b""))
    with pytest.raises(JudgeError, match="collector.example"):
        _backend(monkeypatch, url).prob_a(["x"])


# --- redaction of echoed keys -----------------------------------------------------------------------

ECHOES = {
    "whole key": KEY,
    "prefix cut at 8": KEY[:8],
    "prefix cut at 20": KEY[:20] + "...",
    "suffix": "..." + KEY[-10:],
    "middle piece": KEY[7:19],
    "json escaped": json.dumps({"error": f"bad key {KEY}"}, ensure_ascii=True).replace("/", "\\/"),
    "json escaped piece": json.dumps(KEY[2:14]).replace("/", "\\/"),
    "url quoted": "key=" + __import__("urllib.parse").parse.quote(KEY, safe=""),
    "cut by the 300 echo limit": "x" * 290 + KEY,
    "masked middle": KEY[:9] + "*" * 10 + KEY[-9:],
    "twice": f"{KEY} and again {KEY[3:]}",
    "inside a word": f"prefix{KEY[5:20]}suffix",
}


@pytest.mark.parametrize("echo", ECHOES.values(), ids=ECHOES.keys())
@pytest.mark.parametrize("code", [400, 401, 403])
def test_echoed_key_is_redacted(serve, monkeypatch, echo, code):
    body = json.dumps({"error": {"message": f"Incorrect API key provided: {echo}"}}).encode()
    _, url = serve(lambda h: (code, {"content-type": "application/json"}, body))
    with pytest.raises(JudgeError, match=f"HTTP {code}") as e:
        _backend(monkeypatch, url).prob_a(["x"])
    _no_piece_of_key(str(e.value))
    if len(echo) < 250:  # a longer echo is cut at 300 characters before its (redacted) key
        assert "***" in str(e.value)


def test_short_fragments_are_kept():
    assert redact("error near sk-proj", KEY) == "error near sk-proj"  # 7 characters: kept
    assert redact(f"got {KEY[:8]}", KEY) == "got ***"


KEY_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./+="


@settings(max_examples=300, deadline=None)
@given(
    key=st.text(alphabet=KEY_CHARS, min_size=8, max_size=60),
    before=st.text(max_size=30),
    after=st.text(max_size=30),
    start=st.integers(0, 60),
    length=st.integers(REDACT_MIN_CHARS, 60),
    escape=st.sampled_from(["raw", "json", "json-slash", "url"]),
)
def test_generated_echoes_are_redacted(key, before, after, start, length, escape):
    from urllib.parse import quote

    piece = key[start : start + length]
    if len(piece) < REDACT_MIN_CHARS:
        piece = key
    shown = {
        "raw": piece,
        "json": json.dumps(piece)[1:-1],
        "json-slash": json.dumps(piece)[1:-1].replace("/", "\\/"),
        "url": quote(piece, safe=""),
    }[escape]
    out = redact(before + shown + after, key)
    assert shown not in out or len(shown) < REDACT_MIN_CHARS
    for i in range(len(key) - REDACT_MIN_CHARS + 1):
        assert key[i : i + REDACT_MIN_CHARS] not in out


# --- plain http only to this machine ----------------------------------------------------------------

REFUSED_URLS = {
    "remote http": "http://api.example.com/v1",
    "private ip": "http://10.0.0.7:8000/v1",
    "lan ip": "http://192.168.1.20/v1",
    "ipv6 remote": "http://[2001:db8::1]/v1",
    "localhost lookalike": "http://localhost.attacker.example/v1",
    "loopback lookalike": "http://127.0.0.1.nip.io/v1",
    "ftp": "ftp://files.example.com/",
    "file": "file:///etc/passwd",
    "no scheme": "api.openai.com/v1",
    "no host": "https://",
    "javascript": "javascript:alert(1)",
}


@pytest.mark.parametrize("url", REFUSED_URLS.values(), ids=REFUSED_URLS.keys())
def test_base_urls_the_key_must_not_go_to(url):
    with pytest.raises(ConfigError, match="base_url"):
        JudgeConfig(backend="openai", model="m", base_url=url)
    with pytest.raises(ConfigError, match="base_url"):
        load_config(
            EvalConfig, None, [f"judge.base_url={url}", "judge.backend=openai", "judge.model=m"]
        )


@pytest.mark.parametrize(
    "url",
    [
        "https://api.openai.com/v1",
        "https://10.0.0.7/v1",
        "http://localhost:8000/v1",
        "http://127.0.0.1:9/v1",
        "http://127.5.5.5/v1",
        "http://[::1]:8080/v1",
    ],
)
def test_allowed_base_urls(url):
    check_base_url(url)
    assert JudgeConfig(backend="openai", model="m", base_url=url).base_url == url


def test_remote_http_through_the_cli(tmp_path):
    cfg = tmp_path / "eval.yaml"
    cfg.write_text("judge:\n  backend: openai\n  model: m\n  base_url: http://judge.example/v1\n")
    data = tmp_path / "d.jsonl"
    data.write_text('{"tweet_id": "t", "tweet": "a", "reply": "b", "reply_likes": 1}\n')
    r = cli(
        "evaluate", "--model", "a=base", "--data", data, "--out", tmp_path / "o", "--config", cfg
    )
    assert_one_line_error(r, "base_url", "http://judge.example/v1", "https://")


# --- broken answers are errors, not silent ties -------------------------------------------------------

ANSWERS = {
    "not JSON": b"<html>oops</html>",
    "invalid UTF-8": b'{"choices": "\xff"}',
    "a list": b"[1, 2]",
    "no choices": b"{}",
    "empty choices": b'{"choices": []}',
    "choice a string": b'{"choices": ["A"]}',
    "bad logprob": b'{"choices": [{"logprobs": {"content": [{"top_logprobs": [{"token": "A", "logprob": "x"}]}]}}]}',
    "huge logprob": b'{"choices": [{"logprobs": {"content": [{"top_logprobs": [{"token": "A", "logprob": 1e308}]}]}}]}',
}


@pytest.mark.parametrize("body", ANSWERS.values(), ids=ANSWERS.keys())
def test_broken_answers_are_judge_errors(serve, monkeypatch, body):
    _, url = serve(lambda h: (200, {"content-type": "application/json"}, body))
    with pytest.raises(JudgeError):
        _backend(monkeypatch, url).prob_a(["x"])


@pytest.mark.parametrize("body", [b"{}", b'{"content": "A"}', b"[]"], ids=["none", "text", "list"])
def test_broken_anthropic_answers(serve, monkeypatch, body):
    _, url = serve(lambda h: (200, {}, body))
    with pytest.raises(JudgeError):
        _backend(monkeypatch, url, "anthropic").prob_a(["x"])


# --- issue 26: the key echoed with its characters escaped ----------------------------------------


def _u(text: str) -> str:
    return "".join(f"\\u{ord(c):04x}" for c in text)


ESCAPED_ECHOES = {
    "every char \\u": _u(KEY),
    "every char \\U upper hex": "".join(f"\\u{ord(c):04X}" for c in KEY),
    "\\u piece": _u(KEY[4:16]),
    "\\u then plain": _u(KEY[:6]) + KEY[6:],
    "every other char \\u": "".join(_u(c) if i % 2 else c for i, c in enumerate(KEY)),
    "\\u escaped twice": "".join(f"\\\\u{ord(c):04x}" for c in KEY),
    "url every char": "".join(f"%{ord(c):02X}" for c in KEY),
    "url twice": "".join(f"%25{ord(c):02X}" for c in KEY),
    "html decimal entities": "".join(f"&#{ord(c)};" for c in KEY),
    "html hex entities": "".join(f"&#x{ord(c):x};" for c in KEY),
    "base64": __import__("base64").b64encode(KEY.encode()).decode(),
}


def _no_decoded_key(text: str) -> None:
    """No 8-character piece of the key survives, however the echo spelled it."""
    import base64
    import html
    from urllib.parse import unquote

    decoded = html.unescape(unquote(unquote(text)))
    decoded = json.loads('"' + decoded.replace("\\\\", "\\").replace('"', '\\"') + '"')
    _no_piece_of_key(decoded)
    assert base64.b64encode(KEY.encode()).decode()[:12] not in text


@pytest.mark.parametrize("echo", ESCAPED_ECHOES.values(), ids=ESCAPED_ECHOES.keys())
def test_escaped_echo_of_the_key_is_redacted(serve, monkeypatch, echo):
    # the body is written by hand: the server itself chose these escapes
    body = ('{"error": {"message": "Incorrect API key provided: ' + echo + '"}}').encode()
    _, url = serve(lambda h: (401, {"content-type": "application/json"}, body))
    with pytest.raises(JudgeError, match="HTTP 401") as e:
        _backend(monkeypatch, url).prob_a(["x"])
    assert "***" in str(e.value)
    _no_decoded_key(str(e.value))


def test_escapes_that_are_not_the_key_are_kept():
    text = 'bad "x" at \\u0041 and %20 and &#65; near ' + _u("sk-p")
    assert redact(text, KEY) == text  # 4 characters of the key: under the 8 that count


@settings(max_examples=200, deadline=None)
@given(
    key=st.text(alphabet=KEY_CHARS, min_size=8, max_size=40),
    escaped=st.lists(st.booleans(), min_size=40, max_size=40),
    spelling=st.sampled_from(["\\u", "%", "&#"]),
    before=st.text(max_size=20),
)
def test_generated_escaped_echoes_are_redacted(key, escaped, spelling, before):
    def one(c: str, esc: bool) -> str:
        if not esc:
            return c
        return {"\\u": f"\\u{ord(c):04x}", "%": f"%{ord(c):02x}", "&#": f"&#{ord(c)};"}[spelling]

    echo = "".join(one(c, e) for c, e in zip(key, escaped))
    out = redact(before + " " + echo, key)
    assert "***" in out
    import html
    import re
    from urllib.parse import unquote

    plain = html.unescape(unquote(re.sub(r"\\u([0-9a-f]{4})", lambda m: chr(int(m[1], 16)), out)))
    for i in range(len(key) - REDACT_MIN_CHARS + 1):
        assert key[i : i + REDACT_MIN_CHARS] not in plain, (echo, out)


# --- issue 26: report.md shows hostile tweets and replies as text ----------------------------------

HOSTILE_TEXT = {
    "script": "<script>alert('x')</script> nice",
    "img onerror": '<img src=x onerror="alert(1)">',
    "html comment": "before <!-- hidden --> after",
    "link": "[click me](javascript:alert(1))",
    "image": "![pixel](https://tracker.example/p.gif)",
    "autolink": "<https://evil.example>",
    "emphasis": "**loud** and _quiet_ and ~~gone~~",
    "code": "`rm -rf /`",
    "pipe": "a | b | c",
    "heading": "# Breaking",
    "list": "- item",
    "numbered": "1. first",
    "entity": "&lt;script&gt; and &amp;",
    "backslash": "\\*not emphasis\\*",
    "newlines": "line one\n\n# line two\n| x |",
}


def _rendered(md: str) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable("table").render(md)


@pytest.mark.parametrize("text", HOSTILE_TEXT.values(), ids=HOSTILE_TEXT.keys())
def test_report_markdown_shows_tweets_and_replies_as_text(text):
    import html

    from replyrl.evaluation.report import escape_markdown, to_markdown

    md = to_markdown([("table", ["tweet", "reply"], [[text, text]])])
    rendered = _rendered(md)
    for tag in ("<script", "<img", "<a ", "<em>", "<strong>", "<code>", "<h1", "<li", "<!--"):
        assert tag not in rendered, rendered
    # one row of exactly two cells, each showing the text itself
    cells = rendered.split("<tbody>")[1].split("<td>")[1:]
    assert len(cells) == 2, rendered
    shown = html.unescape(cells[0].split("</td>")[0])
    assert shown == " ".join(text.splitlines()), (shown, text)
    # as a paragraph of its own too (where other report sections may put a sample)
    para = _rendered(escape_markdown(text))
    assert html.unescape(para.removeprefix("<p>").removesuffix("</p>\n")) == " ".join(
        text.splitlines()
    ), para
