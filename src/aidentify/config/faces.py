"""The face-detector section shared by prepare, evaluate, live and serve (see aidentify.faces)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from aidentify.config.base import StrictModel


# ------------------------------------------------------------------------ faces
class HaarSettings(StrictModel):
    """OpenCV's frontal-face Haar cascade (``detectMultiScale``)."""

    scale_factor: float = Field(default=1.1, gt=1.0)
    min_neighbors: int = Field(default=5, ge=0)


class BlazeFaceSettings(StrictModel):
    """MediaPipe's BlazeFace full-range model on LiteRT (see aidentify.faces.blazeface)."""

    model: Literal["full_range", "full_range_sparse"] = "full_range"
    score: float = Field(default=0.5, gt=0.0, lt=1.0)
    iou: float = Field(default=0.3, gt=0.0, lt=1.0)
    tiles: bool = True
    threads: int = Field(default=2, ge=1)


class MtcnnSettings(StrictModel):
    """MTCNN (Zhang et al., 2016) from the mtcnn package's weights, converted to LiteRT."""

    thresholds: list[Annotated[float, Field(gt=0.0, lt=1.0)]] = Field(
        default_factory=lambda: [0.6, 0.7, 0.9], min_length=3, max_length=3)
    scale_factor: float = Field(default=0.709, gt=0.3, lt=1.0)
    threads: int = Field(default=2, ge=1)


class FaceDetectorSettings(StrictModel):
    """One face-detector section, shared by prepare, evaluate and live."""

    detector: Literal["auto", "haar", "blazeface", "mtcnn"] = "auto"
    min_face: int = Field(default=20, ge=8)
    max_megapixels: float = Field(default=4.0, gt=0.0)
    max_faces: int = Field(default=32, ge=1)
    haar: HaarSettings = Field(default_factory=HaarSettings)
    blazeface: BlazeFaceSettings = Field(default_factory=BlazeFaceSettings)
    mtcnn: MtcnnSettings = Field(default_factory=MtcnnSettings)
