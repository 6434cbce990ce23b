"""The Deployment Engine runner on real processes: a numpy-only Flower app on a local SuperLink and
two SuperNodes, FedAvg for two rounds, and no process left behind, whether the run completes or
its ServerApp raises."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import psutil
import pytest
from edgeai.tools.federated.deployment import (
    DeploymentError,
    DeploymentResult,
    _run_config_args,
    run_deployment,
)

PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "linear-fl"
version = "1.0.0"
description = "A linear model fitted by FedAvg, numpy only"
dependencies = ["flwr>=1.32", "numpy"]

[tool.hatch.build.targets.wheel]
packages = ["."]

[tool.flwr.app]
publisher = "edgeai"

[tool.flwr.app.components]
serverapp = "app:server_app"
clientapp = "app:client_app"

[tool.flwr.app.config]
num-server-rounds = 1
out = "rounds.json"
"""

APP = '''\
"""y = x.w + b on synthetic samples, one gradient step per ClientApp call, FedAvg on the server."""

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

TRUE_W, TRUE_B, LR, SAMPLES = np.array([2.0, -1.0]), 0.5, 0.1, 8


def partition(context: Context) -> tuple[np.ndarray, np.ndarray]:
    """The samples of this node's partition: shifted by partition-id so partitions differ."""
    pid, n = context.node_config["partition-id"], context.node_config["num-partitions"]
    assert 0 <= pid < n
    x = np.random.default_rng(pid).normal(size=(SAMPLES, 2)) + pid  # (S, 2)
    return x, x @ TRUE_W + TRUE_B  # (S,)


def loss(arrays: ArrayRecord, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray, float]:
    w, b = arrays.to_numpy_ndarrays()  # (2,), (1,)
    err = x @ w + b[0] - y  # (S,)
    return float(np.mean(err**2)), 2 * x.T @ err / len(y), float(2 * err.mean())


client_app = ClientApp()


@client_app.train()
def train(msg: Message, context: Context) -> Message:
    x, y = partition(context)
    arrays = msg.content["arrays"]
    mse, grad_w, grad_b = loss(arrays, x, y)
    w, b = arrays.to_numpy_ndarrays()
    new = ArrayRecord([w - LR * grad_w, b - LR * grad_b])
    metrics = MetricRecord({"num-examples": len(y), "loss": mse})
    return Message(RecordDict({"arrays": new, "metrics": metrics}), reply_to=msg)


class RecordingFedAvg(FedAvg):
    """FedAvg that remembers, per round, which nodes answered and the aggregated train loss; no
    federated evaluation, as each message costs the Deployment Engine seconds of polling."""

    def __init__(self) -> None:
        super().__init__(fraction_evaluate=0.0, min_train_nodes=2, min_available_nodes=2)
        self.rounds: list[dict] = []

    def aggregate_train(self, server_round: int, replies: Iterable[Message]):
        replies = list(replies)
        arrays, metrics = super().aggregate_train(server_round, replies)
        nodes = sorted(m.metadata.src_node_id for m in replies if m.has_content())
        self.rounds.append({"round": server_round, "nodes": nodes, "loss": metrics["loss"]})
        return arrays, metrics


server_app = ServerApp()


@server_app.main()
def main(grid: Grid, context: Context) -> None:
    strategy = RecordingFedAvg()
    initial = ArrayRecord([np.zeros(2), np.zeros(1)])
    strategy.start(grid, initial, num_rounds=context.run_config["num-server-rounds"])
    Path(context.run_config["out"]).write_text(json.dumps({"rounds": strategy.rounds}))
'''

BAD_APP = '''\
"""A ServerApp that fails at once."""

from flwr.app import Context
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

client_app = ClientApp()
server_app = ServerApp()


@server_app.main()
def main(grid: Grid, context: Context) -> None:
    raise RuntimeError("bad app: the ServerApp raises on purpose")
'''

HANGING_APP = '''\
"""A ServerApp that says it is running, then never finishes."""

import time
from logging import INFO

from flwr.app import Context
from flwr.clientapp import ClientApp
from flwr.common.logger import log
from flwr.serverapp import Grid, ServerApp

client_app = ClientApp()
server_app = ServerApp()


@server_app.main()
def main(grid: Grid, context: Context) -> None:
    log(INFO, "hanging app: ServerApp running")
    time.sleep(3600)
'''


