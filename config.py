"""Settings parsed once (pydantic-settings): data home, LLM backend, log level; the locations
derived from the data home, and the refusal of a home that does not exist.

Kept light on purpose (pydantic-settings and platformdirs only): every `edgeai` command,
`--help` included, imports it before anything else.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_home() -> Path:
    """The per-user data directory (e.g. ~/.local/share/edgeai on Linux)."""
    return Path(platformdirs.user_data_dir("edgeai", appauthor=False))


def _under_home(name: str, doc: str) -> property:
    """A read-only location `home / name` of the settings' data home."""
    return property(lambda settings: settings.home / name, doc=doc)


class Settings(BaseSettings):
    """Every knob of a run; environment variables are EDGEAI_<NAME> (EDGEAI_HOME, ...)."""

    model_config = SettingsConfigDict(env_prefix="EDGEAI_", extra="ignore")

    home: Path = Field(
        default_factory=default_home, description="data home: store, checkpoints, runs"
    )
    llm_backend: Literal["embedded", "openai"] = Field(
        "embedded",
        description="embedded = SmolLM2-135M in-process; openai = any OpenAI-compatible server",
    )
    planner: Literal["embedded", "learned"] = Field(
        "embedded",
        description="which chooser plans when no LLM server is set: embedded = retrieval and "
        "calibrated margins; learned = the set decision learned from the blind-written pools "
        "(agents/planning/learned.py)",
    )
    llm_base_url: str | None = Field(None, description="base URL of the OpenAI-compatible server")
    llm_model: str = Field(
        "smollm2-135m", description="model name sent to the OpenAI-compatible server"
    )
    llm_max_tokens: int = Field(
        400,
        ge=1,
        le=32768,
        description="longest answer the planner asks the LLM for (a structured plan closes its "
        "open values once the budget is spent)",
    )
    llm_api_key: str | None = Field(
        None, description="API key; falls back to OPENAI_API_KEY, then to a dummy for local servers"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"
    checkpointer: str | None = Field(
        None,
        description="where threads are kept: 'sqlite' (default: a file under the home) or "
        "postgres://USER@HOST:PORT/DB, shared by several server workers",
    )
    store: str | None = Field(
        None,
        description="where the device manuals are kept: 'embedded' (default: chromadb under the "
        "home) or a chromadb server, http://HOST:PORT[/DATABASE], shared by several workers",
    )

    # Derived locations, all under the one data home.
    store_dir = _under_home("store", "the chromadb store of device manuals")
    checkpoint_db = _under_home("checkpoints.sqlite", "LangGraph's SQLite checkpoints")
    runs_dir = _under_home("runs", "run artifacts: plans, decisions, curves, generated code")
    bench_dir = _under_home("bench", "benchmark tables and plots")
    photos_dir = _under_home("photos", "people's photos given with a request (PNG, scaled down)")


def require_home(settings: Settings) -> None:
    """Commands and the server read a store only from a home that exists; they never create one."""
    from edgeai.errors import HomeNotFoundError

    if not settings.home.is_dir():
        raise HomeNotFoundError(
            f"data home '{settings.home}' does not exist "
            "(create one with `edgeai knowledge add FILE --home DIR` or `edgeai demo --home DIR`)"
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment, parsed once; tests and the CLI build their own instead."""
    return Settings()


def configure_logging(level: str) -> None:
    """Logs go to stderr so that `--json` output on stdout stays machine-readable."""
    logging.basicConfig(
        level=getattr(logging, level), format="%(levelname)s %(name)s: %(message)s", force=True
    )
