"""Embedded planner: request -> plan, from retrieval over the manuals, calibrated scoring and the
models' declared inputs/outputs (papers/autonomous-edge-ai-gpt.md, III-A1), with no LLM needed.

How it decides, in order:
1. Retrieval: the request and each of its clauses are embedded with two offline encoders (MiniLM
   for English, USE-m3 for 16 languages); the store returns the nearest manual units (model task,
   outputs, name, description, passages) and so the candidate models.
2. Calibrated relevance: a model's raw similarity is turned into a z-score against the similarity
   of a background set of generic requests no edge model serves (median/MAD per model and
   encoder), so one threshold means the same on every pool and in every language.
3. Goals: per scoring unit (the whole request, then each clause), the models within a small
   window of the best z above the acceptance threshold; nothing above it -> unsupported.
4. Alternatives: goals that produce the same outputs (two mood estimators) are fused, unless the
   request names the evidence of one chain (its producers score clearly higher), which wins alone.
5. Structure: a goal's declared inputs that another model outputs pull that producer in (the best
   scoring one when several can), recursively; edges producer -> consumer become `deps`. Types a
   model both consumes and produces (image -> enhanced image) exist raw, so their producer joins
   only when the request asks for it.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from edgeai.errors import UserInputError
from edgeai.knowledge.embeddings import ENCODERS
from edgeai.knowledge.store import KnowledgeStore, PoolModel, humanize
from edgeai.schemas import Plan, Subtask

log = logging.getLogger(__name__)

BACKGROUND_FILE = Path(__file__).with_name("background.txt")
# Weight of each kind of unit when it is the best match (what a model does > how a manual says it).
KIND_WEIGHT = {"task": 1.0, "outputs": 1.0, "name": 0.95, "description": 0.95, "passage": 0.9}
_SPLIT = re.compile(
    r"\s*(?:[,;:!?。，；？！]|\band then\b|\bthen\b|\band also\b|\balso\b|\bas well as\b|\bplus\b|\band\b"
    r"|\bet\b|\bpuis\b|\by\b|\be\b|\bund\b|\bdann\b|\bsowie\b|\bed\b|以及|然后|还有|和|并且)\s*",
    re.I,
)
_ENGLISH = set(
    "the a an is are was were am be been my me mine i i'm you your we our he she his her they their "
    "what how who when where which why whats what's do does did can could would will should please "
    "of to in on for and or with from by about this that these those it its at as any some all "
    "not no yes if so just now right today tonight yesterday tomorrow there here tell show give "
    "check get let make find much many more most".split()
)


@dataclass
class PlannerConfig:
    """Thresholds on calibrated (z) relevance; chosen once, shared by every pool and language."""

    k_retrieve: int = 60
    """units fetched from the store per encoder and scoring unit."""
    z_accept: float = 4.0
    """a model is a goal only if its z-score clears this (open-set rejection)."""
    z_window: float = 1.5
    """goals within this many z of the best one in the same scoring unit are kept too."""
    z_clause: float = 5.0
    """a clause adds goals of its own only above this (clauses are short, so noisier)."""
    z_evidence: float = 3.0
    """a chain's producer must clear this to count as evidence that picks one alternative."""
    z_evidence_margin: float = 1.5
    """... and beat the other alternatives' evidence by this much."""
    z_raw_producer: float = 4.0
    """producer of a raw-available type (image -> image) joins only above this."""
    mode: str = "raw"
    raw_window: float = 0.03
    limit_margin: float = 0.0
    """a model is vetoed when the request matches a 'cannot do' sentence of its manual better
    than the model's own units by more than this (cosine)."""


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

    def best(self) -> tuple[str | None, float]:
        """The most relevant model (ignoring vetoes) and its z-score."""
        if not self.z:
            return None, float("-inf")
        name = max(self.z, key=self.z.get)
        return name, self.z[name]


