"""FastAPI agent API over the same graph the CLI uses: plan, ask (threads), devices.

A small first cut of the design card's server (the chat page comes later): `uvicorn
edgeai.server:app` with EDGEAI_HOME set, or `create_app(settings)` in code and tests.
"""

from __future__ import annotations

from typing import Annotated, Any

from edgeai.config import Settings, get_settings
from edgeai.errors import EdgeAIError, HomeNotFoundError, UnknownThreadError
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel, Field


class PlanRequest(BaseModel):
    request: str = Field(min_length=1, max_length=2000, description="what the person wants")


class AskRequest(PlanRequest):
    thread: str | None = Field(None, description="continue this thread; omit to start one")
    seed: int = 0


class AskPublic(BaseModel):
    thread: str
    answer: str
    day: str | None
    plan: dict[str, Any] | None
    placements: list[dict[str, Any]] | None
    results: list[dict[str, Any]] | None


def get_session(request: Request) -> Any:
    """The app's store + planner + checkpointed graph, opened on first use."""
    state = request.app.state
    if getattr(state, "session", None) is None:
        from edgeai.cli.ask import Session

        state.session = Session(state.settings)
    return state.session


SessionDep = Annotated[Any, Depends(get_session)]
router = APIRouter()


def create_app(settings: Settings | None = None) -> FastAPI:
    app = FastAPI(title="edgeai", summary="autonomous edge AI: plan, select, offload, run, fuse")
    app.state.settings = settings or get_settings()
    app.state.session = None
    app.include_router(router)

    @app.exception_handler(HomeNotFoundError)
    def _no_home(_request, exc: HomeNotFoundError):  # type: ignore[no-untyped-def]
        from fastapi.responses import JSONResponse

        return JSONResponse(status_code=503, content={"detail": str(exc)})

    return app


@router.get("/health")
def health(request: Request) -> dict[str, str]:
    return {"status": "ok", "home": str(request.app.state.settings.home)}


@router.get("/devices")
def devices(s: SessionDep) -> list[dict[str, Any]]:
    return [d.front_matter() for d in s.store.manuals()]


@router.post("/plan")
def plan(body: PlanRequest, s: SessionDep) -> dict[str, Any]:
    try:
        return s.planner.plan(body.request).model_dump(mode="json")
    except EdgeAIError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc


@router.post("/ask", response_model=AskPublic)
def ask(body: AskRequest, s: SessionDep) -> dict[str, Any]:
    try:
        return s.ask(body.request, body.thread, seed=body.seed)
    except UnknownThreadError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    except EdgeAIError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc


def __getattr__(name: str) -> Any:
    """`edgeai.server:app` for uvicorn, built from the environment on first use."""
    if name == "app":
        return create_app()
    raise AttributeError(name)
