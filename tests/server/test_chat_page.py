"""The chat page at `/`, driven in headless Chromium by Playwright against the real server (real
graph, store and checkpointer, with an API token): a request streams its steps (plan table,
offloading decision, model outputs) and its answer, the thread comes back from the sidebar, a
training request pauses for approval and Reject trains nothing, while Approve (on a server
of its own) trains, registers and answers with the new model; plots are drawn from `/files/`,
which serves only images under the data home's runs/ and bench/ folders.

Needs Playwright for Python and Debian's chromium (never `playwright install`: nothing downloads):
    pip install playwright && apt-get install -y chromium
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

HEART = "What's my heart rate right now?"
TRAIN_REQUEST = "recognise the handwritten digit in my image"  # no image model in this home
DIGITS = {"data": "digits", "clients": 2, "rounds": 1, "trials": 1, "n_train": 300}
STEPS = ["plan_request", "choose_models", "place_work", "run_models", "respond"]
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
INSTALL = "pip install playwright && apt-get install -y chromium"
WAIT_MS = 600_000  # a limit for slow machines, not a claim about speed


def _chromium() -> str | None:
    """Debian's chromium ($EDGEAI_CHROMIUM names another build); None when there is none."""
    found = os.environ.get("EDGEAI_CHROMIUM") or shutil.which("chromium") \
        or shutil.which("chromium-browser")
    return found if found and Path(found).is_file() else None


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip(f"playwright is not installed: {INSTALL}")
    executable = _chromium()
    if executable is None:
        pytest.skip(f"no chromium found: {INSTALL}")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True)
        yield browser
        browser.close()


def _open(browser, url: str, token: str):
    """(context, page): the chat page with the token typed into its Settings, as a person would."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(url + "/")
    page.click("#settings summary")
    page.fill("#token", token)
    page.press("#token", "Tab")  # `change`: stored in sessionStorage, the thread list reloads
    page.click("#settings summary")
    return context, page


@pytest.fixture
def page(browser, api_url: str, api_token: str):
    """The chat page of the session's server."""
    context, page = _open(browser, api_url, api_token)
    yield page
    context.close()


@pytest.fixture(scope="module")
def plot(api_home: Path) -> str:
    """A small PNG where run artifacts live (not under runs/fl: no training trial is faked)."""
    path = api_home / "runs" / "chat-test" / "curve.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 20), (30, 120, 200)).save(path)
    return "runs/chat-test/curve.png"


def _nodes(page) -> list[str]:
    return page.eval_on_selector_all(".turn:last-child .step[data-node]",
                                     "cards => cards.map(c => c.dataset.node)")


def test_a_request_streams_its_steps_and_answer_and_the_thread_reloads(
    page, tmp_path: Path
) -> None:
    page.fill("#request", HEART)
    page.click("#send")
    answer = page.locator(".turn:last-child .msg.ai")
    answer.wait_for()
    assert "heart" in answer.inner_text().lower()
    assert _nodes(page) == STEPS
    plan = page.locator(".step[data-node=plan_request] table")
    assert plan.locator("th").all_inner_texts()[:4] == ["#", "sub-task", "model", "device"]
    assert plan.locator("tr").count() >= 2  # a header and at least one sub-task
    placed = page.locator(".step[data-node=place_work]")
    assert placed.locator("td").count() > 0
    assert "runs on" in placed.locator("th").all_inner_texts()
    objective = placed.locator(".objective")
    if objective.count():  # an offloading decision was made: its objective value is shown
        assert objective.inner_text().startswith("objective min_latency = ")
    assert page.locator(".step[data-node=run_models] .line").count() >= 1
    assert page.locator("#status").inner_text() == "done"
    page.screenshot(path=str(tmp_path / "chat-answer.png"), full_page=True)

    thread = page.evaluate("edgeai.current.threadId")
    item = page.locator(f"#threads li[data-thread-id='{thread}']")
    assert item.inner_text().startswith(HEART)
    page.reload()  # the token stays in this tab's sessionStorage; the thread loads from the list
    page.locator(f"#threads li[data-thread-id='{thread}']").click()
    page.locator(".msg.ai").wait_for()
    assert page.locator(".msg.human").inner_text() == HEART
    assert _nodes(page) == STEPS
    assert "heart" in page.locator(".msg.ai").inner_text().lower()


def _ask_to_train(page) -> None:
    """Send the training request with the small FL options; wait for the approval question."""
    import json

    page.click("#settings summary")
    page.fill("#options", json.dumps({"fl": DIGITS}))
    page.click("#settings summary")
    page.fill("#request", TRAIN_REQUEST)
    page.click("#send")
    page.locator("#approval").wait_for(state="visible")


