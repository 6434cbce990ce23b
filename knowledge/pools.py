"""The sample pools shipped under knowledge/samples/ and how to find a pool folder by name or path
(or every pool in a folder of pools, such as knowledge/heldout/)."""

from __future__ import annotations

from pathlib import Path

from edgeai.errors import UserInputError

SAMPLES_DIR = Path(__file__).with_name("samples")


def sample_pools() -> list[str]:
    return sorted(p.name for p in SAMPLES_DIR.iterdir() if (p / "manuals").is_dir())


def resolve_pool(name_or_path: str) -> Path:
    """A shipped pool name (healthcare, photo, ...) or any folder with manuals/ + requests.jsonl."""
    path = Path(name_or_path).expanduser()
    if not path.is_dir():
        path = SAMPLES_DIR / name_or_path
    if not (path / "manuals").is_dir():
        raise UserInputError(
            f"pool '{name_or_path}' is neither a shipped pool ({', '.join(sample_pools())}) "
            "nor a folder with manuals/"
        )
    return path


def expand_pools(names: list[str]) -> list[Path]:
    """Pool folders for names that are shipped pools, pool folders, or folders of pools
    (knowledge/heldout -> its twelve pools, sorted), in the order given, each once."""
    out: list[Path] = []
    for name in names:
        path = Path(name).expanduser()
        members = (
            sorted(p for p in path.iterdir() if (p / "manuals").is_dir())
            if path.is_dir() and not (path / "manuals").is_dir()
            else []
        )
        for pool in members or [resolve_pool(name)]:
            if pool not in out:
                out.append(pool)
    return out
