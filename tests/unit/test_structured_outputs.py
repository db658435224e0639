"""Kasal's own checks of structured outputs, and the offline model's JSON answers."""

from __future__ import annotations

import json

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from adapters.crewai.offline_json import instance
from adapters.crewai.offline_llm import answer
from adapters.crewai.structured import instructed, schema_in, structured


class Source(BaseModel):
    url: str
    rank: int


class Report(BaseModel):
    title: str
    sources: list[Source]
    notes: str | None = None
    score: float


SCHEMA = Report.model_json_schema()


def test_an_answer_is_checked_against_the_schema_naming_where_it_fails() -> None:
    good = {"title": "t", "sources": [{"url": "u", "rank": 1}], "score": 0.5}
    fenced = f"Here it is:\n```json\n{json.dumps(good)}\n```"
    assert structured(fenced, SCHEMA).value == good
    bad = structured(json.dumps({**good, "sources": [{"url": "u", "rank": "x"}]}), SCHEMA)
    assert bad.value is None
    assert bad.problem == "not valid against the schema at sources/0/rank: 'x' is not of type " \
                          "'integer'"
    assert structured("no json at all", SCHEMA).problem == "the answer holds no JSON object"
    assert "does not parse" in str(structured("{nope", SCHEMA).problem)
    dangling = {"type": "object", "properties": {"a": {"$ref": "#/$defs/Missing"}}}
    assert str(structured('{"a": 1}', dangling).problem).startswith(
        "the schema cannot be applied")


def test_the_schema_travels_in_the_prompt_and_back() -> None:
    prompt = "This is the expected criteria for your final answer: " + instructed("A report.",
                                                                                 SCHEMA)
    assert schema_in(prompt) == SCHEMA
    assert schema_in("no schema here") is None


def test_the_offline_model_answers_a_schema_with_valid_json_saying_who_wrote_it() -> None:
    user = ("Current Task: Report on ai\n\nThis is the expected criteria for your final "
            f"answer: {instructed('A report.', SCHEMA)}\nyou MUST return the actual complete "
            "content as the final answer, not a summary.\n\nBegin!")
    reply = answer("kasal-offline/default", [{"role": "system", "content": "You are Analyst."},
                                             {"role": "user", "content": user}])
    final = reply.split("Final Answer: ", 1)[1]
    value = structured(final, SCHEMA).value
    assert value is not None
    jsonschema.validate(value, SCHEMA)
    assert value["title"].startswith("title: [kasal-offline/default]")


leaf = st.sampled_from([
    {"type": "string"}, {"type": "string", "minLength": 3, "maxLength": 5},
    {"type": "integer", "minimum": 4, "maximum": 9}, {"type": "number", "exclusiveMinimum": 2},
    {"type": "boolean"}, {"enum": ["a", "b"]}, {"const": 7}, {"type": ["string", "null"]},
    {"anyOf": [{"type": "null"}, {"type": "integer"}]}, {"type": "string", "format": "date"},
])
schemas = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.builds(lambda props: {"type": "object", "properties": props,
                                 "required": sorted(props)},
                  st.dictionaries(st.text("abcdef", min_size=1, max_size=4), inner, max_size=4)),
        st.builds(lambda item, n: {"type": "array", "items": item, "minItems": n},
                  inner, st.integers(0, 3)),
    ),
    max_leaves=10,
)


@given(st.dictionaries(st.text("xyz", min_size=1, max_size=3), schemas, max_size=5),
       st.text(max_size=40))
def test_the_offline_instance_of_any_schema_is_valid(properties: dict[str, object],
                                                     text: str) -> None:
    schema = {"type": "object", "properties": properties, "required": sorted(properties)}
    jsonschema.validate(instance(schema, text), schema)


@pytest.mark.parametrize("schema", [{"type": "array"}, {"properties": {}}, "nope"])
def test_only_object_schemas_are_output_schemas(schema: object) -> None:
    from domain.crew import check_output_schema
    from domain.errors import InvalidDefinition

    with pytest.raises(InvalidDefinition, match="must be a JSON Schema of an object"):
        check_output_schema("output_schema", schema)


def test_answers_that_no_store_could_hold_are_problems_not_failures() -> None:
    schema = {"type": "object"}
    assert "not storable" in str(structured('{"score": NaN}', schema).problem)
    deep = "{" + '"a": {' * 100 + "}" * 101
    assert "nests deeper than 64" in str(structured(deep, schema).problem)
    very_deep = "{" + '"a": {' * 5000 + "}" * 5001
    assert structured(very_deep, schema).value is None
    long_value = {"type": "object", "properties": {"a": {"type": "integer"}}}
    assert len(str(structured('{"a": "' + "x" * 5000 + '"}', long_value).problem)) <= 500


def test_a_schemas_input_like_braces_survive_crewais_interpolation() -> None:
    from crewai.utilities.string_utils import interpolate_only

    schema = {"type": "object", "properties": {
        "title": {"type": "string", "description": "like {topic}: {subtitle}"}}}
    prompt = instructed("A title for {topic}.", schema)
    filled = interpolate_only(prompt, {"topic": 'ow"ls'})  # raises on {subtitle} if unescaped
    assert filled.startswith('A title for ow"ls.')
    assert schema_in(filled) == schema


def test_patterns_are_refused_they_would_run_on_a_models_answer() -> None:
    from domain.crew import check_output_schema
    from domain.errors import InvalidDefinition

    schema = {"type": "object", "properties": {"a": {"type": "string", "pattern": "^(a+)+$"}},
              "patternProperties": {"^x": {}}}
    with pytest.raises(InvalidDefinition, match="uses patternProperties, properties/a/pattern"):
        check_output_schema("tasks[0].output_schema", schema)


def test_a_task_without_a_schema_keeps_its_payload_and_fingerprint() -> None:
    from commands.bus import fingerprint
    from commands.messages import fingerprint_source
    from domain.crew import TaskSpec
    from tests.factories import define_crew

    command = define_crew(["a1"])
    body = fingerprint_source(command)["body"]
    assert all("output_schema" not in task for task in body["tasks"])
    assert "output_schema" not in TaskSpec("t", "d", "o").as_payload()
    with_schema = define_crew(["a1"], tasks=[{
        "name": "t", "description": "d", "expected_output": "o", "agent": "a1",
        "output_schema": {"type": "object"}}])
    assert fingerprint(with_schema) != fingerprint(command)


def test_a_checked_output_is_its_own_event_after_the_completion() -> None:
    from domain.registry import event_payload, event_type
    from tests.unit.test_execution_state_machine import running

    execution = running()
    execution.collect_events()
    execution.complete_task("find", "text", None, "not valid against the schema at a: ...")
    execution.complete_task("write", "plain text")
    events = execution.collect_events()
    assert [event_type(e) for e in events] == [
        "ExecutionTaskCompleted", "ExecutionTaskOutputChecked", "ExecutionTaskCompleted"]
    assert event_payload(events[1]) == {
        "task_name": "find", "output_json": None,
        "problem": "not valid against the schema at a: ..."}
    assert set(event_payload(events[0])) == {"task_name", "output"}
