"""The base of every config section: unknown keys are errors, not silently ignored."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class StrictModel(BaseModel):
    """Base for config sections: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


# Test-time zoom views: centre crops as a fraction of the side (see live.classify.TestTimeViews).
TestTimeZooms = list[Annotated[float, Field(gt=0.5, lt=1.0)]]
