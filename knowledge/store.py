"""The knowledge store: device manuals in a persistent chromadb under the data home.

Three collections: `devices` (one record per manual: its front matter as JSON), and the retrieval
units (`units`, MiniLM; `units_multilingual`, USE-m3) that the caller cuts the manuals into (a
`UnitBuilder`: the planner's `agents/planning/units.py`); the store embeds, stores and retrieves
them and holds no planning logic.
A store the process may not write (a read-only home) is read through a private temporary copy:
chromadb cannot open a store without writing to it, and the home must stay as it was.
Writes are all-or-nothing per call, for a Python error and for a killed process alike: every
file is parsed and embedded before anything is written; then, holding the home's write lock
(knowledge/lock.py), the batch is checked against the store (model ids unique), what the affected
devices had is written to a journal (`write-journal.json`, made whole then renamed into place),
the devices are replaced, and the journal is deleted: that deletion is the commit. A store opened
with a journal present rolls the interrupted write back first (under the lock, so a write still
running is waited for, not undone), then checks that every device has its units in both
encoders' collections and every model id one owner, and refuses a broken store with a one-line
message naming the device and the command that repairs it.
The collections may instead live on a chromadb server (`open_store(home, url=...)`, `--store
http://HOST:PORT`): the same code reads and writes them over HTTP, embeddings still computed here
by our encoders; the lock, the journal and the embedding cache stay in the home, in a folder per
server (knowledge/location.py says what lives where and who must share the home).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import chromadb
import numpy as np
from chromadb.config import Settings as ChromaSettings
from edgeai.errors import EdgeAIError, HomeNotFoundError, ManualError, UserInputError
from edgeai.knowledge.embeddings import MiniLMEmbedding, MultilingualEmbedding
from edgeai.knowledge.lock import write_lock
from edgeai.knowledge.manuals import DeviceManual, Manual, ModelEntry, humanize, parse_manual

log = logging.getLogger(__name__)

ENCODER_COLLECTIONS = {"minilm": "units", "multilingual": "units_multilingual"}

UnitBuilder = Callable[[list[Manual], Callable[[str, list[str]], np.ndarray]], list[dict]]
"""Cuts manuals into retrieval units: (manuals, embed) -> [{device, model, kind, text, ...}], in
order; `embed(encoder, texts)` is the store's (cached) encoder. Extra keys become metadata."""


JOURNAL = "write-journal.json"


class StoreCorruptError(EdgeAIError):
    """The store's collections disagree (a write was interrupted before journaling existed, or
    files were changed by hand); the message names the device and the command that repairs it."""


@dataclass(frozen=True)
class PoolModel:
    """A model as the planner sees it: the manual's entry plus its device's tier and speeds."""

    name: str
    device: str
    tier: str
    task: str
    description: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    entry: dict = field(hash=False, compare=False, repr=False)


@dataclass
class Hit:
    device: str
    model: str
    kind: str
    text: str
    score: float


