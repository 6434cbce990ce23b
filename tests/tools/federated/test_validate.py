"""The validator refuses generated code for each reason the issue names, and says why."""

from __future__ import annotations

import pytest
from edgeai.tools.federated.template import join_regions, load_manifest, split_regions
from edgeai.tools.federated.validate import CodeRejected, validate


@pytest.fixture(scope="module")
def manifest():
    return load_manifest()


@pytest.fixture(scope="module")
def good(manifest) -> str:
    return manifest.render(manifest.defaults())


def _rejected(text: str, manifest) -> list[str]:
    with pytest.raises(CodeRejected) as info:
        validate(text, manifest)
    return info.value.reasons


def test_the_templates_own_rendering_passes_and_reads_back_its_values(manifest, good):
    values = validate(good, manifest)
    assert values == manifest.defaults()
    tuned = {**manifest.defaults(), "ARCH": "mobilenet", "LEARNING_RATE": 0.0123,
             "AUGMENTATION": "flip+crop", "BATCH_SIZE": 64}
    assert validate(manifest.render(tuned), manifest) == tuned


def test_a_change_outside_the_regions_is_rejected_with_the_line(manifest, good):
    text = good.replace("return LEARNING_RATE * GLOBAL_DECAY", "return 10 * LEARNING_RATE * GLOBAL_DECAY")
    reasons = _rejected(text, manifest)
    assert any("outside the marked regions" in r and "10 * LEARNING_RATE" in r for r in reasons)


def test_moved_or_renamed_region_markers_are_rejected(manifest, good):
    reasons = _rejected(good.replace("# edgeai:end optimizer", "# edgeai:end optimiser"), manifest)
    assert any("region markers" in r for r in reasons)


def test_a_syntax_error_is_rejected_with_its_line(manifest, good):
    reasons = _rejected(good.replace("BATCH_SIZE = 32", "BATCH_SIZE = (32"), manifest)
    assert any(r.startswith("syntax error at line") for r in reasons)


@pytest.mark.parametrize("code, name", [
    ("import os\nos.system('ls')", "os"),
    ("import subprocess", "subprocess"),
    ("import socket", "socket"),
    ("import requests", "requests"),
    ("from urllib import request", "urllib"),
])
def test_forbidden_imports_inside_a_region_are_rejected(manifest, good, code, name):
    outside, bodies = split_regions(good)
    bodies["augmentation"] = code + "\n" + bodies["augmentation"]
    reasons = _rejected(join_regions(outside, bodies), manifest)
    assert any(f"'{name}" in r and "not allowed" in r for r in reasons)


@pytest.mark.parametrize("code", ["x = __import__('os')", "x = eval('1')", "x = open('/etc/passwd')",
                                  "x = ().__class__.__subclasses__()", "import torch\nx = torch.hub"])
def test_escape_hatches_are_rejected(manifest, good, code):
    outside, bodies = split_regions(good)
    bodies["model"] = bodies["model"] + code + "\n"
    assert _rejected(join_regions(outside, bodies), manifest)


@pytest.mark.parametrize("old, new, why", [
    ("LEARNING_RATE = 0.05", "LEARNING_RATE = 5.0", "outside [0.0001, 0.5]"),
    ("BATCH_SIZE = 32", "BATCH_SIZE = 33", "not one of"),
    ('ARCH = "resnet"', 'ARCH = "vit"', "not one of"),
    ("LOCAL_EPOCHS = 1", "LOCAL_EPOCHS = 1.5", "must be an integer"),
    ("LEARNING_RATE = 0.05", "LEARNING_RATE = 0.05 * 2", "must be a literal"),
])
def test_out_of_range_or_computed_values_are_rejected(manifest, good, old, new, why):
    reasons = _rejected(good.replace(old, new), manifest)
    assert any(why in r for r in reasons), reasons


def test_a_region_may_rewrite_its_code_but_must_keep_what_the_template_calls(manifest, good):
    outside, bodies = split_regions(good)
    bodies["augmentation"] = (
        'AUGMENTATION = "flip"\n\n\ndef augment(images, generator):\n'
        '    """Flip, then a small brightness jitter."""\n'
        '    images = appkit.augment(images, "flip", generator)\n'
        '    return images * 1.05\n')
    assert validate(join_regions(outside, bodies), manifest)["AUGMENTATION"] == "flip"
    bodies["augmentation"] = 'AUGMENTATION = "flip"\n'
    reasons = _rejected(join_regions(outside, bodies), manifest)
    assert any("no longer defines augment()" in r for r in reasons)
