"""The local web app behind `replyrl serve`: one page, a JSON API, and the feedback log.

Endpoints: `GET /` (the page), `GET /static/*` (its CSS/JS), `GET /api/options` (tones, the
default voice), `POST /api/suggest`, `POST /api/feedback`, `GET /healthz`, `GET /openapi.json`, and
`GET /docs` — an offline API page of our own, because FastAPI's Swagger UI loads its JavaScript from
a CDN and this app must work with no network.

Feedback names a suggestion id the server issued and the index of the picked reply; the rows are
built from the server's own record of what it showed (`replyrl.serve.feedback.IssuedSuggestions`),
so nobody who can reach the port can write replies or scores into the reward data.

The model is loaded once, before the app is built (`replyrl serve` does it at start-up). Generation
is CPU/GPU-bound and not thread-safe (global torch seed), so one request generates at a time; at
most `queue_size` more wait, and any further request gets 503 at once rather than piling up.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.concurrency import run_in_threadpool

from replyrl.config import SEED_MAX
from replyrl.records import text_problem
from replyrl.serve.feedback import FeedbackError, FeedbackLog, IssuedSuggestions, Shown
from replyrl.serve.style import MAX_VOICE_CHARS, MAX_VOICE_EXAMPLES, TONES, Style, StyleError
from replyrl.serve.suggest import Suggester, SuggestError

log = logging.getLogger(__name__)
WEB_DIR = Path(__file__).resolve().parent / "web"
MAX_TWEET_CHARS = 2000
MAX_K = 16
MAX_BODY_DEPTH = 64
"""Nesting a request body may reach before a parse failure is blamed on depth (ours nest 2)."""
T = TypeVar("T")


def _usable_text(v: str) -> str:
    # the data layer's text rule, so the page takes no text a data file could not hold
    problem = text_problem("tweet", v)
    if problem:
        raise ValueError(problem)
    return v


class SuggestRequest(BaseModel):
    """Body of `POST /api/suggest`."""

    # strict: true is not k = 1 and "5" is not 5 (JSON numbers still fill float fields)
    model_config = ConfigDict(extra="forbid", strict=True)
    tweet: str = Field(
        ..., min_length=1, max_length=MAX_TWEET_CHARS, description="The tweet to reply to."
    )
    k: int = Field(5, ge=1, le=MAX_K, description="How many distinct replies to return.")
    temperature: float = Field(
        0.9, gt=0, le=2, allow_inf_nan=False, description="Sampling temperature."
    )
    seed: int | None = Field(
        None,
        ge=0,
        le=SEED_MAX,
        description=f"Sampling seed in 0..{SEED_MAX} (the sampler's range, as in configs and "
        "`--seed`); omit for fresh replies each time.",
    )
    tone: str | None = Field(
        None,
        description=f"Tone preset ({', '.join(TONES)}); null for the model's own instruction; "
        "omit for the server's default (--tone).",
    )
    voice: list[str] | None = Field(
        None,
        max_length=MAX_VOICE_EXAMPLES,
        description="Your past replies as style examples ([] for none); omit for the server's "
        "default (--voice).",
    )

    _tweet = field_validator("tweet")(_usable_text)

    @field_validator("tone")
    @classmethod
    def _known_tone(cls, v: str | None) -> str | None:
        if v is not None and v not in TONES:
            raise ValueError(f"unknown tone {v!r}; choose one of {', '.join(TONES)} or null")
        return v

    @field_validator("voice")
    @classmethod
    def _voice_items(cls, v: list[str] | None) -> list[str] | None:
        for i, text in enumerate(v or []):
            problem = text_problem("voice", text)
            if problem:
                raise ValueError(f"past reply {i + 1}: {problem}")
            if len(text) > MAX_VOICE_CHARS:
                raise ValueError(f"past reply {i + 1} is over {MAX_VOICE_CHARS} characters")
        return v


class SuggestionOut(BaseModel):
    """One ranked reply."""

    reply: str
    score: float
    components: dict[str, float]


class SuggestResponse(BaseModel):
    """Answer of `POST /api/suggest`."""

    id: str
    expires_in_s: float
    tweet: str
    suggestions: list[SuggestionOut]
    n_sampled: int
    n_distinct: int
    rounds: int
    seconds: float
    seed: int
    model: str
    reward: str
    tone: str | None
    voice: list[str]


class FeedbackRequest(BaseModel):
    """Body of `POST /api/feedback`: which of the shown replies the person would post."""

    # strict: "1", 1.0 or true are not an index; anything but the exact types is a 422
    model_config = ConfigDict(extra="forbid", strict=True)
    id: str = Field(
        ...,
        min_length=8,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The `id` of the `/api/suggest` answer.",
    )
    chosen: int = Field(
        ..., ge=0, lt=MAX_K, description="Index of the picked reply in that answer (0 = first)."
    )


class _HugeNumber:
    """A JSON integer with more digits than Python will read (4,300 by default)."""

    def __init__(self, digits: str) -> None:
        self.n_digits = len(digits.lstrip("-"))


def _read_int(digits: str) -> int | _HugeNumber:
    try:
        return int(digits)
    except ValueError:
        return _HugeNumber(digits)


def _huge_number_at(value: Any, loc: tuple = ()) -> tuple[tuple, _HugeNumber] | None:
    if isinstance(value, _HugeNumber):
        return loc, value
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, item in items:
        found = _huge_number_at(item, (*loc, key))
        if found:
            return found
    return None


def _too_deep_at(body: str) -> tuple:
    """Where a body too deeply nested for the JSON parser goes deep: the top-level key being read
    when the nesting passes MAX_BODY_DEPTH (a scan of the text, since parsing it is what failed)."""
    depth, key, last, start, in_string, escaped = 0, (), "", 0, False, False
    for i, c in enumerate(body):
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string, last = False, body[start:i]
        elif c == '"':
            in_string, start = True, i + 1
        elif c in "[{":
            depth += 1
            if depth > MAX_BODY_DEPTH:
                break
        elif c in "]}":
            depth -= 1
        elif c == ":" and depth == 1:
            try:
                key = (json.loads(f'"{last}"'),)
            except ValueError:
                key = (last,)
    return key


def _body_problem(raw: bytes) -> RequestValidationError | None:
    """A JSON body the parser cannot hold (nested past its recursion limit, an integer of
    thousands of digits) as a validation error naming the field; None for anything else, which
    FastAPI parses and validates itself."""
    try:
        body = json.loads(raw, parse_int=_read_int)
    except RecursionError:
        loc = ("body", *_too_deep_at(raw.decode("utf-8", "replace")))
        msg = f"nested more than {MAX_BODY_DEPTH} levels deep"
        return RequestValidationError([{"loc": loc, "msg": msg, "type": "too_deep"}])
    except ValueError:
        return None  # not JSON: FastAPI reports it
    found = _huge_number_at(body)
    if found is None:
        return None
    loc, number = found
    msg = f"a number of {number.n_digits:,} digits is out of range"
    return RequestValidationError([{"loc": ("body", *loc), "msg": msg, "type": "too_large"}])


class _CheckedBodyRoute(APIRoute):
    """Routes whose JSON body is first checked for what FastAPI's parser cannot take (it answers
    those with a bare 400 that names no field)."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def checked(request: Request):
            if request.method == "POST":
                problem = _body_problem(
                    await request.body()
                )  # starlette keeps the body for FastAPI
                if problem is not None:
                    raise problem
            return await handler(request)

        return checked


