"""The HTTP routes: the page, ``/api/predict``, ``/api/models``, ``/api/health``, ``/stream.mjpg`` and ``/study``.

No route takes a path from a client: models are picked by the names the
server gave them, and uploads are read into memory, checked and decoded there.
"""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel
from starlette.requests import ClientDisconnect

from aidentify import __version__
from aidentify.serve.errors import ApiError
from aidentify.serve.service import Service
from aidentify.serve.stream import MEDIA_TYPE
from aidentify.serve.uploads import ACCEPTED, parse_form, read_body

router = APIRouter()
T = TypeVar("T")


# ------------------------------------------------------------ documented shapes (for /docs)
class ErrorAnswer(BaseModel):
    error: str


class FaceAnswer(BaseModel):
    box: list[int]
    label: str
    confidence: float
    probabilities: dict[str, float]
    track: int


class ImageSize(BaseModel):
    width: int
    height: int


class PredictAnswer(BaseModel):
    model: str
    classes: list[str]
    image: ImageSize
    faces: list[FaceAnswer]
    timings_ms: dict[str, float]
    note: str | None = None  # only for an animation: which of its frames was labelled


class ModelAnswer(BaseModel):
    name: str
    classes: list[str]
    input_size: int
    format: str
    accuracy: dict[str, Any] | None


class ModelsAnswer(BaseModel):
    models: list[ModelAnswer]


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorAnswer} for code in codes}


PREDICT_FORM = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object",
            "required": ["image"],
            "properties": {
                "image": {"type": "string", "format": "binary",
                          "description": f"the photo: {', '.join(ACCEPTED)}"},
                "model": {"type": "string", "description": "a name from GET /api/models (default: default)"},
            },
        }}},
    },
}


def _service(request: Request) -> Service:
    return request.app.state.service


# ----------------------------------------------------------------------------------- routes
@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def index(request: Request) -> HTMLResponse:
    templates = request.app.state.templates
    feed = request.app.state.feed
    return templates.TemplateResponse(request, "index.html", {
        "version": __version__, "stream": feed is not None, "stream_name": feed.name if feed else ""})


@router.post("/api/predict", openapi_extra=PREDICT_FORM,
             responses={200: {"model": PredictAnswer}, **_errors(400, 404, 408, 413, 415, 422, 503)})
async def predict(request: Request) -> JSONResponse:
    """Every face in a photo: box (image pixels, x, y, w, h), label, confidence and all probabilities.

    Faces come largest first. 400: the image cannot be decoded, or the form is
    cut off; 404: unknown model; 408: the upload stalled; 413: over the upload
    size or pixel limit; 415: not a JPEG, PNG, WebP, BMP, GIF, TIFF, HEIC or AVIF;
    422: no ``image`` file; 503: busy (too many requests, or no worker free in
    time). Of an animation the first frame is labelled, and ``note`` says so.
    """
    service = _service(request)
    limit = int(service.config.limits.max_upload_mb * 2**20)
    body = await read_body(request.stream(), limit, request.headers.get("content-length"))
    parts = parse_form(body, request.headers.get("content-type"), limit)
    image = parts.get("image")
    if image is None:
        raise ApiError(422, "missing field 'image': send the photo as the form field 'image'")
    if not image.data:
        raise ApiError(400, "the uploaded image is empty")
    name = parts["model"].data.decode("utf-8", "replace").strip() if "model" in parts else None
    service.model(name)  # 404 before any work
    work = service.predict(bytes(image.data), name)
    return JSONResponse(await unless_client_leaves(request, work, service.pool.queue))


async def unless_client_leaves(request: Request, work: Awaitable[T], counts: dict[str, int]) -> T:
    """``work``'s result; cancelled (and ``ClientDisconnect`` raised) if the client hangs up first.

    A client that left before its photo reached a worker costs nothing: its
    work is dropped while it waits (see ``WorkerPool.run``). The body has been
    read, so the next thing uvicorn can tell the app is ``http.disconnect``.
    ``counts["dropped"]`` counts work dropped here before it started.
    """
    if await request.is_disconnected():
        if inspect.iscoroutine(work):
            work.close()  # never started
        counts["dropped"] += 1
        raise ClientDisconnect()
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():
            task.cancel()
        gone.cancel()
    if task.cancelled() or not task.done():
        raise ClientDisconnect()
    return task.result()


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


@router.get("/api/models", response_model=ModelsAnswer)
async def models(request: Request) -> dict[str, Any]:
    """The models this server can use, the shipped default first; pick one by ``name``."""
    return {"models": [model.describe() for model in _service(request).models.values()]}


@router.get("/api/health")
async def health(request: Request) -> dict[str, Any]:
    """Whether the server is ready, what it has loaded, and its photo queue.

    ``queue``: photos waiting for a worker and running in one now; since the
    start, photos dropped because their client left before they ran, and
    photos refused (503) after waiting ``limits.queue_timeout_s``.
    """
    service = _service(request)
    feed = request.app.state.feed
    return {"status": "ready", "version": __version__, **service.describe(),
            "stream": feed.describe() if feed is not None else None, "queue": dict(service.pool.queue),
            "uptime_s": round(time.time() - service.started, 1)}


@router.get("/study", response_class=HTMLResponse, responses=_errors(404))
async def study(request: Request) -> HTMLResponse:
    """The report of the finished study given with ``--study FOLDER`` (its ``report.html``, read anew
    each time, so a study analysed again shows its new report)."""
    folder = request.app.state.service.config.study
    if folder is None:
        raise ApiError(404, "no study: start the server with --study FOLDER (an `aidentify analyze` --out folder)")
    try:
        page = (Path(folder) / "report.html").read_text(encoding="utf-8")
    except OSError:
        raise ApiError(404, f"no report in {folder}: run `aidentify analyze ... --out {folder}` first") from None
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


@router.get("/stream.mjpg", responses={200: {"content": {MEDIA_TYPE: {}}}, **_errors(404)})
async def stream(request: Request) -> StreamingResponse:
    """The annotated feed of ``--camera`` / ``--source`` as MJPEG (show it in an ``<img>``)."""
    feed = request.app.state.feed
    if feed is None:
        raise ApiError(404, "no stream: start the server with --camera INDEX or --source PATH_OR_URL")
    return StreamingResponse(feed.mjpeg(), media_type=MEDIA_TYPE, headers={"Cache-Control": "no-store"})
