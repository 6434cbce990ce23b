"""Start-up of the command line: `--help` lists every command without importing any of them, and
the listing says what the commands' own modules say. (Speed itself is `edgeai bench startup`'s.)"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from edgeai.cli import BENCHES, COMMANDS, build_parser, main

HEAVY = ("torch", "numpy", "chromadb", "langgraph", "langchain_core", "transformers", "fastapi")


def listed(parser, *path: str) -> dict[str, str]:
    """name -> help line of the sub-commands under `path` (e.g. ("bench",))."""
    for name in path:
        parser = parser._subparsers._group_actions[0].choices[name]
    action = parser._subparsers._group_actions[0]
    return {a.dest: a.help for a in action._choices_actions}


def test_help_lines_are_the_modules_own() -> None:
    full = build_parser()  # every command module imported and registered by itself
    assert listed(full) == {"bench": listed(full)["bench"]} | {
        name: help_line for name, (_, help_line) in COMMANDS.items()
    }
    assert listed(full, "bench") == {name: help_line for name, (_, help_line) in BENCHES.items()}


def test_help_imports_no_heavy_library() -> None:
    script = textwrap.dedent(
        f"""
        import sys
        from edgeai.cli import main
        try:
            main(["--help"])
        except SystemExit as exc:
            assert exc.code == 0
        try:
            main(["bench", "--help"])
        except SystemExit as exc:
            assert exc.code == 0
        heavy = sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r}))
        assert heavy == [], heavy
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "knowledge" in proc.stdout and "startup" in proc.stdout


def test_a_chosen_command_still_parses_its_own_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["knowledge", "list", "--nope"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--nope" in err


def test_bench_startup_refuses_bad_repeats_before_building(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["bench", "startup", "--repeat", "x", "--home", str(tmp_path)])
    assert main(["bench", "startup", "--repeat", "0", "--home", str(tmp_path)]) == 2
    assert not (tmp_path / "bench").exists()
