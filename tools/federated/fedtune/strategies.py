"""Federated fine-tuning strategies: Flower `FedAvg` subclasses that move adapters, not text.

    AdapterFedAvg       FedAvg of the adapter arrays (FL-LoRA, FL-prefix, FL-prompt: the same
                        strategy, different adapters) plus what the papers measure: bytes up and
                        down, simulated wall-clock time of each round over the wireless cell,
                        every user's held-out loss, and a round-0 evaluation of the base model.
    ClusteredFedAvg     CFL: after `cluster_round` rounds of plain FedAvg the users' adapter
                        updates (summed over those rounds, centred) are clustered (cosine
                        k-means), then each cluster aggregates
                        alone and each user is evaluated with its cluster's adapter.
    HierarchicalFedAvg  users -> edge aggregators (every round) -> cloud (every `cloud_period`
                        rounds); backhaul bytes are counted only where an adapter crosses it.
    AsyncFedAvg         updates applied one at a time in the order they arrive on the simulated
                        clock, mixed into the global adapter with a staleness-decayed weight;
                        the sender restarts at once from the newest adapter.

Every strategy keeps one adapter per *group* of users (FedAvg: one group; CFL: clusters;
hierarchical: edges); `configure_train`/`configure_evaluate` send each node its group's adapter.
The simulated clock (`Timing`) charges a user its measured local CPU time times its slowdown,
plus the airtime of its adapter upload at its Shannon rate in the shared cell (tools/channel.py,
the band split equally among the users). Downlink (the base station broadcasts) is not charged.
Nothing here reads a user's data: replies carry adapter arrays and numeric metrics only.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from edgeai.tools.channel import Cell
from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

Arrays = dict[str, np.ndarray]
ALLOWED_METRICS = frozenset({"num-examples", "user", "train_loss", "cpu_s", "steps", "eval_loss",
                             "accuracy", "tokens"})


def to_record(arrays: Arrays) -> ArrayRecord:
    return ArrayRecord({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()})


def from_record(record: ArrayRecord) -> Arrays:
    return {k: v.numpy() for k, v in record.to_torch_state_dict().items()}


def record_bytes(arrays: Arrays) -> int:
    return int(sum(a.nbytes for a in arrays.values()))


def weighted_mean(items: list[tuple[Arrays, float]]) -> Arrays:
    total = sum(w for _, w in items)
    keys = items[0][0].keys()
    return {k: sum(a[k].astype(np.float64) * (w / total) for a, w in items).astype(np.float32)
            for k in keys}


@dataclass
class Timing:
    """The simulated clock: where each user stands in the cell and how slow its device is."""

    distances_m: np.ndarray
    slowdown: np.ndarray
    cell: Cell = field(default_factory=Cell)

    def upload_s(self, user: int, n_bytes: int) -> float:
        sharing = len(self.distances_m)
        return float(self.cell.upload(n_bytes, self.distances_m[user], sharing)[0])

    def upload_j(self, user: int, n_bytes: int) -> float:
        sharing = len(self.distances_m)
        return float(self.cell.upload(n_bytes, self.distances_m[user], sharing)[1])

    def client_s(self, user: int, cpu_s: float, n_bytes: int) -> float:
        return cpu_s * float(self.slowdown[user]) + self.upload_s(user, n_bytes)


@dataclass
class Update:
    node: int
    user: int
    arrays: Arrays
    examples: float
    cpu_s: float
    train_loss: float


class AdapterFedAvg(FedAvg):
    """FedAvg of adapters with per-group state, per-user evaluation and a simulated clock."""

    method = "fedavg"

    def __init__(self, *, users: int, timing: Timing,
                 on_round: Callable[[dict], None] | None = None, audit: bool = False) -> None:
        super().__init__(fraction_train=1.0, fraction_evaluate=1.0, min_train_nodes=users,
                         min_evaluate_nodes=users, min_available_nodes=users)
        self.users = users
        self.timing = timing
        self.on_round = on_round
        self.audit = audit
        self.crossed: list[RecordDict] = []  # with audit: every reply that crossed the boundary
        self.groups: dict[int, Arrays] = {}
        self.group_of: dict[int, int] = {}  # node id -> group
        self.user_of: dict[int, int] = {}  # node id -> user (partition id), from the replies
        self.clock_s = 0.0
        self.bytes_up = self.bytes_down = self.backhaul_bytes = 0
        self.energy_j = 0.0
        self.history: list[dict] = []
        self.round_s: list[float] = []

    # --- groups ---------------------------------------------------------------------------
    def arrays_for(self, node: int) -> Arrays:
        return self.groups[self.group_of.get(node, 0)]

    def user_groups(self) -> dict[int, int]:
        """user -> the group whose adapter it is evaluated with."""
        return {self.user_of[n]: self.group_of.get(n, 0) for n in self.user_of}

    def aggregate_groups(self, server_round: int, updates: list[Update]) -> None:
        """Plain FedAvg inside each group (one group unless a subclass made more)."""
        by_group: dict[int, list[tuple[Arrays, float]]] = {}
        for u in updates:
            by_group.setdefault(self.group_of.get(u.node, 0), []).append((u.arrays, u.examples))
        for g, items in by_group.items():
            self.groups[g] = weighted_mean(items)
        self.backhaul_bytes += 2 * sum(record_bytes(u.arrays) for u in updates)  # cloud server

    # --- messages -------------------------------------------------------------------------
    def _nodes(self, grid: Grid) -> list[int]:
        deadline = time.monotonic() + 600.0
        while len(nodes := sorted(grid.get_node_ids())) < self.users:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(nodes)} of {self.users} users connected")
            time.sleep(0.2)
        return nodes

    def _messages(self, nodes: Iterable[int], config: ConfigRecord, kind: str,
                  arrays: Callable[[int], Arrays]) -> list[Message]:
        out = []
        for node in nodes:
            a = arrays(node)
            if kind == MessageType.TRAIN:
                self.bytes_down += record_bytes(a)
            content = RecordDict({"arrays": to_record(a), "config": config})
            out.append(Message(content=content, message_type=kind, dst_node_id=node))
        return out

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                        grid: Grid) -> Iterable[Message]:
        config["server-round"] = server_round
        return self._messages(self._nodes(grid), config, MessageType.TRAIN, self.arrays_for)

    def configure_evaluate(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                           grid: Grid) -> Iterable[Message]:
        config["server-round"] = server_round
        config["base"] = 0
        return self._messages(self._nodes(grid), config, MessageType.EVALUATE, self.arrays_for)

    def _updates(self, replies: Iterable[Message]) -> list[Update]:
        valid, errors = self._check_and_log_replies(replies, is_train=True)
        if errors:  # a user's training failed: stop with its reason, not a short count later
            raise RuntimeError(f"user node {errors[0].metadata.src_node_id}: "
                               f"{errors[0].error.reason.strip().splitlines()[-1][:300]}")
        out = []
        for msg in valid:
            if self.audit:
                self.crossed.append(msg.content)
            m = msg.content["metrics"]
            node, user = msg.metadata.src_node_id, int(m["user"])
            self.user_of[node] = user
            out.append(Update(node, user, from_record(msg.content["arrays"]),
                              float(m["num-examples"]), float(m["cpu_s"]), float(m["train_loss"])))
        return out

    def _charge(self, updates: list[Update]) -> list[float]:
        """Bytes, energy and each update's simulated duration (local compute + upload)."""
        durations = []
        for u in updates:
            size = record_bytes(u.arrays)
            self.bytes_up += size
            self.energy_j += self.timing.upload_j(u.user, size)
            durations.append(self.timing.client_s(u.user, u.cpu_s, size))
        return durations

    def aggregate_train(self, server_round: int, replies: Iterable[Message]
                        ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        updates = self._updates(replies)
        if len(updates) < self.users:
            raise RuntimeError(f"round {server_round}: {len(updates)} of {self.users} users replied")
        round_s = max(self._charge(updates))  # synchronous: the slowest user sets the pace
        self.clock_s += round_s
        self.round_s.append(round_s)
        self.aggregate_groups(server_round, updates)
        loss = float(np.mean([u.train_loss for u in updates]))
        return to_record(self.groups[0]), MetricRecord({"train_loss": loss})

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]
                           ) -> MetricRecord | None:
        valid, errors = self._check_and_log_replies(replies, is_train=False)
        if errors:
            raise RuntimeError(f"user node {errors[0].metadata.src_node_id}: "
                               f"{errors[0].error.reason.strip().splitlines()[-1][:300]}")
        per_user = {}
        for msg in valid:
            if self.audit:
                self.crossed.append(msg.content)
            m = msg.content["metrics"]
            self.user_of[msg.metadata.src_node_id] = int(m["user"])
            per_user[int(m["user"])] = (float(m["eval_loss"]), float(m.get("accuracy", -1.0)))
        row = {"round": server_round, "sim_s": round(self.clock_s, 4),
               "bytes_up": self.bytes_up, "bytes_down": self.bytes_down,
               "backhaul_bytes": self.backhaul_bytes, "energy_j": round(self.energy_j, 6)}
        for u in sorted(per_user):
            row[f"loss_u{u}"] = round(per_user[u][0], 5)
            if per_user[u][1] >= 0:
                row[f"acc_u{u}"] = round(per_user[u][1], 5)
        losses = [v[0] for v in per_user.values()]
        row["mean_loss"] = round(float(np.mean(losses)), 5)
        row["mean_ppl"] = round(float(np.mean(np.exp(losses))), 3)
        accs = [v[1] for v in per_user.values() if v[1] >= 0]
        if accs:
            row["mean_acc"] = round(float(np.mean(accs)), 5)
        self.history.append(row)
        if self.on_round:
            self.on_round(row)
        return MetricRecord({"mean_loss": row["mean_loss"]})

    # --- the loop ---------------------------------------------------------------------------
    def evaluate_base(self, grid: Grid, config: ConfigRecord, timeout: float) -> None:
        """Round 0: every user's held-out loss under the frozen base model, no adapter."""
        config = ConfigRecord(dict(config))
        config["server-round"] = 0
        config["base"] = 1
        msgs = self._messages(self._nodes(grid), config, MessageType.EVALUATE, self.arrays_for)
        self.aggregate_evaluate(0, grid.send_and_receive(msgs, timeout=timeout))

    def start(self, grid: Grid, initial_arrays: ArrayRecord, num_rounds: int = 3,
              timeout: float = 3600, train_config: ConfigRecord | None = None,
              evaluate_config: ConfigRecord | None = None,
              evaluate_fn: Callable[[int, ArrayRecord], MetricRecord | None] | None = None) -> Any:
        self.groups = {0: from_record(initial_arrays)}
        self.evaluate_base(grid, evaluate_config or ConfigRecord(), timeout)
        return super().start(grid, initial_arrays, num_rounds, timeout, train_config,
                             evaluate_config, evaluate_fn)


