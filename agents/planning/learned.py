"""Learned chooser: the set decision (which models, or refuse) learned from blind-written pools.

The embedded chooser (embedded.py) decides with hand-set margins: a background-calibrated gate,
one best model per clause, alternatives fused unless one chain's evidence wins. Its evidence is
good (the top model is right for most supported requests); its set decisions around that model
are where it fails. This chooser keeps the evidence and learns the decision:

1. For every model of the pool, `features` reads what the embedded chooser measured about the
   request: each encoder's best-unit similarity, the calibrated gate score, the rank and gap to
   the best model, the best clause's view, the 'cannot do' margins, the embedded chooser's own
   decision, and the model's place in the declared-I/O graph relative to the best-ranked model
   (feeds it, is fed by it, an alternative of it). A request encoder fine-tuned for planning
   (dual.py) adds its own view of the whole request, of each clause, and of the fixed
   translation clause. Every feature is relative to the pool, so the same weights serve pools
   they never saw.
2. A gradient-boosted classifier (scikit-learn's HistGradientBoostingClassifier) gives
   p(the model belongs to the request's plan).
3. The set decision: every subset of the CANDIDATES most probable models is closed by the
   structure (structure.py: the chosen models feed each other through their declared inputs, a
   lone producer of an input that exists only as its output comes in anyway); these plans, the
   embedded chooser's plan and the empty plan (refuse) are scored by a second classifier over
   set features (their members' p, clauses covered, agreement with the embedded plan, ...),
   trained on the first classifier's out-of-fold p (stacking), and the best-scored plan wins.
   Independent per-model thresholds could not say "two clauses, so two models".

Trained by `edgeai chooser train` on corpus/planning/pools (155 pools written blind); the
weights, threshold, feature list, seed and command ship in checkpoints/chooser.json.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from edgeai.agents.planning.embedded import EmbeddedChooser
from edgeai.agents.planning.index import PoolIndex
from edgeai.agents.planning.learned_features import (  # noqa: F401  (re-exported)
    CANDIDATES,
    EMBEDDED_FEATURES,
    FEATURE_VERSION,
    FEATURES,
    SET_FEATURES,
    Features,
    candidate_sets,
    dual_block,
    encode_request,
    features,
    set_rows,
)
from edgeai.agents.planning.planner import Planner
from edgeai.agents.planning.read import Reading
from edgeai.agents.planning.structure import Choice, PoolGraph, close
from edgeai.agents.planning.words import TRANSLATION_CLAUSE
from edgeai.errors import WeightsError
from edgeai.knowledge.store import KnowledgeStore

CHECKPOINT = Path(__file__).with_name("checkpoints") / "chooser.json"
def pool_key(folder: Path) -> str:
    """A hash of a pool's manuals and requests (the feature cache's key)."""
    h = hashlib.sha256(f"v{FEATURE_VERSION}".encode())
    for f in sorted(Path(folder).rglob("*")):
        if f.is_file() and (f.suffix in {".md", ".txt", ".jsonl", ".yaml", ".yml"}):
            h.update(str(f.relative_to(folder)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def tower_path(checkpoint: Path) -> Path:
    """Where the request encoder of a chooser checkpoint lives (chooser.json -> chooser.pt)."""
    return Path(checkpoint).with_suffix(".pt")


class SetModel:
    """The trained decision: the per-model classifier (p that a model belongs to the plan) and
    the set classifier that picks the plan among the candidate sets (both
    HistGradientBoostingClassifier, or their JSON trees). `threshold` is the per-model
    classifier's own best cut (reported in the manifest; the set classifier decides)."""

    def __init__(
        self, clf, threshold: float, meta: dict, tower: Path | None = None, sets=None
    ) -> None:
        self.clf, self.threshold, self.meta = clf, threshold, meta
        self.tower = tower
        """the request encoder's checkpoint (dual.py) that computes the dual_* features."""
        self.sets = sets

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        return self.clf.predict_proba(x)[:, 1]

    def decide(
        self, names: list[str], x: np.ndarray, graph: PoolGraph, embedded: set[str]
    ) -> tuple[np.ndarray, frozenset[str], tuple[int, ...], float]:
        """(per-model p, the chosen closed plan, its goals' indices, its set score)."""
        q = self.probabilities(x)
        sets, goals, rows = set_rows(names, x, q, graph, embedded)
        score = self.sets.predict_proba(rows)[:, 1]
        k = int(np.argmax(score))
        return q, sets[k], goals[k], float(score[k])

    def save(self, path: Path) -> None:
        """Weights as JSON (the trees' node arrays), never a pickle."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps({"meta": self.meta, "threshold": self.threshold,
                                   "model": dump_hgb(self.clf),
                                   "set_model": dump_hgb(self.sets)}), encoding="utf-8")
        tmp.replace(path)


def dump_hgb(clf) -> dict:
    """A fitted binary HistGradientBoostingClassifier as plain lists (see `TreeEnsemble`)."""
    trees = []
    for (pred,) in clf._predictors:
        nodes = pred.nodes
        trees.append(
            {
                "feature": nodes["feature_idx"].tolist(),
                "threshold": [float(v) for v in nodes["num_threshold"]],
                "missing_left": nodes["missing_go_to_left"].astype(int).tolist(),
                "left": nodes["left"].tolist(),
                "right": nodes["right"].tolist(),
                "leaf": nodes["is_leaf"].astype(int).tolist(),
                "value": [float(v) for v in nodes["value"]],
            }
        )
    baseline = float(np.ravel(clf._baseline_prediction)[0])
    return {"baseline": baseline, "trees": trees}


class TreeEnsemble:
    """Prediction from `dump_hgb`'s lists in numpy: the shipped chooser needs no scikit-learn
    at run time, and loading it runs no pickle."""

    def __init__(self, model: dict) -> None:
        self.baseline = float(model["baseline"])
        self.trees = [
            {k: np.asarray(v) for k, v in t.items()} for t in model["trees"]
        ]

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        logit = np.full(len(x), self.baseline)
        rows = np.arange(len(x))
        for t in self.trees:
            node = np.zeros(len(x), dtype=np.int64)
            for _ in range(64):
                leaf = t["leaf"][node].astype(bool)
                if leaf.all():
                    break
                v = x[rows, t["feature"][node]]
                go_left = np.where(
                    np.isnan(v), t["missing_left"][node].astype(bool), v <= t["threshold"][node]
                )
                nxt = np.where(go_left, t["left"][node], t["right"][node])
                node = np.where(leaf, node, nxt)
            logit += t["value"][node]
        p = 1.0 / (1.0 + np.exp(-logit))
        return np.stack([1 - p, p], axis=1)


def load_set_model(path: Path | None = None) -> SetModel:
    path = Path(path or CHECKPOINT)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        model = TreeEnsemble(data["model"])
        sets = TreeEnsemble(data["set_model"])
        threshold = float(data["threshold"])
    except FileNotFoundError:
        raise WeightsError(
            f"{path}: no trained chooser (train one: edgeai chooser train --out {path})"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WeightsError(f"{path}: not a chooser checkpoint ({exc})") from None
    meta = data.get("meta", {})
    if meta.get("features") not in (None, list(FEATURES)) or meta.get("set_features") not in (
        None, list(SET_FEATURES)
    ):
        raise WeightsError(f"{path}: trained on other features (retrain: edgeai chooser train)")
    return SetModel(model, threshold, meta, tower_path(path), sets)


class LearnedChooser:
    """The plan the set classifier scores best; see the module docstring."""

    name = "learned"

    def __init__(self, index: PoolIndex, model: SetModel | None = None) -> None:
        from edgeai.agents.planning.dual import load_dual
        from edgeai.agents.planning.relevance import store_cards

        self.index = index
        self.graph = index.graph
        self.embedded = EmbeddedChooser(index)
        self.model = model or load_set_model()
        self.dual = load_dual(str(self.model.tower))
        card_of = {c.model: c.text for c in store_cards(index.store)}
        self.names = sorted(index.models)
        self.cards = self.dual.cards([card_of.get(n, n) for n in self.names])
        self.trans_cos = self.cards @ self.dual.requests([TRANSLATION_CLAUSE])[0]

    def read(self, request: str) -> Reading:
        return self.index.reader.read(request)

    def rows(self, reading: Reading) -> tuple[Features, np.ndarray]:
        """The request's FEATURES rows (the pool's models in `Features.names` order)."""
        f = features(self.embedded, reading)
        text = self.index.reader.for_judge(reading.request)
        cos, p_dual, clause_cos = encode_request(self.dual, text, self.cards)
        return f, np.concatenate([f.x, dual_block(cos, p_dual, clause_cos, self.trans_cos)], axis=1)

    def choose(self, reading: Reading) -> Choice:
        f, x = self.rows(reading)
        embedded = set(close(f.embedded, self.graph)[0]) if f.embedded.goals else set()
        q, plan, goals, score = self.model.decide(f.names, x, self.graph, embedded)
        p = {n: float(v) for n, v in zip(f.names, q)}
        if not plan:
            best = max(sorted(p), key=p.get)
            return Choice(
                goals=[],
                unsupported=(
                    "no registered model serves this request; closest is "
                    f"'{best}' (learned p={p[best]:.2f}; the set decision scored refusing "
                    f"{score:.2f}, above every plan)"
                ),
            )
        chosen = [f.names[i] for i in goals]
        return Choice(
            goals=chosen,
            named=set(chosen),
            rank=p,
            relevance=p,
            excluded=f.embedded.excluded - set(chosen),
        )


def chosen_plan(names: list[str], p: np.ndarray, threshold: float, graph: PoolGraph) -> set[str]:
    """The plan of the per-model classifier alone at `threshold` (the manifest's reference)."""
    chosen = [n for n, v in zip(names, p) if v >= threshold]
    if not chosen:
        return set()
    choice = Choice(goals=chosen, named=set(chosen), rank=dict(zip(names, map(float, p))))
    return set(close(choice, graph)[0])


class LearnedPlanner(Planner):
    """The learned chooser over a store (default weights: the shipped checkpoint)."""

    def __init__(self, store: KnowledgeStore, model: SetModel | None = None) -> None:
        super().__init__(LearnedChooser(PoolIndex(store), model))
