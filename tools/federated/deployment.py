"""Runs a Flower app on Flower's Deployment Engine on this machine, and owns every process that
takes: one SuperLink and N SuperNodes on 127.0.0.1 (free ports picked at start), the app submitted
with `flwr run ... --stream`, and all of them stopped by pid when the run ends, fails or times out.
The app is the same folder the Simulation Engine runs (pyproject.toml with [tool.flwr.app] and
app.py); SuperNode i gets node config `partition-id=i num-partitions=N`. Flower 1.32 keeps
SuperLink connections in $FLWR_HOME/config.toml, not in the app's pyproject.toml, so the connection
"local-deployment" is written there, with HOME and FLWR_HOME inside `work_dir`; `flwr run` gets a
copy of the app, so its config migration can never rewrite the caller's folder. `main()` is the
same thing as a command, for launching a whole deployment inside a sandboxed child process.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psutil
from edgeai.errors import EdgeAIError, UserInputError

log = logging.getLogger(__name__)

CONNECTION = "local-deployment"
"""The SuperLink connection's name in $FLWR_HOME/config.toml (what `flwr run` is told)."""
HOST = "127.0.0.1"
LOG_TAIL_CHARS = 4096
STOP_GRACE_S = 10.0
"""SIGTERM to SIGKILL: the SuperLink and SuperNodes shut their gRPC servers down in about 1 s."""
STATUS_TIMEOUT_S = 60.0
"""For `flwr ls` after the run: a Python start and one Control API call."""
FLOWER_ENV = {
    "FLWR_TELEMETRY_ENABLED": "0",
    "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
    "FLWR_DISABLE_UPDATE_CHECK": "1",  # the one network call left: PyPI's latest version
    "PYTHONUNBUFFERED": "1",  # `flwr run --stream` prints; lines must reach on_line as they come
}

ConfigValue = str | int | float | bool
BAD_INPUT = UserInputError.exit_code
"""A DeploymentError's returncode when the app folder or run config is at fault, not a run."""
RUN_STARTED = re.compile(r"Successfully started run (\d+)")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
"""Flower's logger colours its level names on every stream; logs and on_line get plain text."""


class DeploymentError(EdgeAIError):
    """The local SuperLink, a SuperNode or the run failed; one line, then the logs' tail."""

    def __init__(self, message: str, log_tail: str = "", returncode: int = 1) -> None:
        self.log_tail, self.returncode = log_tail, returncode
        self.pids: list[int] = []  # what run_deployment started and stopped before raising
        super().__init__(message + (f"\n--- log tail ---\n{log_tail}" if log_tail else ""))


@dataclass
class DeploymentResult:
    """A finished run. Failures raise DeploymentError instead, so `returncode` is `flwr run`'s 0."""

    returncode: int
    seconds: float
    log_tail: str
    """Last ~4 KB of the flwr run and SuperLink logs (all logs stay in work_dir/logs)."""
    pids: list[int]
    """Every process started, with the descendants seen (ServerApp, ClientApps); all stopped."""


# --- helpers ------------------------------------------------------------------------------------


