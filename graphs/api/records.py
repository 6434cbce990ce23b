"""Threads and runs of the API, kept beside the checkpointer: in `api.sqlite` next to the home's
SQLite checkpoints, or in two tables of the Postgres database the checkpointer uses.

The checkpointer keeps what a thread holds; these tables keep what the API says about it (when it
was made, its metadata) and every run's status, so a restarted server, or any sibling worker of
`--workers N`, answers for both. A run whose owning process died (killed mid-run) is marked
`interrupted` when the next server opens the tables: its host and process id are checked, so the
live runs of sibling workers, and of servers on other machines sharing the Postgres database, are
left alone. The SQL is written once, with `?` placeholders; the Postgres side swaps them for
psycopg's `%s`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import sqlite3
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS threads (
    thread_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, thread_id TEXT NOT NULL, assistant_id TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, status TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}', kwargs TEXT NOT NULL DEFAULT '{}',
    multitask_strategy TEXT NOT NULL DEFAULT 'reject', reason TEXT, pid INTEGER, host TEXT);
CREATE INDEX IF NOT EXISTS runs_by_thread ON runs (thread_id, created_at);
"""
ACTIVE = ("pending", "running")
KILLED = "the server stopped while the run was going (killed or crashed); the thread keeps " \
         "every step checkpointed before that"