class QueueFull(Exception):
    """More requests than one generating plus `queue_size` waiting."""


class GenerationQueue:
    """One generation at a time, at most `queue_size` waiting, the rest refused at once.

    Generation runs on one dedicated worker thread: that serializes it (the model and the global
    torch seed are not safe to share) and keeps every torch allocation on one thread, so the
    allocator does not grow a memory arena per pool thread. The admission counter is guarded by a
    thread lock, so it holds whatever event loop (or test-client portal) a request arrives on.
    """

    def __init__(self, queue_size: int) -> None:
        if queue_size < 0:
            raise ValueError(f"queue_size must be >= 0, got {queue_size}")
        self.queue_size = queue_size
        self.admitted = 0
        """Requests generating or waiting to generate."""
        self._count = threading.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="replyrl-generate")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        with self._count:
            if self.admitted >= 1 + self.queue_size:
                raise QueueFull(
                    f"The server is busy: one request is generating and {self.admitted - 1} are waiting "
                    f"(queue size {self.queue_size}). Try again in a few seconds."
                )
            self.admitted += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._worker, functools.partial(fn, *args)
            )
        finally:
            with self._count:
                self.admitted -= 1

    def state(self) -> dict[str, int]:
        return {"admitted": self.admitted, "queue_size": self.queue_size}


def _field_name(loc: tuple | list) -> str:
    return ".".join(str(p) for p in loc if p != "body") or "body"