def _flatten(table: Mapping[str, object], prefix: str = "") -> dict[str, object]:
    """Nested TOML tables as Flower's dotted run-config keys."""
    flat: dict[str, object] = {}
    for key, value in table.items():
        if isinstance(value, Mapping):
            flat |= _flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _toml_value(key: str, value: ConfigValue) -> str:
    """One value as `flwr run --run-config` parses it (a TOML value with no spaces unquoted)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if "'" not in value:
        return f"'{value}'"  # a TOML literal string: no escapes, so paths pass unchanged
    if '"' not in value and "\\" not in value:
        return f'"{value}"'
    raise DeploymentError(
        f"run config '{key}': a value holding both ' and \" cannot reach flwr", "", BAD_INPUT
    )


def _run_config_args(app_dir: Path, run_config: Mapping[str, ConfigValue]) -> list[str]:
    """`--run-config` options for `flwr run`, after checking the app folder and every key: the
    SuperLink refuses keys the app's [tool.flwr.app.config] does not declare."""
    pyproject = app_dir / "pyproject.toml"
    try:
        config = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise DeploymentError(
            f"{pyproject}: not a readable Flower app config ({err})", "", BAD_INPUT
        ) from None
    app = config.get("tool", {}).get("flwr", {}).get("app", {})
    if "components" not in app:
        raise DeploymentError(
            f"{pyproject}: no [tool.flwr.app.components]; not a Flower app", "", BAD_INPUT
        )
    declared = _flatten(app.get("config", {}))
    args = []
    for key, value in run_config.items():
        if key not in declared:
            raise DeploymentError(
                f"run config key '{key}' is not declared in {pyproject} [tool.flwr.app.config] "
                f"(declared: {', '.join(sorted(declared)) or 'none'})",
                "",
                BAD_INPUT,
            )
        args += ["--run-config", f"{key}={_toml_value(key, value)}"]
    return args


def _free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports free now (all held open together, then released)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _executable(name: str) -> str:
    """A Flower console script: beside this Python first (its venv), then on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    if found := shutil.which(name):
        return found
    raise DeploymentError(f"'{name}' not found beside {sys.executable} or on PATH; install flwr")


def _environment(home: Path) -> dict[str, str]:
    """The caller's environment, offline, with Flower's home inside work_dir. The venv's bin comes
    first on PATH because the SuperLink and SuperNodes start `flower-superexec` by name."""
    env = dict(os.environ) | FLOWER_ENV
    env["HOME"] = str(home)
    env["FLWR_HOME"] = str(home / ".flwr")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def _write_connection(flwr_home: Path, control_port: int) -> None:
    """The 1.32 Flower config: one insecure SuperLink connection to our Control API."""
    flwr_home.mkdir(parents=True, exist_ok=True)
    (flwr_home / "config.toml").write_text(
        f'[superlink]\ndefault = "{CONNECTION}"\n\n'
        f'[superlink.{CONNECTION}]\naddress = "{HOST}:{control_port}"\ninsecure = true\n',
        encoding="utf-8",
    )


def _tail(paths: list[Path], chars: int = LOG_TAIL_CHARS) -> str:
    """The last `chars` characters of the given logs, shared out between the non-empty ones."""
    texts = []
    for path in paths:
        try:
            text = ANSI.sub("", path.read_text(encoding="utf-8", errors="replace")).strip()
        except OSError:
            continue
        if text:
            texts.append((path.name, text))
    share = chars // max(1, len(texts))
    return "\n".join(
        f"[{name}] {'...' if len(text) > share else ''}{text[-share:]}" for name, text in texts
    )


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class _Processes:
    """Every process this deployment starts, each leading its own session (so its process group
    holds the `flower-superexec`, ServerApp and ClientApp processes it spawns), and the descendants
    seen while they ran; stopped by pid and group, never by name."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env, self.cwd = env, cwd
        self.started: list[tuple[str, subprocess.Popen[str]]] = []
        self.seen: dict[int, psutil.Process] = {}

    def start(self, name: str, cmd: list[str], out: IO[str] | int) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            cmd,
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.started.append((name, proc))
        self.seen[proc.pid] = psutil.Process(proc.pid)
        log.info("started %s (pid %d)", name, proc.pid)
        return proc

    def observe(self) -> None:
        """Remember the descendants alive now (a ServerApp lives only as long as its run)."""
        for _, proc in self.started:
            try:
                for child in self.seen[proc.pid].children(recursive=True):
                    self.seen.setdefault(child.pid, child)
            except psutil.NoSuchProcess:
                pass

    def pids(self) -> list[int]:
        return list(self.seen)

    def stop(self, grace_s: float = STOP_GRACE_S) -> list[int]:
        """SIGTERM every group and seen descendant, SIGKILL what is left after `grace_s`; returns
        the pids still alive after that (zombies count as gone)."""
        self.observe()
        self._signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for _, proc in self.started:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        psutil.wait_procs(self._alive(), timeout=max(0.0, deadline - time.monotonic()))
        if self._alive():
            self._signal(signal.SIGKILL)
            for _, proc in self.started:
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
            psutil.wait_procs(self._alive(), timeout=5)
        return [p.pid for p in self._alive()]

    def _alive(self) -> list[psutil.Process]:
        return [p for p in self.seen.values() if _alive(p)]

    def _signal(self, sig: signal.Signals) -> None:
        for _, proc in self.started:
            try:
                os.killpg(proc.pid, sig)  # the group outlives its leader while members remain
            except (ProcessLookupError, PermissionError):
                pass
        for proc in self._alive():  # a descendant that left its group
            try:
                proc.send_signal(sig)
            except psutil.NoSuchProcess:
                pass


