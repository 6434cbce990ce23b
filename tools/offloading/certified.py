"""The certified reference: a MILP (HiGHS via scipy.optimize.milp) that returns a decision, its
true cost, a lower bound that no decision beats, and the gap between them.

min_energy does not depend on the shares (spec, "Facts worth knowing"): the programme is the
generalised assignment problem of `milp.py` (x_ik = 1 when UE i runs on target k, one target
per UE, per server sum_i lb_ij x_ij <= 1), exact, and HiGHS's dual bound is the certificate.

min_latency adds, per server j, the convex term V_j = min_s sum_i c_i / (s_i F_j) over the
shares (sum_i s_i <= 1, lb_ij <= s_i <= 1 for its UEs). Write a_i = c_i / F_j. The tangent of
a_i / s at a share sigma is 2 a_i / sigma - (a_i / sigma^2) s, a lower bound on a_i / s. Take
for every UE the tangent at the share it would get at one price lambda of the server's CPU,
sigma_i(lambda) = clip(sqrt(a_i / lambda), lb_ij, 1) (where the tangent's slope is -lambda when
sigma_i is not clipped), sum over the UEs on j and use sum_i s_i <= 1 to eliminate the shares:

    phi_j >= sum_i g_ij(lambda) x_ij - lambda,   g_ij(lambda) = a_i / sigma_i + lambda sigma_i

(the Lagrangian bound of V_j for capacity price lambda; with clipping it is still a lower
bound, by weak duality). Every cut is valid for every assignment, fractional ones included, and
at the capacity multiplier of an assignment's optimal shares (lambda = max_i a_i / s_i^2) it is
exact for that assignment (strong duality: the KKT shares of `shares.waterfill`). phi_j is the
epigraph variable of server j. Outer approximation: start from a geometric grid of prices,
solve, value the decision with the exact shares (`Evaluator.total`), add the cut at each of its
servers' own price, re-solve, until (true cost - bound) / true cost <= `tol` (default 0.1 %).
Two cuts at prices lambda and r lambda miss the value between them by at most
1 - (2 r^(1/4) - r^(1/2)) on an unclipped server (0.06 % at r = 1.1).

Why one epigraph per server and not per (UE, server) pair with a share variable each (the
textbook perspective cuts): the same bound, but P = N M share and epigraph columns and a grid
of cuts per pair made HiGHS take 28-57 s at N = 50 (lambo-50, min_latency) against well under a
second here, and N = 200 out of reach.

The bound of each round is HiGHS's dual bound (valid even when it stops early); the best
decision and the best bound over the rounds are kept. What is hard is not the bound but the
decision: when capacity binds (min_energy at N = 200 on lambo-50) the servers are strongly
correlated knapsacks (profit and weight both grow with a task's cycles), HiGHS's root bound is
within ~0.05-0.09 % of the best decisions known, and its own search finds decisions that close
to it only slowly. So the decisions are polished by neighbourhood MILPs (`certify`), and every
search is bounded by a count of nodes, never by the clock.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from edgeai.errors import UserInputError
from edgeai.tools.offloading.evaluate import Evaluator, Stopwatch, finish
from edgeai.tools.offloading.problem import Decision, Instance, Objective
from edgeai.tools.offloading.shares import optimal_shares
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_array, csr_array

log = logging.getLogger(__name__)

TOLERANCE = 1e-3  # certified relative gap (0.1 %)
PRICE_RATIO = 1.1  # ratio between the first round's prices
ROOT_NODES = 1  # the first solve of the whole programme: its root node
FULL_NODES = 5000  # later solves of the whole programme
SUB_NODES = 2000  # nodes of each neighbourhood MILP (a count: the same answer under any load)
POLISH_PASSES = 5  # passes over the neighbourhoods while they improve


@dataclass
class Certificate:
    """A decision with its true cost and a lower bound on every decision's cost (objective
    units: mean latency in s or total energy in J)."""

    targets: np.ndarray  # (N,) -1 local, else server index
    cost: float
    lower_bound: float  # -inf when HiGHS proved nothing (it ran out of time at once)
    rounds: int  # MILPs solved
    cuts: int  # price cuts in the last programme (0 for min_energy)
    certified: bool  # gap <= the tolerance asked for

    @property
    def gap(self) -> float:
        """(cost - lower bound) / cost; 0 when both are equal."""
        if self.cost == self.lower_bound:
            return 0.0
        return (self.cost - self.lower_bound) / abs(self.cost)


@dataclass
class _Pairs:
    """The usable (UE, server) pairs: column n + p of the programme is x of pair p."""

    ue: np.ndarray  # (P,)
    server: np.ndarray  # (P,)
    lb: np.ndarray  # (P,) deadline share
    a: np.ndarray  # (P,) c_i / F_j: the server term of UE i is a / s
    cost: np.ndarray  # (P,) upload latency or energy


def _pairs(evaluator: Evaluator) -> _Pairs:
    ue, server = np.nonzero(evaluator.tables.pair_ok)
    arr = evaluator.instance.arrays
    return _Pairs(
        ue=ue,
        server=server,
        lb=evaluator.tables.lb[ue, server],
        a=arr.c[ue] / arr.F[server],
        cost=evaluator.pair_cost[ue, server],
    )


def price_grid(pairs: _Pairs, m: int, ratio: float = PRICE_RATIO) -> tuple[np.ndarray, np.ndarray]:
    """First-round prices per server: geometric, ratio `ratio`, from the smallest a_i (one UE
    alone, share 1) to 4 (sum_i sqrt(a_i))^2 (every usable UE on the server with a quarter of the
    CPU left free of deadline shares). Returns (server, price) arrays."""
    servers, prices = [], []
    for j in range(m):
        a = pairs.a[pairs.server == j]
        if a.size == 0:
            continue
        lo, hi = float(a.min()), 4.0 * float(np.sqrt(a).sum()) ** 2
        count = int(np.ceil(np.log(hi / lo) / np.log(ratio))) + 1
        prices.append(lo * ratio ** np.arange(count))
        servers.append(np.full(count, j))
    if not prices:
        return np.zeros(0, dtype=int), np.zeros(0)
    return np.concatenate(servers), np.concatenate(prices)


def _cut_rows(
    pairs: _Pairs, n: int, m: int, cut_server: np.ndarray, cut_price: np.ndarray
) -> csr_array:
    """Rows phi_j - sum_i g_ij(lambda) x_ij >= -lambda, one per (server, price)."""
    rows, cols, vals = [], [], []
    for k, (j, lam) in enumerate(zip(cut_server, cut_price, strict=True)):
        on = np.nonzero(pairs.server == j)[0]
        a, lb = pairs.a[on], pairs.lb[on]
        sigma = np.clip(np.sqrt(a / lam), lb, 1.0)
        rows.append(np.full(on.size + 1, k))
        cols.append(np.r_[n + on, n + pairs.ue.size + j])
        vals.append(np.r_[-(a / sigma + lam * sigma), 1.0])
    width = n + pairs.ue.size + m
    if not rows:
        return csr_array((0, width))
    return coo_array(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(len(rows), width),
    ).tocsr()


@dataclass
class _Result:
    targets: np.ndarray | None  # HiGHS's best assignment, None when it found none
    bound: float  # its dual bound on the programme's total (+inf: proved infeasible)
    stopped: bool  # stopped by a node or time limit before its gap closed


def _solve(
    evaluator: Evaluator,
    pairs: _Pairs,
    cuts: csr_array | None,
    cut_price: np.ndarray,
    *,
    time_limit: float,
    mip_rel_gap: float,
    node_limit: int | None = None,
    fixed: np.ndarray | None = None,
) -> _Result:
    """One MILP over x_local (N), x_pair (P) and, for min_latency, phi (M).

    `fixed` (N + P,) holds 0 or 1 for x columns fixed there and NaN for free ones (a
    neighbourhood: its bound is not a bound of the whole problem)."""
    n, m, p = evaluator.n, evaluator.m, pairs.ue.size
    latency = cuts is not None
    width = n + p + (m if latency else 0)
    cols = np.arange(n + p)
    one = coo_array(
        (np.ones(n + p), (np.r_[np.arange(n), pairs.ue], cols)), shape=(n, width)
    ).tocsr()
    cap = coo_array((pairs.lb, (pairs.server, n + np.arange(p))), shape=(m, width)).tocsr()
    constraints = [LinearConstraint(one, 1.0, 1.0), LinearConstraint(cap, -np.inf, 1.0)]
    cost = np.r_[evaluator.local_cost, pairs.cost]
    integrality = np.ones(n + p)
    lower, upper = np.zeros(n + p), np.ones(n + p)
    if fixed is not None:
        lower, upper = (
            np.where(np.isnan(fixed), lower, fixed),
            np.where(np.isnan(fixed), upper, fixed),
        )
    if latency:
        constraints.append(LinearConstraint(cuts, -cut_price, np.inf))
        cost = np.r_[cost, np.ones(m)]
        integrality = np.r_[integrality, np.zeros(m)]
        lower, upper = np.r_[lower, np.zeros(m)], np.r_[upper, np.full(m, np.inf)]
    options = {"time_limit": max(time_limit, 1e-3), "mip_rel_gap": mip_rel_gap, "disp": False}
    if node_limit is not None:
        options["node_limit"] = node_limit
    result = milp(
        cost,
        integrality=integrality,
        bounds=Bounds(lower, upper),
        constraints=constraints,
        options=options,
    )
    if result.status == 2:  # infeasible (cannot happen: all-local is always a solution)
        return _Result(None, -np.inf, False)
    bound = getattr(result, "mip_dual_bound", None)
    if bound is None or not np.isfinite(bound):
        bound = result.fun if result.status == 0 else -np.inf
    if result.x is None:
        log.info("HiGHS found no solution (%s)", result.message)
        return _Result(None, float(bound), result.status != 0)
    chosen = result.x[n : n + p] > 0.5
    targets = np.full(n, -1, dtype=int)
    targets[pairs.ue[chosen]] = pairs.server[chosen]
    return _Result(targets, float(bound), result.status != 0)


def _columns(pairs: _Pairs, targets: np.ndarray) -> np.ndarray:
    """The x columns (N + P,) of an assignment: 1 where chosen, else 0."""
    n = targets.size
    x = np.zeros(n + pairs.ue.size)
    x[np.nonzero(targets < 0)[0]] = 1.0
    x[n + np.nonzero(targets[pairs.ue] == pairs.server)[0]] = 1.0
    return x


def neighbourhoods(m: int) -> list[tuple[int, ...]]:
    """Groups of servers whose UEs (and the local ones) a polishing MILP re-assigns while the
    others stay: every pair of servers, then every set of all servers but one (M >= 4)."""
    pairs = list(combinations(range(m), min(2, m)))
    return pairs + (list(combinations(range(m), m - 1)) if m >= 4 else [])


def own_prices(evaluator: Evaluator, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The capacity price of each used server at the assignment's optimal shares,
    lambda_j = max_i a_i / s_i^2 (the free UEs' common value; bound UEs have less): the price
    whose cut is exact for this assignment. Returns (server, price) arrays."""
    share, _ = optimal_shares(
        evaluator.tables, evaluator.instance.arrays.c, targets, evaluator.objective
    )
    arr = evaluator.instance.arrays
    servers, prices = [], []
    for j in range(evaluator.m):
        on = np.nonzero(targets == j)[0]
        if on.size and np.all(share[on] > 0):
            servers.append(j)
            prices.append(float(np.max(arr.c[on] / arr.F[j] / share[on] ** 2)))
    return np.array(servers, dtype=int), np.array(prices)


