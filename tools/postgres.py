"""A throw-away PostgreSQL server for tests and benchmarks: `initdb` into a fresh folder, the
`postgres` server started as a child process on a free loopback port, stopped by its pid (and the
folder removed) when the `throwaway_postgres()` block ends.

PostgreSQL refuses to run as root, so under root both run as the unprivileged `nobody` user (the
folder is made in the system temp dir and handed to it: a root-only parent such as pytest's temp
folder would be out of its reach). It listens on 127.0.0.1 only, with `trust` authentication for
the one role it creates: fit for a server that lives as long as one test session or one bench.
Binaries are looked for in $EDGEAI_PG_BIN, on PATH, in /usr/local/bin and /usr/lib/postgresql/*/bin.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edgeai.errors import EdgeAIError

ROLE = "edgeai"
DATABASE = "edgeai"


class PostgresUnavailable(EdgeAIError):
    """No PostgreSQL server could be started here (binaries missing, no unprivileged user)."""


def find_binaries() -> Path:
    """The folder holding `initdb` and `postgres`."""
    candidates = [os.environ.get("EDGEAI_PG_BIN", "")]
    on_path = shutil.which("initdb")
    candidates += [str(Path(on_path).parent) if on_path else "", "/usr/local/bin"]
    candidates += sorted((str(p) for p in Path("/usr/lib/postgresql").glob("*/bin")), reverse=True)
    for folder in filter(None, candidates):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "postgres").exists():
            return Path(folder)
    raise PostgresUnavailable("no PostgreSQL binaries (initdb, postgres) found: install "
                              "PostgreSQL or set EDGEAI_PG_BIN to the folder holding them")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_user() -> dict[str, Any]:
    """Popen's arguments to run as `nobody` when this process is root; none otherwise."""
    if os.geteuid() != 0:
        return {}
    import pwd

    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        raise PostgresUnavailable("running as root and there is no 'nobody' user for "
                                  "PostgreSQL to run as (it refuses root)") from None
    return {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}


def _owned_folder(user: dict[str, Any]) -> Path:
    root = Path(tempfile.mkdtemp(prefix="edgeai-pg-"))
    if user:
        os.chown(root, user["user"], user["group"])
    return root


def _wait_ready(url: str, server: subprocess.Popen, log: Path, timeout_s: float) -> None:
    import psycopg

    deadline = time.monotonic() + timeout_s
    while True:
        if server.poll() is not None:
            raise PostgresUnavailable(f"PostgreSQL exited at start: {_tail(log)}")
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise PostgresUnavailable(f"PostgreSQL did not accept connections within "
                                          f"{timeout_s:.0f} s: {_tail(log)}") from None
            time.sleep(0.2)


def _tail(log: Path) -> str:
    text = log.read_text(encoding="utf-8", errors="replace").strip() if log.exists() else ""
    return " | ".join(text.splitlines()[-3:]) or "(no log)"


@contextmanager
def throwaway_postgres(*, timeout_s: float = 60.0) -> Iterator[str]:
    """A fresh PostgreSQL server for the block; yields the URL of its `edgeai` database."""
    import psycopg

    bin_dir, user = find_binaries(), _as_user()
    root = _owned_folder(user)
    data, log, port = root / "data", root / "postgres.log", _free_port()
    env = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "LANG": "C"}
    server = None
    try:
        done = subprocess.run([str(bin_dir / "initdb"), "-D", str(data), "-U", ROLE, "-A", "trust",
                               "-E", "UTF8", "--locale=C", "--no-sync"], check=False, cwd=root, env=env,
                              capture_output=True, text=True, timeout=timeout_s, **user)
        if done.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {(done.stderr or done.stdout).strip()[-300:]}")
        with log.open("w") as out:
            if user:
                os.chown(log, user["user"], user["group"])
            server = subprocess.Popen(
                [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), "-h", "127.0.0.1",
                 "-k", str(root), "-c", "fsync=off", "-c", "max_connections=200"],
                cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, **user)
        admin = f"postgresql://{ROLE}@127.0.0.1:{port}/postgres"
        _wait_ready(admin, server, log, timeout_s)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        yield f"postgresql://{ROLE}@127.0.0.1:{port}/{DATABASE}"
    finally:
        if server is not None:
            stop(server)
        shutil.rmtree(root, ignore_errors=True)


def stop(server: subprocess.Popen, timeout_s: float = 30.0) -> None:
    """Fast shutdown (SIGINT: clients are disconnected), SIGKILL if it lingers."""
    if server.poll() is None:
        server.send_signal(2)
        try:
            server.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
