"""The first process of a sandbox: `run_sandboxed` starts it (python -I -S, standard library
only) with a JSON plan and the program's argv; it moves itself into the memory cgroup, leaves the
host's network for a fresh namespace holding only a loopback interface it brings up, writes what
actually worked to the plan's report file, and then execs the program, which inherits all of it.

Usage: python -I -S _sandbox_launch.py PLAN_JSON -- ARGV...
PLAN_JSON: {"cgroup_procs": path or null, "netns": bool, "report": path, "parent": pid}. Exit
127 when the program cannot be executed. The program gets SIGKILL if the parent dies (the
parent-death signal survives exec), so a killed watcher never leaves an unwatched program.
"""

import ctypes
import errno
import fcntl
import json
import os
import signal
import socket
import struct
import subprocess
import sys

PR_SET_PDEATHSIG = 1
CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def join_cgroup(procs: str) -> str | None:
    """Write our pid into the cgroup's procs file; None on success, else why not."""
    try:
        with open(procs, "w") as f:
            f.write(str(os.getpid()))
        return None
    except OSError as e:
        return f"cannot join {procs}: {e.strerror}"


def _unshare(flags: int) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    return 0 if libc.unshare(flags) == 0 else ctypes.get_errno()


def _setns(fd: int, flags: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)  # os.setns is Python 3.12+
    if libc.setns(fd, flags) != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))


def _loopback_up() -> None:
    """Bring `lo` up with SIOCSIFFLAGS (no `ip` binary needed); `ip link set lo up` if that fails."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            ifr = struct.pack("16sH22x", b"lo", 0)
            flags = struct.unpack("16sH22x", fcntl.ioctl(s, SIOCGIFFLAGS, ifr))[1]
            fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | IFF_UP))
    except OSError:
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True, capture_output=True)


def _write_id_maps(uid: int, gid: int) -> None:
    """Map our own uid/gid into a new user namespace (so files keep their owners)."""
    for name, text in (
        ("setgroups", "deny"),
        ("uid_map", f"{uid} {uid} 1"),
        ("gid_map", f"{gid} {gid} 1"),
    ):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)


def enter_netns() -> str | None:
    """A new network namespace with loopback up: as root with CLONE_NEWNET; otherwise (EPERM)
    inside a new user namespace, which unprivileged users may create on many distributions.
    None on success; on failure the host namespace is restored and the reason returned."""
    try:
        host_ns = os.open("/proc/self/ns/net", os.O_RDONLY)
    except OSError as e:
        return f"no /proc/self/ns/net: {e.strerror}"
    uid, gid = os.getuid(), os.getgid()
    err = _unshare(CLONE_NEWNET)
    via_userns = False
    if err == errno.EPERM:
        err = _unshare(CLONE_NEWUSER | CLONE_NEWNET)
        via_userns = err == 0
    if err:
        os.close(host_ns)
        return f"unshare: {os.strerror(err)}"
    try:
        if via_userns:
            _write_id_maps(uid, gid)
        _loopback_up()
    except (OSError, subprocess.CalledProcessError) as e:
        if not via_userns:  # a user namespace cannot be left; its netns is then without loopback
            _setns(host_ns, CLONE_NEWNET)
            os.close(host_ns)
            return f"cannot bring loopback up: {e}"
        os.close(host_ns)
        return f"cannot bring loopback up in a user namespace: {e}"
    os.close(host_ns)
    return None


def die_with_parent(parent: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it died before the prctl
        os._exit(1)


def main(args: list[str]) -> None:
    plan = json.loads(args[0])
    argv = args[2:]  # args[1] is "--"
    if plan.get("parent"):
        die_with_parent(plan["parent"])
    report: dict[str, object] = {"pid": os.getpid(), "memory_joined": False, "netns": False}
    if plan.get("cgroup_procs"):
        why = join_cgroup(plan["cgroup_procs"])
        report["memory_joined"] = why is None
        report["memory_note"] = why
    if plan.get("netns"):
        why = enter_netns()
        report["netns"] = why is None
        report["netns_note"] = why
    with open(plan["report"], "w") as f:
        json.dump(report, f)
    try:
        os.execvp(argv[0], argv)
    except OSError as e:
        sys.stderr.write(f"edgeai sandbox: cannot execute {argv[0]}: {e.strerror}\n")
        os._exit(127)


if __name__ == "__main__":
    main(sys.argv[1:])
