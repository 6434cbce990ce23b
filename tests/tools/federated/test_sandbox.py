"""The sandbox for generated federated-learning code: each limit is hit by a real program, on the
best mechanism the machine offers and on the fallback (audit hook, RSS watchdog) as well, and a
trivial Flower app runs through Ray inside it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import psutil
import pytest
from edgeai.errors import UserInputError
from edgeai.tools.federated.sandbox import Limits, run_sandboxed

FALLBACK = {"network": "audit-hook", "memory": "watchdog"}


def _can(cmd: list[str]) -> bool:
    if shutil.which(cmd[0]) is None:
        return False
    return subprocess.run(cmd, capture_output=True, check=False).returncode == 0


def _has_cgroup() -> bool:
    """Root with a writable v1 memory hierarchy, or a v2 one offering the memory controller."""
    if os.geteuid() != 0:
        return False
    unified = Path("/sys/fs/cgroup/cgroup.controllers")
    if unified.exists():
        return "memory" in unified.read_text().split()
    return os.access("/sys/fs/cgroup/memory", os.W_OK)


HAS_NETNS = _can(["unshare", "-n", "true"]) or _can(["unshare", "-rn", "true"])
HAS_CGROUP = _has_cgroup()
MODES = [pytest.param(None, id="best"), pytest.param(FALLBACK, id="fallback")]


def program(tmp_path: Path, source: str, name: str = "prog.py") -> list[str]:
    path = tmp_path / name
    path.write_text(source)
    return [sys.executable, str(path)]


def expect_isolation(result, force) -> None:
    if force is not None:
        assert result.isolation["network"] == "audit-hook"
        assert result.isolation["memory"] == "watchdog"
        return
    if HAS_NETNS:
        assert result.isolation["network"] == "netns"
    if HAS_CGROUP:
        assert result.isolation["memory"] in ("cgroup-v1", "cgroup-v2")


def processes_in(scratch: Path) -> list[psutil.Process]:
    """Live processes whose working directory lies in `scratch` (what a sandbox left behind)."""
    left = []
    for p in psutil.process_iter():
        try:
            if p.status() != psutil.STATUS_ZOMBIE and p.cwd().startswith(str(scratch)):
                left.append(p)
        except psutil.Error:
            continue
    return left


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_lines_reach_on_line_and_the_logs(tmp_path: Path) -> None:
    # Prepare
    argv = program(
        tmp_path,
        "import sys\nfor i in range(3):\n    print(f'step {i}')\nprint('careful', file=sys.stderr)\n",
    )
    lines: list[str] = []
    # Execute
    result = run_sandboxed(argv, tmp_path / "scratch", on_line=lines.append)
    # Assert
    assert result.status == "ok", result.message
    assert result.returncode == 0
    assert lines == ["step 0", "step 1", "step 2"]
    assert (tmp_path / "scratch" / "stdout.log").read_text() == "step 0\nstep 1\nstep 2\n"
    assert (tmp_path / "scratch" / "stderr.log").read_text() == "careful\n"
    assert result.stdout_tail.endswith("step 2\n")
    expect_isolation(result, None)


def test_secrets_stay_out_and_home_is_in_scratch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-must-not-leak")
    monkeypatch.setenv("EDGEAI_SANDBOX_FALLBACK", "1")  # the env switch, on the fallback path
    argv = program(
        tmp_path,
        "import os, tempfile\n"
        "print(os.environ.get('OPENAI_API_KEY'))\n"
        "print(os.environ['HOME'], tempfile.gettempdir(), os.getcwd(), os.environ['EXTRA'])\n"
        "import edgeai\n",
    )
    scratch = tmp_path / "scratch"
    result = run_sandboxed(argv, scratch, env={"EXTRA": "given"})
    assert result.status == "ok", result.message
    first, second = result.stdout_tail.splitlines()
    assert first == "None"
    assert second == f"{scratch / 'home'} {scratch / 'tmp'} {scratch} given"
    expect_isolation(result, FALLBACK)


@pytest.mark.parametrize("force", MODES)
def test_timeout_stops_the_whole_tree(tmp_path: Path, force) -> None:
    # Prepare: a child in the group and one that leaves it with setsid
    argv = program(
        tmp_path,
        "import subprocess, time\n"
        "a = subprocess.Popen(['sleep', '100'])\n"
        "b = subprocess.Popen(['sleep', '101'], start_new_session=True)\n"
        "print(a.pid, b.pid, flush=True)\n"
        "time.sleep(100)\n",
    )
    # Execute
    result = run_sandboxed(argv, tmp_path / "scratch", Limits(seconds=3), _force=force)
    # Assert
    assert result.status == "timeout", result.message
    assert "3 s time limit" in result.message
    in_group, escaped = (int(x) for x in result.stdout_tail.split())
    assert gone(in_group) and gone(escaped)
    assert processes_in(tmp_path / "scratch") == []
    expect_isolation(result, force)


@pytest.mark.parametrize("force", MODES)
def test_memory_cap_covers_child_processes(tmp_path: Path, force) -> None:
    argv = program(
        tmp_path,
        "import subprocess, sys\n"
        "child = '''\n"
        "import time\n"
        "chunks = []\n"
        "for _ in range(12):\n"
        "    chunks.append(b'x' * (50 << 20))\n"
        "    time.sleep(0.05)\n"
        "time.sleep(30)\n"
        "'''\n"
        "sys.exit(subprocess.run([sys.executable, '-c', child]).returncode)\n",
    )
    result = run_sandboxed(
        argv, tmp_path / "scratch", Limits(seconds=60, memory_mb=200), _force=force
    )
    assert result.status == "memory", result.message
    assert "200 MB memory limit" in result.message
    assert processes_in(tmp_path / "scratch") == []
    expect_isolation(result, force)


@pytest.mark.parametrize("force", MODES)
def test_connection_outside_loopback_is_refused(tmp_path: Path, force) -> None:
    argv = program(
        tmp_path,
        "import socket\n"
        "try:\n"
        "    socket.create_connection(('8.8.8.8', 53), timeout=2)\n"
        "except OSError as e:\n"
        "    print('caught', e)\n",  # the hook does not raise: nothing to catch
    )
    result = run_sandboxed(argv, tmp_path / "scratch", Limits(seconds=30), _force=force)
    assert result.status == "network", result.message
    assert "refused a network connection to 8.8.8.8:53" in result.message
    assert "caught" not in result.stdout_tail
    expect_isolation(result, force)


def test_loopback_server_of_the_test_is_reachable_on_the_fallback(tmp_path: Path) -> None:
    # Prepare: a one-shot server on the host's loopback
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(b"hello from the test")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    argv = program(
        tmp_path,
        "import socket\n"
        f"with socket.create_connection(('127.0.0.1', {port}), timeout=5) as s:\n"
        "    print(s.recv(100).decode())\n",
    )
    # Execute
    result = run_sandboxed(argv, tmp_path / "scratch", Limits(seconds=30), _force=FALLBACK)
    server.close()
    # Assert
    assert result.status == "ok", result.message
    assert result.stdout_tail == "hello from the test\n"


LOOPBACK_INSIDE = """
import socket, sys, threading
server = socket.create_server(("127.0.0.1", 0))
port = server.getsockname()[1]
threading.Thread(target=lambda: server.accept()[0].sendall(b"pong"), daemon=True).start()
with socket.create_connection(("localhost", port), timeout=5) as s:
    print(s.recv(10).decode())
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
    print("host loopback reachable")
