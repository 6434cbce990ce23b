"""Entry point of a sandboxed federated run: `python -m edgeai.tools.federated.runner APP JOB`.

Runs in the child process that sandbox.py starts (never in the CLI's or the server's process):
it puts the generated app folder on the path, points every process of the run at the job file
(`$EDGEAI_FL_JOB`; Ray's workers inherit the environment) and runs the app's ServerApp and
ClientApp on Flower's Simulation Engine with one virtual SuperNode per client. The learning
curve is written by the ServerApp as it goes (appkit.evaluator); the exit status is 0 only when
every round reached it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path


def simulate(app_dir: Path, job_path: Path, cores: int) -> int:
    from edgeai.tools.federated.job import JOB_ENV, FLJob

    job = FLJob.read(job_path)
    os.environ[JOB_ENV] = str(job_path)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(app_dir), os.environ.get("PYTHONPATH", "")) if p)
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    sys.path.insert(0, str(app_dir))
    server_app = importlib.import_module("server_app").app
    client_app = importlib.import_module("client_app").app

    from flwr.simulation import run_simulation

    backend = {
        "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
        "init_args": {"num_cpus": cores, "num_gpus": 0, "include_dashboard": False,
                      "log_to_driver": True, "configure_logging": True, "logging_level": 40},
    }
    run_simulation(server_app=server_app, client_app=client_app, num_supernodes=job.clients,
                   backend_config=backend)
    curve = Path(job.out_dir) / "curve.jsonl"
    rounds = len(curve.read_text(encoding="utf-8").splitlines()) - 1 if curve.exists() else -1
    if rounds < job.rounds:
        print(f"EDGEAI_FAILED the run stopped after {max(rounds, 0)} of {job.rounds} rounds",
              flush=True)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edgeai.tools.federated.runner",
                                     description="Run a generated Flower app on the Simulation Engine.")
    parser.add_argument("app_dir", type=Path)
    parser.add_argument("job", type=Path)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    return simulate(args.app_dir.resolve(), args.job.resolve(), max(1, args.cores))


if __name__ == "__main__":
    raise SystemExit(main())
