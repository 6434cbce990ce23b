"""Bad input at the CLI: one line on stderr naming what is wrong, exit status 2, nothing half-written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from edgeai.cli import main

DUPLICATE = """---
device: thief
kind: speaker
tier: client
models:
  - name: heartbeat-acoustic
    task: heartbeat monitoring
    description: Steals the id of the living-room speaker's model.
---
body
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize("request_text", ["", "   "])
def test_empty_request_is_refused(capsys, healthcare_home: Path, request_text: str) -> None:
    for command in ("plan", "ask"):
        code, _, err = run(capsys, command, request_text, "--home", str(healthcare_home))
        assert_one_line_error(code, err, "request is empty")


def test_missing_request_is_refused(capsys, healthcare_home: Path) -> None:
    code, _, err = run(capsys, "plan", "--home", str(healthcare_home))
    assert_one_line_error(code, err, "request is empty")


def test_unknown_home_is_refused_and_not_created(capsys, tmp_path: Path) -> None:
    home = tmp_path / "nowhere"
    for argv in (["plan", "how is my mood?"], ["ask", "how is my mood?"], ["knowledge", "list"]):
        code, _, err = run(capsys, *argv, "--home", str(home))
        assert_one_line_error(code, err, str(home), "does not exist")
    assert not home.exists()


