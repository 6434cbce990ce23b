"""Layer profiles, the manual-scaled cost model, the split-point choice and their CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from edgeai.cli import main
from edgeai.errors import ManualError, UserInputError
from edgeai.knowledge.manuals import parse_manual
from edgeai.knowledge.pools import SAMPLES_DIR
from edgeai.tools.split_inference.imagecodecs import encode_png
from edgeai.tools.split_inference.partition import (
    CLIENT_ONLY,
    choose_split,
    photo_hosts_from_manuals,
)
from edgeai.tools.split_inference.profile import (
    CostModel,
    HeadProfile,
    ModelProfile,
    StageProfile,
    make_compute_seconds,
    profile_model,
)

torch.set_num_threads(1)
MANUALS = SAMPLES_DIR / "photo" / "manuals"


def _photos(n: int) -> np.ndarray:
    from edgeai.tools.split_inference.world import make_examples

    return np.stack([e.image for e in make_examples("classify", n, seed=0)])


@pytest.fixture(scope="module")
def tiny_vit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import ViTConfig, ViTForImageClassification

    folder = tmp_path_factory.mktemp("vit")
    torch.manual_seed(0)
    config = ViTConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        image_size=32, patch_size=8, num_labels=3,
    )  # fmt: skip
    ViTForImageClassification(config).save_pretrained(folder)
    return folder


def hand_profile(stage_s: list[float], head_s: float, acts: list[int], png: int) -> ModelProfile:
    """A profile written by hand: per-stage seconds and fp16 activation bytes, no preprocessing."""
    stages = [
        StageProfile(
            index=i, seconds=s, output_shape=[a // 2], bytes_fp32=2 * a, bytes_fp16=a, params=1
        )
        for i, (s, a) in enumerate(zip(stage_s, acts, strict=True))
    ]
    return ModelProfile(
        model_id="m", task="classify", n_stages=len(stages), images=1, repeats=1, threads=1,
        here_hz=1e9, input_png_bytes=png, input_shape=[3, 8, 8], preprocess_seconds=0.0,
        stages=stages, head=HeadProfile(seconds=head_s, params=1), total_params=len(stages) + 1,
    )  # fmt: skip


# 4 stages + head, each 1/5 of the work; k=2 sends a small activation (2 KB), the photo is 100 KB.
PROFILE = hand_profile([1.0, 1.0, 1.0, 1.0], 1.0, [50_000, 2_000, 20_000, 20_000], png=100_000)
# The whole model: 1 s on the device, 10 ms on the edge.
COST = CostModel(profile=PROFILE, total_cycles=1e9, hosts={"device": 1e9, "edge": 1e11})


def test_profile_of_a_tiny_hf_vit_has_the_right_shapes_bytes_and_params(tiny_vit: Path) -> None:
    from edgeai.tools.split_inference.hf import load_hf_model

    model = load_hf_model(tiny_vit, "classify")
    images = _photos(2)
    profile = profile_model(model, images, repeats=2, warmup=1)
    assert profile.n_stages == 3 and len(profile.stages) == 3
    assert profile.input_shape == [3, 32, 32]
    for stage in profile.stages:
        assert stage.output_shape == [17, 32]  # CLS + 4x4 patches, hidden 32
        assert stage.bytes_fp32 == 17 * 32 * 4 and stage.bytes_fp16 == 17 * 32 * 2
        assert stage.seconds > 0
    assert profile.input_png_bytes == round(np.mean([len(encode_png(im)) for im in images]))
    # params: stage 0 = patch conv + CLS + positions; blocks are equal; head = layernorm + classifier
    emb = 3 * 8 * 8 * 32 + 32 + 32 + 17 * 32
    assert profile.stages[0].params == emb
    assert profile.stages[1].params == profile.stages[2].params
    assert profile.head.params == (32 + 32) + (32 * 3 + 3)
    assert profile.total_params == sum(p.numel() for p in model.parameters())
    # the gradient-based count (models without stage_modules) agrees
    model.stage_modules = None  # type: ignore[assignment,method-assign]
    again = profile_model(model, images[:1], repeats=1, warmup=0)
    assert [s.params for s in again.stages] == [s.params for s in profile.stages]
    fractions = profile.cycle_fractions()
    assert len(fractions) == 4 and math.isclose(sum(fractions), 1.0)
    assert ModelProfile.model_validate_json(profile.model_dump_json()) == profile
    assert profile.default_payload_bytes() == {
        0: profile.input_png_bytes,
        1: 1088,
        2: 1088,
        3: 1088,
    }


def test_profile_of_our_photo_model_counts_every_parameter_once() -> None:
    from edgeai.tools.split_inference.models import build_model

    model = build_model("vqa")
    profile = profile_model(model, _photos(1), repeats=1, warmup=0)
    assert profile.n_stages == model.n_stages
    assert sum(s.params for s in profile.stages) + profile.head.params == profile.total_params
    blocks = [s.params for s in profile.stages[1:]]
    assert blocks and all(b == blocks[0] > 0 for b in blocks)
    assert all(len(s.output_shape) == 2 for s in profile.stages)  # [tokens, dim]


def test_cost_model_scalings_and_compute_seconds() -> None:
    # manual: share x cycles / hz
    assert math.isclose(COST.seconds(0, 2, False, "device"), 0.4)
    assert math.isclose(COST.seconds(2, 4, True, "edge"), 0.6e9 / 1e11)
    assert math.isclose(COST.seconds(0, 4, True, "device"), 1.0)
    # measured: seconds here x here_hz / hz (here 5 s at 1 GHz)
    measured = CostModel(profile=PROFILE, total_cycles=1e9, hosts={"d": 2e9}, scaling="measured")
    assert math.isclose(measured.seconds(0, 4, True, "d"), 5.0 * 1e9 / 2e9)
    compute_seconds = make_compute_seconds({"m": COST})
    assert compute_seconds("m", 1, 3, False, "edge") == COST.seconds(1, 3, False, "edge")
    with pytest.raises(UserInputError, match="no cost model"):
        compute_seconds("other", 0, 1, False, "edge")
    with pytest.raises(UserInputError, match="unknown host role"):
        COST.seconds(0, 1, False, "cloud")
    with pytest.raises(UserInputError, match="out of range"):
        COST.seconds(3, 9, False, "edge")
    with pytest.raises(UserInputError, match="compute_hz"):
        CostModel(profile=PROFILE, total_cycles=1e9, hosts={"device": 0.0})


def test_fast_link_offloads_the_photo() -> None:
    decision = choose_split(PROFILE, COST, link_bps=1e9, rtt_s=0.005)
    assert decision.choice == 0
    row = decision.row(0)  # 100 KB at 1 Gbit/s + rtt + whole model on the edge + 64 B back
    expected = 8e5 / 1e9 + 0.005 + 0.01 + 8 * 64 / 1e9
    assert math.isclose(row.latency_s, expected) and math.isclose(decision.latency_s, expected)


def test_slow_link_splits_where_the_payload_is_small() -> None:
    decision = choose_split(PROFILE, COST, link_bps=1e6, rtt_s=0.0, answer_bytes=0)
    assert decision.choice == 2
    # by hand: device 0.4 s, 2 KB at 1 Mbit/s = 16 ms, edge 3/5 of 10 ms
    assert math.isclose(decision.latency_s, 0.4 + 0.016 + 0.006)
    latencies = {r.split: r.latency_s for r in decision.rows}
    assert math.isclose(latencies[0], 0.8 + 0.01)
    assert math.isclose(latencies[1], 0.2 + 0.4 + 0.008)
    assert math.isclose(latencies[CLIENT_ONLY], 1.0)
    assert decision.split == 2


def test_very_slow_link_or_long_rtt_keeps_everything_on_the_device() -> None:
    assert choose_split(PROFILE, COST, link_bps=1e4, rtt_s=0.0).choice == CLIENT_ONLY
    assert choose_split(PROFILE, COST, link_bps=1e9, rtt_s=2.0).choice == CLIENT_ONLY
    assert choose_split(PROFILE, COST, link_bps=1e9, rtt_s=2.0).split is None
    assert choose_split(PROFILE, COST, link_bps=1e4, client_only=False).choice == 2


def test_device_energy_objective_differs_where_it_should() -> None:
    slow_edge = CostModel(profile=PROFILE, total_cycles=1e9, hosts={"device": 1e9, "edge": 5e8})
    # the edge is twice slower than the device: latency keeps the work local ...
    by_latency = choose_split(PROFILE, slow_edge, link_bps=1e7)
    assert by_latency.choice == CLIENT_ONLY
    # ... but the device spends less energy sending the photo (80 ms of radio) than computing
    by_energy = choose_split(PROFILE, slow_edge, link_bps=1e7, objective="device_energy")
    assert by_energy.choice == 0
    assert math.isclose(by_energy.device_energy_j, 1.0 * 8e5 / 1e7)
    # a power-hungry radio moves the energy choice to the small payload of split 2
    radio = choose_split(
        PROFILE, COST, link_bps=1e7, objective="device_energy", tx_power_w=30.0, device_power_w=0.5
    )
    assert radio.choice == 2
    assert math.isclose(radio.device_energy_j, 0.5 * 0.4 + 30.0 * 16_000 / 1e7)


def test_measured_payloads_replace_the_defaults() -> None:
    # a codec at k=1 that sends 100 bytes instead of 50 KB beats the 2 KB raw activation at k=2
    decision = choose_split(PROFILE, COST, link_bps=1e6, payload_bytes={1: 100}, answer_bytes=0)
    assert decision.row(1).payload_bytes == 100 and decision.row(2).payload_bytes == 2_000
    assert decision.choice == 1
    assert math.isclose(decision.latency_s, 0.2 + 800 / 1e6 + 0.008)


def test_invalid_inputs_are_clear_errors() -> None:
    for rate in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(UserInputError, match="link rate"):
            choose_split(PROFILE, COST, link_bps=rate)
    with pytest.raises(UserInputError, match="rtt_s"):
        choose_split(PROFILE, COST, link_bps=1e6, rtt_s=-0.1)
    with pytest.raises(UserInputError, match="objective"):
        choose_split(PROFILE, COST, link_bps=1e6, objective="speed")  # type: ignore[arg-type]
    with pytest.raises(UserInputError, match="outside"):
        choose_split(PROFILE, COST, link_bps=1e6, payload_bytes={7: 10})
    with pytest.raises(UserInputError, match="payload_bytes"):
        choose_split(PROFILE, COST, link_bps=1e6, payload_bytes={1: -5})
    other = hand_profile([1.0], 1.0, [10], png=10)
    with pytest.raises(UserInputError, match="cost model is for"):
        choose_split(other, COST, link_bps=1e6)


def test_hosts_come_from_the_photo_manuals(tmp_path: Path) -> None:
    hosts = photo_hosts_from_manuals(MANUALS)
    jetson = parse_manual(MANUALS / "jetson-nano-camera.md").entry
    edge = parse_manual(MANUALS / "edge-server-rtx4090.md").entry
    assert hosts.device.device == "jetson-nano-camera"
    assert hosts.device.compute_hz == jetson.compute_hz
    assert hosts.device.uplink_bps == jetson.uplink_bps
    assert hosts.edge.compute_hz == edge.compute_hz
    assert hosts.cycles("vit-image-classifier") == jetson.models[0].cycles
    assert hosts.cycles("blip-vqa") == next(m.cycles for m in edge.models if m.name == "blip-vqa")
    assert set(hosts.compute_hz()) == {"device", "edge", "cloud"}
    with pytest.raises(UserInputError, match="no manual gives cycles"):
        hosts.cycles("nope")
    only_edge = tmp_path / "pool"
    only_edge.mkdir()
    (only_edge / "edge.md").write_text((MANUALS / "edge-server-rtx4090.md").read_text())
    with pytest.raises(ManualError):
        photo_hosts_from_manuals(only_edge)


def test_cli_profile_and_partition(
    tiny_vit: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "profile.json"
    base = ["--task", "classify", "--hf", str(tiny_vit), "--images", "1", "--repeats", "1"]
    assert main(["split", "profile", *base, "--json", "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["n_stages"] == 3 and ModelProfile.load(out).n_stages == 3
    args = ["split", "partition", "--task", "classify", "--profile", str(out), "--json"]
    assert main([*args, "--rate", "300KB/s", "--rtt-ms", "20"]) == 0
    decision = json.loads(capsys.readouterr().out)
    assert decision["link_bps"] == 2.4e6 and decision["rtt_s"] == 0.02
    assert len(decision["rows"]) == 5  # k = 0..3 and client-only
    assert main(args) == 0  # no --rate: the camera manual's uplink
    uplink = parse_manual(MANUALS / "jetson-nano-camera.md").entry.uplink_bps
    assert json.loads(capsys.readouterr().out)["link_bps"] == uplink
    assert main([*args, "--rate", "0KB/s"]) == 2
    assert "--rate" in capsys.readouterr().err
    assert main([*args, "--rate", "fast"]) == 2
    assert (
        main(["split", "partition", "--task", "vqa", "--profile", str(out), "--rate", "1MB/s"]) == 2
    )
    assert "profiles task 'classify'" in capsys.readouterr().err
    assert main(["split", "profile", "--task", "caption", "--hf", str(tmp_path / "none")]) == 2
    assert "no such folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # argparse: unknown task
        main(["split", "profile", "--task", "segment"])
    assert exc.value.code == 2


def test_codec_payload_bytes_are_the_compressed_sizes(tiny_vit: Path) -> None:
    from edgeai.tools.split_inference.codec import CodecMeta, FeatureCodec
    from edgeai.tools.split_inference.hf import load_hf_model
    from edgeai.tools.split_inference.partition import codec_payload_bytes

    model = load_hf_model(tiny_vit, "classify")
    torch.manual_seed(0)
    meta = CodecMeta(
        model_id=model.model_id, task="classify", split=2, lam=0.01, channels=4, d_model=32,
        hidden=32,
    )  # fmt: skip
    codec = FeatureCodec(meta).eval()
    codec.update()
    images = _photos(2)
    sizes = [len(codec.compress(model.features(images[i : i + 1], 2))) for i in range(2)]
    assert codec_payload_bytes(model, codec, images) == {2: round(sum(sizes) / 2)}
    codec.meta.task = "vqa"
    with pytest.raises(UserInputError, match="codec is for"):
        codec_payload_bytes(model, codec, images)


def test_cli_partition_of_our_model_from_a_checkpoint_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edgeai.tools.split_inference.models import build_model, save_model

    torch.manual_seed(0)
    model = build_model("classify")
    save_model(model, tmp_path / "classify.pt")
    args = ["split", "partition", "--task", "classify", "--checkpoints", str(tmp_path)]
    flags = ["--images", "1", "--repeats", "1", "--no-codec", "--json"]
    assert main([*args, *flags, "--rate", "50KB/s", "--rtt-ms", "0"]) == 0
    decision = json.loads(capsys.readouterr().out)
    assert decision["model_id"] == "vit-image-classifier"
    assert [r["split"] for r in decision["rows"]] == [*range(model.n_stages + 1), CLIENT_ONLY]
    k1 = decision["rows"][1]
    assert k1["payload_bytes"] == model.features(_photos(1), 1)[0].numel() * 2  # float16
    assert math.isclose(k1["uplink_s"], 8 * k1["payload_bytes"] / 4e5)
