"""The knowledge store: device manuals in a persistent chromadb under the data home.

Three collections: `devices` (one record per manual: its front matter as JSON), and the retrieval
units (`units`, MiniLM; `units_multilingual`, USE-m3) that the caller cuts the manuals into (a
`UnitBuilder`: the planner's `agents/planning/units.py`); the store embeds, stores and retrieves
them and holds no planning logic.
Writes are all-or-nothing per call: every file is parsed and checked before anything is written,
and a failed write restores what the affected devices had before.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import chromadb
import numpy as np
from chromadb.config import Settings as ChromaSettings
from edgeai.errors import HomeNotFoundError, ManualError, UserInputError
from edgeai.knowledge.embeddings import MiniLMEmbedding, MultilingualEmbedding
from edgeai.knowledge.manuals import DeviceManual, Manual, ModelEntry, humanize, parse_manual

log = logging.getLogger(__name__)

ENCODER_COLLECTIONS = {"minilm": "units", "multilingual": "units_multilingual"}

UnitBuilder = Callable[[list[Manual], Callable[[str, list[str]], np.ndarray]], list[dict]]
"""Cuts manuals into retrieval units: (manuals, embed) -> [{device, model, kind, text, ...}], in
order; `embed(encoder, texts)` is the store's (cached) encoder. Extra keys become metadata."""


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
    """chromadb persistent client under `<home>/store`, with our own offline embedding functions."""

    def __init__(self, store_dir: Path, *, create: bool = False) -> None:
        self.store_dir = Path(store_dir)
        if not create and not self.store_dir.is_dir():
            raise HomeNotFoundError(
                f"no knowledge store at '{self.store_dir}' "
                "(add manuals first: `edgeai knowledge add FILE_OR_DIR --home DIR`)"
            )
        self.store_dir.mkdir(parents=True, exist_ok=True)
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
        from edgeai.knowledge.embeddings import EmbeddingCache

        if getattr(self, "_embedding_cache", None) is None:
            self._embedding_cache = EmbeddingCache(self.store_dir / "embeddings.sqlite")
        return self._embedding_cache.embed

    # ----------------------------------------------------------------- writes
    def add_manuals(self, files: list[Path], units: UnitBuilder) -> dict[str, list[str]]:
        """Parse, check, then write manuals; re-adding a device replaces it. All or nothing."""
        return self.add_parsed([parse_manual(Path(f)) for f in files], units)

    def add_parsed(self, parsed: list[Manual], units: UnitBuilder) -> dict[str, list[str]]:
        """Check parsed manuals against each other and the store, then write them."""
        self._check_batch(parsed)
        records = self._records(parsed, units)  # embeddings computed before anything is written
        devices = [m.entry.device for m in parsed]
        existing = set(self.devices_col.get(ids=devices)["ids"]) if devices else set()
        snapshot = self._snapshot(devices)
        try:
            self._delete_devices(devices)
            self._write(records)
        except BaseException as exc:  # whatever broke the write (disk, chromadb, Ctrl-C): roll back
            log.error("writing devices %s failed (%s); restoring what they had", devices, exc)
            self._delete_devices(devices)
            self._write(snapshot)
            raise
        return {
            "added": [d for d in devices if d not in existing],
            "replaced": [d for d in devices if d in existing],
        }

    def remove_device(self, device: str) -> list[str]:
        entry = self.device(device)
        if entry is None:
            known = ", ".join(d.device for d in self.manuals()) or "none"
            raise UserInputError(f"unknown device '{device}' (known: {known})")
        self._delete_devices([device])
        return [m.name for m in entry.models]

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
        snap = {}
        got = self.devices_col.get(ids=devices, include=["embeddings", "documents", "metadatas"])
        snap["devices"] = {k: got[k] for k in ("ids", "documents", "metadatas", "embeddings")}
        for enc, col in self.unit_cols.items():
            got = col.get(
                where={"device": {"$in": devices}} if devices else None,
                include=["embeddings", "documents", "metadatas"],
            )
            snap[enc] = {k: got[k] for k in ("ids", "documents", "metadatas", "embeddings")}
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


def add_to_home(home: Path, paths: list[Path], units: UnitBuilder) -> dict[str, list[str]]:
    """`edgeai knowledge add`: every file is parsed before the home or its store is created."""
    from edgeai.knowledge.manuals import collect_manual_files

    parsed = [parse_manual(f) for f in collect_manual_files([Path(p) for p in paths])]
    if not parsed:
        raise UserInputError("no manual given")
    store = open_store(home, create=True)
    return store.add_parsed(parsed, units)


def open_store(home: Path, *, create: bool = False) -> KnowledgeStore:
    """The store of a data home; refuses a home that does not exist unless creating."""
    home = Path(home)
    if not create and not home.is_dir():
        raise HomeNotFoundError(f"data home '{home}' does not exist")
    return KnowledgeStore(home / "store", create=create)


__all__ = [
    "Hit",
    "KnowledgeStore",
    "ModelEntry",
    "PoolModel",
    "UnitBuilder",
    "humanize",
    "open_store",
]
