"""LLM-as-judge: pairwise candidate-vs-reference preference with position swap (DESIGN §5).

Each (tweet, candidate, reference) is judged twice, candidate first and reference first, and the
two probabilities that the candidate is better are averaged, which cancels the judge's position
bias (Zheng et al. 2023, "Judging LLM-as-a-Judge", §3.3). Backends:

- `local` (default, offline): a HF causal LM; the preference is read from the next-token
  log-probabilities of the answer tokens "A" and "B" after the chat prompt, so no sampling and
  no parsing is involved.
- `openai` (any OpenAI-compatible `/chat/completions`) and `anthropic` (`/v1/messages`): plain
  HTTP with urllib. The key is read from the environment variable named in the config, sent only
  in the request header, and never logged, cached or written. The key never leaves for another
  address: redirects are not followed, `http://` is accepted for loopback hosts only, and every
  error message is redacted (the key, any 8+ character piece of it, however its characters are
  escaped: JSON `\\u`, URL `%XX`, HTML `&#NN;`; and its base64 form)
  before it is shown.

Every verdict is cached on disk keyed by backend, model, prompt and the ordered pair.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import logging
import math
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from replyrl.config import ConfigError
from replyrl.errors import UserError
from replyrl.io import atomic_write_json

JUDGE_SYSTEM = "You are a careful judge of social media replies. Answer with a single letter."
JUDGE_TEMPLATE = (
    "Tweet: {tweet}\n\nReply A: {a}\n\nReply B: {b}\n\n"
    "Which reply is more engaging, specific and on-topic for this tweet? Answer A or B."
)
_DEFAULT_URL = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com"}
_DEFAULT_KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
log = logging.getLogger(__name__)
REDACT_MIN_CHARS = 8
"""A piece of the key this long or longer is redacted wherever it appears in a message."""
_MAX_ERROR_BODY = 8192
"""Bytes of an error response read for the message (redacted, then cut to 300 characters)."""


class JudgeError(UserError, RuntimeError):
    """A judge backend that cannot answer; the message never contains the API key."""


@dataclass
class JudgeConfig:
    """Who judges candidate replies against the human reference."""

    enabled: bool = True
    """Run the judge at all."""
    backend: Literal["scorer", "local", "openai", "anthropic"] = "scorer"
    """scorer (default): the strongest offline scorer — the simulated audience on synthetic data,
    else the gold RM, else the proxy; local: an HF causal LM as LLM judge; or an HTTP API."""
    model: str | None = None
    """local: HF id/path (default: the packaged policy model); API: the model name (required)."""
    base_url: str | None = None
    """API base URL (default: the provider's public endpoint)."""
    api_key_env: str | None = None
    """Environment variable holding the API key (default OPENAI_API_KEY / ANTHROPIC_API_KEY)."""
    replies_per_tweet: int = 1
    """How many of each tweet's sampled replies are judged (the first ones)."""
    max_tweets: int | None = None
    """Judge at most this many tweets (None: all)."""
    batch_size: int = 8
    """Prompts per forward pass for the local backend."""
    timeout_s: float = 30.0
    """HTTP timeout per request."""
    retries: int = 3
    """Retries (exponential backoff) on HTTP 429/5xx from an API backend."""

    def __post_init__(self):
        if self.replies_per_tweet < 1 or self.batch_size < 1 or self.retries < 0:
            raise ConfigError(
                "judge.replies_per_tweet and judge.batch_size must be >= 1 and judge.retries >= 0"
            )
        if not 0 < self.timeout_s < math.inf:
            raise ConfigError(f"judge.timeout_s must be a finite number > 0, got {self.timeout_s}")
        if self.max_tweets is not None and self.max_tweets < 1:
            raise ConfigError(
                f"judge.max_tweets must be >= 1 (or null: all), got {self.max_tweets}"
            )
        if self.base_url is not None:
            check_base_url(self.base_url)
        if self.enabled and self.backend not in ("scorer", "local") and not self.model:
            raise ConfigError(
                f"judge.model is required for the {self.backend} backend "
                "(e.g. --set judge.model=gpt-4o-mini)"
            )


def check_base_url(url: str) -> None:
    """Refuse a judge URL the key must not be sent to: not http(s), or plain http to a host that is
    not this machine (the key would cross the network unencrypted)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise ConfigError(
            f"judge.base_url must be an https:// URL with a host, got {url!r} "
            "(e.g. https://api.openai.com/v1)"
        )
    if parts.scheme == "http" and not _is_loopback(host):
        raise ConfigError(
            f"judge.base_url {url!r}: plain http:// would send the API key unencrypted to {host}; "
            "use https:// (http:// is accepted for localhost only)"
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def redact(text: str, secret: str | None, min_chars: int = REDACT_MIN_CHARS) -> str:
    """`text` with the secret removed: whole, as any piece of `min_chars` or more characters (a
    key cut at a server's echo limit), with any of its characters escaped (JSON `\\u0073`, URL
    `%73`, HTML `&#115;`), and base64-encoded whole."""
    if not secret:
        return text
    forms = {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        json.dumps(secret)[1:-1].replace("/", "\\/"),
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret),
        base64.b64encode(secret.encode()).decode().rstrip("="),
        base64.urlsafe_b64encode(secret.encode()).decode().rstrip("="),
    }
    text = _redact_decoded(text, secret, min(min_chars, len(secret)))
    for form in sorted(forms, key=len, reverse=True):
        text = _redact_pieces(text, form, min(min_chars, len(form)))
    return text


# One escaped character: JSON \uXXXX (also escaped again, \\uXXXX) or \" \\ \/, URL %XX (also
# %25XX), or an HTML numeric entity.
_ESCAPED_CHAR = re.compile(
    r"\\+u([0-9a-fA-F]{4})|\\([\\/\"])|%(?:25)*([0-9a-fA-F]{2})|&#[xX]([0-9a-fA-F]{1,6});|&#([0-9]{1,7});"
)


def _redact_decoded(text: str, secret: str, min_chars: int) -> str:
    r"""Redact the secret however its characters are escaped, each on its own (a server may echo
    `\u0073\u006b...`, `%73%6b...` or a mix): match on the text with every escape decoded, then
    blank the escapes the match came from."""
    chars: list[str] = []
    spans: list[tuple[int, int]] = []  # where each decoded character sits in `text`
    last = 0
    for m in _ESCAPED_CHAR.finditer(text):
        chars.extend(text[last : m.start()])
        spans.extend((j, j + 1) for j in range(last, m.start()))
        u, plain, pct, hexa, dec = m.groups()
        code = int(u or pct or hexa, 16) if (u or pct or hexa) else int(dec) if dec else ord(plain)
        chars.append(chr(code) if code <= 0x10FFFF else "\ufffd")
        spans.append((m.start(), m.end()))
        last = m.end()
    if last == 0:
        return text  # nothing escaped: the plain passes cover it
    chars.extend(text[last:])
    spans.extend((j, j + 1) for j in range(last, len(text)))
    decoded = "".join(chars)
    hidden = [False] * len(text)
    i = 0
    while i < len(decoded):
        n = 0
        while i + n < len(decoded) and decoded[i : i + n + 1] in secret:
            n += 1
        if n >= min_chars:
            for start, end in spans[i : i + n]:
                hidden[start:end] = [True] * (end - start)
            i += n
        else:
            i += 1
    out, j = [], 0
    while j < len(text):
        if hidden[j]:
            out.append("***")
            while j < len(text) and hidden[j]:
                j += 1
        else:
            out.append(text[j])
            j += 1
    return "".join(out)


def _redact_pieces(text: str, secret: str, min_chars: int) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        n = 0  # longest piece of the secret starting at text[i]
        while i + n < len(text) and text[i : i + n + 1] in secret:
            n += 1
        if n >= min_chars:
            out.append("***")
            i += n
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: the request carries the API key, the new address might not be
    the provider's. urllib then raises the 3xx as an HTTPError."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def judge_prompt(tweet: str, a: str, b: str) -> str:
    """The user message for one ordered pair."""
    return JUDGE_TEMPLATE.format(tweet=tweet.strip(), a=a.strip(), b=b.strip())


class LocalBackend:
    """P(answer A) from a causal LM's next-token log-probabilities of "A" vs "B"."""

    def __init__(self, model_path: str | None, batch_size: int = 8, device: str = "auto"):
        from replyrl.models import load_policy

        self.model, self.tok = load_policy(model_path, device=device)
        self.tok.padding_side = "left"
        self.batch_size = batch_size
        self.ids = {x: self._answer_ids(x) for x in "AB"}

    def _answer_ids(self, letter: str) -> list[int]:
        # "A" and " A" are different tokens in most vocabularies; accept either spelling.
        ids = {self.tok.encode(s, add_special_tokens=False)[0] for s in (letter, f" {letter}")}
        return sorted(ids)

    def _text(self, prompt: str) -> str:
        msgs = [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": prompt}]
        if getattr(self.tok, "chat_template", None):
            return self.tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        return f"{JUDGE_SYSTEM}\n\n{prompt}\nAnswer:"

    def prob_a(self, prompts: list[str]) -> list[float]:
        import torch

        out: list[float] = []
        starts = range(0, len(prompts), self.batch_size)
        if len(starts) > 4:
            from rich.progress import track

            starts = track(starts, description=f"Judging {len(prompts)} ordered pairs")
        for s in starts:
            texts = [self._text(p) for p in prompts[s : s + self.batch_size]]
            enc = self.tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(
                self.model.device
            )
            with torch.no_grad():
                logits = self.model(**enc).logits[:, -1, :].float()  # (B, vocab) next token
            logp = torch.log_softmax(logits, dim=-1)
            la = torch.logsumexp(logp[:, self.ids["A"]], dim=-1)  # (B,)
            lb = torch.logsumexp(logp[:, self.ids["B"]], dim=-1)
            out.extend(torch.sigmoid(la - lb).tolist())  # P(A | answer is A or B)
        return out


class ApiBackend:
    """OpenAI-compatible or Anthropic HTTP judge; the key comes from the environment only."""

    def __init__(self, cfg: JudgeConfig):
        self.cfg = cfg
        self.kind = cfg.backend
        self.url = (cfg.base_url or _DEFAULT_URL[self.kind]).rstrip("/")
        check_base_url(self.url)
        env = cfg.api_key_env or _DEFAULT_KEY_ENV[self.kind]
        self._key = os.environ.get(env)
        if not self._key:
            raise JudgeError(
                f"the {self.kind} judge needs an API key in the environment variable "
                f"{env}; set it, or use --set judge.backend=local"
            )

    def _post(self, url: str, body: dict, headers: dict) -> dict:
        req = urllib.request.Request(
            url,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"content-type": "application/json", **headers},
        )
        for attempt in range(self.cfg.retries + 1):
            try:
                with _OPENER.open(req, timeout=self.cfg.timeout_s) as resp:
                    data = json.loads(resp.read().decode("utf-8"))
                if not isinstance(data, dict):
                    raise ValueError(f"expected a JSON object, got {type(data).__name__}")
                return data
            except urllib.error.HTTPError as e:
                # Rate limits and overloads pass; anything else (bad key, bad model) will not.
                if e.code in (429, 500, 502, 503, 529) and attempt < self.cfg.retries:
                    time.sleep(2.0**attempt)
                    continue
                if 300 <= e.code < 400:
                    where = urllib.parse.urlsplit(e.headers.get("location") or "").netloc
                    raise self._error(
                        f"{self.kind} judge at {url} answered HTTP {e.code}, a redirect to "
                        f"{where or 'another address'}; not followed (the request carries your API "
                        "key): set judge.base_url to the final address"
                    ) from None
                # redact the whole body, then cut it (a cut first could split the key)
                detail = self._redact(e.read(_MAX_ERROR_BODY).decode("utf-8", "replace"))
                raise self._error(
                    f"{self.kind} judge at {url} answered HTTP {e.code}: {' '.join(detail.split())[:300]}"
                ) from None
            except (urllib.error.URLError, TimeoutError, OSError, ValueError) as e:
                raise self._error(f"{self.kind} judge at {url} failed: {e}") from None
        raise AssertionError("unreachable")

    def _redact(self, text: str) -> str:
        return redact(text, self._key)

    def _error(self, message: str) -> JudgeError:
        return JudgeError(self._redact(message))

    def _one(self, prompt: str) -> float:
        try:
            return self._parse_one(prompt)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as e:
            raise self._error(
                f"{self.kind} judge at {self.url} answered in an unexpected shape ({e!r})"
            ) from None

    def _parse_one(self, prompt: str) -> float:
        if self.kind == "openai":
            data = self._post(
                f"{self.url}/chat/completions",
                {
                    "model": self.cfg.model,
                    "max_tokens": 1,
                    "temperature": 0,
                    "logprobs": True,
                    "top_logprobs": 5,
                    "messages": [
                        {"role": "system", "content": JUDGE_SYSTEM},
                        {"role": "user", "content": prompt},
                    ],
                },
                {"authorization": f"Bearer {self._key}"},
            )
            choice = data["choices"][0]  # no choice at all is a broken answer, not a tie
            if not isinstance(choice, dict):
                raise TypeError(f"choices[0] is {type(choice).__name__}, expected an object")
            top = ((choice.get("logprobs") or {}).get("content") or [{}])[0].get("top_logprobs")
            if top:
                p = {"A": 0.0, "B": 0.0}
                for t in top:
                    letter = t.get("token", "").strip()
                    if letter in p:
                        p[letter] += math.exp(t["logprob"])
                if p["A"] + p["B"] > 0:
                    return p["A"] / (p["A"] + p["B"])
            text = (choice.get("message") or {}).get("content") or ""
        else:
            data = self._post(
                f"{self.url}/v1/messages",
                {
                    "model": self.cfg.model,
                    "max_tokens": 1,
                    "temperature": 0,
                    "system": JUDGE_SYSTEM,
                    "messages": [{"role": "user", "content": prompt}],
                },
                {"x-api-key": self._key, "anthropic-version": "2023-06-01"},
            )
            content = data["content"]
            if not isinstance(content, list):
                raise TypeError(f"content is {type(content).__name__}, expected a list")
            text = "".join(c.get("text", "") for c in content if isinstance(c, dict))
        letter = text.strip()[:1].upper()
        # A reply that is neither letter counts as no preference rather than a silent win.
        return {"A": 1.0, "B": 0.0}.get(letter, 0.5)

    def prob_a(self, prompts: list[str]) -> list[float]:
        return [self._one(p) for p in prompts]


def _read_verdicts(path: Path) -> dict[str, float]:
    """The verdict cache; a corrupt file or entry is reported (file named) and judged again."""
    try:
        raw = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError) as e:
        log.warning("%s: corrupt judge cache (%s); judging again", path, str(e)[:80])
        return {}
    if not isinstance(raw, dict):
        log.warning("%s: judge cache is not a JSON object; judging again", path)
        return {}
    good = {
        k: float(v)
        for k, v in raw.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v <= 1.0
    }
    if len(good) < len(raw):
        log.warning(
            "%s: %d invalid judge verdict(s) dropped; judging them again",
            path,
            len(raw) - len(good),
        )
    return good


