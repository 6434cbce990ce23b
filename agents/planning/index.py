"""The pool as the embedded chooser scores it: retrieval units, calibrated relevance, limits.

Read once from the store per planner: the models' own units (generated questions several
non-alternative models share are dropped: "what is my text?" tells captioning from OCR nothing),
the manuals' 'cannot do' units, the null statistics of background requests this pool does not
serve (background.txt), and exact-word (BM25) documents per model. `score(text)` gives every
retrieved model's relevance to a text: z-scores against the background, the raw encoder-weighted
similarity (plus exact-word evidence for English ranking), how much better the text matches what
the model's device cannot do, and the best pool-wide 'cannot do' fragment no other device covers.
Two offline encoders read every text: MiniLM (an English request as typed, another language as
its English gloss) and USE-m3 (16 languages, as typed). Retrieval is exact nearest-unit search
over the stored vectors, so a request gets the same plan every run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise
from pathlib import Path

import numpy as np
from edgeai.agents.planning.gloss import tokens as gloss_tokens
from edgeai.agents.planning.lexical import LexicalIndex
from edgeai.agents.planning.read import Reader, is_english
from edgeai.agents.planning.structure import PoolGraph
from edgeai.knowledge.embeddings import ENCODERS, encoder_version, multilingual_words
from edgeai.knowledge.manuals import humanize
from edgeai.knowledge.store import KnowledgeStore, PoolModel

BACKGROUND_FILE = Path(__file__).with_name("background.txt")
KIND_WEIGHT = {
    "task": 1.0,
    "outputs": 1.0,
    "query": 1.0,
    "derived_query": 0.9,
    "name": 0.95,
    "description": 0.95,
    "passage": 0.9,
}
ALTERNATIVE_TASK_SIM = 0.55
"""task-label similarity (MiniLM cosine) above which two models with the same outputs are
alternatives (measured: two mood classifiers 0.69; captioning/VQA/OCR/transcription <= 0.41)."""
ENCODER_WEIGHTS = {"minilm": 0.5, "multilingual": 0.5}
"""Both encoders count alike for every request: MiniLM reads an English request as typed and a
request in another language as its word-by-word English gloss; USE-m3 reads the text as typed."""


@dataclass
class Scored:
    """z-scores of every candidate model for one piece of text."""

    text: str
    z: dict[str, float]
    raw: dict[str, float] = field(default_factory=dict)
    against: dict[str, float] = field(default_factory=dict)
    """how much better the request matches what the model's manual says it cannot do."""
    pool_z: dict[str, float] = field(default_factory=dict)
    """raw relevance calibrated against the best match of background requests in this pool."""
    pool_against: float = -1.0
    """how much better the text matches the best uncovered 'cannot do' fragment of any manual in
    the pool than it matches the best model's own units."""
    pool_limit: str = ""
    """that fragment, and the device whose manual says it ("device: text")."""

    def best(self) -> tuple[str | None, float]:
        """The most relevant model (ignoring vetoes) and its z-score."""
        if not self.z:
            return None, float("-inf")
        name = max(self.z, key=self.z.get)
        return name, self.z[name]


@lru_cache(maxsize=1)
def background_requests() -> tuple[str, ...]:
    lines = BACKGROUND_FILE.read_text(encoding="utf-8").splitlines()
    return tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))


