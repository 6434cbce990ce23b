"""Settings parsed once (pydantic-settings): data home, LLM backend, log level."""

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
    llm_base_url: str | None = Field(None, description="base URL of the OpenAI-compatible server")
    llm_model: str = Field(
        "smollm2-135m", description="model name sent to the OpenAI-compatible server"
    )
    llm_api_key: str | None = Field(
        None, description="API key; falls back to OPENAI_API_KEY, then to a dummy for local servers"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"

    # Derived locations, all under the one data home.
    @property
    def store_dir(self) -> Path:
        return self.home / "store"

    @property
    def checkpoint_db(self) -> Path:
        return self.home / "checkpoints.sqlite"

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    @property
    def bench_dir(self) -> Path:
        return self.home / "bench"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment, parsed once; tests and the CLI build their own instead."""
    return Settings()


def configure_logging(level: str) -> None:
    """Logs go to stderr so that `--json` output on stdout stays machine-readable."""
    logging.basicConfig(
        level=getattr(logging, level), format="%(levelname)s %(name)s: %(message)s", force=True
    )