def _wait_accepting(
    superlink: subprocess.Popen[str], ports: list[int], deadline: float, log_path: Path
) -> None:
    """Until the SuperLink accepts TCP connections on every API port; it starts them in order and
    the Fleet API last, so all accepting means all started."""
    while True:
        if superlink.poll() is not None:
            raise DeploymentError(
                f"flower-superlink exited with {superlink.returncode} before accepting connections",
                _tail([log_path]),
                superlink.returncode or 1,
            )
        try:
            for port in ports:
                socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise DeploymentError(
                f"flower-superlink did not accept connections on {HOST} ports {ports} in time",
                _tail([log_path]),
                124,
            )
        time.sleep(0.2)


def _pump(
    stream: IO[str],
    log_path: Path,
    run_ids: list[str],
    on_line: Callable[[str], None] | None,
    errors: list[BaseException],
) -> None:
    """Reader thread: `flwr run`'s output to its log file and on_line, the run id it reports to
    `run_ids`; it ends when the stream does (the run finished, or the process was stopped)."""
    with log_path.open("w", encoding="utf-8") as sink:
        for line in stream:
            line = ANSI.sub("", line)
            sink.write(line)
            sink.flush()
            if not run_ids and (match := RUN_STARTED.search(line)):
                run_ids.append(match.group(1))
            if on_line is not None and not errors:
                try:
                    on_line(line.rstrip("\n"))
                except BaseException as err:  # noqa: BLE001 - re-raised by run_deployment
                    errors.append(err)


# --- the deployment -----------------------------------------------------------------------------


