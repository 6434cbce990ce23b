"""`edgeai split serve-edge | infer | sample-image` as a user runs them: real processes, real socket."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from edgeai.cli import main
from edgeai.knowledge.pools import SAMPLES_DIR
from edgeai.tools.split_inference import world
from edgeai.tools.split_inference.codec import CodecMeta, FeatureCodec, save_codec
from edgeai.tools.split_inference.imagecodecs import read_image
from edgeai.tools.split_inference.models import build_model, load_model, save_model

EXE = str(Path(sys.executable).with_name("edgeai"))
TASKS = ("classify", "caption", "vqa")


def _tiny_checkpoints(folder: Path) -> Path:
    """Tiny random models saved the way train-model saves them, and one codec for classify."""
    torch.manual_seed(0)
    for task in TASKS:
        save_model(
            build_model(task, dim=16, depth=2, heads=2, head_layers=1), folder / f"{task}.pt"
        )
    model = load_model("classify", folder)
    codec = FeatureCodec(CodecMeta(model.model_id, "classify", 2, 0.01, 4, 16, 16)).eval()
    codec.update()
    save_codec(codec, folder / "codec-classify.pt")
    return folder / "codec-classify.pt"


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [EXE, "split", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ,
    )


def test_serve_edge_and_infer_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ck = tmp_path / "ck"
    codec_file = _tiny_checkpoints(ck)
    server = subprocess.Popen(
        [EXE, "split", "serve-edge", "--port", "0", "--checkpoints", str(ck),
         "--codec", str(codec_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        line = server.stdout.readline()  # "edge server listening on 127.0.0.1:PORT (...)"
        assert "listening on 127.0.0.1:" in line, server.stderr.read() if server.poll() else line
        edge = line.split("listening on ")[1].split()[0]

        # A generated photo to ask about.
        photo = tmp_path / "photo.png"
        assert main(["split", "sample-image", "--task", "vqa", "--seed", "3", "--out", str(photo),
                     "--json"]) == 0  # fmt: skip
        sample = json.loads(capsys.readouterr().out)
        ex = world.example("vqa", 3)
        assert sample["question"] == ex.question and sample["targets"] == ex.targets
        assert (read_image(str(photo)) == ex.image).all()

        # Lossless edge-only answers what the model answers in-process.
        res = _run("infer", str(photo), "--task", "vqa", "--question", ex.question, "--scheme",
                   "edge-lossless", "--edge", edge, "--checkpoints", str(ck), "--rate", "2MB/s",
                   "--json")  # fmt: skip
        assert res.returncode == 0, res.stderr
        got = json.loads(res.stdout)
        expected = load_model("vqa", ck).predict(ex.image[None], [ex.question])[0]
        assert got["answer"] == expected
        assert got["payload_bytes"] == photo.stat().st_size  # the PNG file is what was sent
        assert got["bytes_up"] > got["payload_bytes"] and got["seconds"] > 0

        # Co-inference with the codec the server loaded; human-readable output.
        res = _run("infer", str(photo), "--task", "classify", "--scheme", "coinfer", "--edge",
                   edge, "--checkpoints", str(ck), "--codec", str(codec_file))  # fmt: skip
        assert res.returncode == 0, res.stderr
        assert "coinfer (split k=2)" in res.stdout and "latency" in res.stdout

        # Bad input: one line on stderr, exit status 2, no traceback.
        notes = tmp_path / "notes.txt"
        notes.write_text("not a photo")
        for args, match in (
            (["infer", str(notes), "--task", "classify", "--scheme", "edge-lossless"],
             "notes.txt: not a readable PNG/JPEG/WebP/AVIF image"),
            (["infer", str(photo), "--task", "classify", "--scheme", "edge-lossless",
              "--edge", "127.0.0.1:1"], "server 127.0.0.1:1 unreachable"),
        ):  # fmt: skip
            res = _run(*args, "--checkpoints", str(ck), timeout=20)
            assert res.returncode == 2, res.stderr
            assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
            assert match in res.stderr

        # Ctrl-C stops the server cleanly.
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=10) == 0
        assert "stopped" in server.stdout.read()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(5)


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--task", "classify", "--rate", "0"], "--rate: rate must be"),
        (["--task", "classify", "--rate", "fast"], "--rate: cannot read rate 'fast'"),
        (["--task", "classify", "--rate", "nan"], "--rate"),
        (["--task", "vqa"], "vqa needs --question"),
        (["--task", "classify", "--question", "why?"], "--question is for task vqa"),
        (["--task", "classify", "--edge", "nowhere"], "--edge: expected HOST:PORT"),
        (["--task", "classify", "--rtt-ms", "-5"], "--rtt-ms"),
    ],
)
def test_infer_bad_flags_exit_2_with_one_line(argv, match, tmp_path: Path, capsys) -> None:
    photo = tmp_path / "p.png"
    assert main(["split", "sample-image", "--task", "classify", "--out", str(photo)]) == 0
    capsys.readouterr()
    assert main(["split", "infer", str(photo), *argv]) == 2
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1


def test_infer_missing_file_and_unknown_task_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["split", "infer", str(tmp_path / "none.png"), "--task", "classify"]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["split", "infer", str(tmp_path / "none.png"), "--task", "detect"])
    assert info.value.code == 2
    assert "invalid choice: 'detect'" in capsys.readouterr().err


def test_sample_image_prints_question_and_targets(tmp_path: Path, capsys) -> None:
    out = tmp_path / "sub" / "img.png"
    assert (
        main(["split", "sample-image", "--task", "caption", "--seed", "5", "--out", str(out)]) == 0
    )
    text = capsys.readouterr().out
    assert f"wrote {out}" in text and "targets: " in text
    assert world.example("caption", 5).targets[0] in text
    assert read_image(str(out)).shape == (224, 224, 3)
    assert (
        main(["split", "sample-image", "--task", "caption", "--seed", "-1", "--out", str(out)]) == 2
    )


def test_manual_pacing_uses_the_photo_pool_hosts(capsys, tmp_path: Path) -> None:
    from edgeai.cli.split.runtime import _compute_from_manuals

    manuals = SAMPLES_DIR / "photo" / "manuals"
    torch.manual_seed(0)
    model = build_model("classify", dim=16, depth=2, heads=2)
    compute = _compute_from_manuals({"classify": model}, manuals)
    n = model.n_stages
    device = compute(model.model_id, 0, n, True, "device")
    edge = compute(model.model_id, 0, n, True, "edge")
    part = compute(model.model_id, 0, 1, False, "device")
    assert 0 < edge < device and 0 < part < device
    # The manuals' ViT-B cycles on the Jetson's effective rate: ~0.18 s for the whole model.
    assert 0.1 < device < 0.4
    photo = tmp_path / "p.png"
    assert main(["split", "sample-image", "--task", "classify", "--out", str(photo)]) == 0
    argv = ["split", "infer", str(photo), "--task", "classify", "--manuals", str(tmp_path / "no")]
    assert main(argv) == 2
    assert "--manuals" in capsys.readouterr().err