class StopRun(Exception):
    """What the caller's on_line raises to abandon a run in flight."""


def write_app(folder: Path, source: str) -> Path:
    folder.mkdir()
    (folder / "pyproject.toml").write_text(PYPROJECT)
    (folder / "app.py").write_text(textwrap.dedent(source))
    return folder


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def flower_processes(work: Path) -> dict[int, str]:
    """Live processes whose HOME is the deployment's (everything it started, orphans included):
    pid -> command line."""
    home, found = str(work / "home"), {}
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("HOME") == home and proc.status() != psutil.STATUS_ZOMBIE:
                found[proc.pid] = " ".join(proc.cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


def test_two_supernodes_two_rounds_then_no_process_left(tmp_path: Path) -> None:
    # Prepare
    app = write_app(tmp_path / "linear-fl", APP)
    out = tmp_path / "rounds.json"
    lines: list[str] = []

    # Execute
    result = run_deployment(
        app,
        num_supernodes=2,
        run_config={"num-server-rounds": 2, "out": str(out)},
        work_dir=tmp_path / "work",
        timeout_s=300,
        on_line=lines.append,
    )

    # Assert
    assert isinstance(result, DeploymentResult)
    assert result.returncode == 0
    rounds = json.loads(out.read_text())["rounds"]
    assert [r["round"] for r in rounds] == [1, 2]
    assert all(len(set(r["nodes"])) == 2 for r in rounds)
    assert rounds[1]["loss"] < rounds[0]["loss"]  # one step each round, lr small: loss falls
    assert any("Successfully started run" in line for line in lines)
    assert len(result.pids) >= 4  # SuperLink, 2 SuperNodes, flwr run (and their children)
    assert [pid for pid in result.pids if alive(pid)] == []
    assert flower_processes(tmp_path / "work") == {}
    assert (app / "pyproject.toml").read_text() == PYPROJECT  # the caller's folder untouched


def test_failing_serverapp_raises_and_leaves_no_process(tmp_path: Path) -> None:
    # Prepare
    app = write_app(tmp_path / "bad", BAD_APP)
    work = tmp_path / "work"

    # Execute
    with pytest.raises(DeploymentError, match="finished:failed") as err:
        run_deployment(
            app,
            num_supernodes=2,
            run_config={"num-server-rounds": 1},
            work_dir=work,
            timeout_s=300,
        )

    # Assert
    assert "bad app: the ServerApp raises on purpose" in err.value.log_tail
    assert len(err.value.pids) >= 4
    assert [pid for pid in err.value.pids if alive(pid)] == []
    assert flower_processes(work) == {}
    assert (work / "logs" / "superlink.log").exists()


def test_run_config_keys_must_be_declared_by_the_app(tmp_path: Path) -> None:
    app = write_app(tmp_path / "linear-fl", APP)

    args = _run_config_args(app, {"num-server-rounds": 2, "out": "/tmp/a b.json"})
    with pytest.raises(DeploymentError, match="'epochs' is not declared"):
        _run_config_args(app, {"epochs": 3})

    assert args == ["--run-config", "num-server-rounds=2", "--run-config", "out='/tmp/a b.json'"]


def test_caller_abort_mid_run_stops_the_live_serverapp_too(tmp_path: Path) -> None:
    # Prepare: on_line raises once the ServerApp says it runs, so it is alive when stopped
    app = write_app(tmp_path / "hanging", HANGING_APP)
    work = tmp_path / "work"
    seen: list[str] = []
    running: list[str] = []  # command lines of the deployment's processes at that moment

    def on_line(line: str) -> None:
        seen.append(line)
        if "hanging app: ServerApp running" in line:
            running.extend(flower_processes(work).values())
            raise StopRun(line)

    # Execute
    with pytest.raises(StopRun):
        run_deployment(
            app,
            num_supernodes=2,
            run_config={},
            work_dir=work,
            timeout_s=300,
            on_line=on_line,
        )

    # Assert: no Flower process is left under this one, the ServerApp's included
    assert any("Start `flwr-serverapp` process" in line for line in seen)
    assert any("flwr-serverapp" in cmd for cmd in running)  # the detector sees it live ...
    assert flower_processes(work) == {}  # ... and nothing after
