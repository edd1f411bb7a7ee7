"""The HTTP routes: the page, ``/api/predict``, ``/api/models``, ``/api/health`` and ``/stream.mjpg``.

No route takes a path from a client: models are picked by the names the
server gave them, and uploads are read into memory, checked and decoded there.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel

from aidentify import __version__
from aidentify.serve.errors import ApiError
from aidentify.serve.service import Service
from aidentify.serve.stream import MEDIA_TYPE
from aidentify.serve.uploads import ACCEPTED, parse_form, read_body

router = APIRouter()


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
             responses={200: {"model": PredictAnswer}, **_errors(400, 404, 413, 415, 422)})
async def predict(request: Request) -> JSONResponse:
    """Every face in a photo: box (image pixels, x, y, w, h), label, confidence and all probabilities.

    Faces come largest first. 400: the image cannot be decoded; 404: unknown
    model; 413: over the upload size or pixel limit; 415: not a JPEG, PNG,
    WebP, BMP, GIF, TIFF, HEIC or AVIF; 422: no ``image`` field. Of an animation
    the first frame is labelled, and ``note`` says so.
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
    return JSONResponse(await service.predict(bytes(image.data), name))


@router.get("/api/models", response_model=ModelsAnswer)
async def models(request: Request) -> dict[str, Any]:
    """The models this server can use, the shipped default first; pick one by ``name``."""
    return {"models": [model.describe() for model in _service(request).models.values()]}


@router.get("/api/health")
async def health(request: Request) -> dict[str, Any]:
    """Whether the server is ready, and what it has loaded."""
    service = _service(request)
    feed = request.app.state.feed
    return {"status": "ready", "version": __version__, **service.describe(),
            "stream": feed.describe() if feed is not None else None,
            "uptime_s": round(time.time() - service.started, 1)}


@router.get("/stream.mjpg", responses={200: {"content": {MEDIA_TYPE: {}}}, **_errors(404)})
async def stream(request: Request) -> StreamingResponse:
    """The annotated feed of ``--camera`` / ``--source`` as MJPEG (show it in an ``<img>``)."""
    feed = request.app.state.feed
    if feed is None:
        raise ApiError(404, "no stream: start the server with --camera INDEX or --source PATH_OR_URL")
    return StreamingResponse(feed.mjpeg(), media_type=MEDIA_TYPE, headers={"Cache-Control": "no-store"})