def is_english(text: str) -> bool:
    words = re.findall(r"[a-zA-Z']+", text.lower())
    non_ascii = sum(1 for ch in text if ord(ch) > 127 and ch.isalpha())
    if non_ascii > max(2, 0.15 * len(text)):
        return False
    return bool(words) and sum(w in _ENGLISH for w in words) / len(words) >= 0.15


def encoder_weights(english: bool) -> dict[str, float]:
    """English requests use both encoders; others only the multilingual one."""
    return {"minilm": 0.5, "multilingual": 0.5} if english else {"multilingual": 1.0}


def split_clauses(text: str) -> list[str]:
    parts = [p.strip() for p in _SPLIT.split(text) if p and p.strip()]
    return [p for p in parts if len(p.split()) >= 2 or len(p) >= 4]


@lru_cache(maxsize=1)
def background_requests() -> tuple[str, ...]:
    lines = BACKGROUND_FILE.read_text(encoding="utf-8").splitlines()
    return tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))


class PoolIndex:
    """The pool as read from the store once: models, their units' embeddings, null statistics."""

    def __init__(self, store: KnowledgeStore) -> None:
        self.store = store
        self.models: dict[str, PoolModel] = {m.name: m for m in store.models()}
        self.producers: dict[str, list[str]] = {}
        for m in self.models.values():
            for out in m.outputs:
                self.producers.setdefault(out, []).append(m.name)
        # types some model both consumes and produces exist before any model runs
        self.raw_available = {t for m in self.models.values() for t in m.inputs if t in m.outputs}
        self.units: dict[str, tuple[list[dict], np.ndarray]] = {}
        self.limits: dict[str, tuple[list[dict], np.ndarray]] = {}
        # null statistics per (encoder, English?): median and MAD of background similarities
        self.null: dict[tuple[str, bool], tuple[dict[str, float], dict[str, float]]] = {}
        background = list(background_requests())
        for enc in ENCODERS:
            metas, emb = store.units(enc)
            keep = [i for i, m in enumerate(metas) if m["model"] in self.models and m["kind"] != "limit"]
            self.units[enc] = ([metas[i] for i in keep], emb[keep] if keep else emb[:0])
            lim = [i for i, m in enumerate(metas) if m["kind"] == "limit"]
            self.limits[enc] = ([metas[i] for i in lim], emb[lim] if lim else emb[:0])
            bg_emb = ENCODERS[enc](background)
            for english in (True, False):
                rows = [i for i, text in enumerate(background) if is_english(text) == english]
                sims = self._model_sims(enc, bg_emb[rows])
                med = {m: float(np.median(s)) for m, s in sims.items()}
                mad = {m: float(np.median(np.abs(s - med[m]))) * 1.4826 + 1e-3 for m, s in sims.items()}
                self.null[(enc, english)] = (med, mad)
        self.pool_null: dict[bool, tuple[float, float]] = {}
        for english in (True, False):
            rows = [text for text in background if is_english(text) == english]
            best = np.full(len(rows), -1.0)
            combined: dict[str, np.ndarray] = {}
            for enc, w in encoder_weights(english).items():
                for name, s in self._model_sims(enc, ENCODERS[enc](rows)).items():
                    combined[name] = combined.get(name, 0.0) + w * s
            for s in combined.values():
                best = np.maximum(best, s)
            med = float(np.median(best))
            self.pool_null[english] = (med, float(np.median(np.abs(best - med))) * 1.4826 + 1e-3)

    def _model_sims(self, enc: str, queries: np.ndarray, only: set[str] | None = None) -> dict:
        """Best weighted similarity of each model's units to each query: {model: (n_queries,)}."""
        metas, emb = self.units[enc]
        if not len(metas):
            return {}
        weights = np.array([KIND_WEIGHT.get(m["kind"], 0.9) for m in metas], dtype=np.float32)
        sims = (queries @ emb.T) * weights  # (n_queries, n_units)
        out: dict[str, np.ndarray] = {}
        for j, meta in enumerate(metas):
            name = meta["model"]
            if only is not None and name not in only:
                continue
            out[name] = sims[:, j] if name not in out else np.maximum(out[name], sims[:, j])
        return out

    def _limit_sims(self, enc: str, query: np.ndarray) -> dict[str, float]:
        """Best similarity of the query to what each device's manual says it cannot do."""
        metas, emb = self.limits[enc]
        out: dict[str, float] = {}
        if len(metas):
            sims = emb @ query
            for meta, s in zip(metas, sims):
                out[meta["device"]] = max(out.get(meta["device"], -1.0), float(s))
        return out

    def candidates(self, enc: str, query: np.ndarray, k: int) -> set[str]:
        """Models whose units the store returns among the k nearest to the query."""
        return {h.model for h in self.store.query_units(query, enc, k) if h.model in self.models}

    def score(self, text: str, k: int) -> Scored:
        """Calibrated relevance of every retrieved candidate model to `text`."""
        english = is_english(text)
        weights = encoder_weights(english)
        z: dict[str, float] = {}
        raw: dict[str, float] = {}
        against: dict[str, float] = {}
        for enc, w in weights.items():
            q = ENCODERS[enc]([text])
            cands = self.candidates(enc, q[0], k)
            sims = self._model_sims(enc, q, only=cands)
            limits = self._limit_sims(enc, q[0])
            med, mad = self.null[(enc, english)]
            for name, s in sims.items():
                z[name] = z.get(name, 0.0) + w * (float(s[0]) - med[name]) / mad[name]
                raw[name] = raw.get(name, 0.0) + w * float(s[0])
                lim = limits.get(self.models[name].device, -1.0)
                against[name] = against.get(name, 0.0) + w * (lim - float(s[0]))
        med, mad = self.pool_null[english]
        pool_z = {name: (r - med) / mad for name, r in raw.items()}
        return Scored(text, z, raw, against, pool_z)


