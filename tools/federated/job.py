"""One federated run's job file: what the generated Flower app trains on and where it writes.

The trusted parent (trial.py) prepares the data once (arrays as .npy files, one index array per
client) and writes this JSON next to the generated code; the ServerApp and every ClientApp read
it (appkit.job_of), whether they run in the Simulation Engine (the path comes through the
EDGEAI_FL_JOB environment variable, because `run_simulation` passes no run config) or on the
Deployment Engine (the run config's "job" key).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Self

from pydantic import BaseModel, Field

JOB_ENV = "EDGEAI_FL_JOB"


class JobFile(BaseModel):
    """A job written once by the trusted parent and read by every app process (atomic write)."""

    def write(self, path: Path) -> Path:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.model_dump_json(indent=1), encoding="utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def read(cls, path: Path | str) -> Self:
        return cls.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))


class FLJob(JobFile):
    """Everything a run needs besides the generated configuration."""

    data: str = Field(description="the data spec the arrays came from: generated, digits, cifar10:PATH")
    data_dir: str = Field(description="folder of x_train.npy, y_train.npy, x_val.npy, ... (float32 NCHW)")
    partitions: str = Field(description=".npz with one index array per client: client_0, client_1, ...")
    clients: int = Field(ge=1)
    rounds: int = Field(ge=1)
    fraction: float = Field(1.0, gt=0, le=1, description="share of clients trained per round")
    seed: int = 0
    threads: int = Field(1, ge=1, description="torch threads per client / server process")
    out_dir: str = Field(description="where the curve (curve.jsonl) and final weights go")
    channels: int
    image_size: int
    num_classes: int
    classes: list[str]
    model_bytes: int | None = Field(None, description="set by the server once the model is built")
    uplink_bytes_per_s: float = 250e3
    downlink_bytes_per_s: float = 500e3
