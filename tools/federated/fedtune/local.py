"""What a user's device computes: local adapter training and held-out loss on its own texts.

Losses are computed from the logits here (not by the model's `labels=`), the same way for every
adapter: prompt tuning prepends its virtual tokens to the sequence, so only the last T logits
belong to the T real tokens. Generation: mean next-token cross-entropy over the real tokens.
Classification: cross-entropy of the label word's first token after "<text>\\nTopic:", and
accuracy = the label word with the highest logit among the eight.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

SUFFIX = "\nTopic:"


def label_ids(tok: Any, words: list[str]) -> list[int]:
    ids = [tok(" " + w, add_special_tokens=False)["input_ids"][0] for w in words]
    if len(set(ids)) != len(ids):
        raise ValueError(f"label words share a first token: {words}")
    return ids


def _pad(seqs: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    return ids, mask


def encode(tok: Any, rows: list[dict], task: str, max_tokens: int) -> tuple[torch.Tensor, ...]:
    """(input_ids, attention_mask) right-padded; classification adds the prompt suffix."""
    if task == "generation":
        seqs = [tok(r["text"], add_special_tokens=False)["input_ids"][:max_tokens] for r in rows]
    else:
        tail = tok(SUFFIX, add_special_tokens=False)["input_ids"]
        seqs = [tok(r["text"], add_special_tokens=False)["input_ids"][: max_tokens - len(tail)]
                + tail for r in rows]
    seqs = [s if s else [tok.eos_token_id] for s in seqs]
    return _pad(seqs, tok.pad_token_id)


def batch_loss(model: Any, tok: Any, rows: list[dict], task: str, max_tokens: int,
               labels: dict[str, int] | None = None, candidates: list[int] | None = None
               ) -> tuple[torch.Tensor, int, int]:
    """(summed loss, count, correct): tokens for generation, examples for classification."""
    ids, mask = encode(tok, rows, task, max_tokens)
    logits = model(input_ids=ids, attention_mask=mask).logits[:, -ids.shape[1] :, :]
    if task == "generation":
        target = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), target.reshape(-1),
                               ignore_index=-100, reduction="sum")
        return loss, int((target != -100).sum()), 0
    assert labels is not None and candidates is not None
    last = mask.sum(1) - 1
    final = logits[torch.arange(len(rows)), last]
    target = torch.tensor([labels[r["category"]] for r in rows])
    loss = F.cross_entropy(final, target, reduction="sum")
    cand = torch.tensor(candidates)
    pred = cand[final[:, cand].argmax(1)]
    return loss, len(rows), int((pred == target).sum())


def train_local(model: Any, tok: Any, rows: list[dict], task: str, *, steps: int, batch: int,
                lr: float, max_tokens: int, seed: int, labels: dict[str, int] | None = None,
                candidates: list[int] | None = None) -> tuple[float, float]:
    """`steps` AdamW steps on random batches of the user's texts: (mean loss, CPU seconds)."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    rng = np.random.default_rng(seed)
    model.train()
    losses, cpu0 = [], time.process_time()
    for _ in range(steps):
        pick = rng.choice(len(rows), size=min(batch, len(rows)), replace=False)
        loss, n, _ = batch_loss(model, tok, [rows[i] for i in pick], task, max_tokens,
                                labels, candidates)
        loss = loss / max(n, 1)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(float(loss))
    model.eval()
    return float(np.mean(losses)), time.process_time() - cpu0


@torch.no_grad()
def evaluate_local(model: Any, tok: Any, rows: list[dict], task: str, max_tokens: int,
                   labels: dict[str, int] | None = None, candidates: list[int] | None = None,
                   batch: int = 16) -> tuple[float, float]:
    """(mean held-out loss, accuracy or -1 for generation)."""
    model.eval()
    total, count, correct = 0.0, 0, 0
    for i in range(0, len(rows), batch):
        loss, n, c = batch_loss(model, tok, rows[i : i + batch], task, max_tokens, labels,
                                candidates)
        total, count, correct = total + float(loss), count + n, correct + c
    acc = correct / len(rows) if task == "classification" else -1.0
    return total / max(count, 1), acc
