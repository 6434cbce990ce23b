"""The sample pools shipped under knowledge/samples/ and how to find a pool folder by name or path."""

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
