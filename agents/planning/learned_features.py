"""The learned chooser's features (learned.py): per model, what the embedded chooser measured and
the request encoder's view (FEATURES); per candidate plan, the set features the set decision
reads (SET_FEATURES). Shared by training (learned_train.py) and planning, so both compute them
the same way."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from edgeai.agents.planning.embedded import EmbeddedChooser
from edgeai.agents.planning.index import ENCODER_WEIGHTS
from edgeai.agents.planning.read import Reading, is_english, split_clauses
from edgeai.agents.planning.structure import Choice, PoolGraph, close
from edgeai.agents.planning.words import NEGATION_MARK

FEATURE_VERSION = 1

FEATURES = (
    "raw",  # encoder-weighted best-unit similarity (no lexical)
    "raw_minilm",
    "raw_multi",
    "gap_best",  # raw - the pool's best raw for this request
    "gap_second",  # raw - the best other model's raw
    "rank",
    "pool_z",  # raw calibrated against the pool's background best match
    "best_pool_z",  # the request's best pool_z (request-level)
    "z",  # raw calibrated against this model's background (retrieved models; else -5)
    "lex",  # raw with exact-word evidence, minus the best such (English only; else 0)
    "against",  # how much better the request matches this model's 'cannot do' than its own
    "pool_against",  # request-level: best uncovered 'cannot do' of the pool vs best own unit
    "clause_gap",  # best over clauses of (raw - clause's best raw); 0 = best in some clause
    "clause_pool_z",  # best clause pool_z for this model
    "clauses_best",  # number of clauses whose best model it is
    "n_clauses",
    "neg_gap",  # a negated phrase's similarity to it minus its best-matched model's
    "emb_goal",  # the embedded chooser made it a goal
    "emb_plan",  # it is in the embedded chooser's plan (goals closed over inputs)
    "emb_refused",  # the embedded chooser refused the request
    "emb_excluded",
    "feeds_best",  # it is upstream of the best-ranked model
    "fed_by_best",  # the best-ranked model is upstream of it
    "alt_of_best",  # same outputs as the best-ranked model, another way
    "forced_by_best",  # structure brings it under the best model whatever the request says
    "alt_gap",  # raw minus the best raw among its alternatives (0 if it has none)
    "n_alts",
    "n_inputs_from_models",  # declared inputs some other model produces
    "n_consumers",  # models that read one of its outputs
    "up_best_gap",  # best raw among models it feeds (downstream) minus the request's best
    "n_models",
    "other_language",
    "english",
    "n_words",
    # the request encoder fine-tuned for planning (dual.py): its p and cosine for each model's
    # card, and where that puts the model among the pool's
    "dual_p",
    "dual_cos",
    "dual_gap_best",
    "dual_gap_second",
    "dual_rank",
    # the same encoder on each clause of a multi-part request, and on the fixed translation
    # clause (a request that wants its answer in another language needs a translator)
    "dual_clause_cos",  # best cosine over the request's clauses
    "dual_clause_gap",  # best over clauses of (cosine - the clause's best); 0 = tops a clause
    "dual_clause_top",  # clauses it tops
    "dual_n_clauses",
    "dual_trans_gap",  # its cosine to the translation clause minus the pool's best (per pool)
    "dual_trans_cos",
)
EMBEDDED_FEATURES = FEATURES[: FEATURES.index("dual_p")]
_COLUMN = {n: i for i, n in enumerate(FEATURES)}
CANDIDATES = 4
"""the set decision weighs every subset of the CANDIDATES most probable models (closed by the
structure), and the empty set (refuse)."""
SET_FEATURES = (
    "size",  # models in the closed set
    "n_goals",  # models chosen (the rest the structure brings in)
    "n_forced",
    "sum_log_p",  # over the chosen models, of the per-model p
    "min_p",
    "max_p",
    "max_p_out",  # the most probable candidate left out
    "sum_log_1p_out",
    "forced_p",  # summed p of the models the structure brought in (-1: none)
    "dual_n_clauses",
    "clause_cover",  # clauses topped (request encoder) by a chosen model
    "clauses_uncovered",
    "emb_clauses_best",  # clauses topped (embedded encoders) by a chosen model
    "n_clauses",
    "other_language",
    "english",
    "n_words",
    "emb_refused",
    "is_embedded",  # the set is the embedded chooser's plan
    "common_embedded",
    "diff_embedded",
    "has_translator",  # a member is the pool's best match for the translation clause
    "p1",
    "p2",
    "p3",
    "n_models",
    "max_dual_p",
    "min_dual_p",
    "max_dual_p_out",
    "pool_against",
    "min_z",
    "max_against",
    "leads_with_best",  # the most probable model is chosen
    "min_dual_clause_gap",
    "min_clause_gap",
    "n_dual_clause_top",  # chosen models that top some clause (request encoder)
    "n_emb_clause_best",
    "dual_uncovered",
    "max_dual_clause_gap_out",
    # the same, relative to the request's best candidate (trees compare within a row only)
    "rel_sum_log_p",
    "rel_min_p",
    "rel_clause_cover",
    "rel_common_embedded",
)


def dual_block(
    cos: np.ndarray, p: np.ndarray, clause_cos: np.ndarray, trans_cos: np.ndarray
) -> np.ndarray:
    """The dual_* columns of FEATURES for one request (rows in the pool's model order):
    `cos`/`p` of the whole request, `clause_cos` models x clauses, `trans_cos` per model."""
    cos = np.asarray(cos, dtype=np.float64)
    c = np.asarray(clause_cos, dtype=np.float64).reshape(len(cos), -1)
    best = c.max(axis=0, keepdims=True)
    trans = np.asarray(trans_cos, dtype=np.float64)
    order = np.argsort(-cos, kind="stable")
    rank = np.empty(len(cos))
    rank[order] = np.arange(len(cos))
    top = cos[order[0]]
    second = cos[order[1]] if len(cos) > 1 else top
    gap_second = np.where(rank == 0, cos - second, cos - top)
    return np.stack(
        [p, cos, cos - top, gap_second, np.minimum(rank, 10), c.max(axis=1),
         (c - best).max(axis=1), (c >= best).sum(axis=1), np.full(len(cos), c.shape[1]),
         trans - trans.max(), trans],
        axis=1,
    )


def encode_request(dual, text: str, cards: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cos, p, clause_cos) of one request as read for the judge against the pool's card
    embeddings: the whole text alone, its clauses (or the whole text again) as one batch."""
    cos, p = dual.probabilities(text, cards)
    clauses = split_clauses(text) or [text]
    clause_cos = cards @ dual.requests(clauses).T
    return cos, p, clause_cos


def most_probable(q: np.ndarray) -> list[int]:
    """The CANDIDATES most probable models' row indices, best first (ties: row order)."""
    return [int(i) for i in np.argsort(-q, kind="stable")[:CANDIDATES]]


def candidate_sets(
    names: list[str], q: np.ndarray, graph: PoolGraph, embedded: set[str] = frozenset()
) -> dict[frozenset[str], tuple[int, ...]]:
    """Every closed plan the set decision weighs: the structure's closure of each subset of the
    CANDIDATES most probable models (the fewest goals that give it), the embedded chooser's
    plan (which may hold models outside the CANDIDATES, a fusion of five signals), and the
    empty set."""
    order = most_probable(q)
    rank = dict(zip(names, map(float, q)))
    out: dict[frozenset[str], tuple[int, ...]] = {frozenset(): ()}
    for r in range(1, len(order) + 1):
        for sub in itertools.combinations(order, r):
            goals = [names[i] for i in sub]
            plan = close(Choice(goals=goals, named=set(goals), rank=rank), graph)[0]
            s = frozenset(plan)
            if s not in out or len(sub) < len(out[s]):
                out[s] = sub
    emb = frozenset(embedded)
    if emb and emb not in out:
        out[emb] = tuple(i for i, n in enumerate(names) if n in emb)
    return out


def set_rows(
    names: list[str], x: np.ndarray, q: np.ndarray, graph: PoolGraph, embedded: set[str]
) -> tuple[list[frozenset[str]], list[tuple[int, ...]], np.ndarray]:
    """The candidate plans of one request, with a SET_FEATURES row each (`x`: its FEATURES rows,
    `q`: the per-model p, `embedded`: the embedded chooser's closed plan)."""
    f = _COLUMN
    cands = candidate_sets(names, q, graph, embedded)
    order = most_probable(q)
    idx = {n: j for j, n in enumerate(names)}
    emb = frozenset(embedded)
    lq, l1q = np.log(np.clip(q, 1e-4, 1.0)), np.log(np.clip(1.0 - q, 1e-4, 1.0))
    top = sorted(map(float, q), reverse=True) + [0.0, 0.0]
    col = {k: x[:, f[k]] for k in ("clauses_best", "dual_clause_top", "dual_clause_gap",
                                    "clause_gap", "dual_p", "z", "against", "dual_trans_gap")}
    head = x[0]
    ncl = float(head[f["dual_n_clauses"]])
    sets, goals, rows = [], [], []
    for s, sub in cands.items():
        out_top = [j for j in order if j not in sub]
        mem = [idx[n] for n in s]
        forced = [j for j in mem if j not in sub]
        cover = float(sum(col["dual_clause_top"][j] for j in sub))
        n_top = sum(1 for j in sub if col["dual_clause_top"][j] > 0)
        rows.append([
            len(s), len(sub), len(forced),
            sum(lq[j] for j in sub), min((q[j] for j in sub), default=1.0),
            max((q[j] for j in sub), default=0.0), max((q[j] for j in out_top), default=0.0),
            sum(l1q[j] for j in out_top), sum(q[j] for j in forced) if forced else -1.0,
            ncl, cover, ncl - cover, sum(col["clauses_best"][j] for j in sub),
            head[f["n_clauses"]], head[f["other_language"]], head[f["english"]],
            head[f["n_words"]], head[f["emb_refused"]],
            float(s == emb), len(s & emb), len(s ^ emb),
            float(any(col["dual_trans_gap"][j] == 0 for j in mem)),
            top[0], top[1], top[2], len(names),
            max((col["dual_p"][j] for j in sub), default=0.0),
            min((col["dual_p"][j] for j in sub), default=1.0),
            max((col["dual_p"][j] for j in out_top), default=0.0),
            head[f["pool_against"]], min((col["z"][j] for j in sub), default=5.0),
            max((col["against"][j] for j in sub), default=-1.0),
            float(bool(sub) and order[0] in sub),
            min((col["dual_clause_gap"][j] for j in sub), default=0.0),
            min((col["clause_gap"][j] for j in sub), default=0.0),
            n_top, sum(1 for j in sub if col["clauses_best"][j] > 0), ncl - n_top,
            max((col["dual_clause_gap"][j] for j in out_top), default=-1.0),
        ])
        sets.append(s)
        goals.append(sub)
    r = np.asarray(rows, dtype=np.float64)
    rel_cols = [SET_FEATURES.index(k) for k in
                ("sum_log_p", "min_p", "clause_cover", "common_embedded")]
    rel = r[:, rel_cols] - r[:, rel_cols].max(axis=0, keepdims=True)
    return sets, goals, np.concatenate([r, rel], axis=1).astype(np.float32)


@dataclass
class Features:
    """One request's feature matrix: a row per model of the pool (`names`, sorted)."""

    names: list[str]
    x: np.ndarray
    embedded: Choice


def _needed(graph: PoolGraph, names: list[str]) -> tuple[dict, dict, dict]:
    """Per model: the models upstream of it, the models that read one of its outputs, and its
    inputs some model produces, all through the types a model needs from another only. An
    enhancer that returns a photo the user already has (image -> image,
    PoolGraph.raw_available) may feed every image model but is needed by none, so it is not
    their producer here. (No corpus pool declares such a model; the photo sample pool does,
    and the classifier had learned "feeds the best model" as "belongs to the plan" there.)"""
    raw = graph.raw_available
    ups = {n: graph.upstream(n, raw=False) for n in names}
    out = {n: set(graph.models[n].outputs) - raw for n in names}
    consumers = {
        n: sum(1 for m in names if m != n and out[n] & set(graph.models[m].inputs)) for n in names
    }
    needs = {
        n: sum(1 for t in graph.models[n].inputs if graph.producers.get(t) and t not in raw)
        for n in names
    }
    return ups, consumers, needs


def features(chooser: EmbeddedChooser, reading: Reading) -> Features:
    """What the embedded chooser measured about every model for this request (see FEATURES)."""
    index, graph = chooser.index, chooser.graph
    names = sorted(index.models)
    every = set(names)
    whole, parts, choice = chooser.decide(reading)
    text = whole.text
    per_enc = {}
    for enc in ENCODER_WEIGHTS:
        sims = index._model_sims(enc, index.embed(enc, [text]), only=every)
        per_enc[enc] = {n: float(sims[n][0]) if n in sims else -1.0 for n in names}
    raw = {n: sum(w * per_enc[e][n] for e, w in ENCODER_WEIGHTS.items()) for n in names}
    english = is_english(text)
    med, mad = index.pool_null[english]
    pool_z = {n: (raw[n] - med) / mad for n in names}
    order = sorted(names, key=lambda n: (-raw[n], n))
    best = order[0]
    rank = {n: i for i, n in enumerate(order)}
    top = raw[best]
    second = raw[order[1]] if len(order) > 1 else top
    lex_best = max(whole.raw.values(), default=0.0)
    clause_raws = [index.raw_relevance(p.text, every) for p in parts]
    clause_best = [max(c, key=c.get) for c in clause_raws]
    neg = [index.raw_relevance(NEGATION_MARK.sub("", ph), every) for ph in reading.negated]
    plan_models = set(close(choice, graph)[0]) if choice.goals else set()
    ups, consumers, needs = _needed(graph, names)
    up_best = ups[best]
    forced = graph.forced([best])
    alts = index.alternatives
    rows = []
    for n in names:
        down = [m for m in names if n in ups[m]]
        row = {
            "raw": raw[n],
            "raw_minilm": per_enc["minilm"][n],
            "raw_multi": per_enc["multilingual"][n],
            "gap_best": raw[n] - top,
            "gap_second": raw[n] - (second if n == best else top),
            "rank": min(rank[n], 10),
            "pool_z": pool_z[n],
            "best_pool_z": pool_z[best],
            "z": whole.z.get(n, -5.0),
            "lex": (whole.raw[n] - lex_best) if n in whole.raw else -1.0,
            "against": whole.against.get(n, -1.0),
            "pool_against": whole.pool_against,
            "clause_gap": max((c[n] - max(c.values()) for c in clause_raws), default=0.0),
            "clause_pool_z": max(((c[n] - med) / mad for c in clause_raws), default=pool_z[n]),
            "clauses_best": sum(b == n for b in clause_best),
            "n_clauses": len(parts),
            "neg_gap": max((g[n] - max(g.values()) for g in neg), default=-1.0),
            "emb_goal": float(n in choice.goals),
            "emb_plan": float(n in plan_models),
            "emb_refused": float(not choice.goals),
            "emb_excluded": float(n in choice.excluded),
            "feeds_best": float(n in up_best),
            "fed_by_best": float(best in ups[n]),
            "alt_of_best": float(n in alts[best]),
            "forced_by_best": float(n in forced),
            "alt_gap": (raw[n] - max(raw[a] for a in alts[n])) if alts[n] else 0.0,
            "n_alts": len(alts[n]),
            "n_inputs_from_models": needs[n],
            "n_consumers": consumers[n],
            "up_best_gap": (max(raw[m] for m in down) - top) if down else -1.0,
            "n_models": len(names),
            "other_language": float(reading.other_language),
            "english": float(english),
            "n_words": min(len(reading.request.split()), 80),
        }
        rows.append([float(row[f]) for f in EMBEDDED_FEATURES])
    return Features(names, np.asarray(rows, dtype=np.float32), choice)
