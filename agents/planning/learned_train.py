"""Training the learned chooser (learned.py): features of every labelled request of many pools,
a gradient-boosted classifier, and a threshold chosen on whole pools held out from training.

`collect(pool)` builds the pool's store in a throw-away home, reads every labelled request
through the embedded chooser and keeps the feature rows with their labels (cached per pool under
the data home, keyed by a hash of the pool's files and the feature version, so a retrain reads
them back). `train(pools, seed)` fits the classifier on every pool; the threshold is the one
that maximises mean exact-set accuracy over out-of-fold predictions (pools split into folds by
name, so no request of a scored pool was trained on).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import zlib
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np
from edgeai.agents.planning.learned import (
    CANDIDATES,
    EMBEDDED_FEATURES,
    FEATURE_VERSION,
    FEATURES,
    SET_FEATURES,
    SetModel,
    chosen_plan,
    dual_block,
    features,
    pool_key,
    set_rows,
    tower_path,
)
from edgeai.agents.planning.structure import PoolGraph
from edgeai.knowledge.store import PoolModel

THRESHOLDS = tuple(round(0.2 + 0.025 * i, 3) for i in range(25))
PARAMS = {"max_iter": 300, "learning_rate": 0.06, "max_leaf_nodes": 31, "min_samples_leaf": 40,
          "l2_regularization": 1.0}


@dataclass
class PoolData:
    """One pool's labelled feature rows: request i owns rows offsets[i]:offsets[i+1]."""

    name: str
    names: list[list[str]]
    x: np.ndarray
    y: np.ndarray
    offsets: np.ndarray
    gold: list[set[str]]
    kinds: list[str]
    langs: list[str]
    models: list[dict]
    embedded: list[set[str]]
    seconds: float
    read: list[str] | None = None
    """each request as the request encoder reads it (Reader.for_judge)."""

    @cached_property
    def graph(self) -> PoolGraph:
        return PoolGraph.of(
            PoolModel(m["name"], m["device"], "", "", "", tuple(m["inputs"]), tuple(m["outputs"]), {})
            for m in self.models
        )


def collect(folder: Path, cache_dir: Path | None = None) -> PoolData:
    """Feature rows of every labelled request of a pool folder (manuals/ + requests.jsonl)."""
    from edgeai.agents.planning.embedded import EmbeddedChooser
    from edgeai.agents.planning.evaluate import load_requests
    from edgeai.agents.planning.index import PoolIndex
    from edgeai.agents.planning.structure import close
    from edgeai.agents.planning.units import build_units
    from edgeai.knowledge.store import add_to_home, open_store

    folder = Path(folder)
    cache = None
    if cache_dir is not None:
        cache = Path(cache_dir) / f"{folder.name}-{pool_key(folder)}.npz"
        if cache.is_file():
            return _load(cache)
    requests = load_requests(folder / "requests.jsonl")
    t0 = time.process_time()
    with tempfile.TemporaryDirectory(prefix="edgeai-chooser-") as tmp:
        home = Path(tmp) / "home"
        add_to_home(home, [folder / "manuals"], build_units)
        store = open_store(home)
        index = PoolIndex(store)
        chooser = EmbeddedChooser(index)
        names, xs, ys, offsets, emb, read = [], [], [], [0], [], []
        for item in requests:
            f = features(chooser, index.reader.read(item.request))
            read.append(index.reader.for_judge(item.request))
            gold = set(item.models)
            names.append(f.names)
            xs.append(f.x)
            ys.append(np.array([n in gold for n in f.names], dtype=np.int8))
            offsets.append(offsets[-1] + len(f.names))
            emb.append(set(close(f.embedded, index.graph)[0]) if f.embedded.goals else set())
        from edgeai.agents.planning.relevance import store_cards

        card_of = {c.model: c.text for c in store_cards(store)}
        models = [
            {"name": m.name, "device": m.device, "inputs": list(m.inputs),
             "outputs": list(m.outputs), "card": card_of.get(m.name, "")}
            for m in index.models.values()
        ]
        del store, index, chooser
        shutil.rmtree(home, ignore_errors=True)
    data = PoolData(
        folder.name, names, np.concatenate(xs), np.concatenate(ys), np.array(offsets),
        [set(r.models) for r in requests], [r.kind for r in requests],
        [r.lang for r in requests], models, emb, time.process_time() - t0, read,
    )
    if cache is not None:
        _save(cache, data)
    return data


