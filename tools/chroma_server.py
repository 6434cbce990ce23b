"""A throw-away chromadb server for tests and benchmarks: `chroma run` (the CLI that the chromadb
package installs next to this Python) started as a child process on a free loopback port over a
fresh folder, stopped by its pid (and the folder removed) when the `throwaway_chroma()` block ends.

It listens on 127.0.0.1 only, with no authentication and telemetry off: fit for a server that
lives as long as one test module or one bench. The store's URL it yields is what `--store` takes.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edgeai.errors import EdgeAIError

HEARTBEAT = "/api/v2/heartbeat"


class ChromaUnavailable(EdgeAIError):
    """No chromadb server could be started here (the `chroma` CLI missing, or it would not
    answer)."""


def find_chroma() -> Path:
    """The `chroma` CLI of the chromadb this Python imports (beside sys.executable), else PATH's."""
    beside = Path(sys.executable).parent / "chroma"
    if beside.exists():
        return beside
    on_path = shutil.which("chroma")
    if on_path:
        return Path(on_path)
    raise ChromaUnavailable(f"no `chroma` CLI beside {sys.executable} or on PATH (it comes with "
                            "the chromadb package)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + HEARTBEAT, timeout=2) as resp:
            return "nanosecond heartbeat" in json.loads(resp.read(4096))
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _tail(log: Path) -> str:
    text = log.read_text(encoding="utf-8", errors="replace").strip() if log.exists() else ""
    return " | ".join(line.strip() for line in text.splitlines()[-3:]) or "(no log)"


def start(data: Path, log: Path, *, timeout_s: float = 60.0, tries: int = 3
          ) -> tuple[subprocess.Popen, str]:
    """`chroma run` over `data` on a free loopback port, once its heartbeat answers: the process
    and the server's URL. A port taken between choosing and binding it is tried again."""
    chroma = find_chroma()
    env = os.environ | {"ANONYMIZED_TELEMETRY": "False", "NO_COLOR": "1"}
    for attempt in range(tries):
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        with log.open("ab") as out:
            server = subprocess.Popen(
                [str(chroma), "run", "--path", str(data), "--host", "127.0.0.1", "--port",
                 str(port)], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while server.poll() is None and time.monotonic() < deadline:
            if _answers(url):
                return server, url
            time.sleep(0.1)
        exited = server.poll() is not None
        stop(server)
        if not exited:
            raise ChromaUnavailable(f"`chroma run` did not answer within {timeout_s:.0f} s: "
                                    f"{_tail(log)}")
        if attempt == tries - 1:
            raise ChromaUnavailable(f"`chroma run` exited at start: {_tail(log)}")
    raise AssertionError("unreachable")


@contextmanager
def throwaway_chroma(*, timeout_s: float = 60.0) -> Iterator[str]:
    """A fresh chromadb server for the block; yields its URL (http://127.0.0.1:PORT)."""
    root = Path(tempfile.mkdtemp(prefix="edgeai-chroma-"))
    server = None
    try:
        server, url = start(root / "data", root / "chroma.log", timeout_s=timeout_s)
        yield url
    finally:
        if server is not None:
            stop(server)
        shutil.rmtree(root, ignore_errors=True)


def stop(server: subprocess.Popen, timeout_s: float = 30.0) -> None:
    """SIGTERM to the server's process group, SIGKILL if it lingers; reaped either way."""
    if server.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
            server.wait()