class KnowledgeStore:
    """chromadb persistent client under `<home>/store`, with our own offline embedding functions;
    or, given `url` (a chromadb server, knowledge/location.py), an HTTP client to that server,
    with `store_dir` holding only the side files (lock, journal, embedding cache)."""

    def __init__(self, store_dir: Path, *, create: bool = False, url: str | None = None) -> None:
        self.store_dir = Path(store_dir)
        self.url = url
        if url is not None:
            self.client = self._open_server(url, create)
        else:
            if not create and not self.store_dir.is_dir():
                raise HomeNotFoundError(
                    f"no knowledge store at '{self.store_dir}' "
                    "(add manuals first: `edgeai knowledge add FILE_OR_DIR --home DIR`)"
                )
            self.store_dir.mkdir(parents=True, exist_ok=True)
            if not create and not os.access(self.store_dir, os.W_OK):
                self.store_dir = _private_copy(self.store_dir)
            self.client = chromadb.PersistentClient(
                path=str(self.store_dir),
                settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False),
            )
        self.devices_col = self.client.get_or_create_collection(
            "devices", embedding_function=MiniLMEmbedding(), metadata={"hnsw:space": "cosine"}
        )
        self.unit_cols = {
            "minilm": self.client.get_or_create_collection(
                "units", embedding_function=MiniLMEmbedding(), metadata={"hnsw:space": "cosine"}
            ),
            "multilingual": self.client.get_or_create_collection(
                "units_multilingual",
                embedding_function=MultilingualEmbedding(),
                metadata={"hnsw:space": "cosine"},
            ),
        }
        self._pool_cache: tuple[int, list[DeviceManual]] | None = None
        if (self.store_dir / JOURNAL).exists():
            with write_lock(self.store_dir):
                self._roll_back_interrupted_write()
        self._check_consistency()

    def _open_server(self, url: str, create: bool) -> chromadb.ClientAPI:
        """An HTTP client to the chromadb server at `url` (its database created when `create`),
        after its heartbeat answered; `store_dir`, the side files' folder, made or, in a home
        this process may not write, replaced by a private copy without the journal (a reader
        never rolls back another process's write on a shared server)."""
        from chromadb.errors import ChromaError
        from edgeai.knowledge.location import StoreUnreachableError, check_store

        check_store(url)
        try:
            client = _server_client(url, create)
        except ChromaError as exc:
            raise StoreUnreachableError(f"--store {url}: the server refused ({exc})") from None
        try:
            self.store_dir.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass
        if not os.access(self.store_dir, os.W_OK):
            if create:
                raise UserInputError(f"'{self.store_dir}' is read-only: writing to the store "
                                     "keeps its lock and journal there")
            self.store_dir = _private_copy(self.store_dir, skip=(JOURNAL,))
        return client

    # ------------------------------------------------------------------ reads
    def manuals(self) -> list[DeviceManual]:
        got = self.devices_col.get(include=["metadatas"])
        out = [DeviceManual.model_validate(json.loads(m["front_matter"])) for m in got["metadatas"]]
        return sorted(out, key=lambda d: d.device)

    def device(self, device: str) -> DeviceManual | None:
        got = self.devices_col.get(ids=[device], include=["metadatas"])
        if not got["ids"]:
            return None
        return DeviceManual.model_validate(json.loads(got["metadatas"][0]["front_matter"]))

    def models(self) -> list[PoolModel]:
        out = []
        for dev in self.manuals():
            for m in dev.models:
                out.append(
                    PoolModel(
                        name=m.name,
                        device=dev.device,
                        tier=dev.tier,
                        task=m.task,
                        description=m.description,
                        inputs=tuple(m.inputs),
                        outputs=tuple(m.outputs),
                        entry=m.model_dump(mode="json", exclude_none=True),
                    )
                )
        return out

    def provenance(self) -> dict[str, dict[str, str | None]]:
        """Per device: the manual's file, its sha256, when and by whom it was added (None for
        devices added before provenance was recorded)."""
        got = self.devices_col.get(include=["metadatas"])
        return {
            d: {k: meta.get(k) for k in ("source", "sha256", "added_at", "added_by")}
            for d, meta in zip(got["ids"], got["metadatas"])
        }

    def overlaps(self, parsed: list[Manual]) -> list[str]:
        """Outputs a new manual's models claim that another device's models already serve: worth
        a look before the planner sends those requests to the new device."""
        batch = {m.entry.device for m in parsed}
        served: dict[str, list[str]] = {}
        for model in self.models():
            if model.device not in batch:
                for out in model.outputs:
                    served.setdefault(out, []).append(f"{model.name} on {model.device}")
        notes = []
        for manual in parsed:
            for model in manual.entry.models:
                for out in model.outputs:
                    if served.get(out):
                        notes.append(
                            f"{model.name} ({manual.entry.device}) claims {out}, also served by "
                            + ", ".join(served[out])
                        )
        return notes

    def owner_of(self) -> dict[str, str]:
        return {m.name: m.device for m in self.models()}

    def units(self, encoder: str) -> tuple[list[dict], np.ndarray]:
        """Every retrieval unit with its stored embedding (metadata has device, model, kind)."""
        got = self.unit_cols[encoder].get(include=["embeddings", "metadatas", "documents"])
        metas = [dict(meta, text=doc) for meta, doc in zip(got["metadatas"], got["documents"])]
        emb = (
            np.asarray(got["embeddings"], dtype=np.float32) if len(got["ids"]) else np.zeros((0, 1))
        )
        return metas, emb

    def query_units(self, embedding: np.ndarray, encoder: str, k: int) -> list[Hit]:
        """Nearest retrieval units to a query embedding (cosine similarity, best first)."""
        col = self.unit_cols[encoder]
        n = col.count()
        if n == 0:
            return []
        res = col.query(
            query_embeddings=[embedding.tolist()],
            n_results=min(k, n),
            include=["metadatas", "documents", "distances"],
        )
        return [
            Hit(meta["device"], meta["model"], meta["kind"], doc, 1.0 - float(dist))
            for meta, doc, dist in zip(
                res["metadatas"][0], res["documents"][0], res["distances"][0]
            )
        ]

    def search(self, query: str, k: int = 5) -> list[Hit]:
        """Manual passages and model facets nearest to a free-text query (English encoder)."""
        if not query.strip():
            raise UserInputError("search query is empty")
        from edgeai.knowledge.embeddings import encode_minilm

        return self.query_units(encode_minilm([query])[0], "minilm", k)

    @property
    def embed(self) -> Callable[..., np.ndarray]:
        """`embed(encoder, texts, prepare=None, tag="")`: `ENCODERS[encoder](texts)` bit for bit,
        cached in the data home beside the store (knowledge.embeddings.EmbeddingCache.embed);
        the encoder loads only when a list is new."""
        from edgeai.knowledge.embeddings import CACHE_FILE, EmbeddingCache

        if getattr(self, "_embedding_cache", None) is None:
            self._embedding_cache = EmbeddingCache(self.store_dir / CACHE_FILE)
        return self._embedding_cache.embed

    # ----------------------------------------------------------------- writes
    def add_manuals(self, files: list[Path], units: UnitBuilder) -> dict[str, list[str]]:
        """Parse, check, then write manuals; re-adding a device replaces it. All or nothing."""
        return self.add_parsed([parse_manual(Path(f)) for f in files], units)

    def add_parsed(self, parsed: list[Manual], units: UnitBuilder) -> dict[str, list[str]]:
        """Check parsed manuals against each other and the store, then write them."""
        self._check_batch(parsed)  # early, before the slow embedding; again under the lock
        records = self._records(parsed, units)  # embeddings computed before anything is written
        devices = [m.entry.device for m in parsed]
        with write_lock(self.store_dir):
            self._roll_back_interrupted_write()
            self._check_batch(parsed)
            existing = set(self.devices_col.get(ids=devices)["ids"]) if devices else set()
            overlaps = self.overlaps(parsed)
            self._replace(devices, records)
        return {
            "added": [d for d in devices if d not in existing],
            "replaced": [d for d in devices if d in existing],
            "overlaps": overlaps,
        }

    def remove_device(self, device: str) -> list[str]:
        with write_lock(self.store_dir):
            self._roll_back_interrupted_write()
            entry = self.device(device)
            if entry is None:
                known = ", ".join(d.device for d in self.manuals()) or "none"
                raise UserInputError(f"unknown device '{device}' (known: {known})")
            self._replace([device], None)
        return [m.name for m in entry.models]

    def _replace(self, devices: list[str], records: dict | None) -> None:
        """Journal what `devices` have, delete them, write `records` (None: nothing), commit by
        deleting the journal; a Python error rolls back at once, a killed process on next open.
        The caller holds the write lock."""
        self._write_journal({"devices": devices, "before": self._snapshot(devices)})
        try:
            self._delete_devices(devices)
            if records is not None:
                self._write(records)
        except BaseException as exc:  # whatever broke the write (disk, chromadb, Ctrl-C): roll back
            log.error("writing devices %s failed (%s); restoring what they had", devices, exc)
            self._roll_back_interrupted_write()
            raise
        (self.store_dir / JOURNAL).unlink()

    def _write_journal(self, journal: dict) -> None:
        path = self.store_dir / JOURNAL
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(journal, fh)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)  # whole or absent: a reader never finds half a journal
        dir_fd = os.open(self.store_dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _roll_back_interrupted_write(self) -> None:
        """Restore what the devices of an uncommitted write had (idempotent: a rollback killed
        half way is done again whole). The caller holds the write lock."""
        path = self.store_dir / JOURNAL
        for stale in self.store_dir.glob(f"{JOURNAL.removesuffix('.json')}.*.tmp"):
            stale.unlink(missing_ok=True)  # a journal killed before it was renamed into place
        if not path.exists():
            return
        journal = json.loads(path.read_text(encoding="utf-8"))
        log.warning("rolling back an interrupted write of devices %s", journal["devices"])
        self._delete_devices(journal["devices"])
        self._write(journal["before"])
        path.unlink()

    def _check_consistency(self) -> None:
        """Every device has units in both encoders' collections (the same count), no unit
        belongs to an unknown device, no model id has two owners."""
        devices = {d.device: d for d in self.manuals()}
        counts = {}
        for enc, col in self.unit_cols.items():
            per: dict[str, int] = {}
            for meta in col.get(include=["metadatas"])["metadatas"]:
                per[meta["device"]] = per.get(meta["device"], 0) + 1
            counts[enc] = per
        source = {d: p["source"] for d, p in self.provenance().items()}
        for dev in sorted(set(devices) | set(counts["minilm"]) | set(counts["multilingual"])):
            have = {enc: per.get(dev, 0) for enc, per in counts.items()}
            if dev not in devices:
                raise StoreCorruptError(
                    f"store: units of unknown device '{dev}': `edgeai knowledge add` its manual "
                    f"again, or `edgeai knowledge remove {dev}`"
                )
            if len(set(have.values())) > 1:
                raise StoreCorruptError(
                    f"store: device '{dev}' has {have['minilm']} English and "
                    f"{have['multilingual']} multilingual units: repair with "
                    f"`edgeai knowledge add {source.get(dev, '<its manual>')}` "
                    f"or `edgeai knowledge remove {dev}`"
                )
        owners: dict[str, str] = {}
        for dev in devices.values():
            for m in dev.models:
                if owners.setdefault(m.name, dev.device) != dev.device:
                    raise StoreCorruptError(
                        f"store: model id '{m.name}' is owned by both '{owners[m.name]}' and "
                        f"'{dev.device}': `edgeai knowledge remove` one of them"
                    )

    def _check_batch(self, parsed: list[Manual]) -> None:
        owners = self.owner_of()
        batch_devices: dict[str, str] = {}
        batch_models: dict[str, tuple[str, str]] = {}
        for manual in parsed:
            dev = manual.entry.device
            if dev in batch_devices:
                raise ManualError(
                    manual.source,
                    "device",
                    f"device '{dev}' is also defined in {batch_devices[dev]}",
                )
            batch_devices[dev] = manual.source
        replaced = set(batch_devices)
        for manual in parsed:
            dev = manual.entry.device
            for i, model in enumerate(manual.entry.models):
                field_name = f"models[{i}].name"
                owner = owners.get(model.name)
                if owner is not None and owner != dev and owner not in replaced:
                    raise ManualError(
                        manual.source,
                        field_name,
                        f"model id '{model.name}' is already owned by device '{owner}'",
                    )
                if model.name in batch_models and batch_models[model.name][0] != dev:
                    other_dev, other_file = batch_models[model.name]
                    raise ManualError(
                        manual.source,
                        field_name,
                        f"model id '{model.name}' is also declared by device '{other_dev}' in {other_file}",
                    )
                batch_models[model.name] = (dev, manual.source)

    def _records(self, parsed: list[Manual], build: UnitBuilder) -> dict:
        import datetime as dt
        import getpass
        import socket

        try:
            who = f"{getpass.getuser()}@{socket.gethostname()}"
        except (KeyError, OSError):  # no user name for this uid
            who = f"uid {os.getuid()}@{socket.gethostname()}"
        added_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        devices = {"ids": [], "documents": [], "metadatas": []}
        units = {"ids": [], "documents": [], "metadatas": []}
        for manual in parsed:
            entry = manual.entry
            devices["ids"].append(entry.device)
            devices["documents"].append(
                f"{entry.kind}. {entry.location or ''}. {manual.body[:500]}"
            )
            devices["metadatas"].append(
                {
                    "front_matter": json.dumps(entry.front_matter()),
                    "source": manual.source,
                    "tier": entry.tier,
                    "sha256": manual.sha256,
                    "added_at": added_at,
                    "added_by": who,
                }
            )
        numbered: dict[str, int] = {}
        for unit in build(parsed, self.embed):
            meta = {k: v for k, v in unit.items() if k != "text"}
            i = numbered.get(meta["device"], 0)
            numbered[meta["device"]] = i + 1
            units["ids"].append(f"{meta['device']}::{i}")
            units["documents"].append(unit["text"])
            units["metadatas"].append(meta)
        return {
            "devices": dict(devices, embeddings=self.embed("minilm", devices["documents"])),
            "minilm": dict(units, embeddings=self.embed("minilm", units["documents"])),
            "multilingual": dict(units, embeddings=self.embed("multilingual", units["documents"])),
        }

    def _snapshot(self, devices: list[str]) -> dict:
        """What `devices` have in every collection, as JSON-ready lists (the journal's body)."""
        snap: dict = {}
        if not devices:
            empty = {"ids": [], "documents": [], "metadatas": [], "embeddings": []}
            return {key: dict(empty) for key in ("devices", *self.unit_cols)}
        cols = [("devices", self.devices_col, {"ids": devices})] + [
            (enc, col, {"where": {"device": {"$in": devices}}})
            for enc, col in self.unit_cols.items()
        ]
        for key, col, select in cols:
            got = col.get(**select, include=["embeddings", "documents", "metadatas"])
            snap[key] = {k: list(got[k]) for k in ("ids", "documents", "metadatas")}
            snap[key]["embeddings"] = np.asarray(got["embeddings"], dtype=np.float32).tolist()
        return snap

    def _delete_devices(self, devices: list[str]) -> None:
        if not devices:
            return
        self.devices_col.delete(ids=devices)
        for col in self.unit_cols.values():
            col.delete(where={"device": {"$in": devices}})

    def _write(self, records: dict) -> None:
        pairs = [("devices", self.devices_col)] + [(enc, c) for enc, c in self.unit_cols.items()]
        for key, col in pairs:
            rec = records[key]
            if rec["ids"] is not None and len(rec["ids"]):
                col.add(
                    ids=list(rec["ids"]),
                    documents=list(rec["documents"]),
                    metadatas=list(rec["metadatas"]),
                    embeddings=np.asarray(rec["embeddings"], dtype=np.float32).tolist(),
                )


def _server_client(url: str, create: bool) -> chromadb.ClientAPI:
    """chromadb's HttpClient for the server at `url`, in its database (created when `create`);
    HomeNotFoundError when there is no store there yet and not creating."""
    from chromadb.errors import NotFoundError, UniqueConstraintError
    from edgeai.knowledge.location import DEFAULT_DATABASE, server_of

    server = server_of(url)
    missing = HomeNotFoundError(
        f"no knowledge store at {url} (add manuals first: "
        f"`edgeai knowledge add FILE_OR_DIR --store {url}`)"
    )
    if server.database != DEFAULT_DATABASE:
        admin = chromadb.AdminClient(ChromaSettings(
            chroma_api_impl="chromadb.api.fastapi.FastAPI", chroma_server_host=server.host,
            chroma_server_http_port=server.port, chroma_server_ssl_enabled=server.ssl,
            anonymized_telemetry=False))
        try:
            admin.get_database(server.database)
        except NotFoundError:
            if not create:
                raise missing from None
            try:
                admin.create_database(server.database)
            except UniqueConstraintError:  # another writer made it first
                pass
    client = chromadb.HttpClient(
        host=server.host, port=server.port, ssl=server.ssl, database=server.database,
        settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False),
    )
    if not create and "devices" not in {c.name for c in client.list_collections()}:
        raise missing
    return client


