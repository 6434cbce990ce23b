"""The chat page's HTTP edge: the page itself (`/`, `/static/...`, package files, no build step)
and `/files/...`, the one route that serves run artifacts (learning-curve plots and the like).

The page is plain HTML + JavaScript that talks to the same Agent Server routes `langgraph_sdk`
uses (graphs/api/routes.py); it holds no secret, so `/` and `/static/` need no token (server.py
leaves them open) and the page sends the token, when one is set, on every API call. Artifacts are
data: `/files/` needs the token like every API route, and serves only image files that lie, after
symlinks are resolved, under the data home's `runs/` or `bench/` folders. Anything else is 404
with a message that names neither the path asked for nor this machine's.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse

STATIC = Path(__file__).parent / "static"
PAGE_FILES = {"chat.js": "text/javascript", "chat.css": "text/css"}
ARTIFACT_ROOTS = ("runs", "bench")
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
               ".gif": "image/gif", ".webp": "image/webp"}  # no SVG: it can carry script
# the page loads only its own files; images also as blob: URLs (fetched with the token)
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
            "img-src 'self' blob: data:; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'")
ARTIFACT_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
                    "Content-Security-Policy": "default-src 'none'; sandbox"}

chat = APIRouter(tags=["chat"], include_in_schema=False)


class ArtifactNotFound(LookupError):
    """No servable artifact under that name (outside runs/ and bench/, not an image, absent)."""


def artifact_path(home: Path, name: str) -> Path:
    """The file `name` (relative to the data home, '/'-separated) names, if it may be served.

    Refused: absolute names, '..' or hidden parts, backslashes, NULs, a first folder other than
    runs/ or bench/, a suffix that is not an image's, and any name whose resolved path (symlinks
    followed) leaves that folder or is not a regular file.
    """
    if not name or "\\" in name or "\x00" in name:
        raise ArtifactNotFound(name)
    parts = PurePosixPath(name).parts
    if (len(parts) < 2 or parts[0] not in ARTIFACT_ROOTS
            or any(p in ("", ".", "..") or p.startswith(".") for p in parts)):
        raise ArtifactNotFound(name)
    if PurePosixPath(name).suffix.lower() not in IMAGE_TYPES:
        raise ArtifactNotFound(name)
    root = (home / parts[0]).resolve()
    target = home.joinpath(*parts).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        raise ArtifactNotFound(name)
    return target


@chat.get("/")
def page() -> FileResponse:
    """The chat page."""
    return FileResponse(STATIC / "index.html", media_type="text/html",
                        headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache",
                                 "X-Content-Type-Options": "nosniff"})


@chat.get("/static/{name}")
def page_file(name: str) -> FileResponse:
    """The page's script and style sheet (only the files the page is made of)."""
    if name not in PAGE_FILES:
        raise HTTPException(404, "no such page file")
    return FileResponse(STATIC / name, media_type=PAGE_FILES[name],
                        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})


@chat.get("/files/{name:path}")
def artifact(name: str, request: Request) -> FileResponse:
    """An image a run or a benchmark wrote under the data home (runs/..., bench/...)."""
    try:
        path = artifact_path(request.app.state.settings.home, name)
    except ArtifactNotFound:
        raise HTTPException(404, "no such artifact (only images under runs/ and bench/ of the "
                                 "data home are served)") from None
    return FileResponse(path, media_type=IMAGE_TYPES[path.suffix.lower()],
                        headers=ARTIFACT_HEADERS)