class PoolIndex:
    """The pool as read from the store once: models, their units' embeddings, null statistics."""

    def __init__(self, store: KnowledgeStore) -> None:
        self.store = store
        self.graph = PoolGraph.of(store.models())
        self.models = self.graph.models
        self.alternatives = self._alternatives()
        self.units: dict[str, tuple[list[dict], np.ndarray]] = {}
        stored = {enc: store.units(enc) for enc in ENCODERS}
        gloss_texts = [m["text"] for m in stored["minilm"][0]]
        self.limits: dict[str, tuple[list[dict], np.ndarray]] = {}
        for enc in ENCODERS:
            metas, emb = stored[enc]
            keep = [
                i for i, m in enumerate(metas) if m["model"] in self.models and m["kind"] != "limit"
            ]
            keep = self._distinctive(metas, keep)
            self.units[enc] = ([metas[i] for i in keep], emb[keep] if keep else emb[:0])
            lim = [i for i, m in enumerate(metas) if m["kind"] == "limit"]
            self.limits[enc] = ([metas[i] for i in lim], emb[lim] if lim else emb[:0])
        # every unit as stored, for exact nearest-unit retrieval (chromadb's HNSW index is
        # approximate: its top 60 for the same query vector differed from run to run)
        self.stored = stored
        self.reader = Reader(
            gloss_texts,
            (m["text"] for m in self.units["minilm"][0]),
            multilingual_words(store.store_dir),
            store.embed,
        )
        self.glosser = self.reader.glosser
        # the gloss depends on the glosser's English targets: their digest names it in the cache
        targets = "\n".join([encoder_version("multilingual"), *self.glosser.words])
        self._gloss_tag = "gloss-v1:" + hashlib.sha256(targets.encode()).hexdigest()
        self.limit_cover = self._limit_cover()
        self.device_limits = np.array([not m["model"] for m in self.limits["minilm"][0]], bool)
        # a question about a transformed output ("what is my translated text?") and the same
        # question about the input it transforms ("what is my text?"): the first counts only
        # when the request is closer to it, i.e. asks for the transformation itself
        self.plain_of: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for enc in ENCODERS:
            rows, plain = [], []
            for i, meta in enumerate(self.units[enc][0]):
                text = plain_question(meta, self.models[meta["model"]])
                if text is not None:
                    rows.append(i)
                    plain.append(text)
            self.plain_of[enc] = (np.array(rows, dtype=int), self.embed(enc, plain))
        documents: dict[str, list[str]] = {}
        for meta in self.units["minilm"][0]:
            documents.setdefault(meta["model"], []).append(meta["text"])
        self.lexical = LexicalIndex(documents)
        self._relevance: dict[tuple[str, frozenset[str]], dict[str, float]] = {}
        self._type_emb: tuple[list[str], np.ndarray] | None = None
        self._calibrate()

    def _limit_cover(self, other_devices: bool = True) -> np.ndarray:
        """Per 'cannot do' unit, how close the nearest own unit of a model comes to it (of a
        model on another device when `other_devices`: what a manual denies its own models is
        no cover for it)."""
        cover = None
        for enc, w in ENCODER_WEIGHTS.items():
            lim_metas, lim = self.limits[enc]
            own_metas, own = self.units[enc]
            if not len(lim) or not len(own):
                c = np.full(len(lim), -1.0)
            else:
                sims = lim @ own.T
                if other_devices:
                    own_dev = np.array([self.models[m["model"]].device for m in own_metas])
                    lim_dev = np.array([m["device"] for m in lim_metas])
                    sims = np.where(lim_dev[:, None] == own_dev[None, :], -1.0, sims)
                c = sims.max(axis=1)
            cover = w * c if cover is None else cover + w * c
        return cover if cover is not None else np.zeros(0)

    def _calibrate(self) -> None:
        """Null statistics from background requests that this pool does not serve: per
        (encoder, English?) each model's median and MAD, and the pool's best-match median/MAD."""
        self.null: dict[tuple[str, bool], tuple[dict[str, float], dict[str, float]]] = {}
        background = list(background_requests())
        for enc in ENCODERS:
            bg_emb = self.embed(enc, background)
            for english in (True, False):
                rows = [i for i, text in enumerate(background) if is_english(text) == english]
                sims = self._model_sims(enc, bg_emb[rows])
                med = {m: float(np.median(s)) for m, s in sims.items()}
                mad = {
                    m: float(np.median(np.abs(s - med[m]))) * 1.4826 + 1e-3 for m, s in sims.items()
                }
                self.null[(enc, english)] = (med, mad)
        self.pool_null: dict[bool, tuple[float, float]] = {}
        for english in (True, False):
            rows = [text for text in background if is_english(text) == english]
            best = np.full(len(rows), -1.0)
            combined: dict[str, np.ndarray] = {}
            for enc, w in ENCODER_WEIGHTS.items():
                for name, s in self._model_sims(enc, self.embed(enc, rows)).items():
                    combined[name] = combined.get(name, 0.0) + w * s
            for s in combined.values():
                best = np.maximum(best, s)
            med = float(np.median(best))
            self.pool_null[english] = (med, float(np.median(np.abs(best - med))) * 1.4826 + 1e-3)

    def mentioned_types(self, text: str, threshold: float) -> set[str]:
        """Declared input types that a word (or two-word phrase) of `text` names, by USE-m3
        cosine to the type's name: "photo"/"Bild"/"照片" -> image, "voice note" -> audio."""
        if self._type_emb is None:
            names = sorted({t for m in self.models.values() for t in m.inputs})
            self._type_emb = (names, self.embed("multilingual", [humanize(t) for t in names]))
        names, emb = self._type_emb
        words = gloss_tokens(text)
        phrases = words + [f"{a} {b}" for a, b in pairwise(words)]
        if not phrases or not names:
            return set()
        sims = self.embed("multilingual", phrases) @ emb.T
        return {names[j] for j in np.flatnonzero(sims.max(axis=0) >= threshold)}

    def embed(self, enc: str, texts: list[str]) -> np.ndarray:
        """Unit-length embeddings of texts with one encoder; the English encoder reads a text
        in another language as its English gloss (agents/gloss.py)."""
        if enc != "minilm":
            return self.store.embed(enc, list(texts))
        return self.store.embed(enc, list(texts), self._gloss_foreign, self._gloss_tag)

    def _gloss_foreign(self, texts: list[str]) -> list[str]:
        return [t if is_english(t) else self.glosser.gloss(t) for t in texts]

    def _alternatives(self) -> dict[str, set[str]]:
        """Models that estimate the same thing another way: same outputs and a similar task
        (two mood classifiers fed by different evidence), as opposed to different tasks that
        merely share a generic output type (captioning and OCR both return text)."""
        names = sorted(self.models)
        emb = self.store.embed("minilm", [self.models[n].task for n in names]) if names else None
        out: dict[str, set[str]] = {n: set() for n in names}
        for i, a in enumerate(names):
            for j in range(i + 1, len(names)):
                b = names[j]
                same = set(self.models[a].outputs) == set(self.models[b].outputs)
                if same and float(emb[i] @ emb[j]) >= ALTERNATIVE_TASK_SIM:
                    out[a].add(b)
                    out[b].add(a)
        return out

    def _distinctive(self, metas: list[dict], keep: list[int]) -> list[int]:
        """Drop generated units (output questions, output lists) whose text several models share
        without being alternatives: "what is my text?" tells captioning from OCR nothing."""
        owners: dict[str, set[str]] = {}
        for i in keep:
            owners.setdefault(metas[i]["text"], set()).add(metas[i]["model"])
        out = []
        for i in keep:
            meta = metas[i]
            others = owners[meta["text"]] - {meta["model"]} - self.alternatives[meta["model"]]
            if meta["kind"] in ("query", "derived_query", "outputs") and others:
                continue
            out.append(i)
        return out

    def _model_sims(self, enc: str, queries: np.ndarray, only: set[str] | None = None) -> dict:
        """Best weighted similarity of each model's units to each query: {model: (n_queries,)}."""
        metas, emb = self.units[enc]
        if not len(metas):
            return {}
        weights = np.array([KIND_WEIGHT.get(m["kind"], 0.9) for m in metas], dtype=np.float32)
        sims = queries @ emb.T  # (n_queries, n_units)
        rows, plain = self.plain_of.get(enc, (np.zeros(0, dtype=int), None))
        if len(rows):
            derived = sims[:, rows]
            sims[:, rows] = np.where(derived > queries @ plain.T, derived, -1.0)
        sims = sims * weights
        out: dict[str, np.ndarray] = {}
        for j, meta in enumerate(metas):
            name = meta["model"]
            if only is not None and name not in only:
                continue
            out[name] = sims[:, j] if name not in out else np.maximum(out[name], sims[:, j])
        return out

    def _limit_sims(self, enc: str, query: np.ndarray) -> dict[tuple[str, str], float]:
        """Best similarity of the query to what each model cannot do: what its device's general
        text denies, and what its own section denies (keyed by device, and by model for the
        limits a model's own section states; `limit_against` combines them)."""
        metas, emb = self.limits[enc]
        out: dict[tuple[str, str], float] = {}
        if len(metas):
            sims = emb @ query
            for meta, s in zip(metas, sims):
                key = ("model", meta["model"]) if meta["model"] else ("device", meta["device"])
                out[key] = max(out.get(key, -1.0), float(s))
        return out

    def limit_against(self, limits: dict[tuple[str, str], float], name: str) -> float:
        """The limit similarity that counts against model `name`: its device's general limits
        and its own; a limit stated in another model's section does not veto this one."""
        return max(limits.get(("device", self.models[name].device), -1.0),
                   limits.get(("model", name), -1.0))

    def candidates(self, enc: str, query: np.ndarray, k: int) -> set[str]:
        """Models that own one of the k stored units nearest to the query: an exact search over
        the units read from the store (the same cosine as the store's index, no approximation,
        so a request gets the same plan every time)."""
        metas, emb = self.stored[enc]
        if not len(metas):
            return set()
        order = np.argsort(-(emb @ query), kind="stable")[:k]
        return {metas[i]["model"] for i in order if metas[i]["model"] in self.models}

    def raw_relevance(self, text: str, names: set[str]) -> dict[str, float]:
        """Encoder-weighted best unit similarity of `text` to each named model (no retrieval
        cut-off: every named model gets a value, -1 if it has no units)."""
        key = (text, frozenset(names))
        if key not in self._relevance:
            out = dict.fromkeys(names, 0.0)
            for enc, w in ENCODER_WEIGHTS.items():
                sims = self._model_sims(enc, self.embed(enc, [text]), only=names)
                for name in names:
                    out[name] += w * (float(sims[name][0]) if name in sims else -1.0)
            if len(self._relevance) >= 4096:
                self._relevance.clear()
            self._relevance[key] = out
        return self._relevance[key]

    def score(
        self, text: str, k: int, lexical_weight: float = 0.0, pool_cover: float = 1.01
    ) -> Scored:
        """Calibrated relevance of every retrieved candidate model to `text`; an English text's
        ranking relevance (`raw`) also gets `lexical_weight` x its scaled BM25 score, while
        the gate (`pool_z`) stays on the embeddings."""
        english = is_english(text)
        z: dict[str, float] = {}
        raw: dict[str, float] = {}
        against: dict[str, float] = {}
        pool_against, pool_limit, pool_limit_sim = 0.0, "", -1.0
        # the pool-wide 'cannot do's: a device's general limits no other device covers (a
        # limit in one model's section is that model's alone, never the whole pool's)
        open_ = np.flatnonzero((self.limit_cover < pool_cover) & self.device_limits)
        for enc, w in ENCODER_WEIGHTS.items():
            q = self.embed(enc, [text])  # encoded once per encoder, for retrieval and scoring
            cands = self.candidates(enc, q[0], k)
            sims = self._model_sims(enc, q, only=cands)
            limits = self._limit_sims(enc, q[0])
            med, mad = self.null[(enc, english)]
            for name, s in sims.items():
                z[name] = z.get(name, 0.0) + w * (float(s[0]) - med[name]) / mad[name]
                raw[name] = raw.get(name, 0.0) + w * float(s[0])
                lim = self.limit_against(limits, name)
                against[name] = against.get(name, 0.0) + w * (lim - float(s[0]))
            best_own = max((float(s[0]) for s in sims.values()), default=-1.0)
            lim_metas, lim_emb = self.limits[enc]
            lim_all = -1.0
            if len(open_):
                sims_lim = lim_emb[open_] @ q[0]
                j = int(np.argmax(sims_lim))
                lim_all = float(sims_lim[j])
                if lim_all > pool_limit_sim:
                    meta = lim_metas[open_[j]]
                    pool_limit, pool_limit_sim = f"{meta['device']}: {meta['text']}", lim_all
            pool_against += w * (lim_all - best_own)
        med, mad = self.pool_null[english]
        pool_z = {name: (r - med) / mad for name, r in raw.items()}
        if english and lexical_weight:
            words = self.lexical.scores(text)
            raw = {name: r + lexical_weight * words.get(name, 0.0) for name, r in raw.items()}
        return Scored(text, z, raw, against, pool_z, pool_against, pool_limit)


def plain_question(meta: dict, model: PoolModel) -> str | None:
    """For a generated question about an output that is a form of an input ("what is my
    translated text?" of a text -> translated_text model), the same question about the input
    ("what is my text?"); None for every other unit."""
    if meta["kind"] != "derived_query":
        return None
    text = meta["text"].lower()
    for out in model.outputs:
        out_words = humanize(out).lower()
        for inp in model.inputs:
            if set(humanize(inp).lower().split()) < set(out_words.split()) and out_words in text:
                return text.replace(out_words, humanize(inp).lower())
    return None
