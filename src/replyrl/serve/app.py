"""The local web app behind `replyrl serve`: one page, a JSON API, and the feedback log.

Endpoints: `GET /` (the page), `GET /static/*` (its CSS/JS), `POST /api/suggest`,
`POST /api/feedback`, `GET /healthz`, `GET /openapi.json`, and `GET /docs` — an offline API page
of our own, because FastAPI's Swagger UI loads its JavaScript from a CDN and this app must work with
no network.

The model is loaded once, before the app is built (`replyrl serve` does it at start-up). Generation
is CPU/GPU-bound and not thread-safe (global torch seed), so one request generates at a time; at
most `queue_size` more wait, and any further request gets 503 at once rather than piling up.
"""

from __future__ import annotations

import asyncio
import functools
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
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.concurrency import run_in_threadpool

from replyrl.serve.feedback import FeedbackLog, Shown, feedback_rows
from replyrl.serve.suggest import Suggester, SuggestError

log = logging.getLogger(__name__)
WEB_DIR = Path(__file__).resolve().parent / "web"
MAX_TWEET_CHARS = 2000
MAX_K = 16
T = TypeVar("T")


def _not_blank(v: str) -> str:
    if not v.strip():
        raise ValueError("must not be empty or only whitespace")
    return v


class SuggestRequest(BaseModel):
    """Body of `POST /api/suggest`."""

    model_config = ConfigDict(extra="forbid")
    tweet: str = Field(
        ..., min_length=1, max_length=MAX_TWEET_CHARS, description="The tweet to reply to."
    )
    k: int = Field(5, ge=1, le=MAX_K, description="How many distinct replies to return.")
    temperature: float = Field(
        0.9, gt=0, le=2, allow_inf_nan=False, description="Sampling temperature."
    )
    seed: int | None = Field(
        None, ge=0, description="Sampling seed; omit for fresh replies each time."
    )

    _tweet = field_validator("tweet")(_not_blank)


class SuggestionOut(BaseModel):
    """One ranked reply."""

    reply: str
    score: float
    components: dict[str, float]


class SuggestResponse(BaseModel):
    """Answer of `POST /api/suggest`."""

    tweet: str
    suggestions: list[SuggestionOut]
    n_sampled: int
    n_distinct: int
    rounds: int
    seconds: float
    seed: int
    model: str
    reward: str


class ShownReply(BaseModel):
    """A reply as the page showed it."""

    model_config = ConfigDict(extra="ignore")
    reply: str = Field(..., min_length=1, max_length=MAX_TWEET_CHARS)
    score: float = Field(0.0, allow_inf_nan=False)

    _reply = field_validator("reply")(_not_blank)


class FeedbackRequest(BaseModel):
    """Body of `POST /api/feedback`: the reply the person would post, and the ones they passed over."""

    model_config = ConfigDict(extra="forbid")
    tweet: str = Field(..., min_length=1, max_length=MAX_TWEET_CHARS)
    chosen: ShownReply
    others: list[ShownReply] = Field(default_factory=list, max_length=64)

    _tweet = field_validator("tweet")(_not_blank)


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
    suggester: Suggester, feedback: FeedbackLog, queue_size: int = 4, reward_name: str | None = None
) -> FastAPI:
    """Build the app around an already loaded `Suggester` (fast fakes in tests, the policy in serve)."""
    app = FastAPI(
        title="replyrl",
        version="0.1.0",
        docs_url=None,
        redoc_url=None,
        description="Reply suggestions from your trained model, and a feedback log for reward training.",
    )
    queue = GenerationQueue(queue_size)
    reward = reward_name or getattr(suggester.ranker, "name", "reward")
    app.state.queue, app.state.feedback, app.state.suggester = queue, feedback, suggester
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
            "queue": queue.state(),
            "feedback_rows": feedback.count(),
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
        """Sample, de-duplicate and rank up to k replies to a tweet."""
        seed = req.seed if req.seed is not None else rng.randrange(2**31)
        try:
            result = await queue.run(suggester.suggest, req.tweet, req.k, req.temperature, seed)
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
        return {**result.to_dict(), "model": suggester.model_name, "reward": reward}

    @app.post("/api/feedback")
    async def post_feedback(req: FeedbackRequest) -> dict[str, Any]:
        """Record a choice: one preference row per reply passed over, appended under a lock and fsynced."""
        rows = feedback_rows(
            req.tweet,
            Shown(req.chosen.reply, req.chosen.score),
            [Shown(o.reply, o.score) for o in req.others],
            model=suggester.model_name,
        )
        written = await run_in_threadpool(feedback.append, rows)
        return {"rows": written, "file": feedback.path.name}

    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
    return app