def _private_copy(store_dir: Path, skip: tuple[str, ...] = ()) -> Path:
    """A read-only store, copied to a temporary folder removed at exit: chromadb writes to open a
    store (its SQLite log), so commands that only read (`list`, `search`, `plan`) read the copy
    and the home stays exactly as it was. (A server's side files, `skip` naming the journal: an
    empty folder when the home has none yet.)"""
    import atexit
    import shutil
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="edgeai-read-only-"))
    atexit.register(shutil.rmtree, tmp, True)
    copy = tmp / "store"
    if not store_dir.is_dir():
        copy.mkdir()
        return copy
    shutil.copytree(store_dir, copy, ignore=shutil.ignore_patterns("*.lock", *skip),
                    copy_function=shutil.copyfile)  # the data, not the read-only modes
    for path in [copy, *copy.rglob("*")]:
        path.chmod(0o700 if path.is_dir() else 0o600)
    log.info("store '%s' is read-only: reading a private copy in %s", store_dir, copy)
    return copy


def add_to_home(
    home: Path, paths: list[Path], units: UnitBuilder, *, url: str | None = None
) -> dict[str, list[str]]:
    """`edgeai knowledge add`: every file is parsed before the home or its store is created
    (`url`: a chromadb server's, see `open_store`)."""
    from edgeai.knowledge.manuals import collect_manual_files

    parsed = [parse_manual(f) for f in collect_manual_files([Path(p) for p in paths])]
    if not parsed:
        raise UserInputError("no manual given")
    store = open_store(home, create=True, url=url)
    return store.add_parsed(parsed, units)


def open_store(home: Path, *, create: bool = False, url: str | None = None) -> KnowledgeStore:
    """The store of a data home; refuses a home that does not exist unless creating. With `url`
    (`--store`, checked by knowledge.location.parse_store) the collections live on that chromadb
    server and the home keeps the side files under `chroma-servers/<host>_<port>[_<db>]/`."""
    home = Path(home)
    if not create and not home.is_dir():
        raise HomeNotFoundError(f"data home '{home}' does not exist")
    if url is not None:
        from edgeai.knowledge.location import parse_store, server_of

        url = parse_store(url)
    if url is None:
        return KnowledgeStore(home / "store", create=create)
    return KnowledgeStore(home / "chroma-servers" / server_of(url).slug, create=create, url=url)


__all__ = [
    "Hit",
    "KnowledgeStore",
    "ModelEntry",
    "PoolModel",
    "UnitBuilder",
    "humanize",
    "open_store",
]