def run_deployment(
    app_dir: Path,
    *,
    num_supernodes: int,
    run_config: Mapping[str, ConfigValue],
    work_dir: Path,
    timeout_s: float = 600,
    on_line: Callable[[str], None] | None = None,
) -> DeploymentResult:
    """Run the Flower app in `app_dir` on a local SuperLink with `num_supernodes` SuperNodes.

    Parameters
    ----------
    app_dir : Path
        A Flower app folder (pyproject.toml with [tool.flwr.app], app.py); never written to.
    num_supernodes : int
        SuperNodes to start; node i gets `partition-id=i num-partitions=num_supernodes`.
    run_config : Mapping
        Overrides for keys declared in the app's [tool.flwr.app.config].
    work_dir : Path
        Holds the app's copy, Flower's home, the SuperLink's database and every log (logs/).
    timeout_s : float
        For everything, start to run's end; past it the processes are stopped and it raises.
    on_line : callable, optional
        Gets each line `flwr run --stream` prints (the run's logs), from a reader thread.

    Raises
    ------
    DeploymentError
        Bad app or run config, SuperLink or a SuperNode died, the run failed or timed out, or a
        process survived stopping; always after every process started was stopped.
    """
    if num_supernodes < 1:
        raise DeploymentError(
            f"num_supernodes must be at least 1, got {num_supernodes}", "", BAD_INPUT
        )
    app_dir, work_dir = Path(app_dir).resolve(), Path(work_dir).resolve()
    config_args = _run_config_args(app_dir, run_config)
    exe = {name: _executable(name) for name in ("flower-superlink", "flower-supernode", "flwr")}

    app_copy, home, logs = work_dir / "app", work_dir / "home", work_dir / "logs"
    work_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(app_copy, ignore_errors=True)
    shutil.copytree(app_dir, app_copy, ignore=shutil.ignore_patterns("__pycache__", ".git"))
    logs.mkdir(exist_ok=True)
    (work_dir / "superlink").mkdir(exist_ok=True)
    fleet, control, serverappio, *appio = _free_ports(3 + num_supernodes)
    _write_connection(home / ".flwr", control)

    procs = _Processes(_environment(home), work_dir)
    run_log, superlink_log = logs / "flwr-run.log", logs / "superlink.log"
    start = time.monotonic()
    deadline = start + timeout_s
    try:
        returncode = _deploy(
            procs,
            exe,
            app_copy,
            logs,
            config_args,
            num_supernodes,
            fleet=fleet,
            control=control,
            serverappio=serverappio,
            appio=appio,
            deadline=deadline,
            timeout_s=timeout_s,
            on_line=on_line,
        )
    except BaseException as err:
        left = procs.stop()
        if left:
            log.error("processes still alive after SIGKILL: %s", left)
        if isinstance(err, DeploymentError):
            err.pids = procs.pids()
        raise
    left = procs.stop()
    seconds = time.monotonic() - start
    tail = _tail([run_log, superlink_log])
    if left:
        raise DeploymentError(f"processes still alive after SIGKILL: {left}", tail)
    log.info("run finished in %.1f s; %d processes stopped", seconds, len(procs.pids()))
    return DeploymentResult(returncode, seconds, tail, procs.pids())


def _deploy(
    procs: _Processes,
    exe: dict[str, str],
    app: Path,
    logs: Path,
    config_args: list[str],
    num_supernodes: int,
    *,
    fleet: int,
    control: int,
    serverappio: int,
    appio: list[int],
    deadline: float,
    timeout_s: float,
    on_line: Callable[[str], None] | None,
) -> int:
    """Start, submit, wait, check the run's status; `run_deployment` stops everything after."""
    superlink_log = logs / "superlink.log"
    with superlink_log.open("w", encoding="utf-8") as out:
        superlink = procs.start(
            "flower-superlink",
            [
                exe["flower-superlink"],
                "--insecure",
                "--isolation",
                "subprocess",
                "--database",
                str(logs.parent / "superlink" / "state.db"),
                "--fleet-api-address",
                f"{HOST}:{fleet}",
                "--control-api-address",
                f"{HOST}:{control}",
                "--serverappio-api-address",
                f"{HOST}:{serverappio}",
                "--disable-runtime-dependency-installation",
            ],
            out,
        )
    _wait_accepting(superlink, [control, serverappio, fleet], deadline, superlink_log)
    log.info("SuperLink accepting: fleet %s:%d, control %s:%d", HOST, fleet, HOST, control)

    infra = [("flower-superlink", superlink, superlink_log)]
    for i in range(num_supernodes):
        node_log = logs / f"supernode-{i}.log"
        with node_log.open("w", encoding="utf-8") as out:
            node = procs.start(
                f"flower-supernode {i}",
                [
                    exe["flower-supernode"],
                    "--insecure",
                    "--superlink",
                    f"{HOST}:{fleet}",
                    "--clientappio-api-address",
                    f"{HOST}:{appio[i]}",
                    "--node-config",
                    f"partition-id={i} num-partitions={num_supernodes}",
                ],
                out,
            )
        infra.append((f"flower-supernode {i}", node, node_log))

    run_log = logs / "flwr-run.log"
    run_ids: list[str] = []
    errors: list[BaseException] = []
    flwr_run = procs.start(
        "flwr run",
        [
            exe["flwr"],
            "run",
            str(app),
            CONNECTION,
            "--stream",
            *config_args,
        ],
        subprocess.PIPE,
    )
    assert flwr_run.stdout is not None
    reader = threading.Thread(
        target=_pump, args=(flwr_run.stdout, run_log, run_ids, on_line, errors), daemon=True
    )
    reader.start()
    while True:
        try:
            returncode = flwr_run.wait(timeout=0.5)
            break
        except subprocess.TimeoutExpired:
            pass
        procs.observe()
        if errors:
            raise errors[0]
        for name, proc, path in infra:
            if proc.poll() is not None:
                raise DeploymentError(
                    f"{name} exited with {proc.returncode} during the run",
                    _tail([run_log, path]),
                )
        if time.monotonic() > deadline:
            raise DeploymentError(
                f"the run did not finish within {timeout_s:g} s",
                _tail([run_log, superlink_log]),
                124,
            )
    reader.join(timeout=10)
    if errors:
        raise errors[0]
    tail = _tail([run_log, superlink_log])
    if returncode != 0:
        raise DeploymentError(f"flwr run exited with {returncode}", tail, returncode)
    if not run_ids:
        raise DeploymentError("flwr run did not report a run id", tail)
    status, details = _run_status(procs, exe["flwr"], int(run_ids[0]))
    if status != "finished:completed":
        raise DeploymentError(f"run {run_ids[0]} ended '{status}': {details}", tail)
    return returncode


