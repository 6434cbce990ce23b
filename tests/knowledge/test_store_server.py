"""The store of manuals on a chromadb server (`--store http://HOST:PORT[/DATABASE]`): a real
`chroma run` on loopback (tools/chroma_server.py), filled with the shipped healthcare pool by
`edgeai knowledge add --store`, plans exactly as the embedded store does; two apps on it (two
server workers, one home) see each other's writes, and so does a reader with another home; a
malformed URL and a server that does not answer are one line and exit 2, before anything is
written; the throw-away server leaves no process behind.

The encoders' outputs are cached per store in the home (knowledge/embeddings.py: bit-identical to
a fresh encoding); the server's cache is seeded from the embedded home's, so the test pays the
chromadb round trips rather than minutes of encoding on two cores.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from edgeai.cli import main
from edgeai.config import Settings
from edgeai.knowledge.location import server_of
from edgeai.tools.chroma_server import ChromaUnavailable, throwaway_chroma

REQUESTS = [
    "What's my heart rate right now?",
    "Work out my mood from my heartbeat and breathing.",
    "how was my sleep last night and did I snore?",
    "Quel est mon rythme cardiaque en ce moment ?",
    "What's the weather going to be tomorrow?",
]

GARDEN = """---
device: garden-camera
kind: outdoor camera
location: garden
tier: client
compute_hz: 8.0e+8
uplink_bps: 2.0e+6
models:
  - name: plant-thirst
    task: plant watering need detection
    inputs: [garden_images]
    outputs: [watering_need]
    description: Tells from photos of the flower beds whether the plants need watering.
    input_bits: 4.0e+6
    cycles: 2.0e+8
---
# Garden camera: manual

## What it is
A weatherproof camera that watches the flower beds and the lawn.

## Hosted AI model
**plant-thirst** looks at the leaves and the soil colour and says whether the beds need water.
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _edgeai(*argv: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeai.cli", *argv], capture_output=True,
                          check=False, text=True, timeout=timeout,
                          env=os.environ | {"EDGEAI_STORE": ""})


def _plans(stdout: str) -> list[dict]:
    """`edgeai plan --requests` output, without the timing that differs from run to run."""
    out = []
    for line in stdout.splitlines():
        plan = json.loads(line)
        plan.pop("seconds", None)
        out.append(plan)
    return out


def _seed_cache(src: Path, dst: Path) -> None:
    """Copy an embedding cache (SQLite's backup: consistent, its WAL included)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)


@pytest.fixture(scope="module")
def chroma_url() -> Iterator[str]:
    try:
        with throwaway_chroma() as url:
            yield url
    except ChromaUnavailable as exc:
        pytest.skip(f"no chromadb server can start here: {exc}")


@pytest.fixture(scope="module")
def served_pool(chroma_url: str, healthcare_home: Path, samples: Path,
                tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The healthcare pool added to the server by the CLI, and the same requests planned by the
    CLI against the embedded home and against the server."""
    requests = tmp_path_factory.mktemp("requests") / "requests.jsonl"
    requests.write_text("\n".join(json.dumps({"request": r}) for r in REQUESTS) + "\n")
    embedded = _edgeai("plan", "--requests", str(requests), "--home", str(healthcare_home))
    assert embedded.returncode == 0, embedded.stderr
    url = f"{chroma_url}/healthcare"
    home = tmp_path_factory.mktemp("served-home")
    _seed_cache(healthcare_home / "store" / "embeddings.sqlite",
                home / "chroma-servers" / server_of(url).slug / "embeddings.sqlite")
    added = _edgeai("knowledge", "add", str(samples / "healthcare" / "manuals"), "--home",
                    str(home), "--store", url)
    assert added.returncode == 0, added.stderr
    served = _edgeai("plan", "--requests", str(requests), "--home", str(home), "--store", url)
    assert served.returncode == 0, served.stderr
    return {"url": url, "home": home, "added": added.stdout, "embedded": embedded.stdout,
            "served": served.stdout}


def test_knowledge_add_writes_the_pool_to_the_server(served_pool: dict, samples: Path) -> None:
    manuals = sorted(p.stem for p in (samples / "healthcare" / "manuals").glob("*.md"))
    assert sorted(line.split()[1] for line in served_pool["added"].splitlines()
                  if line.startswith("added")) == manuals
    # the collections live on the server: the home keeps only the side files, no chroma data
    side = served_pool["home"] / "chroma-servers" / server_of(served_pool["url"]).slug
    assert (side / "embeddings.sqlite").exists()
    assert not (side / "chroma.sqlite3").exists() and not (served_pool["home"] / "store").exists()
    listed = _edgeai("knowledge", "list", "--json", "--home", str(served_pool["home"]),
                     "--store", served_pool["url"])
    assert listed.returncode == 0, listed.stderr
    assert sorted(d["device"] for d in json.loads(listed.stdout)) == manuals


