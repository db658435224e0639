"""The knowledge source request body."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from commands.messages import Name, Storable


class KnowledgeBody(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: Name = Field(description="what people call it, e.g. the file's name")
    text: Annotated[str, StringConstraints(min_length=1, max_length=400_000), Storable] = Field(
        description="the document's text (of a PDF: its extracted text; `kasal knowledge add` "
        "extracts it); chunked as CrewAI chunks knowledge, 4,000 characters with 200 of overlap")
    media_type: Literal["text/plain", "text/markdown", "text/csv", "application/json",
                        "application/pdf"] = Field(
        default="text/plain", description="what the text came from")
