"""The offline model, through litellm like any provider."""

from __future__ import annotations

import json
import time

import litellm
from litellm.exceptions import InternalServerError, RateLimitError

from adapters.crewai.offline_llm import PROVIDER, answer, find_arithmetic, register_offline_provider
from tests import models

REACT_SYSTEM = """You are Mathematician. Good with numbers.
Your personal goal is: compute
You ONLY have access to the following tools, and should NEVER make up tools that are not listed here:

Tool Name: calculator
Tool Arguments: {}
Tool Description: Evaluates arithmetic

IMPORTANT: Use the following format in your response:

```
Thought: you should always think about what to do
Action: the action to take, only one name of [calculator], just the name, exactly as it's written.
Action Input: the input to the action, just a simple JSON object, enclosed in curly braces, using " to wrap keys and values.
Observation: the result of the action
```"""  # noqa: E501
REACT_USER = (
    "\nCurrent Task: What is 17 * 23?\n\nThis is the expected criteria for your final answer: "
    "a number\nyou MUST return the actual complete content as the final answer, not a summary."
    "\n\nBegin! This is VERY important to you, use the tools available and give your best "
    "Final Answer, your job depends on it!\n\nThought:"
)


def complete(messages: list[dict[str, str]], model: str = "kasal-offline/default") -> str:
    response = litellm.completion(model=model, messages=messages)
    return str(response.choices[0].message.content)


def test_deterministic_labelled_and_counted() -> None:
    messages = [
        {"role": "system", "content": "You are Researcher. Curious.\nYour personal goal is: learn"},
        {
            "role": "user",
            "content": "\nCurrent Task: Describe event sourcing\n\n"
            "This is the expected criteria for your final answer: two sentences\n",
        },
    ]
    first = litellm.completion(model="kasal-offline/default", messages=messages)
    second = litellm.completion(model="kasal-offline/default", messages=messages)
    text = str(first.choices[0].message.content)
    assert text == str(second.choices[0].message.content)
    assert text.startswith("Thought: I now know the final answer\nFinal Answer: ")
    assert "[kasal-offline/default]" in text
    assert "Describe event sourcing" in text
    assert first.usage.prompt_tokens > 0 and first.usage.completion_tokens > 0
    assert first.usage.total_tokens == first.usage.prompt_tokens + first.usage.completion_tokens
    other = complete([{"role": "user", "content": "Current Task: something else"}])
    assert other != text and "[kasal-offline/default]" in other


def test_registration_is_idempotent() -> None:
    register_offline_provider()
    register_offline_provider()
    entries = [e for e in litellm.custom_provider_map if e["provider"] == PROVIDER]
    assert len(entries) == 1


def test_calls_a_listed_tool_then_answers_from_the_observation() -> None:
    messages = [
        {"role": "system", "content": REACT_SYSTEM},
        {"role": "user", "content": REACT_USER},
    ]
    action = complete(messages)
    assert action.startswith("Thought: [kasal-offline/default] ")
    lines = action.splitlines()
    assert lines[1] == "Action: calculator"
    assert json.loads(lines[2].removeprefix("Action Input: ")) == {"expression": "17 * 23"}
    assert "Final Answer" not in action

    messages += [
        {"role": "assistant", "content": action + "\nObservation: 391"},
        {
            "role": "user",
            "content": "Analyze the tool result. If requirements are met, "
            "provide the Final Answer.",
        },
    ]
    final = complete(messages)
    assert "Final Answer: [kasal-offline/default]" in final
    assert "391" in final


def test_no_tool_call_without_an_expression() -> None:
    user = REACT_USER.replace("What is 17 * 23?", "Explain what a calculator does")
    text = complete(
        [{"role": "system", "content": REACT_SYSTEM}, {"role": "user", "content": user}]
    )
    assert "Action:" not in text and "Final Answer:" in text


def test_finds_arithmetic_in_prose() -> None:
    assert find_arithmetic("What is 17 * 23?") == "17 * 23"
    assert find_arithmetic("Compute (2 + 3) ** 2 / 5, please.") == "(2 + 3) ** 2 / 5"
    assert find_arithmetic("In 2024 there were 12 cats") is None
    assert find_arithmetic("no numbers") is None
    assert find_arithmetic("Report on 2024-01-31 at 10:30") is None


def test_manager_delegates_with_crewai_delegation_tool() -> None:
    system = (
        "You are Crew Manager. A manager.\nYour personal goal is: manage\n"
        "Tool Name: delegate_work_to_coworker\nTool Description: Delegate a specific task to "
        "one of the following coworkers: Researcher, Travel Writer\nThe input...\n"
        "Action: the action to take, only one name of [delegate_work_to_coworker, "
        "ask_question_to_coworker], just the name"
    )
    user = (
        "\nCurrent Task: Write a travel guide\n\nThis is the expected criteria for your "
        "final answer: a guide\n\nBegin!"
    )
    text = answer(
        "kasal-offline/default",
        [{"role": "system", "content": system}, {"role": "user", "content": user}],
    )
    lines = text.splitlines()
    assert lines[1] == "Action: delegate_work_to_coworker"
    arguments = json.loads(lines[2].removeprefix("Action Input: "))
    assert arguments["coworker"] == "Travel Writer"  # best match of the task's words
    assert arguments["task"] == "Write a travel guide"
    assert arguments["context"]


def test_production_offline_model_has_no_test_behaviours() -> None:
    messages = [{"role": "user", "content": "Current Task: fail if you can"}]
    for name in ("error", "flaky", "slow"):
        assert f"[kasal-offline/{name}]" in complete(messages, f"kasal-offline/{name}")


def test_test_models_fail_and_rate_limit_as_named() -> None:
    messages = [{"role": "user", "content": "Current Task: be slow"}]
    assert "[kasal-test/slow]" in complete(messages, models.SLOW)

    try:
        complete(messages, models.ERROR)
    except InternalServerError as error:
        assert "simulated provider failure" in str(error)
    else:
        raise AssertionError("kasal-test/error answered")

    flaky = [{"role": "user", "content": f"Current Task: flaky {time.time_ns()}"}]
    try:
        complete(flaky, models.FLAKY)
    except RateLimitError:
        pass
    else:
        raise AssertionError("the first call of a request to kasal-test/flaky succeeded")
    assert "[kasal-test/flaky]" in complete(flaky, models.FLAKY)


def test_calls_a_search_tool_with_the_argument_its_schema_names() -> None:
    """A task that asks to search gets the search tool, its query under the argument name
    the tool describes (Serper's ``search_query``, Brave's ``q``)."""
    for tool, argument in [("search_the_internet_with_serper", "search_query"),
                           ("brave_search", "q")]:
        system = REACT_SYSTEM.replace("calculator", tool).replace(
            "Tool Arguments: {}", f'Tool Arguments: {{"properties": {{"{argument}": {{}}}}}}')
        user = REACT_USER.replace("What is 17 * 23?", "Search the web for barn owl hearing.")
        text = answer("kasal-offline/default", [{"role": "system", "content": system},
                                                {"role": "user", "content": user}])
        assert f"Action: {tool}" in text, text
        assert json.loads(text.split("Action Input:", 1)[1].strip()) == {
            argument: "barn owl hearing"}
    plain = answer("kasal-offline/default", [{"role": "system", "content": REACT_SYSTEM},
                                             {"role": "user", "content": REACT_USER.replace(
                                                 "What is 17 * 23?", "Describe owls.")}])
    assert "Action:" not in plain  # no search asked for, no search tool offered