class EmbeddedPlanner:
    """Retrieval + calibrated scoring + declared I/O structure; see the module docstring."""

    name = "embedded"

    def __init__(self, store: KnowledgeStore, config: PlannerConfig | None = None) -> None:
        self.config = config or PlannerConfig()
        self.index = PoolIndex(store)

    # ------------------------------------------------------------------ public
    def plan(self, request: str) -> Plan:
        started = time.perf_counter()
        request = validate_request(request)
        cfg = self.config
        if not self.index.models:
            return Plan(
                request=request,
                unsupported=["the knowledge store holds no models: add device manuals first"],
                planner=self.name,
            )
        whole = self.index.score(request, cfg.k_retrieve)
        units = [whole]
        clauses = split_clauses(request)
        if len(clauses) > 1:
            units += [self.index.score(c, cfg.k_retrieve) for c in clauses]

        goals: list[str] = []
        for i, unit in enumerate(units):
            threshold = cfg.z_accept if i == 0 else cfg.z_clause
            for name in self._unit_goals(unit, threshold):
                if name not in goals:
                    goals.append(name)
        goals = self._resolve_alternatives(goals, whole)

        if not goals:
            best, z = whole.best()
            hint = f"; closest is '{best}' (relevance {z:.1f} < {cfg.z_accept})" if best else ""
            return Plan(
                request=request,
                unsupported=[f"no registered model serves this request{hint}"],
                planner=self.name,
                seconds=round(time.perf_counter() - started, 4),
            )
        plan = self._build(request, goals, whole)
        plan.seconds = round(time.perf_counter() - started, 4)  # type: ignore[attr-defined]
        return plan

    # --------------------------------------------------------------- internals
    def _unit_goals(self, unit: Scored, threshold: float) -> list[str]:
        cfg = self.config
        allowed = [n for n in unit.raw if unit.against.get(n, -1.0) < cfg.limit_margin]
        if not allowed:
            return []
        if cfg.mode == "z":
            score = unit.z
        else:
            score = unit.raw
        best = max(allowed, key=lambda n: score[n])
        gate = unit.pool_z[best] if cfg.mode == "raw" else unit.z[best]
        if gate < threshold:
            return []
        window = cfg.z_window if cfg.mode == "z" else cfg.raw_window
        return [n for n in sorted(allowed, key=lambda n: -score[n]) if score[n] >= score[best] - window
                and (cfg.mode == "raw" or score[n] >= threshold)]

    def upstream(self, name: str, seen: set[str] | None = None) -> set[str]:
        """Every model that can feed `name`, transitively, through declared inputs/outputs."""
        seen = set() if seen is None else seen
        for t in self.index.models[name].inputs:
            for p in self.index.producers.get(t, []):
                if p != name and p not in seen:
                    seen.add(p)
                    self.upstream(p, seen)
        return seen

    def _resolve_alternatives(self, goals: list[str], whole: Scored) -> list[str]:
        """Goals with the same outputs: fuse them, unless the request names one chain's evidence."""
        cfg = self.config
        groups: dict[tuple[str, ...], list[str]] = {}
        for g in goals:
            groups.setdefault(tuple(sorted(self.index.models[g].outputs)), []).append(g)
        drop: set[str] = set()
        for members in groups.values():
            if len(members) < 2:
                continue
            evidence = {}
            for m in members:
                ups = self.upstream(m)
                own = set(ups) - set().union(*(self.upstream(o) for o in members if o != m))
                evidence[m] = max((whole.z.get(u, float("-inf")) for u in own), default=float("-inf"))
            ranked = sorted(members, key=lambda m: -evidence[m])
            top, second = evidence[ranked[0]], evidence[ranked[1]]
            if top >= cfg.z_evidence and top - second >= cfg.z_evidence_margin:
                drop.update(ranked[1:])
        return [g for g in goals if g not in drop]

    def _choose_producer(self, consumer: str, t: str, whole: Scored) -> str | None:
        options = [p for p in self.index.producers.get(t, []) if p != consumer]
        if not options:
            return None
        best = max(options, key=lambda p: whole.z.get(p, float("-inf")))
        if t in self.index.raw_available:
            # the type exists raw (a camera's image); its transformer runs only when asked for
            return best if whole.z.get(best, float("-inf")) >= self.config.z_raw_producer else None
        return best

    def _build(self, request: str, goals: list[str], whole: Scored) -> Plan:
        models = self.index.models
        order: list[str] = []
        deps: dict[str, list[str]] = {}

        def visit(name: str, stack: tuple[str, ...]) -> None:
            if name in deps or name in stack:
                return
            deps[name] = []
            for t in models[name].inputs:
                p = self._choose_producer(name, t, whole)
                if p is None or p in stack + (name,):
                    continue
                visit(p, stack + (name,))
                if p not in deps[name]:
                    deps[name].append(p)
            order.append(name)  # producers first

        for g in goals:
            visit(g, ())
        ids = {name: i + 1 for i, name in enumerate(order)}
        subtasks = [
            Subtask(
                id=ids[name],
                model=name,
                device=models[name].device,
                goal=goal_text(models[name]),
                deps=[ids[p] for p in deps[name]],
                relevance=round(whole.z.get(name, 0.0), 2),
            )
            for name in order
        ]
        consumed = {p for ps in deps.values() for p in ps}
        sinks = [n for n in order if n not in consumed]
        combine = None
        if len(sinks) > 1:
            combine = "combine " + " and ".join(humanize(t) for s in sinks for t in models[s].outputs)
            same = {tuple(models[s].outputs) for s in sinks}
            if len(same) == 1:
                combine = f"fuse the {len(sinks)} {humanize(sinks and models[sinks[0]].outputs[0])} estimates into one answer"
        return Plan(request=request, subtasks=subtasks, combine=combine, unsupported=[], planner=self.name)


def goal_text(model: PoolModel) -> str:
    outs = ", ".join(humanize(o) for o in model.outputs)
    return f"{model.task}" + (f" ({outs})" if outs else "")


def validate_request(request: str | None) -> str:
    if request is None or not str(request).strip():
        raise UserInputError("the request is empty: say what you want, e.g. \"how is my mood today?\"")
    request = " ".join(str(request).split())
    if len(request) > 2000:
        raise UserInputError(f"the request is {len(request)} characters long; the limit is 2000")
    return request
