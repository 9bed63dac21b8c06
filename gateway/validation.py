"""Text fields of API input: limits apply to what was sent, surrounding blanks are then dropped.

Pydantic's ``str_strip_whitespace`` strips before checking ``max_length``, which would make the
published schema (whose ``maxLength`` counts what is sent) untrue; these types check first.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field


def _strip(value: str) -> str:
    return value.strip()


def _strip_nonblank(value: str) -> str:
    stripped = value.strip()
    if not stripped:
        raise ValueError("must not be blank")
    return stripped


Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_strip_nonblank)]
PosterTitle = Annotated[str, Field(min_length=1, max_length=40), AfterValidator(_strip_nonblank)]
PosterText = Annotated[str, Field(max_length=200), AfterValidator(_strip)]
FontName = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_strip_nonblank)]
ShareText = Annotated[str, Field(max_length=300), AfterValidator(_strip)]
Note = Annotated[str, Field(max_length=500), AfterValidator(_strip)]
LongNote = Annotated[str, Field(max_length=2000), AfterValidator(_strip)]
