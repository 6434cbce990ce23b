"""The store under crashes and concurrent writers (issue 35): real processes killed with SIGKILL,
real parallel `edgeai knowledge add` commands, a store broken by hand. The long run (200 kills at
random points) is `scripts/kill_store_writes.py`; these are its quick, deterministic cousins."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from edgeai.knowledge.store import JOURNAL, StoreCorruptError, open_store

EXE = [sys.executable, "-m", "edgeai.cli"]


def listing(home: Path) -> list[dict]:
    proc = subprocess.run([*EXE, "knowledge", "list", "--json", "--home", str(home)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    return json.loads(proc.stdout)


def manual(device: str, model: str) -> str:
    return f"""---
device: {device}
kind: smart speaker
tier: client
compute_hz: 1.2e9
uplink_bps: 2.0e6
models:
  - name: {model}
    task: heartbeat monitoring
    inputs: [audio]
    outputs: [heart_rate_bpm]
    description: Monitors the heartbeat of a person in the room from acoustic reflections.
---
# {device}

{model} returns beats per minute from chest motion.
"""


def test_a_write_interrupted_after_its_journal_is_rolled_back_on_open(fresh_home: Path) -> None:
    store = open_store(fresh_home)
    before = [d.device for d in store.manuals()]
    units = store.units("multilingual")[1].shape
    # the state a kill leaves between the delete and the write: journal committed, device gone
    store._write_journal({"devices": ["smart-plug"], "before": store._snapshot(["smart-plug"])})
    store._delete_devices(["smart-plug"])
    del store
    again = open_store(fresh_home)  # rolls back, under the lock
    assert [d.device for d in again.manuals()] == before
    assert again.units("multilingual")[1].shape == units
    assert not (fresh_home / "store" / JOURNAL).exists()


def test_a_half_written_store_is_refused_with_the_command_that_repairs_it(
    fresh_home: Path,
) -> None:
    store = open_store(fresh_home)
    store.unit_cols["multilingual"].delete(where={"device": "smart-plug"})  # no journal: by hand
    with pytest.raises(StoreCorruptError, match="smart-plug.*edgeai knowledge add .*smart-plug.md"):
        open_store(fresh_home)
    proc = subprocess.run([*EXE, "plan", "is the kettle on?", "--home", str(fresh_home)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "edgeai knowledge" in proc.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("delay", [0.0, 0.1])
def test_kill_9_inside_the_write_leaves_the_store_before_or_after(
    fresh_home: Path, delay: float
) -> None:
    before = listing(fresh_home)
    after = [d for d in before if d["device"] != "smart-plug"]
    proc = subprocess.Popen([*EXE, "knowledge", "remove", "smart-plug", "--home", str(fresh_home)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None and not (fresh_home / "store" / JOURNAL).exists():
        time.sleep(0.001)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert listing(fresh_home) in (before, after)
    plan = subprocess.run([*EXE, "plan", "how is my mood today?", "--home", str(fresh_home)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert plan.returncode == 0 and "Traceback" not in plan.stderr, plan.stderr


def test_parallel_adds_leave_one_owner_per_model_id(fresh_home: Path, tmp_path: Path) -> None:
    # ten processes at once, four of them claiming the same model id for different devices
    files = []
    for i in range(10):
        model = "shared-heartbeat" if i < 4 else f"room-{i}-heartbeat"
        files.append(tmp_path / f"room-{i}.md")
        files[-1].write_text(manual(f"room-{i}-speaker", model), encoding="utf-8")
    procs = [
        subprocess.Popen([*EXE, "knowledge", "add", str(f), "--no-prepare", "--home",
                          str(fresh_home)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
        for f in files
    ]
    results = [(p.wait(timeout=600), *p.communicate()) for p in procs]
    ok = [i for i, (code, _, _) in enumerate(results) if code == 0]
    refused = [i for i, (code, _, _) in enumerate(results) if code != 0]
    assert len([i for i in ok if i < 4]) == 1 and set(range(4, 10)) <= set(ok)
    for i in refused:
        code, _, err = results[i]
        assert code == 2 and "Traceback" not in err
        assert "'shared-heartbeat' is already owned" in err.strip().splitlines()[-1]
    owners = [d["device"] for d in listing(fresh_home)
              for m in d.get("models", []) if m["name"] == "shared-heartbeat"]
    assert len(owners) == 1


def test_a_writer_waits_for_the_lock_and_says_for_whom(fresh_home: Path, tmp_path: Path) -> None:
    from edgeai.knowledge.lock import write_lock

    f = tmp_path / "room.md"
    f.write_text(manual("room-speaker", "room-heartbeat"), encoding="utf-8")
    with write_lock(fresh_home / "store"):
        proc = subprocess.run(
            [*EXE, "knowledge", "add", str(f), "--no-prepare", "--home", str(fresh_home)],
            capture_output=True, text=True, timeout=300, check=False,
            env={**os.environ, "EDGEAI_LOCK_TIMEOUT": "1"},
        )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "busy, waiting for PID" in proc.stderr
    assert "data home busy" in proc.stderr.strip().splitlines()[-1]
    assert "room-speaker" not in {d["device"] for d in listing(fresh_home)}
