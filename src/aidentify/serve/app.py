"""``create_app(config)``: the FastAPI app of ``aidentify serve``.

Models and detectors are loaded here, once, before the server accepts a
request (a bad ``--model`` or ``--source`` fails at start-up with one line);
the stream's reader thread starts and stops with the app. The page and its
script and style ship inside the package (no CDN: it works offline).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from aidentify import __version__
from aidentify.config import ServeConfig
from aidentify.serve import live_ws, routes
from aidentify.serve.errors import install_error_handlers
from aidentify.serve.service import Service
from aidentify.serve.stream import StreamFeed

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
TEMPLATE_DIR = HERE / "templates"


def create_app(config: ServeConfig | None = None) -> FastAPI:
    """The app, with its models, detectors and (with ``camera``/``source``) its stream ready."""
    config = config or ServeConfig()
    service = Service(config)
    feed = None
    if config.camera is not None or config.source is not None:
        model = service.model(None)
        try:
            feed = StreamFeed.open(
                config.camera, config.source,
                lambda stills: service.still_pipeline(model) if stills else service.video_pipeline(model),
                config.stream, show_fps=config.draw.fps)
        except BaseException:
            service.close()
            raise

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if feed is not None:
            feed.start()
        try:
            yield
        finally:
            if feed is not None:
                feed.stop()
            service.close()

    # FastAPIOffline: FastAPI with /docs (Swagger UI) served from the package, not a CDN, so the API's
    # docs work with no network, as everything else here does (no /redoc: its bundle fetches a logo)
    app = FastAPIOffline(title="AIdentify", version=__version__, lifespan=lifespan, redoc_url=None,
                         description="Facial-emotion recognition: every face in a photo or camera frame, labelled. "
                                     "Errors are JSON `{\"error\": \"...\"}`.")
    app.state.service = service
    app.state.feed = feed
    app.state.templates = Jinja2Templates(directory=str(TEMPLATE_DIR))
    install_error_handlers(app)
    app.include_router(routes.router)
    app.include_router(live_ws.router)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    return app