def test_a_training_request_pauses_for_approval_and_reject_trains_nothing(
    page, api_home: Path, tmp_path: Path
) -> None:
    _ask_to_train(page)
    assert "generated federated-learning code" in page.locator("#approval-question").inner_text()
    assert _nodes(page) == ["plan_request", "prepare_training", "generate_code"]
    assert page.locator("#status").inner_text() == "waiting for your approval"
    thread = page.evaluate("edgeai.current.threadId")
    badge = page.locator(f"#threads li[data-thread-id='{thread}'] .badge")
    assert badge.inner_text() == "interrupted"
    shot = tmp_path / "chat-approval.png"
    page.screenshot(path=str(shot), full_page=True)
    if DOCS_IMG.parent.is_dir():  # the README's picture of the page
        DOCS_IMG.mkdir(exist_ok=True)
        shutil.copyfile(shot, DOCS_IMG / "chat.png")

    page.click("#reject")
    answer = page.locator(".turn:last-child .msg.ai")
    answer.wait_for()
    assert "not approved" in answer.inner_text()
    assert page.locator("#approval").is_hidden()
    assert _nodes(page)[-2:] == ["approve_code", "report_missing"]
    assert "not approved" in page.locator(".step[data-node=approve_code]").inner_text()
    assert not list((api_home / "runs" / "fl").glob("*/trial-*"))  # nothing trained
    page.screenshot(path=str(tmp_path / "chat-rejected.png"), full_page=True)


def test_a_step_plot_is_drawn_from_the_data_home_and_nothing_else(page, plot: str) -> None:
    page.evaluate("""name => { edgeai.renderStep({node: "run_training", seconds: 1.5,
        images: [name], trial: {trial: 1, status: "ok", val_accuracy: 0.9, rounds: 1}}); }""", plot)
    img = page.locator(".step[data-node=run_training] img")
    img.wait_for()
    assert img.get_attribute("src").startswith("blob:")  # fetched with the token
    assert page.evaluate("img => img.naturalWidth", img.element_handle()) == 40
    outside = page.evaluate("""async () => {
        const card = edgeai.renderStep({node: "run_training", trial: {}, images: []});
        return [await edgeai.showImage(card, "../checkpoints.sqlite"),
                await edgeai.showImage(card, "store/x.png"),
                await edgeai.showImage(card, "runs/chat-test/missing.png")];
    }""")
    assert outside == [None, None, None]


def test_files_serves_only_images_under_runs_and_bench(
    api_url: str, api_token: str, api_home: Path, plot: str
) -> None:
    from edgeai.graphs.api.chat import ArtifactNotFound, artifact_path

    secret = api_home / "secret.png"
    Image.new("RGB", (4, 4)).save(secret)
    (api_home / "runs" / "chat-test" / "notes.txt").write_text("not an image")
    escape = api_home / "runs" / "chat-test" / "escape.png"
    if not escape.is_symlink():
        escape.symlink_to(secret)
    auth = {"Authorization": f"Bearer {api_token}"}
    with httpx.Client(base_url=api_url, timeout=60) as c:
        assert c.get(f"/files/{plot}").status_code == 401  # artifacts are data: token needed
        served = c.get(f"/files/{plot}", headers=auth)
        assert served.status_code == 200 and served.headers["content-type"] == "image/png"
        assert served.content == (api_home / plot).read_bytes()
        assert served.headers["x-content-type-options"] == "nosniff"
        for name in ["secret.png", "checkpoints.sqlite", "runs/chat-test/notes.txt",
                     "runs/chat-test/escape.png", "runs/%2e%2e/secret.png",
                     "runs/chat-test/%2e%2e/%2e%2e/secret.png", "%2fetc%2fpasswd",
                     "runs/chat-test/..%5c..%5csecret.png", "runs/.hidden/x.png", "runs"]:
            refused = c.get(f"/files/{name}", headers=auth)
            assert refused.status_code == 404, (name, refused.status_code)
            assert str(api_home) not in refused.text
        page = c.get("/")  # the page itself holds no secret: no token needed
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert c.get("/static/chat.js").status_code == 200
        assert c.get("/static/nothing.js").status_code == 404
        assert c.get("/static/%2e%2e/openapi.json").status_code in (401, 404)
    for name in ["runs/../secret.png", "/etc/passwd", "runs/chat-test/escape.png", "bench",
                 "runs/chat-test/notes.txt", "runs\\..\\secret.png", "runs/a\x00.png"]:
        with pytest.raises(ArtifactNotFound):
            artifact_path(api_home, name)
    assert artifact_path(api_home, plot) == (api_home / plot).resolve()


@pytest.fixture
def private_page(browser, healthcare_home: Path, tmp_path: Path, ready):
    """The chat page of a server of its own over a private copy of the healthcare home (an
    approved training registers a model: the session server's home must keep none)."""
    from edgeai.config import Settings
    from edgeai.server import create_app
    from edgeai.tools.llm.server import serve_in_thread

    home = tmp_path / "home"
    shutil.copytree(healthcare_home, home)
    token = "private-page-token-0123456789"
    with serve_in_thread(create_app(Settings(home=home), token=token)) as url:
        ready(url)
        context, page = _open(browser, url, token)
        yield page, home
        context.close()


@pytest.mark.slow
def test_approve_runs_the_training_and_the_answer_uses_the_new_model(
    private_page, tmp_path: Path
) -> None:
    page, home = private_page
    _ask_to_train(page)
    page.click("#approve")
    answer = page.locator(".turn:last-child .msg.ai")
    answer.wait_for()
    assert page.locator("#approval").is_hidden()
    nodes = _nodes(page)
    assert "run_training" in nodes and "register_model" in nodes and nodes[-1] == "respond"
    assert "fl-digits" in answer.inner_text()
    assert list((home / "runs" / "fl").glob("*/trial-1/curve.csv"))  # trained in the sandbox
    page.screenshot(path=str(tmp_path / "chat-approved.png"), full_page=True)
