"""The FL-tuner agent (Sec. III-B, Fig. 4 of the paper): read a trial's learning curve, say what
went wrong, narrow the space for the next proposal, and decide when to stop.

It reads the validation curve (the test split is never looked at while tuning) and diagnoses:
- diverged: a loss is not finite or validation loss ends 50 % above the initial model's: the
  rate was far too high;
- stalled: accuracy ends near chance while the loss did not blow up: too little progress per
  round, so more local epochs, another optimizer or a higher rate;
- oscillating: validation accuracy fell by more than 2 points between rounds at least twice,
  the paper's trial 2: lower the rate and add a global decay (its trial 3's fix);
- still rising: the last third of the rounds gained more than 2 points: the run was cut short,
  so a higher rate, momentum/Adam or more local epochs may help;
- plateau: the second half gained less than 1 point: decay the rate to settle;
- overfitting: validation loss rose 10 % above its minimum, or ends 50 % above the clients'
  training loss: require augmentation.
From the best trial so far (and its curve) it builds the next `SearchSpace` for the codegen
agent; the architecture stays the first trial's, as in the paper. The rules follow the usual
reading of learning curves: an underfitting run (stalled or still rising when the rounds run
out) gets more local work per round (local epochs: FedAvg's lever against a binding round
budget) and no augmentation (regularisation does not help a model that underfits); an
overfitting one gets augmentation; an oscillating or flat one a lower rate and a decay.
(Version 1 of these rules, measured in docs/BENCHMARKS.md, required augmentation whenever the
best trial had none, and kept one local epoch for slow runs: it lost to the baseline on the
generated photos.) It stops when the budget of trials is
spent, the target accuracy is reached, or `patience` trials in a row brought no gain.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from edgeai.tools.federated.template import Manifest, SearchSpace
from edgeai.tools.federated.trial import TrialRecord
from pydantic import BaseModel, Field

ADAM_RATES = (3e-4, 3e-3)
"""Adam's rate window when the tuner switches to it: half a decade around its usual 1e-3
(Kingma & Ba's default, torch's too)."""


class Diagnosis(BaseModel):
    """What a learning curve says."""

    diverged: bool = False
    stalled: bool = False
    oscillating: bool = False
    slow_start: bool = False
    still_rising: bool = False
    plateau: bool = False
    overfitting: bool = False
    notes: list[str] = Field(default_factory=list)


def diagnose(curve: list[dict[str, Any]], num_classes: int) -> Diagnosis:
    """Read a validation curve (round 0 = the initial model)."""
    rounds = [r for r in curve if r.get("round", 0) > 0]
    d = Diagnosis()
    if not rounds:
        d.notes.append("no round finished")
        return d
    acc = [float(r["val_accuracy"]) for r in rounds]
    loss = [float(r["val_loss"]) for r in rounds]
    chance = 1.0 / max(num_classes, 1)
    start = [float(r["val_loss"]) for r in curve if r.get("round", 0) == 0]
    if not all(math.isfinite(v) for v in loss) or (start and loss[-1] > 1.5 * start[0]):
        d.diverged = True
        d.notes.append("the loss blew up: the rate is far too high")
        return d
    if acc[-1] <= chance + 0.05:
        d.stalled = True
        d.notes.append(f"ends near chance ({acc[-1]:.2f}) without diverging: too little "
                       f"progress per round")
        return d
    early = acc[:max(1, len(acc) // 3)]
    if all(a <= chance + 0.05 for a in early):
        d.slow_start = True
        d.notes.append(f"sat near chance for the first {len(early)} rounds: a flat start")
    drops = sum(1 for a, b in itertools.pairwise(acc) if b < a - 0.02)
    if drops >= 2:
        d.oscillating = True
        d.notes.append(f"accuracy fell by > 2 points {drops} times: the rate is too large")
    n = len(acc)
    third = acc[max(0, n - 1 - max(1, n // 3))]
    if acc[-1] - third > 0.02:
        d.still_rising = True
        d.notes.append(f"still rising at the end (+{100 * (acc[-1] - third):.1f} points "
                       f"in the last third)")
    half = acc[max(0, n // 2 - 1)]
    if not d.still_rising and acc[-1] - half < 0.01:
        d.plateau = True
        d.notes.append("flat over the second half")
    best_loss = min(loss)
    train = rounds[-1].get("train_loss")
    if loss[-1] > 1.1 * best_loss and loss.index(best_loss) < n - 1:
        d.overfitting = True
        d.notes.append(f"validation loss rose from {best_loss:.3f} to {loss[-1]:.3f}: overfitting")
    elif train is not None and loss[-1] > 1.5 * float(train) and loss[-1] - float(train) > 0.2:
        d.overfitting = True
        d.notes.append(f"validation loss {loss[-1]:.3f} is far above the training loss "
                       f"{float(train):.3f}: overfitting")
    return d


def best_trial(trials: list[TrialRecord]) -> TrialRecord | None:
    ok = [t for t in trials if t.status == "ok" and t.final() is not None]
    return max(ok, key=lambda t: t.final()) if ok else None


def next_space(manifest: Manifest, trials: list[TrialRecord], num_classes: int,
               epochs_cap: int | None = None) -> SearchSpace:
    """Where the codegen agent should search next, from the curves so far; `epochs_cap` (from
    the compute budget) bounds the local epochs whatever the curves ask for."""
    space = _next_space(manifest, trials, num_classes)
    if epochs_cap is not None:
        c = manifest.configuration("LOCAL_EPOCHS")
        low, high = space.windows.get("LOCAL_EPOCHS", (c.low, c.high))
        cap = max(1, epochs_cap)
        if high > cap:
            space.notes.append(f"the compute budget allows at most {cap} local epoch(s)")
        space.windows["LOCAL_EPOCHS"] = (min(low, cap), min(high, cap))
    return space


def _next_space(manifest: Manifest, trials: list[TrialRecord], num_classes: int) -> SearchSpace:
    space = SearchSpace()
    first = trials[0] if trials else None
    if first is not None:  # the paper keeps the architecture after the first trial
        space.fixed["ARCH"] = first.config["ARCH"]
        space.fixed["WARM_START"] = first.config.get("WARM_START", False)
    best = best_trial(trials)
    last = trials[-1] if trials else None
    if best is None:
        if last is not None:
            lr = float(last.config["LEARNING_RATE"])
            space.windows["LEARNING_RATE"] = (lr / 30, lr / 3)
            space.notes.append("every trial failed: a much lower rate")
        return space
    d = diagnose(best.curve, num_classes)  # improve on the best trial, from its own curve
    lr = float(best.config["LEARNING_RATE"])
    rounds = max(1, best.rounds)
    decay_window = (0.1, 0.5)
    every_window = (max(1, rounds // 4), max(1, rounds // 2))
    lr_c = manifest.configuration("LEARNING_RATE")
    epochs = int(best.config["LOCAL_EPOCHS"])
    more_epochs = (min(epochs + 1, int(manifest.configuration("LOCAL_EPOCHS").high)),
                   min(epochs + 2, int(manifest.configuration("LOCAL_EPOCHS").high)))
    underfit = (d.stalled or d.still_rising) and not d.oscillating
    if d.diverged:
        space.windows["LEARNING_RATE"] = (lr / 30, lr / 3)
    elif d.oscillating:
        space.windows["LEARNING_RATE"] = (lr / 10, lr / 2)
        space.windows["GLOBAL_DECAY"] = decay_window
        space.windows["GLOBAL_DECAY_EVERY"] = every_window
    elif underfit:
        # the round budget binds: more local work per round (FedAvg's lever, McMahan et al.)
        # and a rate at least as high; no regularisation while the model underfits
        space.windows["LOCAL_EPOCHS"] = more_epochs
        if (d.stalled or d.slow_start) and best.config["OPTIMIZER"] != "adam":
            # a run that sat at chance: Adam's per-parameter steps leave flat starts faster than
            # SGD's one global rate; its rate lives on its own scale (around its usual 1e-3)
            space.fixed["OPTIMIZER"] = "adam"
            space.windows["LEARNING_RATE"] = ADAM_RATES
        else:
            # one optimizer per window: a rate means something else to SGD and to Adam
            space.fixed["OPTIMIZER"] = ("momentum" if best.config["OPTIMIZER"] == "sgd"
                                        else best.config["OPTIMIZER"])
            low = lr / 2 if d.stalled else lr
            space.windows["LEARNING_RATE"] = (low, min(lr_c.high, 3 * lr))
        space.windows["GLOBAL_DECAY"] = (0.5, 1.0)  # at most a mild decay, late
        space.windows["GLOBAL_DECAY_EVERY"] = (max(1, rounds // 2), rounds)
        space.windows["LOCAL_DECAY"] = (0.9, 1.0)
    else:
        space.windows["LEARNING_RATE"] = (lr / 2, 2 * lr)
        if d.plateau:
            space.windows["GLOBAL_DECAY"] = decay_window
            space.windows["GLOBAL_DECAY_EVERY"] = every_window
    augmentations = manifest.configuration("AUGMENTATION").choices
    if d.overfitting:
        space.choices["AUGMENTATION"] = [a for a in augmentations if a != "none"]
    elif underfit and not d.diverged:
        space.choices["AUGMENTATION"] = ["none"]
    space.notes = d.notes or ["the best curve looks healthy: search near its settings"]
    return space


def epochs_cap(trials: list[TrialRecord], *, max_trials: int, rounds: int, clients: int,
               budget: int | None) -> int | None:
    """The most local epochs the next trial may use so that it, and one epoch for every trial
    after it, stay within `budget` client-epochs (None: no budget). Below 1: the budget is spent."""
    if budget is None:
        return None
    per_epoch = max(1, rounds * clients)
    left = budget - sum(t.client_epochs for t in trials)
    later = max(0, max_trials - len(trials) - 1)
    return (left - later * per_epoch) // per_epoch


def stop_reason(trials: list[TrialRecord], *, max_trials: int, target: float | None = None,
                patience: int = 2, min_gain: float = 0.005,
                epochs_left: int | None = None) -> str | None:
    """Why to stop now, or None to go on (`epochs_left`: `epochs_cap` for the next trial)."""
    if len(trials) >= max_trials:
        return f"the budget of {max_trials} trials is spent"
    if epochs_left is not None and epochs_left < 1:
        return "the compute budget (client-epochs) is spent"
    best = best_trial(trials)
    if target is not None and best is not None and best.final() >= target:
        return f"the target accuracy {target:.2f} is reached"
    if len(trials) > patience:
        before = best_trial(trials[:-patience])
        if before is not None and best is not None and best.final() < before.final() + min_gain:
            return f"no gain in the last {patience} trials"
    return None


# --- federated fine-tuning of the language model (issue 34) -----------------------------------
# Which strategy a request to adapt the language model calls for, read from what it says about
# the people and their devices; LoRA unless something points elsewhere. Checked in this order.
_FEDTUNE_CUES: tuple[tuple[str, str, str], ...] = (
    ("cfl-lora", (r"\b(groups?|kinds? of|different (people|users|families|teams|topics)|each "
                 r"(family|team|group|department)|famil(y|ies) and (friends|colleagues|work)|"
                 r"clusters?|departments|communities)\b"),
     ("the users fall into groups that write differently, so clustered FL gives each group its "
     "own adapter")),
    ("async-lora", (r"\b(slow|old|older|battery|stragglers?|some (phones|devices) (are|lag)|"
                   r"offline often|intermittent)\b"),
     ("some devices are slow, so updates are applied as they arrive instead of waiting for the "
     "slowest")),
    ("hier-lora", (r"\b(edge servers?|sites|branches|hierarch\w*|backhaul|several (offices|"
                  r"buildings|homes))\b"),
     ("users sit behind several edge servers, so each aggregates locally and the cloud only "
     "merges their adapters")),
    ("prompt", (r"\b(bandwidth|metered|few bytes|small updates|tiny updates|slow (network|link|"
               r"connection)|data plan)\b"),
     "the link is the bottleneck, so prompt tuning sends the smallest adapter"),
)


class FedtuneChoice(BaseModel):
    method: str
    reason: str


def choose_fedtune(request: str) -> FedtuneChoice:
    """The federated fine-tuning method for a request to adapt the language model."""
    import re

    for method, pattern, reason in _FEDTUNE_CUES:
        if re.search(pattern, request, re.IGNORECASE):
            return FedtuneChoice(method=method, reason=reason)
    return FedtuneChoice(method="lora", reason="LoRA on the attention projections, averaged "
                         "by FedAvg: the default when nothing calls for another strategy")


def review_fedtune(rows: list[dict[str, Any]]) -> list[str]:
    """What the curve of a fine-tuning run says (rows: round 0 = the base model)."""
    base = {k: v for k, v in rows[0].items() if k.startswith("loss_u")}
    last = rows[-1]
    worse = [k[6:] for k in base if last.get(k, math.inf) >= base[k]]
    notes = []
    if worse:
        notes.append(f"user(s) {', '.join(worse)} did not improve on the base model: their text "
                     "differs from the others', so a clustered run (cfl-lora) would give them an "
                     "adapter of their own")
    else:
        notes.append(f"every user's held-out loss fell ({rows[0]['mean_loss']:.3f} -> "
                     f"{last['mean_loss']:.3f} on average)")
    if len(rows) >= 3:
        gain_last = rows[-2]["mean_loss"] - last["mean_loss"]
        gain_all = rows[0]["mean_loss"] - last["mean_loss"]
        if gain_all > 0 and gain_last > 0.25 * gain_all / (len(rows) - 1):
            notes.append("the loss was still falling in the last round: more rounds would help")
    return notes
