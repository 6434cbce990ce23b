"""Runs generated federated-learning code in a separate process tree with a time limit, a
resident-memory cap, a scratch directory and no network beyond loopback; `run_sandboxed` owns
starting, watching, stopping and reporting on that tree, and never raises for what the child does.

Mechanisms, tried in this order (the result's `isolation` says which ones held):

Memory (the whole tree's resident memory, not each process's address space):
  1. cgroup v2: a child of our own cgroup with memory.max (+ memory.swap.max=0, memory.oom.group=1)
     where the unified hierarchy has the memory controller delegated to us.
  2. cgroup v1: a child of our own memory cgroup with memory.limit_in_bytes (+ memsw).
     The kernel's OOM killer stops a process of the group; the watcher sees memory.oom_control's
     (v2: memory.events') oom_kill counter rise and stops the rest: status "memory".
  3. watchdog: the watcher sums the RSS of every process of the tree every POLL_SECONDS with
     psutil and stops the tree once it exceeds the cap. Works anywhere, non-root included, but
     can overshoot by what the tree allocates between two samples.
  RLIMIT_AS is not used: it limits each process's virtual address space, and Ray maps far more
  than it touches. Measured here (flwr 1.32.1, ray 2.55, 24 GB machine, `ulimit -v` in a shell):
  with 4 GiB the raylet's mmap of its 7.5 GB plasma store (30 % of RAM, in /dev/shm) failed with
  ENOMEM, the raylet aborted, and run_simulation never returned ("The current node timed out
  during startup ... Simulation Runtime crashed", then hung until killed at 120 s); with 16 GiB
  the same app finished.

Network (loopback only):
  1. a new network namespace holding only `lo`, entered by the launcher (_sandbox_launch.py)
     before it execs the program: unshare(CLONE_NEWNET) as root, else unshare(CLONE_NEWUSER |
     CLONE_NEWNET) (unprivileged user namespaces); lo is brought up with SIOCSIFFLAGS, or
     `ip link set lo up`. It covers every process, C++ ones (Ray's raylet, gRPC) included.
  2. always, also when 1 held: an audit hook (_sandbox_site.py, installed as sitecustomize.py in
     a directory put first on PYTHONPATH, so every Python process of the tree loads it) refuses
     socket.connect/sendto/sendmsg/getaddrinfo/gethostbyname* to anything not loopback or this
     host's own address, writes a JSON line to NETWORK_MARKER in the scratch directory and exits
     with REFUSED_EXIT; the parent reports "refused a network connection to 8.8.8.8:53". Alone it
     covers only Python's socket module, and only in interpreters that load sitecustomize (not
     `python -I`/`-S`), and it does not stop listening on 0.0.0.0. Cloud metadata probes get
     an ENETUNREACH instead of the exit (see _sandbox_site.py: Ray makes them unconditionally)
     and are listed in isolation["quietly_refused"].
  In a namespace "loopback" is the sandbox's own: a server on the host's 127.0.0.1 is not
  reachable from inside (it is with the audit hook alone).

Process tree: the child starts in its own session (start_new_session=True) with a unique
EDGEAI_SANDBOX_ID in its environment. On a limit, or when the main process has exited, every
member is sent SIGTERM, then SIGKILL after GRACE_SECONDS; members are the process group, every
process seen in the tree while it ran (Ray's reaper calls setpgrp and leaves the group), the
cgroup's processes and any process whose environment carries the id. Afterwards the tree is
scanned again and survivors are named in the message. The cgroup is removed (and empty ones a
killed watcher left are swept after STALE_CGROUP_SECONDS); if the watcher itself is killed, the
main process gets SIGKILL (parent-death signal set by the launcher). peak_rss_mb is the
largest sampled sum of the members' RSS (shared pages count once per process: Ray's idle workers
make the trivial app below read ~1.1 GB) or, if larger, the largest single process (wait4).

The child's environment is built from scratch (never inherited whole: no OPENAI_API_KEY):
PATH, LANG, PYTHONPATH (plus the directory `edgeai` was imported from), VIRTUAL_ENV, HOME and
TMPDIR inside the scratch directory, the offline variables, then `env` on top. Ray puts its
AF_UNIX sockets under $TMPDIR/ray; their paths must stay under 108 bytes, so when the scratch
path is long RAY_TMPDIR points at a short symlink in /tmp to scratch/tmp (removed afterwards).

Set EDGEAI_SANDBOX_FALLBACK=1 (or pass _force) to skip the namespace and the cgroup and test the
fallbacks on a machine that has the better mechanisms.

Measured here (root in a Firecracker VM, 2 shared cores, cgroup v1 memory controller, cgroup2
mounted without controllers): isolation {"network": "netns", "memory": "cgroup-v1"}; a child
allocating 600 MB in a 200 MB v1 group is OOM-killed at once (oom_kill 1), the rest stopped.
The trivial Flower app of the tests (run_simulation, 2 virtual clients, Message API, FedAvg,
1 round) finishes "ok" inside netns + cgroup v1 in 12.2-18.6 s against 12.0-12.7 s outside
(the spread is the shared cores' load; its result line came 9.1-15.8 s after the start), and in
the fallback (audit hook + watchdog) in 18.6 s. Inside the namespace Ray's C++ side fails to
find a route to 8.8.8.8:53 / [2001:4860:4860::8888]:53 and falls back to 127.0.0.1; without it
Ray binds the host's address (192.0.2.2 here). Ray shuts itself down: no process was left for
the sandbox to stop after a normal finish. Without CAP_SYS_ADMIN (setpriv --bounding-set
=-sys_admin) plain unshare(CLONE_NEWNET) fails with EPERM, the launcher takes the user-namespace
route, and the whole test file passes that way too, Ray included.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import edgeai
import psutil
from edgeai.errors import UserInputError
from edgeai.tools.federated._sandbox_site import REFUSED_EXIT

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2  # watchdog sampling and limit checks
GRACE_SECONDS = 5.0  # SIGTERM -> SIGKILL
TAIL_BYTES = 4096
CONTROL_DIR = ".sandbox"  # inside scratch: the site hook, the launcher's report, the marker
NETWORK_MARKER = "network-refused.jsonl"
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "FLWR_TELEMETRY_ENABLED": "0",
    "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
    "RAY_USAGE_STATS_ENABLED": "0",
    "PYTHONUNBUFFERED": "1",  # so on_line sees lines as they are printed
}
_HERE = Path(__file__).resolve().parent
_LAUNCHER = _HERE / "_sandbox_launch.py"
_SITE_HOOK = _HERE / "_sandbox_site.py"
_AF_UNIX_PATH_MAX = 107
_RAY_SOCKET_SUFFIX = 70  # len("/ray/session_2026-12-07_08-25-48_511474_7283/sockets/plasma_store")


@dataclass(frozen=True)
class Limits:
    seconds: float = 900.0
    memory_mb: int = 4096
    network: str = "loopback"  # only value supported


@dataclass
class SandboxResult:
    status: str  # "ok" | "failed" | "timeout" | "memory" | "network"
    returncode: int | None
    message: str  # one line for a person: why it stopped
    seconds: float
    peak_rss_mb: float | None
    stdout_tail: str  # last ~4 KB
    stderr_tail: str
    isolation: dict = field(default_factory=dict)  # {"network": ..., "memory": ...}


# --- cgroups -----------------------------------------------------------------------------------


def _mounts() -> list[tuple[str, str, str, str]]:
    """(root, mount point, fs type, super options) of every mount, from /proc/self/mountinfo."""
    rows = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return rows
    for line in lines:
        left, _, right = line.partition(" - ")
        parts, rparts = left.split(), right.split()
        if len(parts) >= 5 and len(rparts) >= 3:
            rows.append((parts[3], parts[4], rparts[0], rparts[2]))
    return rows


def _own_cgroup(controller: str) -> str | None:
    """Our path in the hierarchy holding `controller` ("" for the unified one)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, names, path = line.split(":", 2)
        if (controller == "" and names == "") or controller in names.split(","):
            return path
    return None


