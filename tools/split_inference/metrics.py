"""Task quality of the photo pool: top-1 accuracy, BLEU-4 and CIDEr (COCO scorers), VQA accuracy.

Scores are reported x100 as the papers do (e.g. BLEU-4 39.66, CIDEr 133.25). Captions are
lower-cased and split into words with punctuation dropped - what the COCO evaluation's
PTBTokenizer does, without its Java dependency - then scored by pycocoevalcap's own Bleu(4) and
Cider. VQA accuracy is the official VQA metric: an answer is compared against each 9-annotator
subset of the 10 (min(#matches / 3, 1)) and the 10 subset scores are averaged, after the official
answer normalisation (lower case, punctuation and articles dropped, number words -> digits).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from edgeai.errors import UserInputError
from edgeai.tools.split_inference.base import Example, Task
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider

_WORD = re.compile(r"[a-z0-9]+")
_NUMBERS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
            "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_ARTICLES = {"a", "an", "the"}


def _check(preds: Sequence[str], examples: Sequence[Example]) -> None:
    if len(preds) != len(examples):
        raise UserInputError(f"{len(preds)} predictions for {len(examples)} examples")
    if not examples:
        raise UserInputError("no examples to score")


def caption_tokens(text: str) -> str:
    """Lower-case words joined by single spaces, punctuation dropped (PTB-tokenizer-like)."""
    return " ".join(_WORD.findall(text.lower()))


def top1(preds: Sequence[str], examples: Sequence[Example]) -> float:
    """Percentage of predictions equal to the label (targets[0])."""
    _check(preds, examples)
    return 100.0 * sum(p == e.targets[0] for p, e in zip(preds, examples)) / len(examples)


def _coco_inputs(preds: Sequence[str], examples: Sequence[Example]
                 ) -> tuple[dict[int, list[str]], dict[int, list[str]]]:
    _check(preds, examples)
    gts = {i: [caption_tokens(t) for t in e.targets] for i, e in enumerate(examples)}
    res = {i: [caption_tokens(p)] for i, p in enumerate(preds)}
    return gts, res


def bleu4(preds: Sequence[str], examples: Sequence[Example]) -> float:
    """Corpus BLEU-4 x100 against each image's reference captions (COCO's 'closest' length)."""
    gts, res = _coco_inputs(preds, examples)
    scores, _ = Bleu(4).compute_score(gts, res, verbose=0)
    return 100.0 * float(scores[3])


def cider(preds: Sequence[str], examples: Sequence[Example]) -> float:
    """CIDEr-D-style COCO CIDEr x100 (document frequencies from these examples' references)."""
    gts, res = _coco_inputs(preds, examples)
    score, _ = Cider().compute_score(gts, res)
    return 100.0 * float(score)


def normalize_answer(answer: str) -> str:
    """The VQA evaluation's answer normalisation: lower case, no punctuation or articles,
    number words as digits ("Two." -> "2", "a cat" -> "cat")."""
    words = [_NUMBERS.get(w, w) for w in _WORD.findall(answer.lower())]
    return " ".join(w for w in words if w not in _ARTICLES)


def vqa_score(pred: str, answers: Sequence[str]) -> float:
    """Official VQA accuracy of one prediction against its (10) annotator answers, in 0..1:
    the mean over leave-one-annotator-out subsets of min(#matching annotators / 3, 1)."""
    if not answers:
        raise UserInputError("a VQA example needs annotator answers")
    p = normalize_answer(pred)
    gt = [normalize_answer(a) for a in answers]
    total = 0.0
    for i in range(len(gt)):
        others = gt[:i] + gt[i + 1:]
        total += min(sum(a == p for a in others) / 3.0, 1.0)
    return total / len(gt)


def vqa_accuracy(preds: Sequence[str], examples: Sequence[Example]) -> float:
    """Mean official VQA accuracy x100."""
    _check(preds, examples)
    return 100.0 * sum(vqa_score(p, e.targets) for p, e in zip(preds, examples)) / len(examples)


def task_score(task: Task, preds: Sequence[str], examples: Sequence[Example]) -> float:
    """The headline number of a task: top-1 % (classify), BLEU-4 (caption), VQA accuracy %."""
    if task == "classify":
        return top1(preds, examples)
    if task == "caption":
        return bleu4(preds, examples)
    if task == "vqa":
        return vqa_accuracy(preds, examples)
    raise UserInputError(f"unknown task '{task}' (choose from classify, caption, vqa)")


def task_metrics(task: Task, preds: Sequence[str], examples: Sequence[Example]
                 ) -> dict[str, float]:
    """Every metric of a task by name (captions: bleu4 and cider)."""
    if task == "caption":
        return {"bleu4": bleu4(preds, examples), "cider": cider(preds, examples)}
    name = "top1" if task == "classify" else "vqa_accuracy"
    return {name: task_score(task, preds, examples)}
