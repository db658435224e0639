"""One error table: every error a client can meet has a status and one snake_case code,
and the README lists every code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from api import problems
from api.errors import ERROR_CODES, every_code, status_and_code
from api.writes import expected_version
from commands.errors import StaleVersion
from domain.errors import AlreadyArchived, DomainError, InvalidDefinition

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_code_is_snake_case_and_listed_in_the_readme() -> None:
    readme = README.read_text()
    for code in every_code():
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", code), code
        assert f"`{code}`" in readme, f"README does not list the error code {code}"


def test_every_named_api_error_has_a_status() -> None:
    names = [c for c in vars(problems).values()
             if isinstance(c, type) and issubclass(c, problems.ApiError)]
    assert names and all(c in ERROR_CODES for c in names)


def test_the_most_specific_class_wins() -> None:
    assert status_and_code(AlreadyArchived("x")) == (409, "already_archived")
    assert status_and_code(StaleVersion("a", 1, 2)) == (409, "stale_version")
    assert status_and_code(InvalidDefinition("x")) == (422, "invalid_definition")
    assert status_and_code(DomainError("x")) == (400, "bad_request")


@pytest.mark.parametrize("header", ['"3"', "3", 'W/"3"', ' "3" '])
def test_if_match_takes_an_etag_or_a_number(header: str) -> None:
    assert expected_version(header) == 3


@pytest.mark.parametrize("header", ['"²"', "9" * 4301, "-1", '"3', "3.0", "", '"٣"'])
def test_if_match_refuses_what_is_not_a_version(header: str) -> None:
    with pytest.raises(problems.InvalidIfMatch):
        expected_version(header)
