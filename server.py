"""FastAPI agent API over the same graph the CLI uses: plan, ask (threads), devices, and the
LangGraph Agent Server API (graphs/api/: assistants, threads, runs) that `langgraph_sdk` drives.

The chat page (graphs/api/chat.py: `/`, its files, and `/files/` for run plots) talks to the
same Agent Server routes; `/scenarios/runs` (graphs/api/scenarios.py) runs the scenario files of
`edgeai run` in the background, each in a fresh home under this one. `uvicorn
edgeai.server:app` with EDGEAI_HOME set, or `create_app(settings)` in code and tests. The app's
assembly (graphs/app.py) is opened and warmed up once, in the background from startup: `/health`
says the process is alive, `/ok` says it is ready (a plan can be served); requests that come
earlier wait for the warm-up. Hardened for clients that do not trust each other: a body over
`max_body_bytes` (default 1 MB, $EDGEAI_MAX_BODY_BYTES) is refused with 413 before it is read
whole; validation errors name the field, never echo the value; no response carries another
thread's id or an absolute path of this machine. With a token ($EDGEAI_API_TOKEN, or the file
$EDGEAI_API_TOKEN_FILE names) every route but the probes (/ok, /healthz, /health) and the chat
page's own files (`/`, `/static/...`: no secret in them; the page sends the token) needs it.
`edgeai serve` (cli/serve.py) runs it under uvicorn. Imports nothing from cli/.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from edgeai.config import Settings, get_settings
from edgeai.errors import EdgeAIError, HomeNotFoundError, UnknownThreadError, UserInputError
from edgeai.graphs.api.chat import chat
from edgeai.graphs.api.routes import ROUTERS
from edgeai.graphs.api.runs import Conflict, NotFound, Runs
from edgeai.graphs.api.scenarios import ScenarioRuns, scenarios
from edgeai.graphs.api.views import public
from edgeai.graphs.app import App
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
_APP_LOCK = threading.Lock()
OPEN_PATHS = frozenset({"/ok", "/healthz", "/health", "/"})
OPEN_PREFIXES = ("/static/",)  # the chat page's script and style: no secret in them


class TokenAuth:
    """ASGI middleware: every path but the probes and the chat page's files needs the token, as
    `Authorization: Bearer <token>` or as `x-api-key: <token>` (what `langgraph_sdk` sends for
    `api_key=`); 401 otherwise. Compared in constant time."""

    def __init__(self, app: Any, token: str) -> None:
        self.app, self.token = app, token.encode("utf-8")

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        bearer = headers.get(b"authorization", b"")
        given = bearer[7:].strip() if bearer[:7].lower() == b"bearer " else headers.get(b"x-api-key")
        if given and hmac.compare_digest(given, self.token):
            return await self.app(scope, receive, send)
        reply = JSONResponse(
            status_code=401, headers={"WWW-Authenticate": "Bearer"},
            content={"detail": "missing or invalid API token (Authorization: Bearer <token>)"})
        return await reply(scope, receive, send)


def api_token() -> str | None:
    """The token from $EDGEAI_API_TOKEN, or the file $EDGEAI_API_TOKEN_FILE names; None: open."""
    token = os.environ.get("EDGEAI_API_TOKEN")
    path = os.environ.get("EDGEAI_API_TOKEN_FILE")
    if not token and path:
        token = Path(path).read_text(encoding="utf-8").strip()
    return token or None


class BodyLimit:
    """ASGI middleware: 413 for a body over `limit` bytes, by Content-Length or as it streams."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"").decode("latin-1")
        too_big = JSONResponse(
            status_code=413, content={"detail": f"request body over {self.limit:,} bytes"}
        )
        if declared.isdigit() and int(declared) > self.limit:
            return await too_big(scope, receive, send)
        seen = 0

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooBig
            return message

        try:
            await self.app(scope, counted, send)
        except _TooBig:
            await too_big(scope, receive, send)


class _TooBig(Exception):
    pass


class PlanRequest(BaseModel):
    request: str = Field(min_length=1, max_length=2000, description="what the person wants")