class Judge:
    """Position-swapped pairwise judge with an on-disk cache of every ordered verdict."""

    def __init__(
        self,
        cfg: JudgeConfig,
        cache_file: str | Path | None = None,
        backend=None,
        device: str = "auto",
    ):
        self.cfg = cfg
        self.backend = backend
        self.device = device
        self.cache_file = Path(cache_file) if cache_file else None
        self.cache: dict[str, float] = {}
        if self.cache_file and self.cache_file.exists():
            self.cache = _read_verdicts(self.cache_file)
        self.model_id = cfg.model or "default"

    def _backend(self):
        if self.backend is None:
            self.backend = (
                LocalBackend(self.cfg.model, self.cfg.batch_size, self.device)
                if self.cfg.backend == "local"
                else ApiBackend(self.cfg)
            )
        return self.backend

    def _key(self, prompt: str) -> str:
        raw = json.dumps([self.cfg.backend, self.model_id, JUDGE_SYSTEM, prompt])
        return hashlib.sha256(raw.encode()).hexdigest()[:24]

    def prob_better(self, triples: list[tuple[str, str, str]]) -> list[float]:
        """P(candidate beats reference) for each (tweet, candidate, reference), swap-averaged."""
        first = [judge_prompt(t, c, r) for t, c, r in triples]  # candidate is A
        second = [judge_prompt(t, r, c) for t, c, r in triples]  # candidate is B
        prompts = first + second
        todo = sorted({p for p in prompts if self._key(p) not in self.cache})
        if todo:
            for p, v in zip(todo, self._backend().prob_a(todo)):
                if not math.isfinite(v):
                    raise JudgeError(f"judge returned a non-finite probability {v}")
                self.cache[self._key(p)] = float(v)
            if self.cache_file:
                atomic_write_json(self.cache_file, self.cache)
        pa = [self.cache[self._key(p)] for p in prompts]
        n = len(triples)
        return [(pa[i] + (1.0 - pa[n + i])) / 2.0 for i in range(n)]
