"""One writer at a time per data home, one run at a time per thread: OS file locks (fcntl.flock;
the store's is `<store>/write.lock`, a thread's `<home>/locks/thread-<digest>.lock`).

A writer (`knowledge add`/`remove`, the recovery of an interrupted write) holds the lock
exclusively from its checks to its last write, so two writers never interleave and a check such
as "this model id has no other owner" still holds when the write lands. The lock file records the
holder's PID, so a waiting command says whom it waits for; the OS drops the lock when its holder
dies (kill -9 included), so a crashed writer never leaves the home locked.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edgeai.errors import UserInputError

LOCK_NAME = "write.lock"
DEFAULT_TIMEOUT_S = 120.0


class HomeBusyError(UserInputError):
    """Another process held the data home's write lock for longer than the timeout."""


def _holder(path: Path) -> str:
    try:
        pid = path.read_text(encoding="ascii").strip()
    except OSError:
        return "another process"
    return f"PID {pid}" if pid.isdigit() else "another process"


@contextmanager
def write_lock(store_dir: Path, timeout_s: float | None = None) -> Iterator[None]:
    """Hold the store's exclusive write lock; waits (saying for whom, once) up to `timeout_s`
    (default $EDGEAI_LOCK_TIMEOUT or 120 s), then raises HomeBusyError."""
    with file_lock(Path(store_dir) / LOCK_NAME, f"data home busy: writing to '{store_dir}'",
                   timeout_s):
        yield


@contextmanager
def file_lock(path: Path, busy: str, timeout_s: float | None = None) -> Iterator[None]:
    """Hold an exclusive flock on `path` (created if missing), recording this PID in it; waits
    up to `timeout_s` (default $EDGEAI_LOCK_TIMEOUT or 120 s), then raises HomeBusyError with
    `busy` and the holder's PID."""
    if timeout_s is None:
        timeout_s = float(os.environ.get("EDGEAI_LOCK_TIMEOUT", DEFAULT_TIMEOUT_S))
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout_s
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise HomeBusyError(
                        f"{busy} ({_holder(path)} holds it; waited {timeout_s:g} s; "
                        "set EDGEAI_LOCK_TIMEOUT to wait longer)"
                    ) from None
                if not told:
                    print(f"busy, waiting for {_holder(path)} to finish…", file=sys.stderr)
                    told = True
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
