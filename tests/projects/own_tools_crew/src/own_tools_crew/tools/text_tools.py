"""The project's own tools, as `crewai create crew` puts them in tools/custom_tool.py."""

import os
from typing import Type

from crewai.tools import BaseTool, tool
from pydantic import BaseModel, Field

from own_tools_crew.tools.wording import mirrored


class ReverserInput(BaseModel):
    """Input schema for WordReverser."""

    text: str = Field(..., description="The text to reverse.")


class WordReverser(BaseTool):
    name: str = "Word Reverser"
    description: str = "Reverses the letters of a text, then adds the tool's suffix."
    args_schema: Type[BaseModel] = ReverserInput
    suffix: str = "!"

    def _run(self, text: str) -> str:
        print("the project's tool prints this")  # stays out of Kasal's protocol
        if text == "explode":
            raise ValueError("this tool does not reverse 'explode'")
        # the process: its own, not Kasal's (the pid shows it; the environment lacks Kasal's)
        kasal = sorted(k for k in os.environ if k.startswith("KASAL_"))
        return f"{mirrored(text)}{self.suffix} (pid {os.getpid()}, kasal settings {kasal})"


@tool("Letter Counter")
def letter_counter(text: str) -> str:
    """Counts the letters of a text."""
    return f"{sum(c.isalpha() for c in text)} letters"
