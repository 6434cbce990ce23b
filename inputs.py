"""Checks every outside input passes before use: text (strict UTF-8, no lone surrogates), JSON
and JSON-lines files (size, encoding, nesting) and the data home (given, a folder, not below a
file, writable when the command writes).

Each check raises one `UserInputError` line naming the input, so the CLI exits 2 and the server
answers 4xx without a traceback, and nothing is written before the inputs are known good. Kept
light (standard library only): the CLI and the server import it before anything else.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from edgeai.errors import UserInputError

MAX_JSON_BYTES = 16 * 1024 * 1024
"""Largest JSON file read (an offloading instance of 10,000 UEs is ~3 MB)."""


def check_text(value: str, what: str) -> str:
    """`value` if it is text that encodes as UTF-8; a lone surrogate (what Python makes of
    invalid UTF-8 bytes in argv, or a JSON "\\ud800") is refused, naming its position."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UserInputError(
            f"{what} is not valid UTF-8 text (an invalid byte or lone surrogate at character "
            f"{exc.start})"
        ) from None
    return value


def read_json_file(path: Path, what: str = "") -> Any:
    """Parse a JSON file; one line naming the file for a missing or oversized file, bytes that
    are not UTF-8, bad JSON, or nesting deeper than the parser can follow."""
    label = what or str(path)
    text = _read_text(Path(path), label, "a JSON file")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserInputError(
            f"{label}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise UserInputError(f"{label}: JSON nested too deeply to read") from None


def read_jsonl_file(path: Path, what: str = "") -> list[tuple[int, Any]]:
    """The values of a JSON-lines file with their line numbers (blank lines skipped); a line
    that is not JSON is one line naming the file and the line."""
    label = what or str(path)
    out = []
    for number, line in enumerate(_read_text(Path(path), label, "a JSON-lines file").splitlines(),
                                  start=1):
        if not line.strip():
            continue
        try:
            out.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise UserInputError(
                f"{label}:{number}: not valid JSON: {exc.msg} at column {exc.colno}"
            ) from None
        except RecursionError:
            raise UserInputError(f"{label}:{number}: JSON nested too deeply to read") from None
    return out


def _read_text(path: Path, label: str, kind: str) -> str:
    """The file's text, or one line for a missing, oversized, unreadable or non-UTF-8 file."""
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise UserInputError(
                f"{label}: {size:,} bytes; the limit is {MAX_JSON_BYTES:,} bytes of JSON"
            )
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserInputError(f"{label}: no such file") from None
    except IsADirectoryError:
        raise UserInputError(f"{label}: is a folder, not {kind}") from None
    except OSError as exc:
        raise UserInputError(f"{label}: cannot read: {exc.strerror}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserInputError(f"{label}: not UTF-8 text (byte {exc.start})") from None


def check_home(home: Path, *, writes: bool) -> Path:
    """The data home as given, refused with one line when it is empty, a file, below a file,
    or (for a command that writes) not writable. A home that does not exist yet passes: the
    commands that need one say so themselves, the ones that create one create it."""
    text = check_text(str(home), "--home")
    if not text.strip():
        raise UserInputError("--home is empty: name a folder (or leave it out for the default)")
    home = Path(home).expanduser()
    if home.exists() and not home.is_dir():
        raise UserInputError(f"data home '{home}' is a file, not a folder")
    for parent in home.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserInputError(f"data home '{home}' lies below '{parent}', which is a file")
            break
    if writes:
        target = home if home.exists() else next((p for p in home.parents if p.exists()), None)
        if target is not None and not os.access(target, os.W_OK | os.X_OK):
            raise UserInputError(
                f"data home '{home}' is read-only"
                + ("" if target == home else f" (its folder '{target}' is)")
                + ": this command writes there"
            )
    return home
