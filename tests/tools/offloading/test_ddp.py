"""AED pre-training under torchrun: two real processes on CPU (gloo), gradients averaged by
DistributedDataParallel; one process trains the plain module."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import torch
from edgeai.tools.offloading.train import TrainArgs, data_parallel, rank_world, train


def test_single_process_is_world_of_one(tmp_path: Path) -> None:
    assert rank_world() == (0, 1)
    module = torch.nn.Linear(2, 1)
    assert data_parallel(module) is module  # no process group: no wrapper, no communication
    meta = train(
        TrainArgs(sup_instances=2, sup_epochs=1, acl_iters=1, acl_batch=2, acl_sizes=(6,)),
        tmp_path / "one.pt",
    )
    assert meta["world_size"] == 1 and meta["data_parallel"] is None and (tmp_path / "one.pt").exists()


def test_torchrun_two_ranks_write_one_checkpoint(tmp_path: Path) -> None:
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert torchrun, "torchrun ships with torch"
    out = tmp_path / "ddp.pt"
    proc = subprocess.run(
        [
            torchrun,
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "edgeai.cli",
            "offload",
            "train",
            "--out",
            str(out),
            "--sup-instances",
            "4",
            "--sup-epochs",
            "1",
            "--acl-iters",
            "2",
            "--acl-sizes",
            "6",
            "--threads",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    meta = torch.load(out, map_location="cpu", weights_only=False)["meta"]
    assert meta["world_size"] == 2
    assert meta["data_parallel"] == "DistributedDataParallel (gloo)"
    assert json.dumps(meta["args"])  # the command's arguments travel with the checkpoint
