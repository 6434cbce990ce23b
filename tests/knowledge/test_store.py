"""The knowledge store on a real chromadb on disk: add, list, search, replace, remove, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
from edgeai.agents.planning.units import build_units
from edgeai.errors import HomeNotFoundError, ManualError, UserInputError
from edgeai.knowledge.manuals import parse_manual_text, split_passages
from edgeai.knowledge.store import KnowledgeStore, add_to_home, open_store

SPEAKER = """---
device: kitchen-speaker
kind: smart speaker
tier: client
compute_hz: 1.2e9
uplink_bps: 2.0e6
models:
  - name: kitchen-heartbeat
    task: heartbeat monitoring
    inputs: [audio]
    outputs: [heart_rate_bpm]
    description: Monitors the heartbeat of a person in the kitchen from acoustic reflections.
---
# Kitchen speaker

kitchen-heartbeat returns beats per minute from chest motion.

It does not measure blood pressure.
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_parse_reads_front_matter_and_numbers_written_as_in_the_spec() -> None:
    manual = parse_manual_text(SPEAKER, "speaker.md")
    assert manual.entry.device == "kitchen-speaker"
    assert manual.entry.compute_hz == pytest.approx(1.2e9)  # YAML reads 1.2e9 as a string
    assert manual.entry.models[0].outputs == ["heart_rate_bpm"]
    assert split_passages(manual.body)[0].startswith("Kitchen speaker")


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("no front matter", "front matter"),
        ("---\ndevice: [unclosed\n---\nbody", "front matter"),
        ("---\nkind: x\ntier: client\n---\n", "device"),
        ("---\ndevice: d\nkind: x\ntier: fog\n---\n", "tier"),
        (
            "---\ndevice: d\nkind: x\ntier: client\nmodels:\n  - name: m\n    task: t\n---\n",
            "models[0].description",
        ),
        ("---\ndevice: d\nkind: x\ntier: client\ncompute_hz: -1\n---\n", "compute_hz"),
    ],
)
def test_malformed_manual_names_file_and_field(text: str, field: str) -> None:
    with pytest.raises(ManualError) as info:
        parse_manual_text(text, "bad.md")
    assert info.value.file == "bad.md"
    assert info.value.field == field
    assert "bad.md" in str(info.value) and field in str(info.value)


def test_store_lists_and_searches_the_shipped_pool(healthcare_home: Path) -> None:
    store = open_store(healthcare_home)
    devices = {d.device for d in store.manuals()}
    assert {
        "living-room-speaker",
        "home-wifi-router",
        "edge-server",
        "hallway-motion-sensor",
    } <= devices
    models = {m.name: m for m in store.models()}
    assert models["mood-from-vitals"].inputs == ("heart_rate_bpm", "respiration_rate_bpm")
    hits = store.search("which apps are used on the network", k=3)
    assert hits[0].device == "home-wifi-router"
    assert (healthcare_home / "store" / "chroma.sqlite3").exists()  # really on disk


def test_readding_a_device_replaces_it_and_remove_deletes_it(
    fresh_home: Path, tmp_path: Path
) -> None:
    store = open_store(fresh_home)
    before = len(store.models())
    report = store.add_manuals([write(tmp_path / "s.md", SPEAKER)], build_units)
    # a second device claiming heart rate is added, and said to overlap the speaker that has it
    overlap = ("kitchen-heartbeat (kitchen-speaker) claims heart_rate_bpm, also served by "
               "heartbeat-acoustic on living-room-speaker")
    assert report == {"added": ["kitchen-speaker"], "replaced": [], "overlaps": [overlap]}
    changed = SPEAKER.replace("kitchen-heartbeat", "kitchen-pulse")
    report = store.add_manuals([write(tmp_path / "s2.md", changed)], build_units)
    assert report["added"] == [] and report["replaced"] == ["kitchen-speaker"]
    provenance = store.provenance()["kitchen-speaker"]
    assert provenance["source"].endswith("s2.md") and len(provenance["sha256"]) == 64
    assert provenance["added_at"] and provenance["added_by"]
    names = {m.name for m in store.models()}
    assert "kitchen-pulse" in names and "kitchen-heartbeat" not in names
    assert len(store.models()) == before + 1
    # a reopened client sees the same thing: it was persisted
    assert "kitchen-pulse" in {m.name for m in KnowledgeStore(fresh_home / "store").models()}
    assert store.remove_device("kitchen-speaker") == ["kitchen-pulse"]
    assert len(store.models()) == before
    with pytest.raises(UserInputError, match="unknown device 'nope'"):
        store.remove_device("nope")


def test_duplicate_model_id_is_refused_and_nothing_is_written(
    fresh_home: Path, tmp_path: Path
) -> None:
    store = open_store(fresh_home)
    before_devices = [d.device for d in store.manuals()]
    before_units = store.unit_cols["minilm"].count()
    ok = write(tmp_path / "ok.md", SPEAKER)
    thief = write(
        tmp_path / "thief.md",
        SPEAKER.replace("kitchen-speaker", "thief").replace(
            "kitchen-heartbeat", "heartbeat-acoustic"
        ),
    )
    with pytest.raises(ManualError) as info:
        store.add_manuals([ok, thief], build_units)  # the good file of the same call is not written either
    assert "heartbeat-acoustic" in str(info.value) and "living-room-speaker" in str(info.value)
    assert info.value.field == "models[0].name"
    assert [d.device for d in store.manuals()] == before_devices
    assert store.unit_cols["minilm"].count() == before_units


def test_a_bad_file_in_a_new_home_creates_nothing(tmp_path: Path) -> None:
    home = tmp_path / "new-home"
    good = write(tmp_path / "good.md", SPEAKER)
    bad = write(tmp_path / "bad.md", "---\ndevice: x\n---\n")
    with pytest.raises(ManualError):
        add_to_home(home, [good, bad], build_units)
    assert not home.exists()


def test_opening_a_missing_home_is_refused(tmp_path: Path) -> None:
    with pytest.raises(HomeNotFoundError):
        open_store(tmp_path / "missing")