def _save(path: Path, d: PoolData) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"name": d.name, "names": d.names, "gold": [sorted(g) for g in d.gold],
            "kinds": d.kinds, "langs": d.langs, "models": d.models,
            "embedded": [sorted(e) for e in d.embedded], "seconds": d.seconds, "read": d.read,
            "features": list(EMBEDDED_FEATURES), "version": FEATURE_VERSION}
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, x=d.x, y=d.y, offsets=d.offsets, meta=np.array(json.dumps(meta)))
    tmp.replace(path)


def _load(path: Path) -> PoolData:
    z = np.load(path)
    m = json.loads(str(z["meta"]))
    return PoolData(m["name"], m["names"], z["x"], z["y"], z["offsets"],
                    [set(g) for g in m["gold"]], m["kinds"], m["langs"], m["models"],
                    [set(e) for e in m["embedded"]], m["seconds"], m.get("read"))


def fit(pools: list[PoolData], seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier

    x = np.concatenate([p.x for p in pools])
    y = np.concatenate([p.y for p in pools])
    clf = HistGradientBoostingClassifier(random_state=seed, **PARAMS)
    return clf.fit(x, y)


def exact(pool: PoolData, p: np.ndarray, threshold: float) -> list[bool]:
    """Per request: is the plan's model set (chosen at `threshold`, closed) the labelled one?"""
    graph = pool.graph
    out = []
    for i, names in enumerate(pool.names):
        lo, hi = pool.offsets[i], pool.offsets[i + 1]
        out.append(chosen_plan(names, p[lo:hi], threshold, graph) == pool.gold[i])
    return out


def out_of_fold(pools: list[PoolData], seed: int, folds: int = 5, progress=None) -> list[np.ndarray]:
    """Each pool's probabilities from a classifier trained on the other folds' pools (pools
    dealt to folds in name order, round robin)."""
    fold = folds_of(pools, folds)
    out: list[np.ndarray | None] = [None] * len(pools)
    for k in range(folds):
        clf = fit([p for i, p in enumerate(pools) if fold[i] != k], seed)
        for i, p in enumerate(pools):
            if fold[i] == k:
                out[i] = clf.predict_proba(p.x)[:, 1]
        if progress:
            progress(k + 1, folds)
    return out  # type: ignore[return-value]


def pick_threshold(pools: list[PoolData], probs: list[np.ndarray]) -> tuple[float, dict]:
    """The threshold with the best mean per-pool exact-set accuracy (ties: nearest 0.5)."""
    scores = {t: float(np.mean([np.mean(exact(p, q, t)) for p, q in zip(pools, probs)]))
              for t in THRESHOLDS}
    best = max(THRESHOLDS, key=lambda t: (round(scores[t], 4), -abs(t - 0.5)))
    return best, scores


def tower_side(name: str) -> bool:
    """Pools that train the request encoder (the others train the classifier on its outputs, so
    the classifier never sees the encoder's scores on requests it was trained on)."""
    return zlib.crc32(f"tower:{name}".encode()) % 2 == 0


def tower_items(pools: list[PoolData]) -> tuple[list[list[str]], list[tuple[int, str, list]]]:
    """The request encoder's data: each pool's card texts (sorted model order, as the feature
    rows) and per request its text as read and a label per card (None: a producer the structure
    brings in anyway)."""
    cards, items = [], []
    for k, p in enumerate(pools):
        by_name = {m["name"]: m for m in p.models}
        order = sorted(by_name)
        cards.append([by_name[n]["card"] for n in order])
        graph = p.graph
        for i, gold in enumerate(p.gold):
            forced = graph.forced(gold)
            labels = [None if n in forced else float(n in gold) for n in order]
            items.append((k, p.read[i], labels))
    return cards, items


def with_dual(pools: list[PoolData], dual) -> list[PoolData]:
    """The pools' feature rows with the request encoder's columns appended (FEATURES order),
    computed as LearnedChooser.rows computes them."""
    from edgeai.agents.planning.learned import encode_request
    from edgeai.agents.planning.words import TRANSLATION_CLAUSE

    trans = dual.requests([TRANSLATION_CLAUSE])[0]
    out = []
    for p in pools:
        by_name = {m["name"]: m for m in p.models}
        order = sorted(by_name)
        emb = dual.cards([by_name[n]["card"] for n in order])
        trans_cos = emb @ trans
        blocks = []
        for i, names in enumerate(p.names):
            assert names == order, (p.name, "feature rows out of the pool's model order")
            blocks.append(dual_block(*encode_request(dual, p.read[i], emb), trans_cos))
        x = np.concatenate([p.x, np.concatenate(blocks)], axis=1).astype(np.float32)
        out.append(replace(p, x=x))
    return out


def set_data(pool: PoolData, p: np.ndarray) -> list[tuple[list[frozenset], np.ndarray, np.ndarray]]:
    """Per request: its candidate plans, their SET_FEATURES rows and labels (plan == gold),
    from per-model probabilities `p` (out of fold when training)."""
    graph = pool.graph
    out = []
    for i, names in enumerate(pool.names):
        lo, hi = pool.offsets[i], pool.offsets[i + 1]
        sets, _, rows = set_rows(names, pool.x[lo:hi], p[lo:hi], graph, pool.embedded[i])
        gold = frozenset(pool.gold[i])
        out.append((sets, rows, np.array([s == gold for s in sets], dtype=np.int8)))
    return out


def fit_sets(data: list[list[tuple]], seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier

    x = np.concatenate([r[1] for d in data for r in d])
    y = np.concatenate([r[2] for d in data for r in d])
    return HistGradientBoostingClassifier(random_state=seed, **PARAMS).fit(x, y)


def set_exact(data: list[tuple], clf) -> list[bool]:
    """Per request: is the set classifier's best-scored plan the labelled one?"""
    return [bool(y[int(np.argmax(clf.predict_proba(rows)[:, 1]))]) for _, rows, y in data]


def folds_of(pools: list[PoolData], folds: int) -> dict[int, int]:
    order = sorted(range(len(pools)), key=lambda i: pools[i].name)
    return {i: rank % folds for rank, i in enumerate(order)}


def train(
    pools: list[PoolData],
    out: Path,
    seed: int = 0,
    folds: int = 5,
    command: str = "",
    epochs: int = 3,
    progress=None,
) -> tuple[SetModel, dict]:
    """The shipped chooser: the request encoder on the tower side's pools, the classifier on the
    other side's (with the encoder's columns), its threshold from out-of-fold pools there."""
    from edgeai.agents.planning import dual as dual_mod

    t0 = time.process_time()
    tower = [p for p in pools if tower_side(p.name)]
    chooser = [p for p in pools if not tower_side(p.name)]
    cards, items = tower_items(tower)
    cfg = dual_mod.DualConfig(epochs=epochs, seed=seed)
    report = (lambda s, t, loss: progress("request encoder", s, t)) if progress else None
    dual = dual_mod.train(cards, items, cfg, report)
    tower_s = time.process_time() - t0
    chooser = with_dual(chooser, dual)
    fold_report = (lambda k, n: progress("classifier folds", k, n)) if progress else None
    probs = out_of_fold(chooser, seed, folds, fold_report)
    threshold, scores = pick_threshold(chooser, probs)
    clf = fit(chooser, seed)
    # the set decision, stacked: trained on the per-model classifier's out-of-fold p, scored
    # out of fold again over the same folds of whole pools
    data = [set_data(p, q) for p, q in zip(chooser, probs)]
    fold = folds_of(chooser, folds)
    per_pool = {}
    for k in range(folds):
        sets_k = fit_sets([d for i, d in enumerate(data) if fold[i] != k], seed)
        for i, p in enumerate(chooser):
            if fold[i] == k:
                per_pool[p.name] = round(float(np.mean(set_exact(data[i], sets_k))), 4)
        if progress:
            progress("set classifier folds", k + 1, folds)
    sets = fit_sets(data, seed)
    per_model = {p.name: round(float(np.mean(exact(p, q, threshold))), 4)
                 for p, q in zip(chooser, probs)}
    embedded = {p.name: round(float(np.mean([e == g for e, g in zip(p.embedded, p.gold)])), 4)
                for p in chooser}
    meta = {
        "features": list(FEATURES),
        "set_features": list(SET_FEATURES),
        "candidates": CANDIDATES,
        "feature_version": FEATURE_VERSION,
        "params": PARAMS,
        "seed": seed,
        "folds": folds,
        "pools": len(pools),
        "requests": int(sum(len(p.gold) for p in pools)),
        "tower_pools": sorted(p.name for p in tower),
        "chooser_pools": sorted(p.name for p in chooser),
        "tower": {"file": tower_path(out).name, **dual.meta},
        "threshold_scores": {str(t): round(v, 4) for t, v in scores.items()},
        "out_of_fold_exact": round(float(np.mean(list(per_pool.values()))), 4),
        "out_of_fold_per_model_threshold": round(scores[threshold], 4),
        "out_of_fold_embedded": round(float(np.mean(list(embedded.values()))), 4),
        "out_of_fold_per_pool": per_pool,
        "out_of_fold_per_pool_threshold": per_model,
        "train_cpu_s": round(time.process_time() - t0, 1),
        "tower_cpu_s": round(tower_s, 1),
        "command": command,
    }
    dual.save(tower_path(out), dual.meta)
    return SetModel(clf, threshold, meta, tower_path(out), sets), meta
