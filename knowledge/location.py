"""Where the store of device manuals lives: embedded under the data home (the default), or on a
chromadb server (`--store http://HOST:PORT[/DATABASE]`, `$EDGEAI_STORE`) that several server
workers, or machines, share.

This module owns the store URL: checked once (a bad one is one line naming --store), and the
server asked for its heartbeat before anything starts (a server that does not answer is one line
naming the URL). It is light on purpose (no chromadb import): `edgeai serve` checks the URL
before it starts its workers.

What lives where with a server: the collections (devices, units, units_multilingual) and so the
manuals, their provenance and embeddings live on the server; the embeddings are computed by the
client with our own encoders and sent (the server needs no model). Beside them, in the data home
under `<home>/chroma-servers/<host>_<port>[_<database>]/`, stay the write lock, the journal of a
write in progress, the embedding cache and the encoder's word list. So every process that writes
to one server must share one data home (the server's workers do already) and name the server the
same way (the lock is kept per name); processes that only read may use any home.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

from edgeai.errors import EdgeAIError, UserInputError

SCHEMES = ("http", "https")
EMBEDDED = ("", "embedded")
DEFAULT_DATABASE = "default_database"  # chromadb's own default database (and tenant below)
DEFAULT_TENANT = "default_tenant"
HEARTBEAT = "/api/v2/heartbeat"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{2,62}$")


class StoreUnreachableError(EdgeAIError):
    """The chromadb server named by --store does not answer (down, wrong port, not chromadb) or
    refuses what opening the store asks of it."""


@dataclass(frozen=True)
class StoreServer:
    """A parsed store URL: what chromadb's HttpClient takes."""

    url: str
    host: str
    port: int
    ssl: bool
    database: str

    @property
    def base(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.ssl else 'http'}://{host}:{self.port}"

    @property
    def slug(self) -> str:
        """A folder name for this server's side files in the data home."""
        name = f"{self.host}_{self.port}"
        if self.database != DEFAULT_DATABASE:
            name += f"_{self.database}"
        return re.sub(r"[^A-Za-z0-9._-]", "-", name)


def parse_store(text: str | None) -> str | None:
    """The chromadb server's URL, or None for the store embedded in the home ("embedded",
    empty or None). Refuses anything else with the form it expects."""
    if text is None or text.strip() in EMBEDDED:
        return None
    server_of(text.strip())
    return text.strip().rstrip("/")


def server_of(url: str) -> StoreServer:
    """The parts of a store URL (http[s]://HOST:PORT[/DATABASE]); UserInputError naming --store
    otherwise."""
    form = "expected 'embedded' or http://HOST:PORT[/DATABASE]"
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise UserInputError(f"--store: {form}, got a '{parts.scheme or url[:20]}' URL")
    try:
        port = parts.port
    except ValueError:
        raise UserInputError("--store: the port is not a number in 1..65535") from None
    if not parts.hostname:
        raise UserInputError(f"--store: the URL has no host ({form})")
    if port is None:
        raise UserInputError(f"--store: the URL needs a port ({form}; chromadb's is 8000)")
    if parts.username is not None or parts.password is not None:
        raise UserInputError("--store: credentials in the URL are not supported (the chromadb "
                             "server must accept requests without them)")
    if parts.query or parts.fragment:
        raise UserInputError(f"--store: the URL may not have a query or fragment ({form})")
    database = parts.path.strip("/") or DEFAULT_DATABASE
    if not _NAME.match(database):
        raise UserInputError(f"--store: '{parts.path}' is not a database name (one path "
                             "segment: letters, digits, '.', '_', '-'; 3 to 63 of them)")
    return StoreServer(url=url.rstrip("/"), host=parts.hostname, port=port,
                       ssl=parts.scheme == "https", database=database)


def check_store(url: str, *, timeout_s: float = 10.0) -> None:
    """Ask the server for its heartbeat once and say, in one line, why it did not answer (for
    the command line and the store, before anything is read or written)."""
    server = server_of(url)
    try:
        with urllib.request.urlopen(server.base + HEARTBEAT, timeout=timeout_s) as resp:
            body = json.loads(resp.read(4096) or b"{}")
    except urllib.error.HTTPError as exc:
        raise StoreUnreachableError(f"--store {url}: not a chromadb server (GET {HEARTBEAT} "
                                    f"answered HTTP {exc.code})") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        reason = getattr(reason, "strerror", None) or str(reason) or type(exc).__name__
        raise StoreUnreachableError(f"--store {url}: cannot reach the chromadb server "
                                    f"({reason}; is `chroma run` up on that port?)") from None
    except ValueError:
        raise StoreUnreachableError(f"--store {url}: not a chromadb server (its heartbeat is "
                                    "not JSON)") from None
    if not isinstance(body, dict) or "nanosecond heartbeat" not in body:
        raise StoreUnreachableError(f"--store {url}: not a chromadb server (no heartbeat in "
                                    "its answer)")