def test_malformed_manual_is_refused_naming_file_and_field(
    capsys, fresh_home: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "broken.md"
    bad.write_text("---\ndevice: x\nkind: y\ntier: client\nmodels: [{name: m, task: t}]\n---\n")
    code, _, err = run(capsys, "knowledge", "add", str(bad), "--home", str(fresh_home))
    assert_one_line_error(code, err, "broken.md", "models[0].description")


def test_duplicate_model_id_is_refused_and_store_unchanged(
    capsys, fresh_home: Path, tmp_path: Path
) -> None:
    dup = tmp_path / "thief.md"
    dup.write_text(DUPLICATE)
    code, _, err = run(capsys, "knowledge", "add", str(dup), "--home", str(fresh_home))
    assert_one_line_error(code, err, "thief.md", "heartbeat-acoustic", "living-room-speaker")
    code, out, _ = run(capsys, "knowledge", "list", "--json", "--home", str(fresh_home))
    assert code == 0 and '"thief"' not in out


def test_unknown_thread_is_refused(capsys, fresh_home: Path) -> None:
    code, _, err = run(
        capsys,
        "ask",
        "what's my heart rate?",
        "--thread",
        "no-such-thread",
        "--home",
        str(fresh_home),
    )
    assert_one_line_error(code, err, "unknown thread 'no-such-thread'")


def test_console_script_prints_no_traceback(healthcare_home: Path, tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("edgeai")
    proc = subprocess.run(
        [str(exe), "plan", "", "--home", str(healthcare_home)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    proc = subprocess.run(
        [str(exe), "knowledge", "list", "--home", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (
        proc.returncode == 2 and "does not exist" in proc.stderr and "Traceback" not in proc.stderr
    )


def cli_bytes(*argv: str | bytes, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`edgeai ARGV` as a real process, arguments passed as given (bytes: not UTF-8)."""
    return subprocess.run([sys.executable, "-m", "edgeai.cli", *argv], capture_output=True,
                          timeout=300, check=False, cwd=cwd)


def assert_refused(proc: subprocess.CompletedProcess, *needles: str) -> None:
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 2 and "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_hostile_homes_are_refused_and_nothing_is_written(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    cases = [
        ("", "--home: is empty"),
        (str(a_file), "is a file, not a folder"),
        (str(a_file / "below"), "lies below"),
    ]
    for home, needle in cases:
        for argv in (["knowledge", "list"], ["plan", "how is my mood?"], ["ask", "hi there"]):
            assert_refused(cli_bytes(*argv, "--home", home, cwd=tmp_path), needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # no ./store in the cwd
    assert a_file.read_text() == "not a folder"


def test_text_that_is_not_utf8_is_refused(healthcare_home: Path, tmp_path: Path) -> None:
    home = str(healthcare_home)
    assert_refused(cli_bytes("plan", b"heart rate \xff\xfe now", "--home", home),
                   "the request is not valid UTF-8")
    assert_refused(cli_bytes("plan", "lone \udc80 surrogate", "--home", home),
                   "the request is not valid UTF-8")
    assert_refused(cli_bytes("ask", "how is my mood?", "--thread", b"t\xff", "--home", home),
                   "--thread is not valid UTF-8")
    assert_refused(cli_bytes("knowledge", "list", "--home", b"/tmp/h\xff"), "not valid UTF-8")


def test_deep_and_huge_json_are_refused_naming_the_file(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    assert_refused(cli_bytes("offload", "solve", str(deep)), "deep.json", "nested too deeply")
    huge = tmp_path / "huge.json"
    with huge.open("w") as fh:
        fh.write('{"pad": "' + "x" * (17 * 1024 * 1024) + '"}')
    assert_refused(cli_bytes("offload", "solve", str(huge)), "huge.json", "limit")
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"name": "caf\xe9"}')
    assert_refused(cli_bytes("offload", "solve", str(latin)), "latin.json", "not UTF-8")


def test_a_read_only_home_serves_reads_and_refuses_writes(healthcare_home: Path) -> None:
    """Reads go through a private copy of the store; writes are refused in one line; the home's
    bytes do not change. As root, permissions do not bind: the commands run as `nobody`."""
    import hashlib
    import os
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="edgeai-ro-test-"))
    try:
        home = root / "home"
        shutil.copytree(healthcare_home, home)
        run_as: list[str] = []
        env = dict(os.environ)
        if os.geteuid() == 0:
            if shutil.which("setpriv") is None:
                pytest.skip("running as root without setpriv: cannot make a home read-only")
            run_as = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
            (root / "nobody").mkdir()
            os.chown(root / "nobody", 65534, 65534)
            env["HOME"] = str(root / "nobody")
        for p in [root, *root.rglob("*")]:
            if p.parent != root or p.name != "nobody":
                p.chmod(0o755 if p.is_dir() else 0o444)

        def digest() -> str:
            files = sorted(p for p in home.rglob("*") if p.is_file())
            return hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()

        before = digest()

        def cli(*argv: str) -> subprocess.CompletedProcess:
            return subprocess.run([*run_as, sys.executable, "-m", "edgeai.cli", *argv, "--home",
                                   str(home)], capture_output=True, timeout=300, check=False,
                                  env=env, cwd=root)

        for argv in (["knowledge", "list", "--json"], ["plan", "what is my heart rate?"]):
            proc = cli(*argv)
            assert proc.returncode == 0, proc.stderr.decode()
        assert "living-room-speaker" in cli("knowledge", "list", "--json").stdout.decode()
        for argv in (["ask", "what is my heart rate?"], ["knowledge", "remove", "smart-plug"]):
            assert_refused(cli(*argv), "read-only")
        assert digest() == before
    finally:
        for p in [root, *root.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("argv, needle", [
    (["fl", "auto", "", "--yes"], "request is empty"),
    (["fl", "auto", "train an image classifier", "--data", "nope", "--yes"], "unknown data set 'nope'"),
    (["fl", "auto", "train x", "--data", "cifar10:/nonexistent", "--yes"], "batches.meta does not exist"),
    (["fl", "auto", "train an image classifier"], "pass --yes"),
    (["fl", "run", "--config", "{bad"], "--config is not JSON"),
    (["fl", "run", "--config", '{"LEARNING_RATE": 9}'], "LEARNING_RATE = 9 is outside"),
    (["fl", "run", "--config", '{"OPTIMIZER": "lion"}'], "not one of"),
    (["bench", "fl", "--grid", "a,b"], "--grid"),
])
def test_bad_federated_learning_input_is_refused_before_anything_is_made(capsys, tmp_path: Path,
                                                                         argv, needle) -> None:
    home = tmp_path / "new-home"
    code, _, err = run(capsys, *argv, "--home", str(home))
    assert_one_line_error(code, err, needle)
    assert not home.exists()


def test_bad_training_options_on_ask_are_refused(capsys, healthcare_home: Path) -> None:
    code, _, err = run(capsys, "ask", "train an image classifier for my photos", "--fl",
                       '{"rounds": 0}', "--home", str(healthcare_home))
    assert_one_line_error(code, err, "--fl", "rounds")