class AskRequest(PlanRequest):
    thread: str | None = Field(None, description="continue this thread; omit to start one")
    seed: int = 0
    image_base64: str | None = Field(
        None,
        description="your photo (PNG/JPEG/WebP/AVIF bytes, base64) for the photo models; the "
        "whole body must fit the server's body limit (1 MB by default, $EDGEAI_MAX_BODY_BYTES)",
    )


class AskPublic(BaseModel):
    thread: str
    interrupted: dict[str, Any] | None = Field(
        None, description="the thread's previous turn, if it stopped before answering"
    )
    answer: str
    day: str | None
    plan: dict[str, Any] | None
    placements: list[dict[str, Any]] | None
    results: list[dict[str, Any]] | None
    sources: list[dict[str, Any]] = Field(
        default_factory=list, description="the manuals the plan relied on (device, digest, added)"
    )


class Warmup:
    """The app's assembly, opened and warmed in a background thread started with the server."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app: App | None = None
        self.runs: Runs | None = None
        self.error: Exception | None = None
        self.done = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start warming up (once; later calls do nothing)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="edgeai-warmup", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        try:
            app = App.open(self.settings)
            app.warm_up()  # the planner's encoders and indexes: the first plan is paid here
            self.runs = Runs(app)  # runs of a killed server are marked interrupted here
            self.app = app
        except Exception as exc:  # noqa: BLE001 - reported by /ok and by every request
            log.warning("warm-up failed: %s", exc)
            self.error = exc
        finally:
            self.done.set()

    def get(self) -> App:
        """The warmed app; a request that comes before the end of warm-up waits for it."""
        self.start()
        self.done.wait()
        if self.error is not None:
            raise self.error
        assert self.app is not None
        return self.app

    def get_runs(self) -> Runs:
        """The Agent Server API's run manager over the warmed app."""
        self.get()
        assert self.runs is not None
        return self.runs


def get_app(request: Request) -> App:
    """The app's store + planner + checkpointed graph (graphs/app.py), once warmed up."""
    return request.app.state.warmup.get()


AppDep = Annotated[App, Depends(get_app)]
router = APIRouter()


def create_app(
    settings: Settings | None = None, *, warm: bool = True, token: str | None = None
) -> FastAPI:
    """The API over one data home; warm-up starts now (`warm=False`: at startup or first use).
    With a `token` (default: `api_token()` from the environment) every route but /ok, /healthz,
    /health and the chat page's files needs it."""
    settings = settings or get_settings()
    token = token or api_token()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.warmup.start()
        yield

    app = FastAPI(
        title="edgeai",
        summary="autonomous edge AI: plan, select, offload, run, fuse",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.warmup = Warmup(settings)
    app.state.scenarios = ScenarioRuns(settings)
    app.include_router(router)
    app.include_router(chat)
    app.include_router(scenarios)
    for api_router in ROUTERS:
        app.include_router(api_router)
    limit = int(os.environ.get("EDGEAI_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))
    app.add_middleware(BodyLimit, limit=limit)
    if token:
        app.add_middleware(TokenAuth, token=token)  # added last: runs first, before any body
    _add_error_handlers(app)
    if warm:
        app.state.warmup.start()
    return app


def _add_error_handlers(app: FastAPI) -> None:
    """Typed errors become HTTP statuses here, at the edge: 404, 409, 503, 400, 422."""

    @app.exception_handler(NotFound)
    @app.exception_handler(UnknownThreadError)
    def _not_found(_request, exc: EdgeAIError):  # type: ignore[no-untyped-def]
        return JSONResponse(status_code=404, content={"detail": public(str(exc))})

    @app.exception_handler(Conflict)
    def _conflict(_request, exc: Conflict):  # type: ignore[no-untyped-def]
        return JSONResponse(status_code=409, content={"detail": public(str(exc))})

    @app.exception_handler(HomeNotFoundError)
    def _no_home(_request, exc: HomeNotFoundError):  # type: ignore[no-untyped-def]
        return JSONResponse(status_code=503, content={"detail": public(str(exc))})

    @app.exception_handler(EdgeAIError)
    def _refused(_request, exc: EdgeAIError):  # type: ignore[no-untyped-def]
        return JSONResponse(status_code=400, content={"detail": public(str(exc))})

    @app.exception_handler(ValidationError)
    @app.exception_handler(RequestValidationError)
    def _invalid(_request, exc: RequestValidationError):  # type: ignore[no-untyped-def]
        # the field and what is wrong with it; the value itself is never sent back
        detail = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))[:200], "type": e.get("type")}
            for e in exc.errors()[:10]
        ]
        return JSONResponse(status_code=422, content={"detail": detail})


