"""Settings of the stages that use a trained model: evaluate, live and serve."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from aidentify.config.base import StrictModel, TestTimeZooms
from aidentify.config.faces import BlazeFaceSettings, FaceDetectorSettings, MtcnnSettings


# --------------------------------------------------------------------- evaluate
class EvaluateConfig(StrictModel):
    data_dir: Path = Path("data/prepared")
    split: Literal["train", "val", "test"] = "test"
    detect: Literal["auto", "always", "never", "fallback"] = "auto"
    detector: Literal["auto", "recorded", "haar", "blazeface", "mtcnn"] = "auto"
    vote_rule: Literal["majority", "plurality"] = "majority"
    tta_flip: bool = False
    tta_zooms: TestTimeZooms = Field(default_factory=list)
    ensemble: bool = False
    batch_size: int = Field(default=256, ge=1)
    worst_mistakes: int = Field(default=25, ge=0, le=100)


class LiveDetection(FaceDetectorSettings):
    """The shared detector section plus how often, and down to what face size, video frames are searched."""

    every: int = Field(default=3, ge=1)
    video_min_face: int = Field(default=40, ge=8)
    max_faces: int = Field(default=16, ge=1)
    # Photos are not a frame-rate budget: 7 of the 32 WIDER dev photos hold more than 16 faces (up to 132).
    photo_max_faces: int = Field(default=256, ge=1)


class LiveTracking(StrictModel):
    iou: float = Field(default=0.3, gt=0.0, lt=1.0)
    max_missed: int = Field(default=5, ge=0)
    follow: bool = True


class LiveSmoothing(StrictModel):
    method: Literal["ema", "window", "none"] = "ema"
    alpha: float = Field(default=0.35, gt=0.0, le=1.0)
    window: int = Field(default=8, ge=1)


class LiveDrawing(StrictModel):
    bars: bool = False
    fps: bool = True


class PipelineSettings(StrictModel):
    """The live pipeline's keys (model, detector, crop, tracking, smoothing): ``live``'s, and the
    ones ``analyze`` shares with it (with its own defaults where it runs one process per core)."""

    model: Path | None = None
    backend: Literal["auto", "litert", "keras"] = "auto"
    threads: int = Field(default=2, ge=1)
    crop_margin: float | Literal["auto"] = "auto"
    align: bool = True
    tta_flip: bool = False
    tta_zooms: TestTimeZooms = Field(default_factory=list)
    detect: LiveDetection = Field(default_factory=LiveDetection)
    track: LiveTracking = Field(default_factory=LiveTracking)
    smoothing: LiveSmoothing = Field(default_factory=LiveSmoothing)


class LiveConfig(PipelineSettings):
    draw: LiveDrawing = Field(default_factory=LiveDrawing)
    snapshot_dir: Path = Path("snapshots")


# ------------------------------------------------------------------------ serve
class ServeLimits(StrictModel):
    """What one client may send and how long it may take (see docs/serve.md, "Limits and deadlines").

    Sizes are refused with 413 before the image is decoded; a request whose head
    or body does not arrive in time is answered 408 and its socket closed; work
    that waits longer than ``queue_timeout_s`` for a worker is answered 503.
    """

    max_upload_mb: float = Field(default=10.0, gt=0.0)
    max_megapixels: float = Field(default=50.0, gt=0.0)
    max_frame_kb: int = Field(default=2048, ge=16)
    max_connections: int = Field(default=100, ge=1)
    head_timeout_s: float = Field(default=5.0, gt=0.0)
    body_timeout_s: float = Field(default=5.0, gt=0.0)
    min_upload_kb_s: float = Field(default=8.0, ge=0.0)
    queue_timeout_s: float = Field(default=30.0, gt=0.0)


class ServeStream(StrictModel):
    """The annotated feed of ``--camera``/``--source`` at ``/stream.mjpg``."""

    jpeg_quality: int = Field(default=80, ge=10, le=100)
    max_fps: float = Field(default=15.0, gt=0.0)
    loop: bool = True


def _serve_detection() -> LiveDetection:
    """The server's detector: faces from 40 px in photos, one thread each.

    Measured on 2 cores (benchmarks/serve.py, a 640x480 photo of six faces): MTCNN
    from 20 px takes 32 ms a photo and the server answered 16 clients at a p95 of
    600-1000 ms; from 40 px, 14 ms and about 300 ms. Faces under 40 px are enlarged
    1.6x or more to reach the default model's 64 px input anyway. Its workers run
    side by side, and MTCNN gains nothing from a second thread.
    """
    return LiveDetection(min_face=40, mtcnn=MtcnnSettings(threads=1), blazeface=BlazeFaceSettings(threads=1))


class ServeConfig(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    models: list[Path] = Field(default_factory=list)
    camera: int | None = Field(default=None, ge=0)
    source: str | None = None
    study: Path | None = None
    backend: Literal["auto", "litert", "keras"] = "auto"
    workers: int = Field(default=0, ge=0)
    threads: int = Field(default=1, ge=1)
    crop_margin: float | Literal["auto"] = "auto"
    align: bool = True
    tta_flip: bool = False
    tta_zooms: TestTimeZooms = Field(default_factory=list)
    detect: LiveDetection = Field(default_factory=_serve_detection)
    track: LiveTracking = Field(default_factory=LiveTracking)
    smoothing: LiveSmoothing = Field(default_factory=LiveSmoothing)
    draw: LiveDrawing = Field(default_factory=LiveDrawing)
    limits: ServeLimits = Field(default_factory=ServeLimits)
    stream: ServeStream = Field(default_factory=ServeStream)

    def live_config(self) -> LiveConfig:
        """The live pipeline's settings for the server's photos, camera frames and stream."""
        return LiveConfig(backend=self.backend, threads=self.threads, crop_margin=self.crop_margin,
                          align=self.align, tta_flip=self.tta_flip, tta_zooms=self.tta_zooms, detect=self.detect,
                          track=self.track, smoothing=self.smoothing, draw=self.draw)
