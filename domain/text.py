"""Text every store can hold: PostgreSQL refuses the NUL character in ``text`` and ``jsonb``
(SQLite stores it), and a lone surrogate is not Unicode text at all (``.encode("utf-8")``
fails). Client input with either is refused at the boundary (``check_storable``); text that
runs produce (model answers, tool output) is made storable (``storable``), visibly."""

from __future__ import annotations

REPLACEMENT = "\ufffd"  # what a character no store can hold becomes in produced text


def problem_of(text: str) -> str | None:
    """Why ``text`` cannot be stored as it is, or None."""
    if "\x00" in text:
        return "must not contain the NUL character (\\u0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return (f"must not contain a lone surrogate ({text[error.start]!r} at character "
                f"{error.start}): it is not valid Unicode text")
    return None


def check_storable(text: str) -> str:
    """``text`` if every store can hold it; ``ValueError`` saying why not."""
    problem = problem_of(text)
    if problem is not None:
        raise ValueError(problem)
    return text


def storable(text: str) -> str:
    """``text`` with each NUL and lone surrogate replaced by U+FFFD (the replacement
    character): what a model or a tool produced is kept, and the change is visible."""
    if problem_of(text) is None:
        return text
    return "".join(
        REPLACEMENT if c == "\x00" or "\ud800" <= c <= "\udfff" else c for c in text
    )
