"""Photo-pool metrics against values worked out by hand: top-1, BLEU-4, CIDEr, official VQA accuracy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from edgeai.errors import UserInputError
from edgeai.tools.split_inference.base import Example
from edgeai.tools.split_inference.metrics import (
    bleu4,
    caption_tokens,
    cider,
    normalize_answer,
    task_score,
    top1,
    vqa_accuracy,
    vqa_score,
)

IMG = np.zeros((2, 2, 3), np.uint8)


def ex(*targets: str, question: str | None = None) -> Example:
    return Example(IMG, question, list(targets))


def test_top1_counts_exact_label_matches():
    examples = [ex("circle"), ex("star"), ex("ring"), ex("heart")]
    assert top1(["circle", "star", "circle", "heart"], examples) == 75.0
    assert task_score("classify", ["circle"] * 4, examples) == 25.0


def test_bleu4_perfect_caption_is_100_and_a_one_word_slip_is_hand_computed():
    refs = ex("a red circle on grass", "two red circles")
    assert bleu4(["A red circle, on grass."], [refs]) == pytest.approx(100.0, abs=1e-4)
    # Prepare: 'a red circle on sand' matches 4/5 unigrams, 3/4 bigrams, 2/3 trigrams,
    # 1/2 four-grams; the closest reference has the same length, so no brevity penalty.
    expected = 100 * (4 / 5 * 3 / 4 * 2 / 3 * 1 / 2) ** 0.25
    # Execute / Assert
    assert bleu4(["a red circle on sand"], [refs]) == pytest.approx(expected, abs=1e-4)


def test_bleu4_brevity_penalty_for_a_short_caption():
    # 'a red circle on' : all n-grams match (4/4, 3/3, 2/2, 1/1), length 4 vs closest ref 5.
    refs = ex("a red circle on grass")
    assert bleu4(["a red circle on"], [refs]) == pytest.approx(100 * math.exp(1 - 5 / 4), abs=1e-3)


def test_cider_rewards_the_right_caption_over_a_wrong_one():
    examples = [ex("a red circle on grass", "a photo of a red circle on grass"),
                ex("two blue stars on water", "a photo of two blue stars on water"),
                ex("a white ring on snow", "a photo of a white ring on snow")]
    perfect = cider(["a red circle on grass", "two blue stars on water", "a white ring on snow"],
                    examples)
    swapped = cider(["two blue stars on water", "a red circle on grass", "a white ring on snow"],
                    examples)
    assert perfect > 200 and swapped < perfect / 2
    assert task_score("caption", ["a red circle on grass"] * 3, examples) < 100


def test_caption_tokens_lowercase_without_punctuation():
    assert caption_tokens("Two red circles, and a STAR.") == "two red circles and a star"


def test_vqa_score_official_leave_one_out_average():
    # 3 matching annotators: leaving out a match (3 of 10 subsets) gives 2/3, else 1.
    assert vqa_score("2", ["2", "2", "2"] + ["3"] * 7) == pytest.approx((3 * 2 / 3 + 7) / 10)
    assert vqa_score("2", ["2"] * 4 + ["3"] * 6) == 1.0
    assert vqa_score("2", ["2"] + ["3"] * 9) == pytest.approx(0.9 * (1 / 3))
    # Normalisation: number words become digits, case and articles do not matter.
    assert vqa_score("Two", ["2"] * 10) == 1.0
    assert normalize_answer("A Circle.") == "circle"
    # grey/gray are different strings to the official metric; annotators who wrote either count.
    answers = ["gray"] * 8 + ["grey"] * 2
    assert vqa_score("grey", answers) == pytest.approx((2 * 1 / 3 + 8 * 2 / 3) / 10)


def test_vqa_accuracy_is_the_mean_in_percent():
    examples = [ex(*["yes"] * 10, question="is there a red circle?"),
                ex(*["2"] * 10, question="how many stars are there?")]
    assert vqa_accuracy(["yes", "3"], examples) == 50.0
    assert task_score("vqa", ["yes", "2"], examples) == 100.0


def test_mismatched_or_empty_inputs_raise():
    with pytest.raises(UserInputError):
        top1(["a"], [ex("a"), ex("b")])
    with pytest.raises(UserInputError):
        bleu4([], [])
    with pytest.raises(UserInputError):
        task_score("detect", ["a"], [ex("a")])  # type: ignore[arg-type]