class ClusteredFedAvg(AdapterFedAvg):
    """CFL-LoRA: cluster the users by their adapter updates, then FedAvg within each cluster."""

    method = "cfl"

    def __init__(self, *, clusters: int, cluster_round: int = 1, seed: int = 0,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clusters = clusters
        self.cluster_round = cluster_round
        self.seed = seed
        self.found: dict[int, int] = {}  # user -> cluster found
        self.summed: dict[int, np.ndarray] = {}  # node -> its updates summed until clustering

    def aggregate_groups(self, server_round: int, updates: list[Update]) -> None:
        if server_round > self.cluster_round:
            return super().aggregate_groups(server_round, updates)
        start = self.groups[0]  # every user started this round from the same global adapter
        for u in updates:  # sum each user's updates over the rounds before clustering
            step = np.concatenate([(u.arrays[k] - start[k]).ravel() for k in sorted(start)])
            self.summed[u.node] = self.summed.get(u.node, 0.0) + step.astype(np.float64)
        if server_round < self.cluster_round:
            return super().aggregate_groups(server_round, updates)
        from sklearn.cluster import KMeans

        x = np.stack([self.summed[u.node] for u in updates])
        # Centre first: every user's update shares a "this kind of text" direction that
        # dwarfs what tells the domains apart; then cosine geometry.
        x -= x.mean(axis=0, keepdims=True)
        x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-12
        labels = KMeans(self.clusters, n_init=20, random_state=self.seed).fit_predict(x)
        self.group_of = {u.node: int(c) for u, c in zip(updates, labels, strict=True)}
        self.found = {u.user: int(c) for u, c in zip(updates, labels, strict=True)}
        self.groups = {}
        super().aggregate_groups(server_round, updates)


class HierarchicalFedAvg(AdapterFedAvg):
    """Users -> edge aggregators every round -> cloud every `cloud_period` rounds."""

    method = "hier"

    def __init__(self, *, edges: int, cloud_period: int = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.edges = edges
        self.cloud_period = cloud_period

    def edge_of(self, user: int) -> int:
        return user % self.edges

    def aggregate_groups(self, server_round: int, updates: list[Update]) -> None:
        by_edge: dict[int, list[tuple[Arrays, float]]] = {}
        for u in updates:
            self.group_of[u.node] = self.edge_of(u.user)
            by_edge.setdefault(self.edge_of(u.user), []).append((u.arrays, u.examples))
        for e, items in by_edge.items():  # at the edge: no backhaul
            self.groups[e] = weighted_mean(items)
        if server_round % self.cloud_period == 0:  # each edge up once, the model down once
            weights = {e: sum(w for _, w in items) for e, items in by_edge.items()}
            merged = weighted_mean([(self.groups[e], weights[e]) for e in by_edge])
            self.backhaul_bytes += 2 * len(by_edge) * record_bytes(merged)
            self.groups = {e: merged for e in by_edge}
        self.groups.setdefault(0, next(iter(self.groups.values())))


class AsyncFedAvg(AdapterFedAvg):
    """Asynchronous: apply each update as it arrives on the simulated clock, staleness-weighted.

    global <- (1 - a) global + a local, a = mixing / (1 + staleness) ** decay, where staleness
    is how many updates were applied since the sender's copy. At most `budget` x rounds x users
    local updates (1: as many as the synchronous run); an evaluation after every `users`
    updates; with `target_loss`, it stops at the first evaluation at or below it."""

    method = "async"

    def __init__(self, *, mixing: float = 0.6, decay: float = 0.5, budget: float = 1.0,
                 target_loss: float | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mixing = mixing
        self.decay = decay
        self.budget = budget  # at most budget x rounds x users updates
        self.target_loss = target_loss  # stop at the first evaluation at or below it
        self.reached = False

    def start(self, grid: Grid, initial_arrays: ArrayRecord, num_rounds: int = 3,
              timeout: float = 3600, train_config: ConfigRecord | None = None,
              evaluate_config: ConfigRecord | None = None,
              evaluate_fn: Callable[[int, ArrayRecord], MetricRecord | None] | None = None) -> Any:
        self.groups = {0: from_record(initial_arrays)}
        train_config = train_config or ConfigRecord()
        evaluate_config = evaluate_config or ConfigRecord()
        self.evaluate_base(grid, evaluate_config, timeout)
        nodes = self._nodes(grid)
        version, applied = 0, 0
        total = round(self.budget * num_rounds) * len(nodes)
        events: list[tuple[float, int, int, Update]] = []  # (arrival, tie, version sent, update)

        tie = itertools.count()

        def dispatch(batch: list[int], now: float) -> None:
            train_config["server-round"] = version
            msgs = self._messages(batch, train_config, MessageType.TRAIN, self.arrays_for)
            updates = self._updates(grid.send_and_receive(msgs, timeout=timeout))
            for u, d in zip(updates, self._charge(updates), strict=True):
                heapq.heappush(events, (now + d, next(tie), version, u))

        dispatch(nodes, 0.0)
        while applied < total:
            arrival, _, sent, u = heapq.heappop(events)
            self.clock_s = arrival
            a = self.mixing / (1.0 + (version - sent)) ** self.decay
            g = self.groups[0]
            self.groups[0] = {k: ((1 - a) * g[k] + a * u.arrays[k]).astype(np.float32) for k in g}
            self.backhaul_bytes += 2 * record_bytes(u.arrays)
            version += 1
            applied += 1
            if applied % len(nodes) == 0:
                cfg = ConfigRecord(dict(evaluate_config))
                msgs = self.configure_evaluate(applied // len(nodes), to_record(self.groups[0]),
                                               cfg, grid)
                self.aggregate_evaluate(applied // len(nodes),
                                        grid.send_and_receive(msgs, timeout=timeout))
                if self.target_loss is not None and \
                        self.history[-1]["mean_loss"] <= self.target_loss:
                    self.reached = True
                    break
            if applied + len(events) < total:  # the sender starts again from the newest adapter
                dispatch([u.node], arrival)
        return None


STRATEGIES: dict[str, type[AdapterFedAvg]] = {
    "fedavg": AdapterFedAvg, "cfl": ClusteredFedAvg, "hier": HierarchicalFedAvg,
    "async": AsyncFedAvg,
}  # fmt: skip