@router.get("/health")
@router.get("/healthz")
def health(request: Request) -> dict[str, str]:
    """Alive: the process answers (it may still be warming up; see /ok)."""
    return {"status": "ok"}


@router.get("/ok")
def ok(request: Request) -> JSONResponse:
    """Ready: store opened, planner built and a plan served (200); else 503 with why not."""
    warmup: Warmup = request.app.state.warmup
    if not warmup.done.is_set():
        return JSONResponse(status_code=503, content={"status": "warming up"})
    if warmup.error is not None:
        return JSONResponse(
            status_code=503, content={"status": "failed", "detail": public(str(warmup.error))}
        )
    return JSONResponse(content={"status": "ready", "planner": warmup.app.planner.name})


@router.get("/devices")
def devices(s: AppDep) -> list[dict[str, Any]]:
    return [d.front_matter() for d in s.store.manuals()]


class ManualUpload(BaseModel):
    filename: str = Field(min_length=4, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*\.md$",
                          description="the manual's file name (names it in errors)")
    text: str = Field(min_length=1, max_length=200_000,
                      description="the manual: Markdown with YAML front matter (specs/planning.md)")


@router.get("/knowledge")
def knowledge_list(s: AppDep) -> list[dict[str, Any]]:
    """The devices (manuals) in the store, as `edgeai knowledge list` shows them."""
    return [d.front_matter() for d in s.store.manuals()]


@router.post("/knowledge/manuals")
def knowledge_upload(body: ManualUpload, s: AppDep) -> dict[str, Any]:
    """Add (or replace) one device manual: parsed and checked before it touches the store (a bad
    one is 422 naming the file and the field; a model id another device owns is refused by the
    store), written under the store's lock, then the planner is rebuilt over the new pool."""
    from edgeai.agents.planning.units import build_units
    from edgeai.knowledge.manuals import ManualError, parse_manual_text

    try:
        manual = parse_manual_text(body.text, body.filename)
    except ManualError as exc:
        raise HTTPException(status_code=422, detail=public(str(exc))) from exc
    out = s.store.add_parsed([manual], build_units)  # UserInputError (owned id): 400 (handler)
    s.replan()
    return out


@router.delete("/knowledge/devices/{device}")
def knowledge_remove(device: str, s: AppDep) -> dict[str, Any]:
    """Remove one device and its models from the store; the planner is rebuilt."""
    if s.store.device(device) is None:
        raise HTTPException(status_code=404, detail=f"unknown device '{device[:100]}'")
    models = s.store.remove_device(device)
    s.replan()
    return {"removed": device, "models": models}


@router.post("/plan")
def plan(body: PlanRequest, s: AppDep) -> dict[str, Any]:
    return s.planner.plan(body.request).model_dump(mode="json")  # EdgeAIError: 400 (handler)


def _photo(text: str | None) -> bytes | None:
    """The uploaded photo's bytes; a clear 400 (UserInputError) for text that is not base64."""
    if text is None:
        return None
    import base64
    import binascii

    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise UserInputError(f"field 'image_base64': not base64 ({exc})") from exc


@router.post("/ask", response_model=AskPublic)
def ask(body: AskRequest, s: AppDep) -> dict[str, Any]:
    try:
        out = s.ask(body.request, body.thread, seed=body.seed, image=_photo(body.image_base64))
    except UnknownThreadError as exc:
        raise HTTPException(status_code=404, detail=public(str(exc))) from exc
    # a request that started federated training names its run folder: not for clients
    if out.get("training"):
        out["training"] = {k: v for k, v in out["training"].items() if k != "dir"}
    if out.get("answer"):
        out["answer"] = public(out["answer"])
    return out


def __getattr__(name: str) -> Any:
    """`edgeai.server:app` for uvicorn, built from the environment on first use and kept: a
    second look-up must not open a second app (two warm-ups opening chromadb at once race)."""
    if name == "app":
        with _APP_LOCK:
            if "app" not in globals():
                globals()["app"] = create_app()
        return globals()["app"]
    raise AttributeError(name)
