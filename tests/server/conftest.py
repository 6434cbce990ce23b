"""The Agent Server API served for real: one uvicorn server per session on a free loopback port,
over a private copy of the healthcare home, with an API token; the real `langgraph_sdk` drives it."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from edgeai.config import Settings
from edgeai.server import create_app
from edgeai.tools.llm.server import serve_in_thread

TOKEN = "test-token-0123456789"


def wait_ready(url: str, timeout_s: float = 600) -> None:
    """Until /ok says ready (the warm-up is paid once per server, not by the first test)."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=url, timeout=30) as c:
        while (r := c.get("/ok")).json().get("status") == "warming up":
            assert time.monotonic() < deadline, "the server never became ready"
            time.sleep(0.2)
        assert r.status_code == 200, r.text


@pytest.fixture(scope="session")
def api_home(healthcare_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("api") / "home"
    shutil.copytree(healthcare_home, home)
    return home


@pytest.fixture(scope="session")
def api_url(api_home: Path) -> Iterator[str]:
    with serve_in_thread(create_app(Settings(home=api_home), token=TOKEN)) as url:
        wait_ready(url)
        yield url


@pytest.fixture(scope="session")
def api_token() -> str:
    return TOKEN


@pytest.fixture(scope="session")
def ready():
    """`wait_ready(url)` for tests that start their own server."""
    return wait_ready


@pytest.fixture(scope="session")
def client(api_url: str):
    from langgraph_sdk import get_sync_client

    return get_sync_client(url=api_url, api_key=TOKEN)