def test_plans_from_the_server_equal_the_embedded_stores(served_pool: dict) -> None:
    embedded, served = _plans(served_pool["embedded"]), _plans(served_pool["served"])
    assert len(served) == len(REQUESTS)
    assert served == embedded
    assert all(p["subtasks"] or p["unsupported"] for p in served)
    assert any(any(t["deps"] for t in p["subtasks"]) for p in served)  # a chain among them


def test_two_workers_and_another_home_share_the_manuals(served_pool: dict, tmp_path: Path) -> None:
    from edgeai.graphs.app import App
    from edgeai.knowledge.store import open_store

    url, home = served_pool["url"], served_pool["home"]
    settings = Settings(home=home, store=url)
    one, two = App.open(settings), App.open(settings)  # two workers: one home, one server
    other = tmp_path / "reader-home"
    other.mkdir()
    reader = open_store(other, url=url)  # a reader on another machine: its own home
    manual = tmp_path / "garden-camera.md"
    manual.write_text(GARDEN, encoding="utf-8")
    from edgeai.agents.planning.units import build_units

    report = one.store.add_manuals([manual], build_units)
    assert report["added"] == ["garden-camera"]
    for store in (two.store, reader):
        assert "garden-camera" in [d.device for d in store.manuals()]
        assert store.owner_of()["plant-thirst"] == "garden-camera"
        assert store.provenance()["garden-camera"]["source"] == str(manual)
    assert reader.search("do my flower beds need water?", k=3)[0].device == "garden-camera"
    assert two.store.remove_device("garden-camera") == ["plant-thirst"]
    assert "garden-camera" not in [d.device for d in one.store.manuals()]
    assert "garden-camera" not in [d.device for d in open_store(other, url=url).manuals()]


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize("bad", [
    "ftp://127.0.0.1:8000", "127.0.0.1:8000", "http://127.0.0.1", "http://:8000",
    "http://user:secret@127.0.0.1:8000", "http://127.0.0.1:99999", "http://127.0.0.1:8000/a/b",
    "http://127.0.0.1:8000/x?tenant=t",
])
def test_a_malformed_store_url_is_one_line_naming_store(
    bad: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    code = main(["knowledge", "add", str(tmp_path), "--home", str(home), "--store", bad])
    err = capsys.readouterr().err
    assert_one_line_error(code, err, "--store")
    assert "secret" not in err
    assert not home.exists()


def test_a_malformed_edgeai_store_is_refused_too(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EDGEAI_STORE", "chroma.example.org")
    code = main(["knowledge", "list", "--home", str(tmp_path)])
    assert_one_line_error(code, capsys.readouterr().err, "--store")


def test_an_unreachable_server_is_one_line_naming_it_before_anything_starts(
    samples: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    home = tmp_path / "home"
    code = main(["knowledge", "add", str(samples / "healthcare" / "manuals" / "smart-plug.md"),
                 "--home", str(home), "--store", dead])
    assert_one_line_error(code, capsys.readouterr().err, dead, "cannot reach")
    assert not home.exists()  # nothing written
    home.mkdir()
    for argv in (["plan", "what's my heart rate?"], ["knowledge", "list"],
                 ["serve", "--port", str(_free_port())]):
        started = time.monotonic()
        code = main([*argv, "--home", str(home), "--store", dead])
        assert_one_line_error(code, capsys.readouterr().err, dead, "cannot reach")
        assert time.monotonic() - started < 30
    assert list(home.iterdir()) == []  # refused before the store's folder was made


def test_a_database_with_no_store_yet_says_how_to_fill_it(
    chroma_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"{chroma_url}/empty-db"
    code = main(["knowledge", "list", "--home", str(tmp_path), "--store", url])
    assert_one_line_error(code, capsys.readouterr().err, url, "edgeai knowledge add")


def _chroma_processes(port: int) -> list[psutil.Process]:
    out = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info["cmdline"] or []
        if "run" in cmd and "--port" in cmd and str(port) in cmd:
            out.append(proc)
    return out


def test_the_throwaway_server_leaves_no_process_behind() -> None:
    started = time.perf_counter()
    try:
        with throwaway_chroma() as url:
            took = time.perf_counter() - started
            port = server_of(url).port
            procs = _chroma_processes(port)
            assert len(procs) == 1 and procs[0].is_running()
            data = Path(procs[0].info["cmdline"][procs[0].info["cmdline"].index("--path") + 1])
            assert data.is_dir()
    except ChromaUnavailable as exc:
        pytest.skip(f"no chromadb server can start here: {exc}")
    print(f"chroma run answered its heartbeat {took:.2f} s after start")
    assert not psutil.pid_exists(procs[0].pid) or procs[0].status() == psutil.STATUS_ZOMBIE
    assert _chroma_processes(port) == []
    assert not data.parent.exists()  # its folder removed too
