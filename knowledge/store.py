"""The knowledge store: device manuals in a persistent chromadb under the data home.

Three collections: `devices` (one record per manual: its front matter as JSON), and the retrieval
units (`units`, MiniLM; `units_multilingual`, USE-m3): per model its task, outputs, name and
description, plus manual passages (attached to the models they mention, else to the device).
Writes are all-or-nothing per call: every file is parsed and checked before anything is written,
and a failed write restores what the affected devices had before.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import chromadb
import numpy as np
from chromadb.config import Settings as ChromaSettings
from edgeai.errors import HomeNotFoundError, ManualError, UserInputError
from edgeai.knowledge.embeddings import MiniLMEmbedding, MultilingualEmbedding
from edgeai.knowledge.manuals import DeviceManual, Manual, ModelEntry, parse_manual, split_passages

log = logging.getLogger(__name__)

_NEGATION = re.compile(
    r"\b(not|no|none|cannot|can't|doesn't|don't|won't|isn't|never|unable|neither|nor)\b",
    re.IGNORECASE,
)
ENCODER_COLLECTIONS = {"minilm": "units", "multilingual": "units_multilingual"}


def humanize(identifier: str) -> str:
    """`heart_rate_bpm` -> `heart rate bpm`; `mood-from-apps` -> `mood from apps`."""
    return re.sub(r"[_\-.]+", " ", identifier).strip()


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


def manual_paragraphs(body: str) -> list[tuple[str, list[str]]]:
    """(paragraph text, its bullets or sentences) per block of a manual body, headings dropped."""
    out: list[tuple[str, list[str]]] = []
    for block in re.split(r"\n\s*\n", body):
        lines = [ln.strip() for ln in block.strip().splitlines() if ln.strip()]
        lines = [ln for ln in lines if not ln.startswith("#")]
        if not lines:
            continue
        text = " ".join(re.sub(r"^([-*+]|\d+[.)])\s+", "", ln) for ln in lines)
        if all(re.match(r"^([-*+]|\d+[.)])\s", ln) for ln in lines):
            items = [re.sub(r"^([-*+]|\d+[.)])\s+", "", ln) for ln in lines]
        else:
            items = re.split(r"(?<=[.!?])\s+", text)
        items = [re.sub(r"[*_`]+", "", item).strip() for item in items]
        out.append((re.sub(r"[*_`]+", "", text), [s for s in items if len(s.split()) >= 3]))
    return out


def manual_sentences(body: str) -> list[str]:
    """Bullets and sentences of a manual body (headings dropped), the finest retrieval units."""
    return [s for _, items in manual_paragraphs(body) for s in items]


def _owners(text: str, models: list[ModelEntry]) -> list[str]:
    low = text.lower()
    return [
        m.name
        for m in models
        if m.name.lower() in low or humanize(m.name).lower() in low or m.task.lower() in low
    ]


# Request-like texts generated per declared output (doc2query without an LLM): users ask for a
# model's result ("what is my heart rate?"), which manuals rarely phrase as a question.
QUERY_TEMPLATES = ("what is my {out}?", "how is my {out}?", "tell me the {out}", "check my {out}")


def _transforms(out: str, inputs: list[str]) -> bool:
    """True when an output is a form of one of the model's inputs (image -> image, text ->
    translated_text): questions about it ("what is my translated text?") would match every
    request about the input ("read the text") rather than the transformation."""
    words = set(humanize(out).lower().split())
    return any(set(humanize(i).lower().split()) <= words for i in inputs)


def limit_fragments(sentence: str) -> list[str]:
    """The capabilities a 'cannot do' sentence denies, one per comma-separated part.

    Clauses (split at ';' and ':') without a negation say what the device does, not what it
    lacks, and are skipped; so are the parts before the first negation ("It detects people,
    not who they are" denies only "who they are").
    """
    out: list[str] = []
    for clause in re.split(r"[;:]", sentence):
        neg = _NEGATION.search(clause)
        if not neg:
            continue
        parts = [p.strip(" .()") for p in re.split(r"[,()]", clause)]
        start = 0
        for i, part in enumerate(parts):
            if _NEGATION.search(part):
                start = i
                break
        parts = [re.sub(r"^(and|or|nor)\s+", "", p, flags=re.IGNORECASE) for p in parts[start:]]
        out.extend(p for p in parts if len(p.split()) >= 2)
    return out


def retrieval_units(manual: Manual) -> list[tuple[str, str, str]]:
    """(model or '', kind, text) units of one manual: model facets, passages, sentences, limits.

    Per model: its task, name, description, the outputs it does not also consume, and
    request-like questions about each (QUERY_TEMPLATES; kind 'derived_query' when the output is a
    form of an input, like translated_text from text). A passage or sentence naming exactly one
    model belongs to it, and so does a sentence in a paragraph naming exactly one model; the
    others are left to the device ('') and attributed later by similarity (see
    KnowledgeStore._attribute). Negated sentences become 'limit' units, whole and split into
    their comma-separated capabilities.
    """
    entry = manual.entry
    units: list[tuple[str, str, str]] = []
    for m in entry.models:
        units.append((m.name, "task", m.task))
        units.append((m.name, "name", humanize(m.name)))
        units.append((m.name, "description", m.description))
        new_outputs = [o for o in m.outputs if o not in m.inputs]
        if new_outputs:  # "estimates image" says nothing about an image -> image model
            units.append(
                (m.name, "outputs", "estimates " + ", ".join(humanize(o) for o in new_outputs))
            )
        for out in m.outputs:
            if out in m.inputs:  # a transformer (image -> image): "what is my image?" asks nothing
                continue
            # a form of an input (text -> translated text): weaker evidence ('derived_query')
            kind = "derived_query" if _transforms(out, m.inputs) else "query"
            units.extend((m.name, kind, t.format(out=humanize(out))) for t in QUERY_TEMPLATES)
    for passage in split_passages(manual.body):
        owners = _owners(passage, entry.models)
        units.append((owners[0] if len(owners) == 1 else "", "passage", passage))
    for paragraph, sentences in manual_paragraphs(manual.body):
        # a paragraph that names exactly one model ("**ocr-text-reader** finds text ...") is
        # about that model: its other sentences ("It handles street signs ...") are too
        para_owners = _owners(paragraph, entry.models) if len(entry.models) > 1 else []
        for sentence in sentences:
            limits = limit_fragments(sentence) if len(sentence.split()) >= 4 else []
            if limits:
                # what the manual says the device or a model can NOT do: evidence against near
                # misses, as the whole sentence and as each denied capability
                units.append(("", "limit", sentence))
                units.extend(("", "limit", frag) for frag in limits)
                continue
            owners = _owners(sentence, entry.models) or para_owners
            units.append((owners[0] if len(owners) == 1 else "", "sentence", sentence))
    return list(dict.fromkeys(units))


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

    def embed(self, encoder: str, texts: list[str]) -> np.ndarray:
        """`ENCODERS[encoder](texts)`, bit for bit, cached in the data home beside the store
        (knowledge.embeddings.EmbeddingCache); the encoder loads only when a list is new."""
        from edgeai.knowledge.embeddings import EmbeddingCache

        if getattr(self, "_embedding_cache", None) is None:
            self._embedding_cache = EmbeddingCache(self.store_dir / "embeddings.sqlite")
        return self._embedding_cache.embed(encoder, texts)

    # ----------------------------------------------------------------- writes
    def add_manuals(self, files: list[Path]) -> dict[str, list[str]]:
        """Parse, check, then write manuals; re-adding a device replaces it. All or nothing."""
        return self.add_parsed([parse_manual(Path(f)) for f in files])

    def add_parsed(self, parsed: list[Manual]) -> dict[str, list[str]]:
        """Check parsed manuals against each other and the store, then write them."""
        self._check_batch(parsed)
        records = self._records(parsed)  # embeddings computed before anything is written
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

    def _records(self, parsed: list[Manual]) -> dict:
        from edgeai.knowledge.embeddings import encode_minilm, encode_multilingual

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
            for i, (model, kind, text) in enumerate(retrieval_units(manual)):
                units["ids"].append(f"{entry.device}::{i}")
                units["documents"].append(text)
                units["metadatas"].append({"device": entry.device, "model": model, "kind": kind})
        emb = {"minilm": encode_minilm(units["documents"]), "multilingual": None}
        self._attribute(units, emb["minilm"])
        emb["multilingual"] = encode_multilingual(units["documents"])
        return {
            "devices": dict(devices, embeddings=encode_minilm(devices["documents"])),
            "minilm": dict(units, embeddings=emb["minilm"]),
            "multilingual": dict(units, embeddings=emb["multilingual"]),
        }

    @staticmethod
    def _attribute(units: dict, emb: np.ndarray, margin: float = 0.05, floor: float = 0.25) -> None:
        """Give a device-level sentence to the model of that device it is clearly about.

        "Asking how many guests appear in a party shot" names no model, but is nearest to the
        VQA model's own description; a sentence close to no model (or to several) stays with
        the device. Runs once at add time, on the English encoder.
        """
        metas = units["metadatas"]
        facets: dict[str, list[int]] = {}
        for i, meta in enumerate(metas):
            if meta["model"] and meta["kind"] in ("task", "description", "outputs"):
                facets.setdefault(meta["model"], []).append(i)
        by_device: dict[str, list[str]] = {}
        for meta in metas:
            if meta["model"] and meta["model"] not in by_device.get(meta["device"], []):
                by_device.setdefault(meta["device"], []).append(meta["model"])
        for i, meta in enumerate(metas):
            if meta["model"] or meta["kind"] != "sentence":
                continue
            models = by_device.get(meta["device"], [])
            if not models:
                continue
            sims = [float(np.max(emb[facets[m]] @ emb[i])) for m in models]
            order = np.argsort(sims)[::-1]
            best = sims[order[0]]
            second = sims[order[1]] if len(models) > 1 else -1.0
            if best >= floor and best - second >= margin:
                meta["model"] = models[order[0]]
                meta["attributed"] = True

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


def add_to_home(home: Path, paths: list[Path]) -> dict[str, list[str]]:
    """`edgeai knowledge add`: every file is parsed before the home or its store is created."""
    from edgeai.knowledge.manuals import collect_manual_files

    parsed = [parse_manual(f) for f in collect_manual_files([Path(p) for p in paths])]
    if not parsed:
        raise UserInputError("no manual given")
    store = open_store(home, create=True)
    return store.add_parsed(parsed)


def open_store(home: Path, *, create: bool = False) -> KnowledgeStore:
    """The store of a data home; refuses a home that does not exist unless creating."""
    home = Path(home)
    if not create and not home.is_dir():
        raise HomeNotFoundError(f"data home '{home}' does not exist")
    return KnowledgeStore(home / "store", create=create)


__all__ = ["Hit", "KnowledgeStore", "ModelEntry", "PoolModel", "humanize", "open_store"]