except OSError:
    print("host loopback not reachable")
"""


@pytest.mark.skipif(not HAS_NETNS, reason="no network namespaces on this machine")
def test_netns_has_its_own_loopback_only(tmp_path: Path) -> None:
    """Inside the namespace the program's own loopback works, the host's loopback does not (the
    test's server is unreachable), and even a Python without the hook (-I) has no route out."""
    host_server = socket.create_server(("127.0.0.1", 0))
    port = host_server.getsockname()[1]
    argv = program(tmp_path, LOOPBACK_INSIDE)
    escape = (
        "import socket\n"
        "print([name for _, name in socket.if_nameindex()])\n"
        "try:\n"
        "    socket.create_connection(('8.8.8.8', 53), timeout=2)\n"
        "except OSError as e:\n"
        "    print('unreachable', e.errno)\n"
    )
    inside = run_sandboxed([*argv, str(port)], tmp_path / "a", Limits(seconds=30))
    hookless = run_sandboxed([sys.executable, "-I", "-c", escape], tmp_path / "b")
    host_server.close()
    assert inside.status == "ok", inside.message
    assert inside.stdout_tail == "pong\nhost loopback not reachable\n"
    assert hookless.status == "ok", hookless.message
    assert hookless.stdout_tail.splitlines()[0] == "['lo']"
    assert hookless.stdout_tail.splitlines()[1].startswith("unreachable")


def test_a_killed_watcher_takes_the_program_with_it(tmp_path: Path) -> None:
    # Prepare: a watcher process running a sandbox whose program prints its pid and sleeps
    scratch = tmp_path / "scratch"
    watcher = program(
        tmp_path,
        "import sys\n"
        "from pathlib import Path\n"
        "from edgeai.tools.federated.sandbox import Limits, run_sandboxed\n"
        "sleeper = 'import os, time; print(os.getpid(), flush=True); time.sleep(100)'\n"
        f"run_sandboxed([sys.executable, '-c', sleeper], Path({str(scratch)!r}), Limits(60))\n",
        "watcher.py",
    )
    proc = subprocess.Popen(watcher)
    log = scratch / "stdout.log"
    try:
        for _ in range(300):  # at most 30 s for the sandbox to start
            if log.exists() and log.read_text().strip():
                break
            threading.Event().wait(0.1)
        pid = int(log.read_text())
    finally:
        # Execute
        proc.kill()
        proc.wait()
    # Assert
    for _ in range(50):  # SIGKILL is delivered at once; allow 5 s on a loaded machine
        if gone(pid):
            break
        threading.Event().wait(0.1)
    assert gone(pid)


def test_bad_arguments_raise_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(UserInputError, match="scratch directory"):
        run_sandboxed([sys.executable, "-c", "pass"], tmp_path / "file" / "scratch")
    with pytest.raises(UserInputError, match="non-empty list"):
        run_sandboxed([], tmp_path / "s")
    with pytest.raises(UserInputError, match="network policy 'internet'"):
        run_sandboxed([sys.executable], tmp_path / "s", Limits(network="internet"))
    with pytest.raises(UserInputError, match="cannot find the program"):
        run_sandboxed(["no-such-program-edgeai"], tmp_path / "s")


def test_an_on_line_error_is_raised_after_cleanup(tmp_path: Path) -> None:
    argv = program(tmp_path, "import time\nprint('one', flush=True)\ntime.sleep(1)\nprint('two')\n")

    def refuse(line: str) -> None:
        raise ValueError(f"cannot parse {line!r}")

    with pytest.raises(ValueError, match="cannot parse 'one'"):
        run_sandboxed(argv, tmp_path / "scratch", on_line=refuse)
    assert (tmp_path / "scratch" / "stdout.log").read_text() == "one\ntwo\n"
    assert processes_in(tmp_path / "scratch") == []


FLOWER_APP = '''
"""Trivial two-client Flower app (Message API): each client adds 1.0 to the weights."""
import numpy as np
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg
from flwr.simulation import run_simulation

client = ClientApp()


@client.train()
def train(msg: Message, context: Context) -> Message:
    arrays = msg.content["arrays"].to_numpy_ndarrays()
    reply = RecordDict(
        {"arrays": ArrayRecord([a + 1.0 for a in arrays]),
         "metrics": MetricRecord({"num-examples": 1})}
    )
    return Message(reply, reply_to=msg)


server = ServerApp()


@server.main()
def main(grid: Grid, context: Context) -> None:
    result = FedAvg(fraction_evaluate=0.0).start(
        grid=grid, initial_arrays=ArrayRecord([np.zeros(3)]), num_rounds=1
    )
    print("FINAL", result.arrays.to_numpy_ndarrays()[0].tolist(), flush=True)


run_simulation(
    server_app=server, client_app=client, num_supernodes=2,
    backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}},
)
'''


def test_flower_simulation_runs_inside(tmp_path: Path) -> None:
    argv = program(tmp_path, FLOWER_APP, "app.py")
    scratch = tmp_path / "scratch"
    result = run_sandboxed(argv, scratch, Limits(seconds=240, memory_mb=4096))
    assert result.status == "ok", f"{result.message}\n{result.stderr_tail}"
    assert "FINAL [1.0, 1.0, 1.0]" in result.stdout_tail
    assert processes_in(scratch) == []
    expect_isolation(result, None)
