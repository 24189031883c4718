"""A school's UAI (unité administrative immatriculée: seven digits and a check letter, e.g. 0750001A), as every
service's API takes one: in a path, in a body."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import Path
from pydantic import Field

UAI_PATTERN: Final = r"^[0-9]{7}[A-Z]$"
UaiPath = Annotated[str, Path(pattern=UAI_PATTERN, description="the school's UAI, e.g. 0750001A")]
UaiField = Annotated[str, Field(pattern=UAI_PATTERN, description="a school's UAI, e.g. 0750001A")]
