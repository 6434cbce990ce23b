"""`edgeai ask "..." --image PATH` (issue 33 point 4): the person's photo goes through the graph,
the question inside the request reaches the question answerer, bad photos get one line."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from edgeai.agents.planning.visual import route_visual_question
from edgeai.cli import main
from edgeai.knowledge.store import open_store
from edgeai.schemas import Plan, Subtask
from edgeai.tools.split_inference.question import is_visual_question, visual_question
from PIL import Image


def _real_photo() -> Path:
    import sklearn

    return Path(sklearn.__file__).parent / "datasets" / "images" / "china.jpg"


@pytest.fixture
def home(tmp_path: Path, photo_home: Path) -> Path:
    out = tmp_path / "home"
    shutil.copytree(photo_home, out)
    return out


def ask(capsys, home: Path, *argv: str) -> tuple[int, dict | None, str]:
    code = main(["ask", *argv, "--home", str(home), "--json"])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else None), err


def test_the_question_answerer_runs_on_the_person_s_photo(capsys, home: Path) -> None:
    code, out, _ = ask(capsys, home, "Look at this photo: what colour is the car?",
                       "--image", str(_real_photo()))
    assert code == 0
    [result] = out["results"]
    assert result["model"] == "blip-vqa" and result["status"] == "ok"
    details = result["details"]
    assert details["question"] == "what colour is the car?"
    assert details["image"] == "your photo"
    assert "ground_truth" not in details  # a person's photo has none
    kept = list((home / "photos").glob("*.png"))
    assert len(kept) == 1 and max(Image.open(kept[0]).size) <= 1024


def test_a_counting_question_reaches_the_question_answerer(capsys, home: Path) -> None:
    code, out, _ = ask(capsys, home, "how many stars are in this picture?",
                       "--image", str(_real_photo()))
    assert code == 0
    assert [s["model"] for s in out["plan"]["subtasks"]] == ["blip-vqa"]
    assert "routed to blip-vqa" in out["plan"]["fallback_reason"]


def test_the_camera_s_ground_truth_is_only_for_its_own_question(capsys, home: Path) -> None:
    code, out, _ = ask(capsys, home, "what colour is the car in the camera's picture?")
    assert code == 0
    details = out["results"][0]["details"]
    assert details["image"].startswith("the camera's photo")
    assert "ground_truth" not in details
    assert details["ground_truth_of"].startswith("none: the generated photo")


def test_a_50_megapixel_photo_is_scaled_down(capsys, home: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.jpg"
    Image.fromarray(np.full((6250, 8000, 3), 90, np.uint8)).save(big, quality=50)
    code, _out, err = ask(capsys, home, "what colour is the sky?", "--image", str(big))
    assert code == 0, err
    [kept] = (home / "photos").glob("*.png")
    assert Image.open(kept).size == (1024, 800)


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda p: p.write_text("not a photo"), "not a readable PNG/JPEG/WebP/AVIF image"),
        (lambda p: None, "does not exist"),
        (lambda p: p.mkdir(), "is a directory"),
    ],
)
def test_a_bad_image_is_one_line_and_leaves_nothing(capsys, home: Path, tmp_path: Path, make,
                                                    needle: str) -> None:
    path = tmp_path / "photo.jpg"
    make(path)
    code = main(["ask", "what colour is the car?", "--image", str(path), "--home", str(home)])
    _, err = capsys.readouterr()
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in err
    assert not (home / "photos").exists()


@pytest.mark.parametrize(
    ("request_text", "question"),
    [
        ("what colour is the car?", "what colour is the car?"),
        ("Look at this photo: what colour is the car?", "what colour is the car?"),
        ("Please tell me how many stars are in this picture", "how many stars are in this picture?"),
        ("Hi, can you tell me whether there is a dog in the image?", "is there a dog in the image?"),
        ("I took this yesterday. How many birds are there? Thanks!", "How many birds are there?"),
        ("Count the stars in this picture", "how many stars are in this picture?"),
    ],
)
def test_the_visual_question_is_extracted(request_text: str, question: str) -> None:
    assert visual_question(request_text) == question


def test_only_counts_colours_positions_and_presence_are_visual_questions() -> None:
    for text in ("how many cats?", "what colour is it", "what is on the left", "is there a dog"):
        assert is_visual_question(text), text
    for text in ("describe this photo", "what is my heart rate", "translate this note"):
        assert not is_visual_question(text), text


def test_a_plan_that_already_answers_questions_is_kept(photo_home: Path) -> None:
    store = open_store(photo_home)
    vqa = Plan(request="r", subtasks=[Subtask(id=1, model="blip-vqa",
                                              device="edge-server-rtx4090", goal="g")])
    assert route_visual_question(vqa, store.models, "how many stars?", True) is vqa
    other = Plan(request="r", subtasks=[Subtask(id=1, model="vit-image-classifier",
                                                device="jetson-nano-camera", goal="g")])
    # no photo given or mentioned: the planner's plan stands
    assert route_visual_question(other, store.models, "how many steps did I walk?", False) is other
    routed = route_visual_question(other, store.models, "how many stars?", True)
    assert routed.model_ids() == ["blip-vqa"]


def test_the_api_takes_a_photo(photo_home: Path, tmp_path: Path) -> None:
    from edgeai.config import Settings
    from edgeai.server import create_app
    from fastapi.testclient import TestClient

    home = tmp_path / "home"
    shutil.copytree(photo_home, home)
    data = base64.b64encode(_real_photo().read_bytes()).decode()
    with TestClient(create_app(Settings(home=home))) as client:
        ok = client.post("/ask", json={"request": "what colour is the roof?", "image_base64": data})
        assert ok.status_code == 200, ok.text
        assert "(on your photo)" in ok.json()["answer"]
        bad = client.post("/ask", json={"request": "what colour?", "image_base64": "@@@"})
        assert bad.status_code == 400 and "image_base64" in bad.json()["detail"]
        junk = base64.b64encode(b"not a photo").decode()
        bad = client.post("/ask", json={"request": "what colour?", "image_base64": junk})
        assert bad.status_code == 400 and "not a readable" in bad.json()["detail"]