def certify(
    evaluator: Evaluator,
    *,
    tol: float = TOLERANCE,
    time_limit: float = 600.0,
    max_rounds: int = 50,
) -> Certificate:
    """The best decision found and a certified lower bound, refined until the gap is <= `tol`
    (else after `max_rounds` programmes: then `certified` is False).

    Each round solves the whole programme (the first time its root node only: HiGHS's bound
    hardly moves past it, and the search for good decisions is better spent in small MILPs),
    then polishes the best decision with neighbourhood MILPs (`neighbourhoods`: the UEs of a
    few servers and the local ones re-assigned, the others fixed), then, for min_latency, adds
    the cuts at the prices of the decisions found. Later rounds search the whole programme
    for FULL_NODES nodes; min_energy stops after one such, its programme being exact.

    Every search is bounded by a count of branch-and-bound nodes, so the answer is the same on
    an idle or a loaded machine; `time_limit` (wall seconds) is only a safety net, and when it
    cuts a search short the certificate says so (`certified` False, or a larger gap)."""
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 < tol < 1:
        raise UserInputError(f"tol must be a number in (0, 1), got {tol!r}")
    if isinstance(time_limit, bool) or not isinstance(time_limit, (int, float)) or time_limit <= 0:
        raise UserInputError(f"time_limit must be a positive number of seconds, got {time_limit!r}")
    stop = time.perf_counter() + time_limit
    n, m = evaluator.n, evaluator.m
    local = evaluator.local_targets()
    best, best_total = local, float(evaluator.total(local)[0])
    pairs = _pairs(evaluator)
    latency = evaluator.objective == "min_latency"
    cut_server, cut_price = price_grid(pairs, m) if latency else (np.zeros(0, int), np.zeros(0))
    bound, rounds = (best_total if pairs.ue.size == 0 else -np.inf), 0
    # min_energy: the programme is exact and HiGHS's gap is the whole gap; min_latency: half of
    # it for HiGHS, half for the cuts' approximation
    rel_gap = tol * (0.5 if latency else 0.9)

    def gap() -> float:
        return 0.0 if best_total <= bound else (best_total - bound) / abs(best_total)

    def offer(targets: np.ndarray | None) -> None:
        nonlocal best, best_total
        if targets is not None:
            total = float(evaluator.total(targets)[0])
            if total < best_total:
                best, best_total = targets, total

    def left() -> float:
        return stop - time.perf_counter()

    node_limit: int | None = ROOT_NODES
    while pairs.ue.size and rounds < max_rounds and left() > 0:
        rounds += 1
        cuts = _cut_rows(pairs, n, m, cut_server, cut_price) if latency else None
        whole = _solve(
            evaluator, pairs, cuts, cut_price, time_limit=left(), mip_rel_gap=rel_gap,
            node_limit=node_limit,
        )  # fmt: skip
        bound = max(bound, whole.bound)
        offer(whole.targets)
        if gap() <= tol:
            break
        tried: set[tuple[tuple[int, ...], bytes]] = set()  # neighbourhoods that gave nothing
        for _ in range(POLISH_PASSES):  # neighbourhood MILPs until none improves
            before = best_total
            for group in neighbourhoods(m):
                if gap() <= tol or left() <= 0:
                    break
                x = _columns(pairs, best)
                ue_free = (best < 0) | np.isin(best, group)
                key = (group, ue_free.tobytes())
                if key in tried:  # the same UEs free: the same choices to make as last time
                    continue
                free = np.r_[ue_free, ue_free[pairs.ue] & np.isin(pairs.server, group)]
                part = _solve(
                    evaluator, pairs, cuts, cut_price, time_limit=left(), mip_rel_gap=1e-9,
                    node_limit=SUB_NODES, fixed=np.where(free, np.nan, x),
                )  # fmt: skip
                now = best_total
                offer(part.targets)
                if best_total >= now:
                    tried.add(key)
            if best_total >= before or gap() <= tol:
                break
        if gap() <= tol or (not latency and node_limit == FULL_NODES):
            break
        if latency:
            for targets in (whole.targets, best):
                if targets is not None:
                    new_server, new_price = own_prices(evaluator, targets)
                    cut_server = np.r_[cut_server, new_server]
                    cut_price = np.r_[cut_price, new_price]
        if not latency or whole.stopped:
            node_limit = FULL_NODES
    bound = min(bound, best_total)  # a bound above a known decision's cost is rounding
    cert = Certificate(
        targets=best,
        cost=evaluator.objective_of_total(best_total),
        lower_bound=evaluator.objective_of_total(bound) if np.isfinite(bound) else -np.inf,
        rounds=rounds,
        cuts=int(cut_price.size),
        certified=gap() <= tol,
    )
    log.info("certified MILP: %d rounds, %d cuts, gap %.3g %%", rounds, cert.cuts, 100 * cert.gap)
    return cert


def solve_certified(
    instance: Instance,
    objective: Objective,
    *,
    seed: int = 0,
    tol: float = TOLERANCE,
    time_limit: float = 600.0,
) -> Decision:
    """The certified reference as a solver: the decision, with its `lower_bound` (objective
    units), `gap` and `certified` (whether the gap reached `tol` within `time_limit`)."""
    del seed  # deterministic
    watch = Stopwatch()
    evaluator = Evaluator(instance, objective)
    cert = certify(evaluator, tol=tol, time_limit=time_limit)
    return finish(
        evaluator,
        "certified",
        cert.targets,
        watch,
        lower_bound=cert.lower_bound if np.isfinite(cert.lower_bound) else None,
        gap=cert.gap if np.isfinite(cert.gap) else None,
        certified=cert.certified,
    )