def _run_status(procs: _Processes, flwr: str, run_id: int) -> tuple[str, str]:
    """The run's status and details as `flwr ls --format json` reports them."""
    proc = procs.start(
        "flwr ls",
        [
            flwr,
            "ls",
            CONNECTION,
            "--run-id",
            str(run_id),
            "--format",
            "json",
        ],
        subprocess.PIPE,
    )
    try:
        out, _ = proc.communicate(timeout=STATUS_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise DeploymentError(f"flwr ls did not answer for run {run_id}") from None
    start = out.find("{")
    try:
        runs = json.loads(out[start:])["runs"] if start >= 0 else []
    except (ValueError, KeyError):
        runs = []
    if proc.returncode != 0 or not runs:
        raise DeploymentError(f"flwr ls could not report run {run_id}: {out.strip()[-300:]}")
    return runs[0]["status"], runs[0].get("status-details", "")


# --- command ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """`python -m edgeai.tools.federated.deployment APP_DIR --supernodes N --run-config JSON
    --work-dir D`: progress and the run's log lines on stdout; exit 0 for a completed run, the
    error's code otherwise (flwr run's own, 1 for a failed run, 124 for a timeout, 2 bad input)."""
    parser = argparse.ArgumentParser(
        prog="python -m edgeai.tools.federated.deployment",
        description="Run a Flower app on a local SuperLink and SuperNodes (127.0.0.1).",
    )
    parser.add_argument("app_dir", type=Path, help="Flower app folder (pyproject.toml, app.py)")
    parser.add_argument("--supernodes", type=int, default=2, help="SuperNodes to start")
    parser.add_argument("--run-config", default="{}", help="JSON object, e.g. '{\"k\": 1}'")
    parser.add_argument("--work-dir", type=Path, required=True, help="state, logs, Flower home")
    parser.add_argument("--timeout", type=float, default=600, help="seconds for the whole run")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[deployment] %(message)s", stream=sys.stdout)
    # A launcher killed with SIGTERM still stops its SuperLink and SuperNodes (finally blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        run_config = json.loads(args.run_config)
        if not isinstance(run_config, dict):
            raise UserInputError(f"--run-config must be a JSON object, got {args.run_config!r}")
        result = run_deployment(
            args.app_dir,
            num_supernodes=args.supernodes,
            run_config=run_config,
            work_dir=args.work_dir,
            timeout_s=args.timeout,
            on_line=lambda line: print(line, flush=True),
        )
    except json.JSONDecodeError as err:
        print(f"error: --run-config is not JSON: {err}", file=sys.stderr)
        return UserInputError.exit_code
    except DeploymentError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.returncode
    except EdgeAIError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    print(f"[deployment] completed in {result.seconds:.1f} s; pids {result.pids} all stopped")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
