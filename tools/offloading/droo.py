"""DROO (Huang, Bi, Zhang 2019) adapted to multi-server binary offloading: a learned baseline.

DROO's loop (paper Fig. 2, Algorithm 1), with the spec's multi-server problem in place of the
wireless-powered one:

1. a small DNN maps the normalised instance (per UE: data size, cycles, local speed, deadline,
   its rate row and the derived upload / deadline-share numbers; per server: capacity and load;
   the objective flag) to a relaxed action: a softmax over the M + 1 targets of every UE;
2. order-preserving quantisation (`quantise`, the paper's Section IV-B taken to M + 1 classes)
   turns it into K integer assignments: the argmax, then the UEs whose top-two probabilities
   are closest (the nearest to the decision boundary) flipped to their runner-up, in order
   (first the k closest together, k = 1, 2, ..., then each one alone);
3. each candidate is repaired to feasibility (`Evaluator.repair`) and valued with the exact
   optimal shares (`Evaluator.total`, the water-filling / KKT shares); the best is the decision;
4. while training (`train_droo`), the best candidate is stored in a replay memory and the DNN
   learns from it by cross-entropy every few steps (the paper's policy update, eq. 13), on
   generated lambo-50 / lambo-50-tight instances, starting from random weights and no labels.

Unlike the AED there is no local search: what DROO finds is its DNN plus K evaluated
candidates. The network is permutation-equivariant over UEs and servers (shared per-UE and
per-(UE, server) layers with a mean-pooled context), so one checkpoint serves any N and M.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from edgeai.errors import UserInputError
from edgeai.tools import checkpoints
from edgeai.tools.offloading.aed import checkpoint_dir, one_torch_thread
from edgeai.tools.offloading.evaluate import Evaluator, Stopwatch, finish
from edgeai.tools.offloading.problem import OBJECTIVES, Decision, Instance, Objective
from torch import nn

log = logging.getLogger(__name__)

UE_FEATURES = 6
PAIR_FEATURES = 6
SERVER_FEATURES = 4
CLIP = 4.0
DEFAULT_CHECKPOINT = "droo.pt"
TRAIN_SEED_BASE = 30_000_000  # AED training uses 10 000 000+, ALEF 20 000 000+, benches 0+


# ----------------------------------------------------------------------------- inputs


@dataclass
class DROOFeatures:
    """Normalised inputs of one instance (UEs in instance order)."""

    ue: np.ndarray  # (N, UE_FEATURES)
    pair: np.ndarray  # (N, M, PAIR_FEATURES)
    server: np.ndarray  # (M, SERVER_FEATURES)
    prompt: np.ndarray  # (2,) one-hot objective flag
    allowed: np.ndarray  # (N, M + 1) bool: column 0 local, column j + 1 server j


def droo_features(evaluator: Evaluator) -> DROOFeatures:
    """Times are divided by the UE's deadline, energies by its local energy, shares are
    fractions of a server; raw sizes enter as logs around the scenario's typical values."""
    inst, t = evaluator.instance, evaluator.tables
    a = inst.arrays
    n, m = inst.n, inst.m
    D = a.D
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ue = np.stack(
            [
                np.minimum(t.t_loc / D, CLIP),
                np.log(np.maximum(a.d, 1.0) / 2e6),
                np.log(np.maximum(a.c, 1.0) / 1e9),
                np.log(np.maximum(a.f, 1.0) / 1e9),
                np.log(np.maximum(D, 1e-9) / 1.5),
                t.local_ok.astype(float),
            ],
            axis=1,
        )
        pair = np.stack(
            [
                np.minimum(t.t_tx / D[:, None], CLIP),
                np.minimum(t.e_off / np.maximum(t.e_loc, 1e-12)[:, None], CLIP),
                np.minimum(t.lb, CLIP),
                t.pair_ok.astype(float),
                np.clip(np.log(np.maximum(a.R, 1.0) / 1e7), -CLIP, CLIP),  # the rate row
                np.minimum(a.c[:, None] / (a.F[None, :] * D[:, None]), CLIP),
            ],
            axis=2,
        )
        server = np.stack(
            [
                np.log(a.F / 1.5e10),
                np.minimum(np.where(t.pair_ok, t.lb, 0.0).sum(axis=0), 4 * CLIP) / 4.0,
                np.minimum(a.c.sum() / (a.F * D.mean()), 4 * CLIP) / 4.0,
                np.full(m, n / 50.0),
            ],
            axis=1,
        ).reshape(m, SERVER_FEATURES)
    prompt = np.zeros(2)
    prompt[OBJECTIVES.index(evaluator.objective)] = 1.0
    allowed = np.concatenate([np.ones((n, 1), dtype=bool), t.pair_ok], axis=1)
    clean = functools.partial(np.nan_to_num, nan=CLIP, posinf=CLIP, neginf=-CLIP)
    return DROOFeatures(
        ue=clean(ue).astype(np.float32),
        pair=clean(pair).reshape(n, m, PAIR_FEATURES).astype(np.float32),
        server=clean(server).astype(np.float32),
        prompt=prompt.astype(np.float32),
        allowed=allowed,
    )