@dataclass
class _Cgroup:
    kind: str  # "cgroup-v1" | "cgroup-v2"
    path: Path

    @property
    def procs_file(self) -> Path:
        return self.path / "cgroup.procs"

    def pids(self) -> list[int]:
        try:
            return [int(x) for x in self.procs_file.read_text().split()]
        except (OSError, ValueError):
            return []

    def oom_kills(self) -> int:
        name = "memory.oom_control" if self.kind == "cgroup-v1" else "memory.events"
        try:
            text = (self.path / name).read_text()
        except OSError:
            return 0
        match = re.search(r"^oom_kill (\d+)$", text, re.MULTILINE)
        return int(match.group(1)) if match else 0

    def remove(self) -> None:
        for _ in range(50):  # rmdir fails with EBUSY until the last member is reaped
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.1)
        log.warning("could not remove the sandbox cgroup %s", self.path)


STALE_CGROUP_SECONDS = 600.0


def _sweep(parent: Path) -> None:
    """Remove empty sandbox groups older than STALE_CGROUP_SECONDS: left by a watcher that was
    killed before its clean-up. rmdir refuses a group that still has processes."""
    now = time.time()
    for old in parent.glob("edgeai-sandbox-*"):
        try:
            if now - old.stat().st_mtime > STALE_CGROUP_SECONDS:
                old.rmdir()
        except OSError:
            continue


