"""Device manuals (../shared/specs/planning.md): Markdown with YAML front matter -> typed entries + passages."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Literal

import yaml
from edgeai.errors import ManualError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)(.*)\Z", re.DOTALL)


class ModelEntry(BaseModel):
    """One pool entry: {AI model name; associated equipment; description of its function}."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(pattern=ID_PATTERN)
    task: str = Field(min_length=1)
    inputs: list[str] = Field(default_factory=list)
    outputs: list[str] = Field(default_factory=list)
    description: str = Field(min_length=1)
    input_bits: float | None = Field(None, gt=0, description="bits of one input (offloading)")
    cycles: float | None = Field(None, gt=0, description="CPU cycles of one inference (offloading)")

    @field_validator("inputs", "outputs")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        for item in value:
            if not isinstance(item, str) or not item.strip():
                raise ValueError("must be a list of non-empty names")
        return [item.strip() for item in value]


class DeviceManual(BaseModel):
    """A device (or server) and the models it hosts, as its vendor's manual describes it."""

    model_config = ConfigDict(extra="allow")

    device: str = Field(pattern=ID_PATTERN)
    kind: str = Field(min_length=1)
    location: str | None = None
    tier: Literal["client", "edge", "cloud"]
    compute_hz: float | None = Field(None, gt=0)
    uplink_bps: float | None = Field(None, gt=0)
    models: list[ModelEntry] = Field(default_factory=list)

    def front_matter(self) -> dict:
        return self.model_dump(mode="json", exclude_none=True)


class Manual(BaseModel):
    """A parsed manual file: the front matter entry, its free-text body and where it came from."""

    entry: DeviceManual
    body: str
    source: str
    sha256: str = ""
    """digest of the file's text as read (provenance: which version of the manual a plan used)"""


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_manual_text(text: str, source: str) -> Manual:
    """Parse one manual; every failure names the file and the field."""
    match = _FRONT_MATTER.match(text.lstrip("\ufeff"))
    if not match:
        raise ManualError(
            source, "front matter", "must start with a '---' YAML block closed by '---'"
        )
    raw, body = match.groups()
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ManualError(source, "front matter", f"bad YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise ManualError(
            source, "front matter", "must be a YAML mapping (device:, kind:, tier:, models:)"
        )
    try:
        entry = DeviceManual.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = _loc(first["loc"]) or "front matter"
        if first["type"] == "missing":
            raise ManualError(source, field, "missing") from None
        raise ManualError(source, field, first["msg"]) from None
    names = [m.name for m in entry.models]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ManualError(source, f"models[{i}].name", f"model id '{name}' appears twice")
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return Manual(entry=entry, body=body.strip(), source=source, sha256=digest)


def parse_manual(path: Path) -> Manual:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ManualError(str(path), "file", "not UTF-8 text") from None
    except OSError as exc:
        raise ManualError(str(path), "file", exc.strerror or str(exc)) from None
    return parse_manual_text(text, str(path))


def collect_manual_files(paths: list[Path]) -> list[Path]:
    """Files named on the command line, and every *.md under named folders (a pool's manuals/)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            inner = path / "manuals" if (path / "manuals").is_dir() else path
            found = sorted(p for p in inner.rglob("*.md") if p.name.lower() != "readme.md")
            if not found:
                raise ManualError(str(path), "path", "folder holds no manual (*.md)")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise ManualError(str(path), "path", "no such file or folder")
    return files


def split_passages(body: str, max_words: int = 70) -> list[str]:
    """Split a manual body into retrieval passages: paragraphs, long ones cut at sentence ends.

    A heading is kept in front of the paragraphs below it so a passage keeps its context.
    """
    passages: list[str] = []
    heading = ""
    for block in re.split(r"\n\s*\n", body):
        block = block.strip()
        if not block:
            continue
        lines = block.splitlines()
        if lines[0].lstrip().startswith("#"):
            heading = lines[0].lstrip("# ").strip()
            block = "\n".join(lines[1:]).strip()
            if not block:
                continue
        text = " ".join(line.strip(" -*\t") for line in block.splitlines())
        sentences = re.split(r"(?<=[.!?])\s+", text)
        chunk: list[str] = []
        for sentence in sentences:
            if chunk and len(" ".join(chunk + [sentence]).split()) > max_words:
                passages.append(_with_heading(heading, " ".join(chunk)))
                chunk = []
            chunk.append(sentence)
        if chunk:
            passages.append(_with_heading(heading, " ".join(chunk)))
    return passages


def _with_heading(heading: str, text: str) -> str:
    return f"{heading}: {text}" if heading else text


def manual_paragraphs(body: str) -> list[tuple[str, list[str]]]:
    """(paragraph text, its bullets or sentences) per block of a manual body, headings dropped."""
    return [(text, items) for _, text, items in manual_sections(body)]


def manual_sections(body: str) -> list[tuple[tuple[str, ...], str, list[str]]]:
    """(headings above it, outermost first; paragraph text; its bullets or sentences) per block
    of a manual body: `manual_paragraphs` with the section each paragraph sits in, so that what
    a model's own section says ("### ocr-reader ... It does not translate") can be told from
    what the device's general text says."""
    out: list[tuple[tuple[str, ...], str, list[str]]] = []
    stack: list[tuple[int, str]] = []  # (level, heading) of the open sections
    for block in re.split(r"\n\s*\n", body):
        lines = [ln.strip() for ln in block.strip().splitlines() if ln.strip()]
        for ln in lines:
            if ln.startswith("#"):
                level = len(ln) - len(ln.lstrip("#"))
                stack = [h for h in stack if h[0] < level] + [(level, ln.lstrip("# ").strip())]
        lines = [ln for ln in lines if not ln.startswith("#")]
        if not lines:
            continue
        text = " ".join(re.sub(r"^([-*+]|\d+[.)])\s+", "", ln) for ln in lines)
        if all(re.match(r"^([-*+]|\d+[.)])\s", ln) for ln in lines):
            items = [re.sub(r"^([-*+]|\d+[.)])\s+", "", ln) for ln in lines]
        else:
            items = re.split(r"(?<=[.!?])\s+", text)
        items = [re.sub(r"[*_`]+", "", item).strip() for item in items]
        out.append((tuple(h for _, h in stack), re.sub(r"[*_`]+", "", text),
                    [s for s in items if len(s.split()) >= 3]))
    return out


def manual_sentences(body: str) -> list[str]:
    """Bullets and sentences of a manual body (headings dropped), the finest retrieval units."""
    return [s for _, items in manual_paragraphs(body) for s in items]


def humanize(identifier: str) -> str:
    """`heart_rate_bpm` -> `heart rate bpm`; `mood-from-apps` -> `mood from apps`."""
    return re.sub(r"[_\-.]+", " ", identifier).strip()