def create_app(
    suggester: Suggester,
    feedback: FeedbackLog,
    queue_size: int = 4,
    reward_name: str | None = None,
    issued: IssuedSuggestions | None = None,
    source: str | None = None,
) -> FastAPI:
    """Build the app around an already loaded `Suggester` (fast fakes in tests, the policy in serve).

    `issued` remembers the answers feedback may refer to (default: 30 min, last 1,000); `source`
    says where the model came from (e.g. the `--run` choice), shown on the page.
    """
    app = FastAPI(
        title="replyrl",
        version="0.1.0",
        docs_url=None,
        redoc_url=None,
        description="Reply suggestions from your trained model, and a feedback log for reward training.",
    )
    app.router.route_class = _CheckedBodyRoute
    queue = GenerationQueue(queue_size)
    issued = issued if issued is not None else IssuedSuggestions()
    reward = reward_name or getattr(suggester.ranker, "name", "reward")
    app.state.queue, app.state.feedback, app.state.suggester = queue, feedback, suggester
    app.state.issued = issued
    rng = random.SystemRandom()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default body is fine for programs; add one sentence naming each bad field for people.
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        fields = [_field_name(e["loc"]) for e in errors]
        message = "; ".join(f"{f}: {e['msg']}" for f, e in zip(fields, errors))
        return JSONResponse(
            status_code=422,
            content=jsonable_encoder({"detail": errors, "fields": fields, "message": message}),
        )

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", media_type="text/html")

    @app.get("/docs", include_in_schema=False)
    def docs() -> FileResponse:
        return FileResponse(WEB_DIR / "docs.html", media_type="text/html")

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        """Liveness, the loaded model and reward, and how full the generation queue is."""
        return {
            "status": "ok",
            "model": suggester.model_name,
            "reward": reward,
            "source": source,
            "queue": queue.state(),
            "feedback_rows": feedback.count(),
        }

    @app.get("/api/options")
    def options() -> dict[str, Any]:
        """Tone presets (name -> instruction), the default tone and voice, and the base instruction."""
        return {
            "tones": dict(TONES),
            "tone": suggester.style.tone,
            "voice": list(suggester.style.voice),
            "instruction": suggester.instruction,
            "max_voice": MAX_VOICE_EXAMPLES,
        }

    @app.post(
        "/api/suggest",
        response_model=SuggestResponse,
        responses={
            422: {"description": "Bad input; `fields` names them"},
            503: {"description": "Generation queue full; retry later"},
        },
    )
    async def suggest(req: SuggestRequest) -> dict[str, Any]:
        """Sample, de-duplicate and rank up to k replies to a tweet; the answer's `id` is what
        `/api/feedback` accepts."""
        seed = req.seed if req.seed is not None else rng.randrange(2**31)
        given = req.model_fields_set
        try:
            style = Style(
                req.tone if "tone" in given else suggester.style.tone,
                tuple(req.voice or ()) if "voice" in given else suggester.style.voice,
            )
        except StyleError as e:
            raise HTTPException(status_code=422, detail=str(e)) from None
        try:
            result = await queue.run(
                suggester.suggest, req.tweet, req.k, req.temperature, seed, style
            )
        except QueueFull as e:
            raise HTTPException(
                status_code=503, detail=str(e), headers={"Retry-After": "5"}
            ) from None
        except SuggestError as e:
            raise HTTPException(status_code=422, detail=str(e)) from None
        except (
            Exception
        ) as e:  # a broken model or reward: say what failed instead of a bare 500 page
            log.exception("suggest failed")
            raise HTTPException(
                status_code=500, detail=f"generation failed: {type(e).__name__}: {e}"
            ) from None
        entry = issued.issue(
            result.tweet,
            [Shown(s.reply, s.score) for s in result.suggestions],
            suggester.model_name,
            reward,
            result.style,
            result.seed,
        )
        return {
            **result.to_dict(),
            "id": entry.id,
            "expires_in_s": issued.ttl_s,
            "model": suggester.model_name,
            "reward": reward,
        }

    @app.post(
        "/api/feedback",
        responses={
            404: {"description": "Unknown suggestion id (never issued here, or forgotten)"},
            409: {"description": "A pick for this answer is already recorded"},
            410: {"description": "The suggestions expired"},
            422: {"description": "Bad input (`chosen` outside the shown replies)"},
            507: {"description": "Disk full: nothing was written"},
        },
    )
    async def post_feedback(req: FeedbackRequest) -> dict[str, Any]:
        """Record a pick among the replies of answer `id`: one preference row per reply passed
        over, built from the server's record (its replies, its scores), appended whole and fsynced."""
        try:
            entry = issued.take(req.id, req.chosen)
        except FeedbackError as e:
            raise HTTPException(status_code=e.status, detail=str(e)) from None
        try:
            written = await run_in_threadpool(feedback.append, entry.rows(req.chosen))
        except FeedbackError as e:
            issued.release(req.id)  # nothing was written: the same pick may be retried
            log.error("feedback not recorded: %s", e)
            raise HTTPException(status_code=e.status, detail=str(e)) from None
        return {"rows": written, "file": feedback.path.name}

    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
    return app