def _under(mount: str, root: str, own: str) -> Path:
    rel = os.path.relpath(own, root) if own.startswith(root) else "."
    return Path(mount) / rel


def _make_cgroup_v2(name: str, limit: int) -> _Cgroup | None:
    own = _own_cgroup("")
    mount = next(((r, m) for r, m, fs, _ in _mounts() if fs == "cgroup2"), None)
    if own is None or mount is None:
        return None
    parent = _under(mount[1], mount[0], own)
    try:
        enabled = (parent / "cgroup.subtree_control").read_text().split()
        if "memory" not in enabled:
            (parent / "cgroup.subtree_control").write_text("+memory")
    except OSError:
        return None
    _sweep(parent)
    group = _Cgroup("cgroup-v2", parent / name)
    try:
        group.path.mkdir()
    except OSError:
        return None
    try:
        (group.path / "memory.max").write_text(str(limit))
    except OSError:
        group.remove()
        return None
    for knob, value in (("memory.swap.max", "0"), ("memory.oom.group", "1")):
        try:
            (group.path / knob).write_text(value)
        except OSError:
            pass  # optional: no swap accounting / older kernel
    return group


def _make_cgroup_v1(name: str, limit: int) -> _Cgroup | None:
    own = _own_cgroup("memory")
    mount = next(
        ((r, m) for r, m, fs, opts in _mounts() if fs == "cgroup" and "memory" in opts.split(",")),
        None,
    )
    if own is None or mount is None:
        return None
    parent = _under(mount[1], mount[0], own)
    _sweep(parent)
    group = _Cgroup("cgroup-v1", parent / name)
    try:
        group.path.mkdir()
    except OSError:
        return None
    try:
        (group.path / "memory.limit_in_bytes").write_text(str(limit))
        if int((group.path / "memory.limit_in_bytes").read_text()) > limit:
            raise OSError("limit not applied")
    except (OSError, ValueError):
        group.remove()
        return None
    try:
        (group.path / "memory.memsw.limit_in_bytes").write_text(str(limit))
    except OSError:
        pass  # no swap accounting: nothing to cap
    return group


# --- the process tree --------------------------------------------------------------------------


