"""LAMBO's asymmetric encoder-decoder (AED, paper Fig. 2) as an offloading solver.

Input embedding (IE): one token per UE, one per server and one prompt token (the objective),
every feature normalised (times by the UE's deadline, energies by its local energy, shares as
fractions of a server). A deep transformer encoder reads all tokens at once; a shallow decoder
(one transformer decoder layer over the encoder output) then decides UE by UE, largest task
first, with two heads: the target (local or a server, softmax over masked logits) and a CPU
share (sigmoid). The MEC embedding is dynamic: at every step the decoder sees each server's
remaining capacity and load after the decisions made so far.

What makes every answer feasible is not learned: masks allow a server only when the UE's
deadline share still fits (and local only when it meets the deadline), a repair step
(`Evaluator.repair`) guards the result, and the shares written to the decision are the exact
per-server KKT shares (`optimal_shares`) for the decoded assignment; the share head is trained
to predict them and is reported, not used.

At inference (`solve_aed`) the decoder runs greedily (plus sampled rollouts, all in one
vectorised numpy loop, while N <= 20 where they are cheap), and a local search (`MoveSearch`)
polishes the decode within a budget counted in moves, never in seconds (and torch runs on one
thread), so a decision does not depend on the machine's load: every single move is scored at
once from per-server running sums (closed-form water-filling for min_latency, separable costs for
min_energy), the best is verified with the exact per-server values, and when server capacity
binds (min_energy) per-server knapsack re-fills and ejection chains are tried. The policy gives
the start; the search does most of the final improvement at N = 50. `search=False` and
`samples=1` give the pure learned policy; the benchmark reports both, so what is learned and
what is search stays visible. Checkpoints are read through `tools/checkpoints.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from edgeai.errors import UserInputError
from edgeai.tools import checkpoints
from edgeai.tools.offloading.baselines import rule_targets
from edgeai.tools.offloading.evaluate import Evaluator, Stopwatch, finish
from edgeai.tools.offloading.problem import OBJECTIVES, Decision, Instance, Objective
from torch import nn

log = logging.getLogger(__name__)

UE_FEATURES = 10
SERVER_FEATURES = 5
PAIR_FEATURES = 6
DYN_FEATURES = 6
CLIP = 4.0
DEFAULT_CHECKPOINT = "aed.pt"
TRAIN = "`edgeai offload train`"
MIN_MOVES = 16  # search budget of a decision, in moves, at least (see `default_moves`)
UES_PER_MOVE = 3  # ... and one move per this many UEs beyond


# ----------------------------------------------------------------------------- input embedding


@dataclass
class Features:
    """Normalised inputs of one instance, UEs in decoding order (`order`)."""

    ue: np.ndarray  # (N, UE_FEATURES)
    server: np.ndarray  # (M, SERVER_FEATURES)
    pair: np.ndarray  # (N, M, PAIR_FEATURES)
    prompt: int  # index into OBJECTIVES
    order: np.ndarray  # (N,) decoding position -> UE index
    lb: np.ndarray  # (N, M) deadline shares, inf where unusable (in order)
    pair_ok: np.ndarray  # (N, M) bool (in order)
    local_ok: np.ndarray  # (N,) bool (in order)
    sqrt_c: np.ndarray  # (N,) sqrt(cycles) (in order)
    inv_fd: np.ndarray  # (N, M) 1 / (F_j D_i) (in order)
    rule: np.ndarray | None = None  # (N,) the rule's targets by UE index, when computed


def features(evaluator: Evaluator, hint: bool = False, rule: np.ndarray | None = None) -> Features:
    """The input embedding's numbers for one instance under the evaluator's objective.

    `hint` (models with `AEDConfig.hint`): one more UE feature (the simple rule sends this UE
    local) and one more pair feature (the rule sends it to this server), from
    `baselines.rule_targets` (given as `rule`, else computed); the policy then learns where to
    depart from the rule, at any N."""
    inst, t = evaluator.instance, evaluator.tables
    a = inst.arrays
    n, m = inst.n, inst.m
    order = np.argsort(-a.c, kind="stable")
    D = a.D
    e_loc = np.maximum(t.e_loc, 1e-12)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        tx = np.minimum(t.t_tx / D[:, None], CLIP)
        eo = np.minimum(t.e_off / e_loc[:, None], CLIP)
        lb = np.minimum(t.lb, CLIP)
        comp = np.minimum(a.c[:, None] / (a.F[None, :] * D[:, None]), CLIP) if m else tx
    okf = t.pair_ok.astype(float)
    none = np.zeros(n)
    ue = np.stack(
        [
            np.minimum(t.t_loc / D, CLIP),
            np.log(np.maximum(a.d, 1.0) / 2e6),
            np.log(a.c / 1e9),
            t.local_ok.astype(float),
            lb.min(axis=1) if m else none + CLIP,
            tx.min(axis=1) if m else none + CLIP,
            eo.min(axis=1) if m else none + CLIP,
            okf.mean(axis=1) if m else none,
            np.full(n, np.log(n / 50.0)),
            np.full(n, m / 4.0),
        ],
        axis=1,
    )
    server = (
        np.stack(
            [
                np.log(a.F / 1.5e10),
                np.minimum(np.where(t.pair_ok, t.lb, 0.0).sum(axis=0), 4 * CLIP) / 4.0,
                np.minimum(a.c.sum() / (a.F * D.mean()), 4 * CLIP) / 4.0,
                okf.mean(axis=0),
                np.full(m, n / 50.0),
            ],
            axis=1,
        )
        if m
        else np.zeros((0, SERVER_FEATURES))
    )
    pair = (
        np.stack([tx, eo, lb, okf, comp, np.log1p(comp)], axis=2)
        if m
        else np.zeros((n, 0, PAIR_FEATURES))
    )
    with np.errstate(divide="ignore"):
        inv_fd = 1.0 / (a.F[None, :] * D[:, None])
    if hint:
        rule = rule_targets(evaluator) if rule is None else rule
        ue = np.concatenate([ue, (rule < 0).astype(float)[:, None]], axis=1)
        on = (rule[:, None] == np.arange(m)[None, :]).astype(float)
        pair = np.concatenate([pair, on[:, :, None]], axis=2)
    return Features(
        ue=ue[order].astype(np.float32),
        server=server.astype(np.float32),
        pair=pair[order].astype(np.float32),
        prompt=OBJECTIVES.index(evaluator.objective),
        order=order,
        lb=t.lb[order],
        pair_ok=t.pair_ok[order],
        local_ok=t.local_ok[order],
        sqrt_c=np.sqrt(a.c[order]),
        inv_fd=inv_fd[order],
        rule=rule,
    )


def dyn_features(
    step: int,
    n: int,
    lb_i: np.ndarray,
    sqrt_c_i: np.ndarray,
    inv_fd_i: np.ndarray,
    used: np.ndarray,
    load: np.ndarray,
    count: np.ndarray,
) -> np.ndarray:
    """The dynamic MEC embedding at one step, (..., M, DYN_FEATURES) for the current UE(s).

    used: deadline shares already placed per server; load: sum of sqrt(c) placed (the
    water-filling latency of a server is load^2 / F without binding deadlines); count: UEs placed.
    Shapes: lb_i, inv_fd_i (..., M); sqrt_c_i (..., 1); used, load, count (..., M).
    """
    rem = 1.0 - used
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        fill = np.minimum(lb_i / np.maximum(rem, 1e-3), CLIP)
        marginal = np.minimum((2.0 * load * sqrt_c_i + sqrt_c_i**2) * inv_fd_i, CLIP)
        congestion = np.minimum(load**2 * inv_fd_i, CLIP)
    progress = np.broadcast_to(np.float64(step / max(n, 1)), rem.shape)
    out = np.stack([rem, fill, marginal, congestion, count / max(n, 1), progress], axis=-1)
    return np.nan_to_num(out, nan=CLIP, posinf=CLIP).astype(np.float32)


# ----------------------------------------------------------------------------- the model


@dataclass
class AEDConfig:
    """Sizes of the AED (defaults: the shipped checkpoint; the paper's are far larger)."""

    d_model: int = 64  # token width
    n_heads: int = 4
    enc_layers: int = 4  # the deep encoder
    dec_layers: int = 1  # the shallow decoder (the only part ALEF fine-tunes)
    d_ff: int = 128
    d_hidden: int = 64  # width of the pair scorer (target head)
    hint: bool = False  # the simple rule's decision as one more UE and pair feature


class AED(nn.Module):
    """Input embedding + deep encoder + shallow decoder with target and share heads + critic."""

    def __init__(self, cfg: AEDConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d, h = cfg.d_model, cfg.d_hidden
        # Input embedding (IE): UE, MEC and prompt tokens, plus a token-type embedding.
        self.ue_in = nn.Linear(UE_FEATURES + cfg.hint, d)
        self.server_in = nn.Linear(SERVER_FEATURES, d)
        self.prompt_in = nn.Embedding(len(OBJECTIVES), d)
        self.kind = nn.Embedding(3, d)  # 0 prompt, 1 server, 2 UE
        layer = nn.TransformerEncoderLayer(
            d, cfg.n_heads, cfg.d_ff, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(
            layer, cfg.enc_layers, norm=nn.LayerNorm(d), enable_nested_tensor=False
        )
        # Shallow decoder: UE queries attend to each other and to every encoder token.
        self.decoder = nn.ModuleList(
            nn.TransformerDecoderLayer(
                d, cfg.n_heads, cfg.d_ff, dropout=0.0, batch_first=True, norm_first=True
            )
            for _ in range(cfg.dec_layers)
        )
        self.dec_norm = nn.LayerNorm(d)
        self.q_ue = nn.Linear(d, h)
        self.k_server = nn.Linear(d, h, bias=False)
        self.k_pair = nn.Linear(PAIR_FEATURES + cfg.hint, h, bias=False)
        self.k_dyn = nn.Linear(DYN_FEATURES, h, bias=False)
        self.target_out = nn.Linear(h, 1)  # logit of (UE, server)
        self.local_out = nn.Sequential(nn.Linear(d, h), nn.ReLU(), nn.Linear(h, 1))
        self.share_out = nn.Linear(h, 1)  # sigmoid: CPU share on that server
        self.critic = nn.Sequential(nn.Linear(2 * d, h), nn.ReLU(), nn.Linear(h, 1))

    def decoder_parameters(self) -> list[nn.Parameter]:
        """What ALEF fine-tunes: the decoder layer(s) and both heads (the encoder stays frozen)."""
        parts = [
            self.decoder,
            self.dec_norm,
            self.q_ue,
            self.k_server,
            self.k_pair,
            self.k_dyn,
            self.target_out,
            self.local_out,
            self.share_out,
        ]
        return [p for part in parts for p in part.parameters()]

    def encode(
        self, ue: torch.Tensor, server: torch.Tensor, pair: torch.Tensor, prompt: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Static part of the decoder: (pre (B, N, M, H), local logits (B, N), value (B,)).

        ue (B, N, UE_F); server (B, M, SERVER_F); pair (B, N, M, PAIR_F); prompt (B,) long.
        """
        n, m = ue.shape[1], server.shape[1]
        tokens = torch.cat(
            [
                (self.prompt_in(prompt) + self.kind.weight[0])[:, None, :],  # (B, 1, d)
                self.server_in(server) + self.kind.weight[1],  # (B, M, d)
                self.ue_in(ue) + self.kind.weight[2],  # (B, N, d)
            ],
            dim=1,
        )
        memory = self.encoder(tokens)  # (B, 1 + M + N, d)
        z = memory[:, 1 + m :, :]  # (B, N, d) UE queries
        for layer in self.decoder:
            z = layer(z, memory)
        z = self.dec_norm(z)
        s = memory[:, 1 : 1 + m, :]  # (B, M, d)
        pre = self.q_ue(z)[:, :, None, :] + self.k_server(s)[:, None, :, :] + self.k_pair(pair)
        local = self.local_out(z).squeeze(-1)  # (B, N)
        pooled = torch.cat([memory[:, 0, :], memory[:, 1 + m :, :].mean(dim=1)], dim=-1)
        value = self.critic(pooled).squeeze(-1)  # (B,) predicted normalised cost
        del n
        return pre, local, value

    def step_logits(
        self, pre_i: torch.Tensor, local_i: torch.Tensor, dyn: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (..., 1 + M) of one decoding step (local first) and the share head (..., M)."""
        hidden = torch.relu(pre_i + self.k_dyn(dyn))  # (..., M, H)
        server_logits = self.target_out(hidden).squeeze(-1)  # (..., M)
        share = torch.sigmoid(self.share_out(hidden).squeeze(-1))
        return torch.cat([local_i[..., None], server_logits], dim=-1), share


# ----------------------------------------------------------------------------- decoding


def step_mask(
    lb_i: np.ndarray, pair_ok_i: np.ndarray, local_ok_i: np.ndarray, used: np.ndarray
) -> np.ndarray:
    """Allowed targets (..., 1 + M): a server when the UE's deadline share still fits, local
    when it meets the deadline (or when nothing else is allowed, so a step always has one)."""
    servers = pair_ok_i & (used + np.where(pair_ok_i, lb_i, 0.0) <= 1.0)
    local = np.asarray(local_ok_i) | ~servers.any(axis=-1)
    return np.concatenate([np.broadcast_to(local, servers.shape[:-1])[..., None], servers], -1)


@dataclass
class DecoderState:
    """Per-rollout server state along a decode: shares used, sqrt(c) load, count."""

    used: np.ndarray  # (K, M)
    load: np.ndarray  # (K, M)
    count: np.ndarray  # (K, M)

    @classmethod
    def empty(cls, k: int, m: int) -> DecoderState:
        return cls(np.zeros((k, m)), np.zeros((k, m)), np.zeros((k, m)))

    def place(self, feats: Features, step: int, choice: np.ndarray) -> None:
        """choice (K,): 0 local, j + 1 server j."""
        rows = np.nonzero(choice > 0)[0]
        j = choice[rows] - 1
        self.used[rows, j] += feats.lb[step, j]
        self.load[rows, j] += feats.sqrt_c[step]
        self.count[rows, j] += 1.0


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float64)


class FastDecoder:
    """The decoder's per-step arithmetic in numpy (batch of 1 instance, K rollouts): the same
    numbers as `dyn_features` + `step_mask` + `AED.step_logits`, written without torch's
    per-call overhead on tiny tensors (a test checks both against each other)."""

    def __init__(self, model: AED) -> None:
        self.w_dyn = _np(model.k_dyn.weight).T  # (DYN, H)
        self.w_out = _np(model.target_out.weight)[0]  # (H,)
        self.b_out = float(model.target_out.bias.detach()[0])

    def decode(
        self,
        feats: Features,
        pre: np.ndarray,
        local: np.ndarray,
        samples: int,
        rng: np.random.Generator,
        want_entropy: bool = True,
    ) -> tuple[np.ndarray, float]:
        """Rollout 0 greedy, the others sampled. Returns (targets (K, N) in UE order, -1 local;
        mean entropy per step of rollout 0, 0 unless `want_entropy`)."""
        n, m = pre.shape[0], pre.shape[1]
        k = max(1, samples)
        used, load, count = np.zeros((k, m)), np.zeros((k, m)), np.zeros((k, m))
        lb = np.minimum(feats.lb, 1e6)  # finite: lb / rem stays >= CLIP where lb was inf
        lb_ok = np.where(feats.pair_ok, lb, 0.0)
        # Everything that does not depend on the decisions so far, for all steps at once.
        sc = feats.sqrt_c[:, None]
        lin = 2.0 * sc * feats.inv_fd  # (N, M): marginal = load * lin + sq
        sq = sc * sc * feats.inv_fd
        steps = np.arange(n, dtype=float)[:, None, None] / n
        pre_all = pre + steps * self.w_dyn[5]  # (N, M, H): the progress feature folded in
        w5 = self.w_dyn[:5]
        local_b = local - self.b_out  # logits shifted by the server bias: same argmax/softmax
        # Sampling by the Gumbel-max trick (argmax of logits + Gumbel noise); rollout 0 greedy.
        noise = rng.gumbel(size=(n, k, m + 1)) if k > 1 else None
        if noise is not None:
            noise[:, 0, :] = 0.0
        dyn = np.empty((k, m, 5))
        logits = np.empty((k, m + 1))
        mask = np.empty((k, m + 1), dtype=bool)
        ks = np.arange(k)
        choice_all = np.zeros((k, n), dtype=int)
        entropy = 0.0
        inv_n = 1.0 / n
        for step in range(n):
            rem = 1.0 - used
            dyn[..., 0] = rem
            np.divide(lb[step], np.maximum(rem, 1e-3), out=dyn[..., 1])
            dyn[..., 2] = load * lin[step] + sq[step]
            dyn[..., 3] = load * load * feats.inv_fd[step]
            dyn[..., 4] = count
            np.minimum(dyn, CLIP, out=dyn)  # rem and count are <= 1 < CLIP: unchanged
            hidden = dyn @ w5
            hidden += pre_all[step]
            np.maximum(hidden, 0.0, out=hidden)  # (K, M, H)
            logits[:, 0] = local_b[step]
            logits[:, 1:] = hidden @ self.w_out
            srv = mask[:, 1:]
            np.less_equal(used + lb_ok[step], 1.0, out=srv)
            srv &= feats.pair_ok[step]
            mask[:, 0] = feats.local_ok[step] | ~srv.any(axis=1)
            z = np.where(mask, logits, -np.inf)
            if want_entropy:
                z0 = z[0][mask[0]]
                z0 = z0 - z0.max()
                p0 = np.exp(z0)
                p0 /= p0.sum()
                entropy -= float(p0 @ np.log(np.maximum(p0, 1e-300)))
            if noise is None:
                c = int(np.argmax(z[0]))
                if c:
                    used[0, c - 1] += lb[step, c - 1]
                    load[0, c - 1] += sc[step, 0]
                    count[0, c - 1] += inv_n
                choice_all[0, step] = c
                continue
            z += noise[step]
            choice = np.argmax(z, axis=1)
            on = choice > 0
            if on.any():
                rows, j = ks[on], choice[on] - 1
                used[rows, j] += lb[step, j]
                load[rows, j] += sc[step, 0]
                count[rows, j] += inv_n
            choice_all[:, step] = choice
        targets = np.empty_like(choice_all)
        targets[:, feats.order] = choice_all - 1
        return targets, entropy / max(n, 1)


# ----------------------------------------------------------------------------- checkpoints


@dataclass
class LoadedModel:
    model: AED
    fast: FastDecoder
    meta: dict[str, Any]


@cache
def checkpoint_dir() -> Path:
    """The shipped checkpoints' folder (cached: resolving it costs ~0.5 ms, as much as a tenth
    of a decision)."""
    return Path(str(resources.files("edgeai.tools.offloading") / "checkpoints"))


def save_checkpoint(model: nn.Module, path: str | Path, meta: dict[str, Any]) -> Path:
    """Weights (float32) + config + how they were made, in one torch file (the AED and the DROO
    network share this format)."""
    return checkpoints.save_torch(model, path, meta)


def build_model(cfg: AEDConfig | None = None, seed: int = 0) -> AED:
    torch.manual_seed(seed)
    return AED(cfg or AEDConfig())


def model_from(data: dict[str, Any]) -> AED:
    """The AED a checkpoint payload describes (config + state dict), in eval mode."""
    return checkpoints.module_from(data, AED, AEDConfig)


def load_model(path: str | Path | None = None) -> LoadedModel:
    """Load a checkpoint (default: the shipped one); cached per path and modification time;
    WeightsError when it is missing or does not fit this code."""
    path = path or checkpoint_dir() / DEFAULT_CHECKPOINT
    return checkpoints.load_cached(path, "AED checkpoint", _loaded, hint=f"train one with {TRAIN}")


def _loaded(data: dict[str, Any]) -> LoadedModel:
    model = model_from(data)
    loaded = LoadedModel(model, FastDecoder(model), dict(data.get("meta", {})))
    _warm_up(loaded)
    return loaded


def _warm_up(loaded: LoadedModel) -> None:
    """One decode on a small generated instance, so that torch's and numpy's first-call set-up
    counts as model load, not as the first decision's `solve_seconds`."""
    from edgeai.tools.offloading.scenario import generate_instance

    for objective in OBJECTIVES:
        instance = generate_instance(12, 3, 0, "lambo-50-tight", objective)
        evaluator = Evaluator(instance, objective)  # type: ignore[arg-type]
        targets, _ = policy_targets(loaded, evaluator, 2)
        MoveSearch(evaluator).run(evaluator.repair(targets)[0], default_moves(instance.n))


# ----------------------------------------------------------------------------- the search


class MoveSearch:
    """Best-improvement local search over assignments with O(1)-per-move scoring.

    Every move of one UE to another target (local or a server) is scored for all UEs and
    targets in one vectorised step from per-server running sums, the chosen move is checked
    with the exact per-server values (`Evaluator.server_value`'s numbers: KKT water-filling
    for min_latency, summed costs under the deadline-share capacity for min_energy), and only
    an exact improvement is applied; so the search never accepts a worse or infeasible state.

    min_latency: with the server's current bound set (tasks held at their deadline share lb)
    fixed, a server's value is B + S^2 / (1 - L) over F (B = sum c/lb of the bound tasks,
    S = sum sqrt(c) and L = sum lb of the free ones; without binding deadlines, B = L = 0 and
    this is the closed form (sum sqrt c)^2 / F), which gives every join/leave delta in O(1).
    min_energy: the objective is separable, so a move's delta is exact; what binds is each
    server's capacity of deadline shares, so when no single move improves, ejection chains are
    tried (UE i takes server b, one UE i' on b moves to any other target c; c = i's old target
    is a swap).
    """

    def __init__(self, evaluator: Evaluator) -> None:
        self.ev = evaluator
        inst, t = evaluator.instance, evaluator.tables
        a = inst.arrays
        self.n, self.m = inst.n, inst.m
        self.latency = evaluator.objective == "min_latency"
        self.c = a.c
        self.sq = np.sqrt(a.c)
        self.F = a.F
        self.lb = np.where(t.pair_ok, t.lb, np.inf)  # (N, M)
        self.lb0 = np.where(t.pair_ok, t.lb, 0.0)
        self.local_cost = evaluator.local_cost
        self.pair_cost = evaluator.pair_cost  # (N, M), inf where unusable
        # cost (N, 1 + M): local first, then the servers (the per-UE part of the objective)
        self.cost = np.concatenate([self.local_cost[:, None], self.pair_cost], axis=1)
        self.scale = 1.0
        self._pending: dict[int, Any] = {}

    # -- per-server exact state

    def _server(
        self, j: int, idx: np.ndarray
    ) -> tuple[float, float, float, float, float, np.ndarray]:
        """(value, B, S, L_bound, L_all, bound mask) of server j holding UEs `idx`: the exact
        KKT water-filling of `shares.waterfill` for one server, in scalar-sized numpy steps."""
        none = np.zeros(idx.size, dtype=bool)
        if idx.size == 0:
            return 0.0, 0.0, 0.0, 0.0, 0.0, none
        lb = self.lb[idx, j]
        l_all = float(lb.sum())
        base = float(self.pair_cost[idx, j].sum())
        if not l_all <= 1.0:
            return np.inf, 0.0, 0.0, 0.0, l_all, none
        if not self.latency:
            return base, 0.0, 0.0, 0.0, l_all, none
        sq = self.sq[idx]
        ratio = lb / sq  # the water level at which a task stops being held at its lb
        order = np.argsort(ratio)
        free_sq = np.cumsum(sq[order])
        held = l_all - np.cumsum(lb[order])
        k = max(1, int(np.count_nonzero(ratio[order] * free_sq + held <= 1.0)))
        tau = (1.0 - held[k - 1]) / free_sq[k - 1]
        bound = np.ones(idx.size, dtype=bool)
        bound[order[:k]] = False
        s_free = float(free_sq[k - 1])
        b = float((self.c[idx][bound] / lb[bound]).sum()) if k < idx.size else 0.0
        l_bound = float(held[k - 1])
        return base + (b + s_free / tau) / self.F[j], b, s_free, l_bound, l_all, bound

    def _load(self, targets: np.ndarray) -> None:
        m = self.m
        self.t = np.array(targets, dtype=int)
        self.value = np.zeros(m)
        self.B, self.S, self.Lb, self.Lall = (np.zeros(m) for _ in range(4))
        self.bound = np.zeros(self.n, dtype=bool)
        for j in range(m):
            self._refresh(j)

    def _refresh(self, j: int) -> None:
        idx = np.nonzero(self.t == j)[0]
        v, b, s, lbound, lall, bound = self._server(j, idx)
        self.value[j], self.B[j], self.S[j], self.Lb[j], self.Lall[j] = v, b, s, lbound, lall
        self.bound[idx] = bound

    def total(self) -> float:
        return float(self.local_cost[self.t < 0].sum() + self.value.sum())

    # -- single moves

    def _deltas(self) -> np.ndarray:
        """Estimated cost change (N, 1 + M) of moving UE i to target k (0 local, j + 1 server j);
        exact for min_energy, a close estimate for min_latency (then verified)."""
        n, m, t = self.n, self.m, self.t
        on = t >= 0
        ja = np.where(on, t, 0)
        rows = np.arange(n)
        if self.latency:
            F, S, Lb = self.F, self.S, self.Lb
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                rem = 1.0 - Lb  # (M,) capacity left to the free tasks
                now = np.where(S > 0, S**2 / np.maximum(rem, 1e-300), 0.0)  # (M,)
                # leaving server a
                sa, rema, nowa = S[ja], rem[ja], now[ja]
                lba = self.lb0[rows, ja]
                free_left = np.where(
                    sa - self.sq > 1e-12 * sa, (sa - self.sq) ** 2 / np.maximum(rema, 1e-300), 0.0
                )
                bound_left = np.where(sa > 0, sa**2 / (rema + lba), 0.0) - self.c / np.where(
                    lba > 0, lba, 1.0
                )
                leave_srv = (
                    -self.pair_cost[rows, ja]
                    + (np.where(self.bound, bound_left, free_left) - nowa) / F[ja]
                )
                leave = np.where(on, leave_srv, -self.local_cost)
                # joining server b (others keep their bound set)
                sq = self.sq[:, None]
                s_star = sq * rem / (S + sq)  # (N, M)
                join_free = ((S + sq) ** 2 / rem - now) / F
                rb = rem - self.lb
                join_bound = (
                    self.c[:, None] / self.lb + np.where(rb > 0, S**2 / rb, np.inf) - now
                ) / F
                join_bound = np.where(
                    (rb <= 0) & (S == 0), (self.c[:, None] / self.lb) / F, join_bound
                )
                join = self.pair_cost + np.where(s_star >= self.lb, join_free, join_bound)
        else:
            leave = -self.cost[rows, t + 1]
            join = self.pair_cost.copy()
        join = np.where(self.Lall[None, :] + self.lb <= 1.0, join, np.inf)
        delta = np.empty((n, m + 1))
        delta[:, 0] = self.local_cost
        delta[:, 1:] = join
        delta += leave[:, None]
        delta[rows, t + 1] = np.inf  # staying put is not a move
        delta[np.isnan(delta)] = np.inf
        return delta

    def _exact_delta(self, i: int, k: int) -> tuple[float, list[int]]:
        """Exact cost change of moving UE i to target k - 1, and the servers it touches."""
        old = int(self.t[i])
        touched = [j for j in (old, k - 1) if j >= 0]
        d = 0.0
        if old < 0:
            d -= self.local_cost[i]
        if k == 0:
            d += self.local_cost[i]
        self.t[i] = k - 1
        self._pending = {}
        for j in touched:
            idx = np.nonzero(self.t == j)[0]
            state = self._server(j, idx)
            self._pending[j] = (idx, state)
            d += state[0] - self.value[j]
        self.t[i] = old
        return d, touched

    def _apply(self, i: int, target: int, touched: list[int]) -> None:
        """Move UE i; servers just evaluated by `_exact_delta` reuse that state."""
        self.t[i] = target
        pending, self._pending = self._pending, {}
        for j in touched:
            if j in pending:
                idx, (v, b, sf, lbound, lall, bound) = pending[j]
                self.value[j], self.B[j], self.S[j] = v, b, sf
                self.Lb[j], self.Lall[j] = lbound, lall
                self.bound[idx] = bound
            else:
                self._refresh(j)

    def _single(self, verify: int = 4) -> bool:
        delta = self._deltas()
        flat = delta.ravel()
        tol = -1e-12 * self.scale
        cand = np.nonzero(flat < tol)[0]
        if cand.size == 0:
            return False
        if cand.size > verify:
            cand = cand[np.argpartition(flat[cand], verify - 1)[:verify]]
        cand = cand[np.argsort(flat[cand], kind="stable")]
        width = self.m + 1
        if not self.latency:
            i, k = divmod(int(cand[0]), width)
            old = int(self.t[i])
            self._apply(i, k - 1, [j for j in (old, k - 1) if j >= 0])
            return True
        for c in cand:
            i, k = divmod(int(c), width)
            d, touched = self._exact_delta(i, k)
            if d < tol:
                self._apply(i, k - 1, touched)
                return True
        return False

    # -- ejection chains (min_energy)

    def _eject(self) -> bool:
        """Best move 'i to server b, one UE i2 on b to any other target c' (c may be i's old
        target: a swap), with both capacities checked; exact for min_energy."""
        n, m, t = self.n, self.m, self.t
        rows = np.arange(n)
        cur = self.cost[rows, t + 1]  # (N,)
        lb_cur = np.where(t >= 0, self.lb0[rows, np.maximum(t, 0)], 0.0)  # (N,)
        best, move = -1e-12 * self.scale, None
        for b in range(m):
            out = np.nonzero(t == b)[0]  # candidates i2
            ins = np.nonzero((t != b) & np.isfinite(self.pair_cost[:, b]))[0]
            if out.size == 0 or ins.size == 0:
                continue
            # i joins b, i2 leaves b: capacity of b
            cap_b = self.Lall[b] + self.lb[ins, b][:, None] - self.lb[out, b][None, :] <= 1.0
            gain_i = self.pair_cost[ins, b] - cur[ins]  # (I,)
            # i2 to target c (0 local, j + 1 server j), c != b + 1
            gain_2 = self.cost[out, :] - self.pair_cost[out, b][:, None]  # (O, 1 + M)
            # capacity of c when c is a server: plus lb(i2, c), minus lb(i, c) if i leaves c
            used = np.concatenate([[-np.inf], self.Lall])  # local: no capacity
            lb2 = np.concatenate([np.zeros((out.size, 1)), self.lb[out]], axis=1)  # (O, 1 + M)
            frees = (t[ins][:, None] + 1 == np.arange(m + 1)[None, :]) * lb_cur[ins][:, None]
            cap_c = used[None, None, :] + lb2[None, :, :] - frees[:, None, :] <= 1.0  # (I, O, 1+M)
            total = gain_i[:, None, None] + gain_2[None, :, :]
            ok = cap_b[:, :, None] & cap_c
            ok[:, :, b + 1] = False
            total = np.where(ok, total, np.inf)
            total[np.isnan(total)] = np.inf
            flat = int(np.argmin(total))
            if total.flat[flat] < best:
                best = float(total.flat[flat])
                ii, oo, cc = np.unravel_index(flat, total.shape)
                move = (int(ins[ii]), b, int(out[oo]), int(cc) - 1)
        if move is None:
            return False
        i, b, i2, c = move
        old = int(t[i])
        self.t[i2] = c
        self.t[i] = b
        for j in {x for x in (old, b, c) if x >= 0}:
            self._refresh(j)
        return True

    def _knapsack(self, b: int, units: int = 1000, max_items: int = 24) -> bool:
        """Re-fill server b optimally, the rest fixed (min_energy): a 0/1 knapsack over every
        UE, profit = its current cost (its local cost for UEs now on b) minus its cost on b,
        weight = its deadline share rounded up to 1/`units` (so the answer stays feasible),
        solved by dynamic programming over the capacity grid. Applied only if it improves."""
        t = self.t
        on_b = t == b
        alt = np.where(on_b, self.local_cost, self.cost[np.arange(self.n), t + 1])
        profit = alt - self.pair_cost[:, b]
        usable = np.isfinite(profit) & (profit > 0) & np.isfinite(self.lb[:, b])
        if np.count_nonzero(usable) > max_items:  # best profit per share, and what b holds now
            ratio = np.where(usable, profit / np.maximum(self.lb[:, b], 1e-12), -np.inf)
            keep = on_b.copy()
            keep[np.argpartition(-ratio, max_items)[:max_items]] = True
            usable &= keep
        items = np.nonzero(usable)[0]
        if items.size == 0:
            return False
        weight = np.ceil(self.lb[items, b] * units - 1e-9).astype(int)
        keep = weight <= units
        items, weight = items[keep], weight[keep]
        best = np.zeros(units + 1)  # best[w]: most profit within w capacity units
        take = np.zeros((items.size, units + 1), dtype=bool)
        for k, (i, w) in enumerate(zip(items, weight, strict=True)):
            cand = best[: units + 1 - w] + profit[i]  # take item k: capacity w.. units
            np.greater(cand, best[w:], out=take[k, w:])
            np.maximum(best[w:], cand, out=best[w:])
        chosen, w = [], units
        for k in range(items.size - 1, -1, -1):
            if take[k, w]:
                chosen.append(int(items[k]))
                w -= int(weight[k])
        new = t.copy()
        new[on_b] = -1
        new[chosen] = b
        now = self.total()
        old_t = self.t
        self.t = new
        touched = sorted({int(x) for x in np.concatenate([old_t[old_t != new], [b]]) if x >= 0})
        saved = {
            j: (self.value[j], self.B[j], self.S[j], self.Lb[j], self.Lall[j]) for j in touched
        }
        for j in touched:
            self._refresh(j)
        if self.total() < now - 1e-12 * self.scale:
            return True
        self.t = old_t
        for j in touched:
            self.value[j], self.B[j], self.S[j], self.Lb[j], self.Lall[j] = saved[j]
        return False

    def _spend(self) -> bool:
        """Take one step of the budget; False when it is spent."""
        if self.steps >= self.limit or (self.stop is not None and self.stop()):
            return False
        self.steps += 1
        return True

    def _improve(self) -> bool:
        """Apply one improving move if a neighbourhood has one, each scan costing one step:
        all single moves; then (min_energy) a knapsack re-fill of each server whose
        neighbourhood changed since it last failed; then the ejection chains."""
        if not self._spend():
            return False
        if self._single():
            return True
        if self.latency:
            return False
        key = self.t.tobytes()
        for b in range(self.m):
            if self._failed.get(b) == key:
                continue
            if not self._spend():
                return False
            if self._knapsack(b):
                return True
            self._failed[b] = key
        return self._spend() and self._eject()

    def run(
        self, targets: np.ndarray, max_steps: int, stop: Callable[[], bool] | None = None
    ) -> tuple[np.ndarray, int]:
        """Improve `targets` until no move improves or `max_steps` scans are spent; returns the
        assignment and the steps used. A step is one scan of a neighbourhood (all single moves
        at once, one server's knapsack re-fill, or all ejection chains), whether or not it finds
        an improvement: a count, not a clock, so the answer does not depend on the machine's
        load. `stop` (asked before every step) ends it early: only the benchmark's CPU-time
        budgets of the search alone use it."""
        self.stop = stop
        self._load(targets)
        self._failed: dict[int, bytes] = {}
        start_total = self.total()
        self.scale = max(1.0, abs(start_total)) if np.isfinite(start_total) else 1.0
        self.steps, self.limit = 0, max(0, int(max_steps))
        while self._improve():
            pass
        return self.t.copy(), self.steps


# ----------------------------------------------------------------------------- the solver


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run the block with torch on one CPU thread, then give the caller back its setting.

    A decision is a batch of one on tiny tensors: extra threads only add synchronisation, and
    on a loaded machine they wait for cores (one N = 50 decision took 672 ms under contention
    with torch's default threads against 20 ms on one). One thread also keeps the floating-point
    reductions, hence the decoded assignment, the same whatever the machine. The setting is
    process-wide in torch: callers that solve from several threads at once share it."""
    before = torch.get_num_threads()
    if before != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if before != 1:
            torch.set_num_threads(before)


def default_moves(n: int) -> int:
    """The search budget of one decision at N UEs, in moves (see `MoveSearch.run`): N / 3, at
    least 16 (the N <= 20 multi-start spends them across its rollouts).

    Measured with time.process_time (median of 5 runs per instance; one torch thread; shipped
    checkpoint; dev seeds 7000-7009, M = 4; lambo-50 and lambo-50-tight, both objectives) on the
    project's 2-core Xeon @ 2.8 GHz: at N = 50 a whole decision with these 16 moves takes 8.0 ms
    of CPU on average (p95 8.8 ms, max 10.9 ms) on the idle machine, 8.2 ms (max 9.6 ms) while
    another job kept both cores busy; without any search (decode, repair, shares) it takes
    6.0-6.8 ms (mean per row), so the search adds 0.5-2.8 ms and the decode is what is left to
    make faster. 16 moves leave 0.00 % (lambo-50, tight min_latency) and 0.07 % mean (tight
    min_energy) between the answer and the search run to its local optimum; 8 moves would
    leave 0.08-1.4 %. At N = 200 the 66 moves leave 0.3 % on lambo-50 min_energy (the hardest
    row), 0.00 % on the others.
    """
    return max(MIN_MOVES, n // UES_PER_MOVE)


def policy_targets(
    loaded: LoadedModel,
    evaluator: Evaluator,
    samples: int = 1,
    seed: int = 0,
    want_entropy: bool = True,
    rule: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """Decoded assignments (K, N) (rollout 0 greedy) and the greedy rollout's mean entropy.
    `rule`: `baselines.rule_targets(evaluator)` when the caller has it (hinted models use it)."""
    feats = features(evaluator, loaded.model.cfg.hint, rule)
    if evaluator.m == 0:
        return np.full((1, evaluator.n), -1, dtype=int), 0.0
    with one_torch_thread(), torch.inference_mode():
        pre, local, _ = loaded.model.encode(
            torch.from_numpy(feats.ue)[None],
            torch.from_numpy(feats.server)[None],
            torch.from_numpy(feats.pair)[None],
            torch.tensor([feats.prompt]),
        )
    rng = np.random.default_rng(seed)
    return loaded.fast.decode(feats, _np(pre[0]), _np(local[0]), samples, rng, want_entropy)


def solve_aed(
    instance: Instance,
    objective: Objective,
    *,
    seed: int = 0,
    checkpoint: str | Path | None = None,
    samples: int | None = None,
    search: bool = True,
    moves: int | None = None,
    guard: bool = True,
) -> Decision:
    """LAMBO's AED: decode (greedy + `samples - 1` sampled rollouts; default 32 up to 20 UEs,
    else the greedy rollout alone), then `MoveSearch` from each distinct rollout in order of
    cost while the budget of `moves` search steps lasts (default `default_moves(N)`; the search
    stops earlier at a local optimum), the best kept, exact shares. torch runs on one thread.

    The guard (`guard=True`, issue 32 point 2): the simple rule's decision
    (`baselines.rule_targets`) joins the rollouts as one more candidate, so the answer, with or
    without the search (which only ever improves its start), is never worse than the rule's
    under the instance's own objective. `guard=False, search=False, samples=1` is the raw
    learned policy.

    Deterministic: the same instance, seed and checkpoint give the same decision on an idle or
    a loaded machine (the budget counts steps, not seconds). `solve_seconds` excludes loading
    the checkpoint (cached after the first call).
    """
    budget = default_moves(instance.n) if moves is None else check_moves(moves)
    with one_torch_thread():
        loaded = load_model(checkpoint)
        if samples is None:  # rollouts are vectorised: many are cheap while N is small; beyond,
            samples = 32 if instance.n <= 20 else 1  # the budget is better spent on the search
        watch = Stopwatch()
        evaluator = Evaluator(instance, objective)
        need_rule = guard or loaded.model.cfg.hint
        rule = rule_targets(evaluator) if need_rule and evaluator.m else None
        targets, _ = policy_targets(loaded, evaluator, samples, seed, False, rule)
    targets = evaluator.repair(targets)  # a no-op by construction of the masks; kept as a guard
    if guard and rule is not None:
        targets = np.concatenate([targets, rule[None, :]])
    totals = evaluator.total(targets)
    order = np.argsort(totals, kind="stable")
    best, best_total = targets[order[0]], float(totals[order[0]])
    spent = starts = 0
    if search and evaluator.m:
        searcher = MoveSearch(evaluator)
        seen: list[np.ndarray] = []
        for r in order:  # multi-start: the rollouts in order of cost, while the budget lasts
            if spent >= budget:
                break
            if any(np.array_equal(targets[r], s) for s in seen):
                continue
            seen.append(targets[r])
            found, used = searcher.run(targets[r], budget - spent)
            value = float(evaluator.total(found)[0])
            spent, starts = spent + used, starts + 1
            if value < best_total:
                best, best_total = found, value
    decision = finish(evaluator, "aed", best, watch)
    log.debug("aed: %d starts, %d steps, %.2f ms", starts, spent, 1e3 * watch.seconds())
    return decision


def check_moves(moves: object) -> int:
    """A search budget given by a caller: a whole number of steps >= 0, else UserInputError."""
    if isinstance(moves, bool) or not isinstance(moves, (int, np.integer)) or moves < 0:
        raise UserInputError(f"moves must be a whole number >= 0 (search steps), got {moves!r}")
    return int(moves)