HOST = socket.gethostname()


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SqliteTables:
    """The tables in one SQLite file (WAL: the workers of one home share it)."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._db.executescript(SCHEMA)
            columns = [r["name"] for r in self._db.execute("PRAGMA table_info(runs)")]
            if "host" not in columns:  # a home made before runs said where they ran
                self._db.execute("ALTER TABLE runs ADD COLUMN host TEXT")

    def execute(self, sql: str, args: tuple = ()) -> list[Mapping[str, Any]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()


class PostgresTables:
    """The tables in the checkpointer's Postgres database, over its connection pool (dict rows,
    autocommit: every statement is its own transaction, as on the SQLite side)."""

    def __init__(self, pool: Any) -> None:
        from edgeai.graphs.persistence import setup_lock

        self._pool = pool
        with setup_lock(pool) as conn:
            for statement in filter(str.strip, SCHEMA.split(";")):
                conn.execute(statement)

    def execute(self, sql: str, args: tuple = ()) -> list[Mapping[str, Any]]:
        with self._pool.connection() as conn:
            cursor = conn.execute(sql.replace("?", "%s"), args)
            return cursor.fetchall() if cursor.description else []


class Records:
    """The threads and runs tables; every method is one short transaction (thread-safe)."""

    def __init__(self, tables: SqliteTables | PostgresTables) -> None:
        self.tables = tables
        self.recover()

    @classmethod
    def for_app(cls, app: Any) -> Records:
        """Beside the app's checkpointer: its Postgres pool, or `api.sqlite` in its home."""
        if app.pool is not None:
            return cls(PostgresTables(app.pool))
        return cls(SqliteTables(app.settings.checkpoint_db.parent / "api.sqlite"))

    def _run(self, sql: str, args: tuple = ()) -> list[Mapping[str, Any]]:
        return self.tables.execute(sql, args)

    def recover(self) -> int:
        """Mark the runs of dead processes of this machine interrupted; how many were."""
        rows = self._run("SELECT run_id, pid, host FROM runs WHERE status IN (?, ?)", ACTIVE)
        orphans = [r["run_id"] for r in rows if r["host"] in (None, HOST)
                   and (not _alive(r["pid"]) or r["pid"] == os.getpid())]
        for run_id in orphans:
            self.finish(run_id, "interrupted", KILLED)
        return len(orphans)

    # threads
    def add_thread(self, thread_id: str, metadata: dict[str, Any]) -> dict[str, Any]:
        t = now()
        self._run("INSERT INTO threads VALUES (?, ?, ?, ?)",
                  (thread_id, t, t, json.dumps(metadata)))
        return self.thread(thread_id)

    def thread(self, thread_id: str) -> dict[str, Any] | None:
        rows = self._run("SELECT * FROM threads WHERE thread_id = ?", (thread_id,))
        return _thread(rows[0]) if rows else None

    def threads(self, *, ids: list[str] | None, limit: int, offset: int,
                order: str = "DESC") -> list[dict[str, Any]]:
        where, args = "", ()
        if ids is not None:
            where = f"WHERE thread_id IN ({','.join('?' * len(ids))})"
            args = tuple(ids)
        rows = self._run(f"SELECT * FROM threads {where} ORDER BY created_at {order} "
                         "LIMIT ? OFFSET ?", (*args, limit, offset))
        return [_thread(r) for r in rows]

    def touch_thread(self, thread_id: str, metadata: dict[str, Any] | None = None) -> None:
        if metadata is None:
            self._run("UPDATE threads SET updated_at = ? WHERE thread_id = ?", (now(), thread_id))
        else:
            self._run("UPDATE threads SET updated_at = ?, metadata = ? WHERE thread_id = ?",
                      (now(), json.dumps(metadata), thread_id))

    def delete_thread(self, thread_id: str) -> None:
        self._run("DELETE FROM runs WHERE thread_id = ?", (thread_id,))
        self._run("DELETE FROM threads WHERE thread_id = ?", (thread_id,))

    # runs
    def add_run(self, run_id: str, thread_id: str, assistant_id: str, metadata: dict[str, Any],
                kwargs: dict[str, Any], strategy: str) -> dict[str, Any]:
        t = now()
        self._run("INSERT INTO runs (run_id, thread_id, assistant_id, created_at, updated_at, "
                  "status, metadata, kwargs, multitask_strategy, reason, pid, host) "
                  "VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, NULL, ?, ?)",
                  (run_id, thread_id, assistant_id, t, t, json.dumps(metadata),
                   json.dumps(kwargs), strategy, os.getpid(), HOST))
        return self.run(thread_id, run_id)

    def run(self, thread_id: str, run_id: str) -> dict[str, Any] | None:
        rows = self._run("SELECT * FROM runs WHERE thread_id = ? AND run_id = ?",
                         (thread_id, run_id))
        return _run_row(rows[0]) if rows else None

    def runs(self, thread_id: str, *, limit: int, offset: int,
             status: str | None = None) -> list[dict[str, Any]]:
        extra, args = ("AND status = ?", (status,)) if status else ("", ())
        rows = self._run(f"SELECT * FROM runs WHERE thread_id = ? {extra} ORDER BY created_at "
                         "DESC LIMIT ? OFFSET ?", (thread_id, *args, limit, offset))
        return [_run_row(r) for r in rows]

    def active_run(self, thread_id: str) -> dict[str, Any] | None:
        rows = self._run("SELECT * FROM runs WHERE thread_id = ? AND status IN (?, ?)",
                         (thread_id, *ACTIVE))
        return _run_row(rows[0]) if rows else None

    def last_status(self, thread_id: str) -> str | None:
        rows = self._run("SELECT status FROM runs WHERE thread_id = ? ORDER BY created_at DESC "
                         "LIMIT 1", (thread_id,))
        return rows[0]["status"] if rows else None

    def set_status(self, run_id: str, status: str) -> None:
        self._run("UPDATE runs SET status = ?, updated_at = ? WHERE run_id = ?",
                  (status, now(), run_id))

    def finish(self, run_id: str, status: str, reason: str | None = None) -> None:
        self._run("UPDATE runs SET status = ?, reason = ?, updated_at = ? WHERE run_id = ?",
                  (status, reason, now(), run_id))

    def delete_run(self, run_id: str) -> None:
        self._run("DELETE FROM runs WHERE run_id = ?", (run_id,))


def _thread(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"thread_id": row["thread_id"], "created_at": row["created_at"],
            "updated_at": row["updated_at"], "metadata": json.loads(row["metadata"])}


def _run_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"run_id": row["run_id"], "thread_id": row["thread_id"],
            "assistant_id": row["assistant_id"], "created_at": row["created_at"],
            "updated_at": row["updated_at"], "status": row["status"],
            "metadata": json.loads(row["metadata"]), "kwargs": json.loads(row["kwargs"]),
            "multitask_strategy": row["multitask_strategy"], "reason": row["reason"]}