# ----------------------------------------------------------------------------- the DNN


@dataclass
class DROOConfig:
    """Sizes of the DNN (the paper's is a 3-layer MLP of 120/80 units for fixed N = 10)."""

    hidden: int = 64  # width of every layer; 64 keeps the checkpoint ~100 kB


class DROONet(nn.Module):
    """Relaxed action: logits (B, N, M + 1) over {local, server 0..M-1} for every UE."""

    def __init__(self, cfg: DROOConfig) -> None:
        super().__init__()
        self.cfg = cfg
        h = cfg.hidden
        self.ue_enc = nn.Sequential(
            nn.Linear(UE_FEATURES + 2, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU()
        )
        self.server_enc = nn.Sequential(nn.Linear(SERVER_FEATURES + 2, h), nn.ReLU())
        self.pair_head = nn.Sequential(
            nn.Linear(3 * h + PAIR_FEATURES, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(),
            nn.Linear(h, 1),
        )  # fmt: skip
        self.local_head = nn.Sequential(nn.Linear(2 * h, h), nn.ReLU(), nn.Linear(h, 1))

    def forward(
        self,
        ue: torch.Tensor,  # (B, N, UE_FEATURES)
        pair: torch.Tensor,  # (B, N, M, PAIR_FEATURES)
        server: torch.Tensor,  # (B, M, SERVER_FEATURES)
        prompt: torch.Tensor,  # (B, 2)
        allowed: torch.Tensor,  # (B, N, M + 1) bool
    ) -> torch.Tensor:
        b, n, m = pair.shape[0], pair.shape[1], pair.shape[2]
        h_ue = self.ue_enc(torch.cat([ue, prompt[:, None, :].expand(b, n, 2)], dim=-1))  # (B,N,H)
        ctx = h_ue.mean(dim=1, keepdim=True)  # (B, 1, H): what the other UEs ask for
        h_srv = self.server_enc(torch.cat([server, prompt[:, None, :].expand(b, m, 2)], dim=-1))
        x = torch.cat(
            [
                h_ue[:, :, None, :].expand(b, n, m, -1),
                h_srv[:, None, :, :].expand(b, n, m, -1),
                ctx[:, :, None, :].expand(b, n, m, -1),
                pair,
            ],
            dim=-1,
        )  # (B, N, M, 3H + PAIR_FEATURES)
        server_logit = self.pair_head(x).squeeze(-1)  # (B, N, M)
        local_logit = self.local_head(torch.cat([h_ue, ctx.expand(b, n, -1)], dim=-1))  # (B,N,1)
        logits = torch.cat([local_logit, server_logit], dim=-1)  # (B, N, M + 1)
        return logits.masked_fill(~allowed, -1e9)


def _batch(feats: list[DROOFeatures]) -> tuple[torch.Tensor, ...]:
    """Stack same-size instances into the DNN's inputs."""
    return (
        torch.from_numpy(np.stack([f.ue for f in feats])),
        torch.from_numpy(np.stack([f.pair for f in feats])),
        torch.from_numpy(np.stack([f.server for f in feats])),
        torch.from_numpy(np.stack([f.prompt for f in feats])),
        torch.from_numpy(np.stack([f.allowed for f in feats])),
    )


def relaxed_action(model: DROONet, feats: DROOFeatures) -> np.ndarray:
    """The DNN's relaxed action for one instance: probabilities (N, M + 1), 0 where unusable."""
    with torch.inference_mode():
        logits = model(*_batch([feats]))[0]
    probs = torch.softmax(logits.double(), dim=-1).numpy()
    return np.where(feats.allowed, probs, 0.0)


# ----------------------------------------------------------------------------- quantisation


def quantise(probs: np.ndarray, k: int) -> np.ndarray:
    """Order-preserving quantisation of a relaxed action (N, M + 1) into at most `k` distinct
    assignments (K', N), targets -1 (local) or a server index, best guess first.

    Candidate 0 is the argmax. UEs are ranked by their margin p(top) - p(runner-up), smallest
    first (the nearest to the boundary; a UE with a single usable target has no runner-up and
    is never flipped). Candidates 1..L flip the 1, 2, ..., L closest UEs together to their
    runner-up (the paper's thresholds at successive relaxed values: a UE is flipped whenever one
    closer to the boundary is), then candidates L+1.. flip the 2nd, 3rd, ... closest alone.
    All are distinct by construction: at most 2 L candidates, L = number of flippable UEs.
    """
    probs = np.asarray(probs, dtype=float)
    n = probs.shape[0]
    ranked = np.argsort(-probs, axis=1, kind="stable")
    top, second = ranked[:, 0], ranked[:, 1] if probs.shape[1] > 1 else ranked[:, 0]
    rows = np.arange(n)
    p_top, p_second = probs[rows, top], probs[rows, second]
    flippable = (probs.shape[1] > 1) & (p_second > 0.0)
    margin = np.where(flippable, p_top - p_second, np.inf)
    order = np.argsort(margin, kind="stable")[: int(flippable.sum())]
    greedy = top - 1
    runner_up = second - 1
    out = [greedy]
    for count in range(1, len(order) + 1):  # nested: the `count` closest flipped together
        if len(out) >= k:
            break
        cand = greedy.copy()
        cand[order[:count]] = runner_up[order[:count]]
        out.append(cand)
    for i in order[1:]:  # single flips (the closest alone is the first nested candidate)
        if len(out) >= k:
            break
        cand = greedy.copy()
        cand[i] = runner_up[i]
        out.append(cand)
    return np.stack(out[:k]).astype(int)


def default_k(n: int) -> int:
    """Every candidate `quantise` can make (2 N): evaluating ~100 of them at N = 50 takes
    ~2-3 ms; the paper adapts K downward over time, we keep it fixed."""
    return 2 * n


def best_candidate(
    evaluator: Evaluator, probs: np.ndarray, k: int, chunk: int = 32
) -> tuple[np.ndarray, float, int]:
    """Quantise, repair and value all `k` candidates (in chunks of `chunk`); return the best
    assignment, its total cost, and the index of the winning candidate (before repair;
    0 = argmax). K bounds the work, not a clock, so the answer does not depend on the load."""
    candidates = evaluator.repair(quantise(probs, k))
    best, best_total, best_idx = candidates[0], np.inf, 0
    for start in range(0, len(candidates), chunk):
        totals = evaluator.total(candidates[start : start + chunk])
        j = int(np.argmin(totals))
        if totals[j] < best_total:
            best, best_total, best_idx = candidates[start + j], float(totals[j]), start + j
    return best, best_total, best_idx


# ----------------------------------------------------------------------------- checkpoints


@dataclass
class LoadedDROO:
    model: DROONet
    meta: dict[str, Any]


def save_droo(model: DROONet, path: str | Path, meta: dict[str, Any]) -> Path:
    """Same file format as the AED's checkpoints."""
    return checkpoints.save_torch(model, path, meta)


def load_droo(path: str | Path | None = None) -> LoadedDROO:
    """Load a checkpoint (default: the shipped one); cached per path and modification time;
    WeightsError when it is missing or does not fit this code."""
    return checkpoints.load_cached(
        path or checkpoint_dir() / DEFAULT_CHECKPOINT,
        "DROO checkpoint",
        _loaded,
        hint="train one with `edgeai offload train-droo`",
    )


def _loaded(data: dict[str, Any]) -> LoadedDROO:
    net = checkpoints.module_from(data, DROONet, DROOConfig)
    loaded = LoadedDROO(net, dict(data.get("meta", {})))
    _warm_up(loaded)
    return loaded


def _warm_up(loaded: LoadedDROO) -> None:
    """One solve on a small instance so torch's first-call set-up counts as model load."""
    from edgeai.tools.offloading.scenario import generate_instance

    for objective in OBJECTIVES:
        evaluator = Evaluator(generate_instance(12, 3, 0, "lambo-50-tight", objective), objective)
        best_candidate(evaluator, relaxed_action(loaded.model, droo_features(evaluator)), 24)


# ----------------------------------------------------------------------------- the solver


def solve_droo(
    instance: Instance,
    objective: Objective,
    *,
    seed: int = 0,
    checkpoint: str | Path | None = None,
    k: int | None = None,
) -> Decision:
    """DROO: DNN relaxed action, K order-preserving candidates (default 2 N), each repaired and
    valued with the exact optimal shares, the best kept; torch on one thread. Deterministic
    (`seed` is accepted for the registry's signature and unused), whatever the machine's load."""
    del seed
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise UserInputError(f"k must be a whole number >= 1 (DROO candidates), got {k!r}")
    with one_torch_thread():
        loaded = load_droo(checkpoint)
        watch = Stopwatch()
        evaluator = Evaluator(instance, objective)
        if evaluator.m == 0:
            return finish(evaluator, "droo", evaluator.local_targets(), watch)
        probs = relaxed_action(loaded.model, droo_features(evaluator))
    best, _, idx = best_candidate(evaluator, probs, k if k is not None else default_k(instance.n))
    decision = finish(evaluator, "droo", best, watch)
    log.debug("droo: candidate %d won, %.2f ms", idx, 1e3 * watch.seconds())
    return decision


# ----------------------------------------------------------------------------- training


@dataclass
class DROOArgs:
    """Hyper-parameters of DROO's online training (paper Algorithm 1)."""

    seed: int = 0
    """torch / numpy seed; instance seeds are TRAIN_SEED_BASE + 1e6 * seed + step"""
    steps: int = 12000
    """instances seen (one decision each, as in the paper's time frames)"""
    n: int = 50
    """UEs per training instance"""
    m: int = 4
    """servers per training instance"""
    scenarios: tuple[str, ...] = ("lambo-50", "lambo-50-tight")
    """cycled per step; the objective is drawn per step"""
    k: int | None = None
    """candidates per decision (None: `default_k(n)`)"""
    memory: int = 1024
    """replay memory size (paper: 1024)"""
    batch: int = 128
    """replay batch per update (paper: 128)"""
    train_interval: int = 2
    """steps between updates (paper: 10)"""
    lr: float = 1e-3
    """Adam learning rate (paper: 0.01 for its smaller net)"""
    hidden: int = 64
    """DNN width"""
    threads: int = 1
    """torch CPU threads"""


def train_droo(
    args: DROOArgs,
    out: str | Path | None = None,
    command: str = "",
    progress: Callable[[int, dict[str, float]], None] | None = None,
) -> tuple[DROONet, dict[str, Any]]:
    """Online DROO training from random weights: decide each generated instance by
    quantisation + exact valuation, store the best candidate, learn it by cross-entropy from
    the replay memory. Writes the checkpoint to `out` when given; returns (model, meta)."""
    from edgeai.tools.offloading.scenario import generate_instance
    from tqdm import tqdm

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = DROONet(DROOConfig(hidden=args.hidden))
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    memory: deque[tuple[DROOFeatures, np.ndarray]] = deque(maxlen=args.memory)
    k = args.k if args.k is not None else default_k(args.n)
    start = time.perf_counter()
    gain = deque(maxlen=200)  # cost of the argmax over the best candidate (1 = argmax won)
    won = deque(maxlen=200)
    losses: deque[float] = deque(maxlen=50)
    bar = tqdm(range(args.steps), desc="droo", leave=False, mininterval=2.0)
    for step in bar:
        objective = OBJECTIVES[int(rng.integers(len(OBJECTIVES)))]
        scenario = args.scenarios[step % len(args.scenarios)]
        inst_seed = TRAIN_SEED_BASE + 1_000_000 * args.seed + step
        evaluator = Evaluator(generate_instance(args.n, args.m, inst_seed, scenario, objective),
                              objective)  # fmt: skip
        feats = droo_features(evaluator)
        model.eval()
        probs = relaxed_action(model, feats)
        best, best_total, idx = best_candidate(evaluator, probs, k)
        greedy_total = float(evaluator.total(evaluator.repair(quantise(probs, 1)))[0])
        gain.append(greedy_total / best_total if best_total > 0 else 1.0)
        won.append(float(idx == 0))
        memory.append((feats, best + 1))  # class index: 0 local, j + 1 server j
        if len(memory) >= args.batch and step % args.train_interval == 0:
            model.train()
            pick = rng.choice(len(memory), size=args.batch, replace=False)
            feats_b = [memory[i][0] for i in pick]
            target = torch.from_numpy(np.stack([memory[i][1] for i in pick])).long()  # (B, N)
            logits = model(*_batch(feats_b))  # (B, N, M + 1)
            loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                               target.reshape(-1))  # fmt: skip
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        if step % 200 == 0 or step == args.steps - 1:
            stats = {
                "loss": float(np.mean(losses)) if losses else float("nan"),
                "argmax_over_best": float(np.mean(gain)),
                "argmax_won": float(np.mean(won)),
            }
            bar.set_postfix({key: f"{v:.4g}" for key, v in stats.items()})
            if progress is not None:
                progress(step, stats)
    model.eval()
    meta = {
        "args": {**asdict(args), "scenarios": list(args.scenarios)},
        "command": command,
        "train_seconds": round(time.perf_counter() - start, 1),
        "parameters": sum(p.numel() for p in model.parameters()),
        "final_loss": float(np.mean(losses)) if losses else None,
        "final_argmax_over_best": float(np.mean(gain)),
        "torch": str(torch.__version__),
    }
    if out is not None:
        save_droo(model, out, meta)
    return model, meta
