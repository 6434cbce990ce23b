"""`edgeai fl run`: one configuration of the template, on the Simulation Engine or on Flower's
Deployment Engine (a local SuperLink and SuperNodes on 127.0.0.1), sandboxed either way.

The Deployment path runs the very app folder a trial writes, with the job path in the run config
(`job`) instead of the environment, and `deployment.py`'s launcher inside the sandbox, so the
generated code still never runs in this process and every process started is stopped by pid.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeai.tools.federated.template import load_manifest
from edgeai.tools.federated.trial import (
    job_for,
    prepare_data,
    read_curve,
    run_trial,
    write_curve_files,
)


def run_once(home: Path, config: dict[str, Any] | None, *, data: str, clients: int, rounds: int,
             scheme: str = "iid", alpha: float = 0.5, n_train: int | None = None, seed: int = 0,
             deployment: bool = False, seconds: float = 1800.0, memory_mb: int = 6144,
             on_line: Callable[[str], None] | None = None) -> dict[str, Any]:
    manifest = load_manifest()
    values = {**manifest.defaults(), **(config or {})}
    text = manifest.render(values)  # refuses unknown names and out-of-range values
    prepared = prepare_data(data, Path(home) / "cache" / "fl", clients=clients, scheme=scheme,
                            alpha=alpha, seed=seed, n_train=n_train)
    folder = Path(home) / "runs" / "fl" / ("run-" + time.strftime("%Y%m%d-%H%M%S"))
    if not deployment:
        record = run_trial(manifest, text, prepared, folder, trial=1, source="given",
                           rounds=rounds, seed=seed, seconds=seconds, memory_mb=memory_mb,
                           on_round=(lambda r: on_line(json.dumps(r))) if on_line else None)
        return record.summary() | {"engine": "simulation", "message": record.message,
                                   "dir": str(folder)}
    return _deployment(manifest, text, prepared, folder, rounds=rounds, seed=seed,
                       seconds=seconds, memory_mb=memory_mb, on_line=on_line)


def _deployment(manifest: Any, text: str, prepared: Any, folder: Path, *, rounds: int, seed: int,
                seconds: float, memory_mb: int, on_line: Callable[[str], None] | None) -> dict[str, Any]:
    from edgeai.tools.federated.sandbox import Limits, run_sandboxed
    from edgeai.tools.federated.trial import TrialRecord
    from edgeai.tools.federated.validate import validate

    config = validate(text, manifest)
    app_dir = manifest.write_app(text, folder / "app")
    out_dir = folder / "out"
    job_path = job_for(prepared, rounds=rounds, seed=seed, out_dir=out_dir).write(folder / "job.json")
    argv = [sys.executable, "-m", "edgeai.tools.federated.deployment", str(app_dir),
            "--supernodes", str(prepared.clients),
            "--run-config", json.dumps({"job": str(job_path)}),
            "--work-dir", str(folder / "deployment"), "--timeout", str(seconds)]
    result = run_sandboxed(argv, folder / "sandbox", Limits(seconds=seconds + 60, memory_mb=memory_mb),
                           on_line=on_line)
    curve = read_curve(out_dir / "curve.jsonl")
    status = result.status
    if status == "ok" and len(curve) < rounds + 1:
        status = "failed"
    record = TrialRecord(trial=1, config=config, source="given", status=status,
                         message=result.message, dir=str(folder), curve=curve, rounds=rounds,
                         clients=prepared.clients, seconds=result.seconds,
                         isolation=dict(result.isolation))
    if curve:
        write_curve_files(record, folder)
    return record.summary() | {"engine": "deployment", "message": result.message,
                               "dir": str(folder), "log_tail": result.stdout_tail[-2000:]}
