"""Shared fixtures; every test runs offline (no hub, no telemetry)."""

from __future__ import annotations

import os

for _key, _value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "FLWR_TELEMETRY_ENABLED": "0",
    "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
    "ANONYMIZED_TELEMETRY": "False",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ[_key] = _value


import shutil
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parents[1] / "knowledge" / "samples"


@pytest.fixture(scope="session")
def healthcare_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data home holding the shipped healthcare pool, built once per test session (read-only use)."""
    from edgeai.agents.planning.units import build_units
    from edgeai.knowledge.store import add_to_home

    home = tmp_path_factory.mktemp("healthcare-home")
    add_to_home(home, [SAMPLES / "healthcare" / "manuals"], build_units)
    return home


@pytest.fixture
def fresh_home(tmp_path: Path, healthcare_home: Path) -> Path:
    """A private copy of the healthcare home that a test may write to."""
    home = tmp_path / "home"
    shutil.copytree(healthcare_home, home)
    return home
