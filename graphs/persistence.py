"""Where threads are kept: a SQLite file under the data home (the default), or a PostgreSQL
database (`postgres://...`) that several server workers, or machines, share.

This module owns the checkpointer URL (checked once; a bad one is one line naming what is wrong,
never echoing a password), the psycopg connection pool that LangGraph's `PostgresSaver` and the
API's run/thread records (graphs/api/records.py) share, and the schema set-up, which runs under a
Postgres advisory lock so that workers starting together never race on CREATE TABLE.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from edgeai.errors import EdgeAIError, UserInputError

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

SCHEMES = ("postgres", "postgresql")
SETUP_LOCK = 0x6564676561690001  # pg_advisory_lock key: "edgeai" + 1, the schema set-up
POOL_SIZE = 16  # per process: the graph's runs (one thread each) and the API's reads share it


class CheckpointerError(EdgeAIError):
    """The Postgres checkpointer cannot be reached or set up (a server down, a wrong password)."""


def parse_checkpointer(text: str | None) -> str | None:
    """The Postgres URL to keep threads in, or None for the home's SQLite file ("sqlite", empty
    or None). Refuses anything else with the form it expects."""
    if text is None or text.strip() in ("", "sqlite"):
        return None
    text = text.strip()
    parts = urlsplit(text)
    if parts.scheme not in SCHEMES:
        raise UserInputError(f"--checkpointer: expected 'sqlite' or postgres://USER@HOST:PORT/DB, "
                             f"got a '{parts.scheme or text[:20]}' URL")
    try:
        parts.port  # noqa: B018 - parsing it is the check
    except ValueError:
        raise UserInputError("--checkpointer: the port is not a number in 1..65535") from None
    if not parts.hostname or not parts.path.strip("/"):
        raise UserInputError("--checkpointer: the URL needs a host and a database "
                             "(postgres://USER@HOST:PORT/DB)")
    return text


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def open_pool(url: str, *, timeout_s: float = 30.0) -> ConnectionPool:
    """A connection pool as `PostgresSaver` needs it (autocommit, dict rows, no prepared
    statements), opened and checked: a server that does not answer is a `CheckpointerError`."""
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool, PoolTimeout

    pool = ConnectionPool(url, min_size=1, max_size=POOL_SIZE, open=False,
                          kwargs={"autocommit": True, "prepare_threshold": 0,
                                  "row_factory": dict_row})
    try:
        pool.open(wait=True, timeout=timeout_s)
    except PoolTimeout:
        pool.close()
        raise CheckpointerError(f"cannot connect to the checkpointer {redact(url)} within "
                                f"{timeout_s:.0f} s (is the server up, the database created, "
                                "the password right?)") from None
    return pool


def check_connection(url: str, *, timeout_s: int = 10) -> None:
    """Connect once and say, in one line, why not (for the command line, before serving)."""
    import psycopg

    try:
        psycopg.connect(url, connect_timeout=timeout_s).close()
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointerError(f"--checkpointer {redact(url)}: cannot connect ({reason})") from None


@contextmanager
def setup_lock(pool: ConnectionPool, *, timeout_s: float = 300.0) -> Iterator[Any]:
    """Hold the schema set-up lock (a session advisory lock) on one of the pool's connections.

    Taken by polling `pg_try_advisory_lock`, never by a blocking `pg_advisory_lock`: a worker
    blocked inside a statement holds a snapshot, and LangGraph's migrations build an index
    CONCURRENTLY, which waits for every older snapshot to end, the waiting worker's included,
    while the lock holder waits for that index: a deadlock Postgres cannot see (its cycle runs
    through the holder's client)."""
    deadline = time.monotonic() + timeout_s
    with pool.connection() as conn:
        while not conn.execute("SELECT pg_try_advisory_lock(%s) AS got",
                               (SETUP_LOCK,)).fetchone()["got"]:
            if time.monotonic() > deadline:
                raise CheckpointerError(f"the checkpointer's schema set-up lock was held over "
                                        f"{timeout_s:.0f} s by another server")
            time.sleep(0.2)
        try:
            yield conn
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (SETUP_LOCK,))


def postgres_checkpointer(pool: ConnectionPool) -> Any:
    """LangGraph's `PostgresSaver` over the pool, its tables created or migrated (once, whoever
    of the workers comes first)."""
    from langgraph.checkpoint.postgres import PostgresSaver

    saver = PostgresSaver(pool)
    with setup_lock(pool):
        saver.setup()
    return saver