class _Tree:
    """Every process that belongs to one sandbox, found by descent, group, cgroup and env id."""

    def __init__(self, pid: int, sandbox_id: str, cgroup: _Cgroup | None) -> None:
        self.pid, self.sandbox_id, self.cgroup = pid, sandbox_id, cgroup
        self.known: dict[int, psutil.Process] = {}
        self.started = time.time() - 1.0  # nothing older than the sandbox can be a member

    def _remember(self, pid: int) -> None:
        if pid not in self.known or not self.known[pid].is_running():
            try:
                self.known[pid] = psutil.Process(pid)
            except psutil.Error:
                self.known.pop(pid, None)

    def sample(self) -> tuple[float, int]:
        """(total RSS in MB, process count) of the live tree; remembers every member seen."""
        ppids: dict[int, list[int]] = {}
        for p in psutil.process_iter(["ppid"]):
            ppids.setdefault(p.info["ppid"], []).append(p.pid)
        roots = [self.pid, *(pid for pid, p in self.known.items() if p.is_running())]
        if self.cgroup:
            roots += self.cgroup.pids()
        seen: set[int] = set()
        while roots:
            pid = roots.pop()
            if pid not in seen and pid != os.getpid():
                seen.add(pid)
                roots.extend(ppids.get(pid, []))
        total = 0
        for pid in seen:
            self._remember(pid)
            proc = self.known.get(pid)
            try:
                if proc and proc.status() != psutil.STATUS_ZOMBIE:
                    total += proc.memory_info().rss
            except psutil.Error:
                pass
        return total / 2**20, len(seen)

    def members(self) -> list[psutil.Process]:
        """All live, non-zombie members, by a full scan of the process table."""
        cgroup_pids = set(self.cgroup.pids()) if self.cgroup else set()
        found = []
        for p in psutil.process_iter():
            if p.pid == os.getpid():
                continue
            try:
                if p.status() == psutil.STATUS_ZOMBIE:
                    continue
                known = self.known.get(p.pid)
                mine = (known is not None and known.is_running()) or (
                    p.create_time() >= self.started
                    and (p.pid in cgroup_pids or os.getpgid(p.pid) == self.pid or self._has_id(p))
                )
            except (psutil.Error, OSError):
                continue
            if mine:
                found.append(p)
        return found

    def _has_id(self, proc: psutil.Process) -> bool:
        try:
            return proc.environ().get("EDGEAI_SANDBOX_ID") == self.sandbox_id
        except psutil.Error:
            return False

    def stop(self) -> tuple[int, list[psutil.Process]]:
        """SIGTERM every member, SIGKILL after GRACE_SECONDS, until a scan finds none (three
        rounds, since members may fork while dying); (processes signalled, survivors)."""
        signalled: set[int] = set()
        for sig, wait in (
            (signal.SIGTERM, GRACE_SECONDS),
            (signal.SIGKILL, 5.0),
            (signal.SIGKILL, 5.0),
        ):
            procs = self.members()
            if not procs:
                return len(signalled), []
            if any(_pgid(p.pid) == self.pid for p in procs):  # the group id is still in use,
                try:  # so it cannot name a newer, unrelated group; killpg also hits fresh forks
                    os.killpg(self.pid, sig)
                except OSError:
                    pass
            for p in procs:
                signalled.add(p.pid)
                try:
                    p.send_signal(sig)
                except psutil.Error:
                    pass
            _wait_gone(procs, wait)
        return len(signalled), self.members()


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _wait_gone(procs: list[psutil.Process], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = []
        for p in procs:
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
            except psutil.Error:
                pass
        if not alive:
            return
        procs = alive
        time.sleep(0.05)


# --- output ------------------------------------------------------------------------------------


class _Stream:
    """Copies one pipe to a log file in full, keeps its tail, and feeds on_line line by line."""

    def __init__(self, pipe: IO[bytes], log_path: Path, on_line: Callable[[str], None] | None):
        self.pipe, self.log_path, self.on_line = pipe, log_path, on_line
        self.tail: deque[bytes] = deque()
        self.tail_size = 0
        self.error: BaseException | None = None
        self.thread = threading.Thread(
            target=self._run, name=f"sandbox-{log_path.stem}", daemon=True
        )
        self.thread.start()

    def _run(self) -> None:
        with open(self.log_path, "wb") as out:
            for line in iter(self.pipe.readline, b""):
                out.write(line)
                out.flush()
                self.tail.append(line)
                self.tail_size += len(line)
                while self.tail_size > TAIL_BYTES and len(self.tail) > 1:
                    self.tail_size -= len(self.tail.popleft())
                if self.on_line is not None and self.error is None:
                    try:
                        self.on_line(line.decode("utf-8", "replace").rstrip("\r\n"))
                    except Exception as e:  # noqa: BLE001 - re-raised by run_sandboxed after cleanup
                        self.error = e
        self.pipe.close()

    def text(self) -> str:
        return b"".join(self.tail)[-TAIL_BYTES:].decode("utf-8", "replace")


# --- set-up ------------------------------------------------------------------------------------


def _check(argv: list[str], limits: Limits, force: Mapping[str, str]) -> None:
    if not isinstance(argv, list | tuple) or not argv or not all(isinstance(a, str) for a in argv):
        raise UserInputError("argv must be a non-empty list of strings")
    if limits.network != "loopback":
        raise UserInputError(f"unsupported network policy '{limits.network}' (known: loopback)")
    if not limits.seconds > 0 or not limits.memory_mb > 0:
        raise UserInputError(
            f"limits must be positive (seconds={limits.seconds}, memory_mb={limits.memory_mb})"
        )
    allowed = {"network": {"netns", "audit-hook"}, "memory": {"cgroup", "watchdog"}}
    for key, value in force.items():
        if value not in allowed.get(key, ()):
            raise UserInputError(f"unknown sandbox fallback {key}={value!r} (known: {allowed})")


def _child_env(
    scratch: Path, control: Path, sandbox_id: str, env: Mapping[str, str] | None
) -> dict[str, str]:
    base = {
        "PATH": os.environ.get("PATH", os.defpath),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "HOME": str(scratch / "home"),
        "TMPDIR": str(scratch / "tmp"),
        **OFFLINE_ENV,
    }
    if "VIRTUAL_ENV" in os.environ:
        base["VIRTUAL_ENV"] = os.environ["VIRTUAL_ENV"]
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    paths.append(str(Path(edgeai.__file__).parent.parent))  # where `edgeai` was imported from
    base["PYTHONPATH"] = os.pathsep.join(paths)
    merged = {**base, **(env or {})}
    merged["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(control / "site"), merged.get("PYTHONPATH", "")) if p
    )
    merged["EDGEAI_SANDBOX_MARKER"] = str(control / NETWORK_MARKER)
    merged["EDGEAI_SANDBOX_ID"] = sandbox_id
    return merged


def _short_ray_tmpdir(env: dict[str, str], sandbox_id: str) -> Path | None:
    """Point RAY_TMPDIR at a short symlink to $TMPDIR when Ray's socket paths would be too long."""
    tmpdir = env.get("TMPDIR", "")
    if "RAY_TMPDIR" in env or len(tmpdir) + _RAY_SOCKET_SUFFIX <= _AF_UNIX_PATH_MAX:
        return None
    link = Path("/tmp") / f"edgeai-sbx-{sandbox_id[:12]}"
    try:
        link.symlink_to(tmpdir, target_is_directory=True)
    except OSError:
        return None
    env["RAY_TMPDIR"] = str(link)
    return link


def _prepare_scratch(scratch: Path) -> tuple[Path, Path]:
    try:
        scratch.mkdir(parents=True, exist_ok=True)
        control = scratch / CONTROL_DIR
        shutil.rmtree(control, ignore_errors=True)  # a previous run's marker must not count
        (control / "site").mkdir(parents=True)
        shutil.copyfile(_SITE_HOOK, control / "site" / "sitecustomize.py")
        for sub in ("home", "tmp"):
            (scratch / sub).mkdir(exist_ok=True)
    except OSError as e:
        raise UserInputError(f"cannot prepare the scratch directory {scratch}: {e}") from None
    return scratch, control


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _read_refusals(path: Path) -> tuple[list[dict], list[dict]]:
    """The marker's (hard, quiet) refusals; a line still being written is skipped."""
    hard, quiet = [], []
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return hard, quiet
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        (quiet if record.get("quiet") else hard).append(record)
    return hard, quiet


# --- running -----------------------------------------------------------------------------------


def _reap(proc: subprocess.Popen) -> tuple[int | None, float]:
    """(exit code or None while running, peak RSS MB of the process and its reaped children)."""
    if proc.returncode is not None:
        return proc.returncode, 0.0
    try:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
    except ChildProcessError:
        return proc.poll(), 0.0
    if pid == 0:
        return None, 0.0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss / 1024  # KB on Linux


def _describe_exit(rc: int, stderr_tail: str) -> str:
    if rc < 0:
        try:
            return f"killed by signal {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    last = next((ln.strip() for ln in reversed(stderr_tail.splitlines()) if ln.strip()), "")
    return f"exited with status {rc}" + (f": {last[:200]}" if last else "")


def _refusal_message(marker: dict | None) -> str:
    if not marker:
        return f"refused a network connection (exit status {REFUSED_EXIT}; no marker written)"
    argv = " ".join(marker.get("argv", []))[:120]
    return (
        f"refused a network connection to {marker.get('address')} "
        f"({marker.get('event')} in pid {marker.get('pid')}: {argv})"
    )


def run_sandboxed(
    argv: list[str],
    scratch: Path,
    limits: Limits = Limits(),
    env: Mapping[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
    *,
    _force: Mapping[str, str] | None = None,
) -> SandboxResult:
    """Run `argv` in `scratch` under `limits` and report why it stopped.

    Parameters
    ----------
    argv : the program and its arguments, run as given (no shell), cwd `scratch`.
    scratch : created if missing; gets stdout.log, stderr.log, home/, tmp/ and .sandbox/.
    limits : wall-clock seconds, resident memory of the whole tree, network policy.
    env : merged over the minimal clean environment (see the module docstring).
    on_line : called from a reader thread with each stdout line, newline stripped; an exception
        it raises stops further calls and is re-raised here after the tree is cleaned up.
    _force : {"network": "audit-hook", "memory": "watchdog"} skips the namespace / the cgroup
        (tests; EDGEAI_SANDBOX_FALLBACK=1 does both).

    Raises UserInputError only for bad arguments; whatever the child does becomes a status.
    """
    force = dict(_force or {})
    if os.environ.get("EDGEAI_SANDBOX_FALLBACK") == "1":
        force = {"network": "audit-hook", "memory": "watchdog"}
    _check(argv, limits, force)
    scratch, control = _prepare_scratch(Path(scratch).resolve())
    sandbox_id = uuid.uuid4().hex
    child_env = _child_env(scratch, control, sandbox_id, env)
    if shutil.which(argv[0], path=child_env["PATH"]) is None:
        raise UserInputError(f"cannot find the program '{argv[0]}' (PATH={child_env['PATH']})")
    ray_link = _short_ray_tmpdir(child_env, sandbox_id)
    limit_bytes = int(limits.memory_mb) * 2**20
    cgroup = None
    if force.get("memory") != "watchdog":
        name = f"edgeai-sandbox-{sandbox_id}"
        cgroup = _make_cgroup_v2(name, limit_bytes) or _make_cgroup_v1(name, limit_bytes)
    plan = {
        "cgroup_procs": str(cgroup.procs_file) if cgroup else None,
        "netns": force.get("network") != "audit-hook",
        "report": str(control / "launch.json"),
        "parent": os.getpid(),
    }
    try:
        return _run(argv, scratch, control, limits, child_env, on_line, cgroup, plan, sandbox_id)
    finally:
        if cgroup:
            cgroup.remove()
        if ray_link:
            ray_link.unlink(missing_ok=True)


def _watch(
    proc: subprocess.Popen,
    tree: _Tree,
    cgroup: _Cgroup | None,
    limits: Limits,
    marker_path: Path,
    report_path: Path,
) -> tuple[dict | None, str | None, str, float]:
    """Poll until the main process exits or a limit is hit: (launcher report, reason or None,
    detail for the message, peak RSS MB)."""
    start = time.monotonic()
    report: dict | None = None
    reason, detail, peak = None, "", 0.0
    while True:
        rc, reaped_peak = _reap(proc)
        report = report or _read_json(report_path)
        joined = bool(report and report.get("memory_joined"))
        rss, count = tree.sample()
        peak = max(peak, rss, reaped_peak)
        if _read_refusals(marker_path)[0] or rc == REFUSED_EXIT:
            reason = "network"
        elif joined and cgroup is not None and cgroup.oom_kills() > 0:
            reason, detail = "memory", f"the {cgroup.kind} OOM killer stopped a process"
        elif not joined and rss > limits.memory_mb:
            reason, detail = "memory", f"{rss:.0f} MB resident in {count} processes"
        elif rc is None and time.monotonic() - start > limits.seconds:
            reason = "timeout"
        if reason or rc is not None:
            return report, reason, detail, peak
        time.sleep(POLL_SECONDS)


def _run(
    argv: list[str],
    scratch: Path,
    control: Path,
    limits: Limits,
    child_env: dict[str, str],
    on_line: Callable[[str], None] | None,
    cgroup: _Cgroup | None,
    plan: dict,
    sandbox_id: str,
) -> SandboxResult:
    marker_path, report_path = control / NETWORK_MARKER, Path(plan["report"])
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-I", "-S", str(_LAUNCHER), json.dumps(plan), "--", *argv],
        cwd=scratch,
        env=child_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    out = _Stream(proc.stdout, scratch / "stdout.log", on_line)
    err = _Stream(proc.stderr, scratch / "stderr.log", None)
    tree = _Tree(proc.pid, sandbox_id, cgroup)
    try:
        report, reason, detail, peak = _watch(proc, tree, cgroup, limits, marker_path, report_path)
    finally:  # also on KeyboardInterrupt or a bug here: never leave the tree running
        log.debug("sandbox %s: stopping after %.1f s", sandbox_id, time.monotonic() - start)
        signalled, survivors = tree.stop()
        try:
            rc = proc.wait(timeout=10.0)
        except subprocess.TimeoutExpired:  # survived SIGKILL (uninterruptible sleep)
            rc = None
    seconds = time.monotonic() - start
    for stream in (out, err):
        stream.thread.join(timeout=5.0)
    if reason is None and rc == REFUSED_EXIT:
        reason = "network"
    joined = bool(report and report.get("memory_joined"))
    hard, quiet = _read_refusals(marker_path)
    isolation = {
        "network": "netns" if report and report.get("netns") else "audit-hook",
        "memory": cgroup.kind if cgroup and joined else "watchdog",
    }
    if quiet:
        isolation["quietly_refused"] = sorted({str(r.get("address")) for r in quiet})
    message = {
        "network": _refusal_message(hard[0] if hard else None),
        "memory": f"went over the {limits.memory_mb} MB memory limit ({detail}); "
        f"stopped {signalled} processes",
        "timeout": f"ran past the {limits.seconds:g} s time limit; stopped {signalled} processes",
        None: f"finished in {seconds:.1f} s" if rc == 0 else _describe_exit(rc, err.text()),
    }[reason]
    if survivors:
        pids = ", ".join(str(p.pid) for p in survivors[:10])
        log.warning("sandbox %s: processes outlived SIGKILL: %s", sandbox_id, pids)
        message += f"; {len(survivors)} processes outlived SIGKILL ({pids})"
    result = SandboxResult(
        status=reason or ("ok" if rc == 0 else "failed"),
        returncode=rc,
        message=message,
        seconds=seconds,
        peak_rss_mb=round(peak, 1) if peak > 0 else None,
        stdout_tail=out.text(),
        stderr_tail=err.text(),
        isolation=isolation,
    )
    if out.error is not None:
        raise out.error
    return result
