"""Settings of ``aidentify analyze``: a study of many recordings of one stimulus (docs/analyze.md)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from aidentify.config.faces import BlazeFaceSettings, MtcnnSettings
from aidentify.config.runtime import LiveConfig, LiveDetection, PipelineSettings


def _worker_detection() -> LiveDetection:
    """One thread per detector: recordings run side by side, one per core (as serve's workers)."""
    return LiveDetection(mtcnn=MtcnnSettings(threads=1), blazeface=BlazeFaceSettings(threads=1))


def parse_span(text: str | list[float] | None) -> tuple[float, float] | None:
    """``"0:5"`` or ``[0, 5]`` -> ``(0.0, 5.0)`` seconds; None or ``""`` -> None. Raises ValueError otherwise."""
    if text is None or str(text).strip() == "":
        return None
    parts = list(text) if isinstance(text, (list, tuple)) else str(text).split(":")
    try:
        start, end = (float(p) for p in parts)
    except ValueError:
        raise ValueError(f"give START:END in seconds on the stimulus clock, like 0:5, not {text!r}") from None
    if not end > start:
        raise ValueError(f"the span {text!r} ends before it starts")
    return start, end


class AnalyzeConfig(PipelineSettings):
    """The study's own keys, then the live pipeline's (:class:`PipelineSettings`) with one thread
    per worker: recordings run side by side, one process per core."""

    out: Path = Path("study")
    workers: int = Field(default=0, ge=0)
    cluster: str | None = None
    retries: int = Field(default=1, ge=0)
    all_faces: bool = False
    annotate: bool = False
    epoch_s: float = Field(default=1.0, gt=0.0)
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    baseline: str | list[float] | None = None
    moments_top: int = Field(default=3, ge=0)
    moments_min_change: float = Field(default=0.05, ge=0.0)
    report_respondents: int = Field(default=48, ge=0)
    threads: int = Field(default=1, ge=1)
    detect: LiveDetection = Field(default_factory=_worker_detection)

    @field_validator("baseline")
    @classmethod
    def _span(cls, value: str | list[float] | None) -> str | list[float] | None:
        parse_span(value)
        return value

    @property
    def baseline_span(self) -> tuple[float, float] | None:
        """The baseline as ``(start_s, end_s)`` on the stimulus clock, or None."""
        return parse_span(self.baseline)

    def live_config(self) -> LiveConfig:
        """The live pipeline's settings for every recording (the same crop path as ``live``)."""
        return LiveConfig(**{name: getattr(self, name) for name in PipelineSettings.model_fields})
