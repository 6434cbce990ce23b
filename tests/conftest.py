"""Shared fixtures: the sample pools' homes and planners, built once per session.

The environment every test runs in (offline: no hub, no telemetry) is set with a session-wide
MonkeyPatch when pytest configures, before any test module is imported, and undone at the end.
The suite runs on pytest-xdist workers (pyproject's addopts: one per core, at most four); the
cores are shared out between them (OMP_NUM_THREADS, inherited by the workers and the processes
tests start), because two workers each running torch on every core was slower than one
(measured on 2 cores: 188 s with two threads per worker, 153 s with one, 252 s without xdist).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from edgeai.knowledge.pools import SAMPLES_DIR

OFFLINE = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "FLWR_TELEMETRY_ENABLED": "0",
    "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
    "ANONYMIZED_TELEMETRY": "False",
    "TOKENIZERS_PARALLELISM": "false",
}
_ENV = pytest.MonkeyPatch()


def _workers(config: pytest.Config) -> int:
    """How many xdist workers this run starts (0: none, the tests run in this process)."""
    n = getattr(config.option, "numprocesses", None)
    if n in ("auto", "logical"):
        n = os.cpu_count() or 1
    n = min(int(n or 0), getattr(config.option, "maxprocesses", None) or int(n or 0))
    return 0 if config.getoption("dist", "no") == "no" else n


def pytest_configure(config: pytest.Config) -> None:
    for key, value in OFFLINE.items():
        _ENV.setenv(key, value)
    workers = _workers(config)
    if workers > 1 and "PYTEST_XDIST_WORKER" not in os.environ and "OMP_NUM_THREADS" not in os.environ:
        _ENV.setenv("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))


def pytest_unconfigure(config: pytest.Config) -> None:
    _ENV.undo()


def _pool_home(factory: pytest.TempPathFactory, pool: str) -> Path:
    from edgeai.agents.planning.units import build_units
    from edgeai.knowledge.store import add_to_home

    home = factory.mktemp(f"{pool}-home")
    add_to_home(home, [SAMPLES_DIR / pool / "manuals"], build_units)
    return home


@pytest.fixture(scope="session")
def samples() -> Path:
    """The shipped sample pools' folder (knowledge/samples)."""
    return SAMPLES_DIR


@pytest.fixture(scope="session")
def healthcare_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data home holding the shipped healthcare pool, built once per session. Tests may plan
    with it (the planner caches embeddings there) but change nothing else: use `fresh_home`."""
    return _pool_home(tmp_path_factory, "healthcare")


@pytest.fixture(scope="session")
def photo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same for the photo pool."""
    return _pool_home(tmp_path_factory, "photo")


@pytest.fixture(scope="session")
def healthcare_planner(healthcare_home: Path):
    from edgeai.agents.planning import EmbeddedPlanner
    from edgeai.knowledge.store import open_store

    return EmbeddedPlanner(open_store(healthcare_home))


@pytest.fixture(scope="session")
def photo_planner(photo_home: Path):
    from edgeai.agents.planning import EmbeddedPlanner
    from edgeai.knowledge.store import open_store

    return EmbeddedPlanner(open_store(photo_home))


@pytest.fixture
def fresh_home(tmp_path: Path, healthcare_home: Path) -> Path:
    """A private copy of the healthcare home that a test may write to."""
    home = tmp_path / "home"
    shutil.copytree(healthcare_home, home)
    return home
