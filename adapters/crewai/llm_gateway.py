"""The LLM gateway: every model call of a CrewAI run goes through ``litellm.completion``.

``GatewayLLM`` is the ``BaseLLM`` that Kasal gives each CrewAI agent (and a hierarchical
crew's manager). Per call it

1. raises ``RunCancelled`` when the run's hooks say so;
2. hashes the request (sha256 of the canonical JSON of model, messages and stop words);
3. answers from ``hooks.recorded_response(hash)`` when the run is a resumed one that made
   this exact request before (no model call, no ``llm_call`` hook);
4. otherwise calls litellm, retrying rate limits, timeouts, connection errors and
   unavailable services with exponential backoff, and reports the call (tokens, cost,
   latency, attempts, response) through ``hooks.llm_call`` before returning the text.

It emits CrewAI's own LLM events and counts tokens on the instance, as CrewAI's native
LLMs do, so CrewAI's usage totals work. Give every agent its own instance: CrewAI sums the
instances of its agents, so a shared one counts tokens twice.

Provider credentials come from the environment (litellm reads ``OPENAI_API_KEY`` etc.), or
from ``api_key``/``api_base`` given to the constructor; they never reach the hooks.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import litellm
from crewai.events.types.llm_events import LLMCallType
from crewai.llms.base_llm import BaseLLM, llm_call_context
from crewai.utilities.exceptions.context_window_exceeding_exception import (
    LLMContextLengthExceededError,
)
from litellm.exceptions import (
    APIConnectionError,
    ContextWindowExceededError,
    RateLimitError,
    ServiceUnavailableError,
    Timeout,
)
from pydantic import BaseModel, Field, PrivateAttr

from adapters.crewai.call_limits import CallLimits
from streams.engine import LlmCall, RunCancelled, RunHooks

if TYPE_CHECKING:
    from crewai.agents.agent_builder.base_agent import BaseAgent
    from crewai.task import Task
    from crewai.tools.base_tool import BaseTool
    from crewai.utilities.types import LLMMessage

logger = logging.getLogger(__name__)
litellm.suppress_debug_info = True  # its "Give Feedback / Provider List" banners: not ours

RETRYABLE_ERRORS: Final[tuple[type[Exception], ...]] = (
    RateLimitError,
    Timeout,
    APIConnectionError,
    ServiceUnavailableError,
)
OFFLINE_CONTEXT_WINDOW: Final = 128_000
FALLBACK_CONTEXT_WINDOW: Final = 8_192
_WAIT_SLICE_SECONDS: Final = 0.05


def request_hash(model: str, messages: list[dict[str, Any]], stop: list[str] | None) -> str:
    """sha256 of the canonical JSON of the request: the key of recorded responses."""
    canonical = json.dumps(
        {"model": model, "messages": messages, "stop": list(stop or [])},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _response_text(response: Any) -> str:
    try:
        content = response.choices[0].message.content
    except (AttributeError, IndexError, KeyError, TypeError) as error:
        raise ValueError(f"the model's response has no message: {error}") from error
    if content is None:
        raise ValueError("the model returned an empty message")
    return str(content)


def _usage(response: Any) -> tuple[int, int]:
    usage = getattr(response, "usage", None)
    prompt = getattr(usage, "prompt_tokens", 0) or 0
    completion = getattr(usage, "completion_tokens", 0) or 0
    return int(prompt), int(completion)


def _cost(response: Any) -> float:
    try:
        return float(litellm.completion_cost(completion_response=response) or 0.0)
    except Exception:  # unknown model, no price: the cost is unknown, not an error
        return 0.0


def _name_of(task: Any) -> str | None:
    name = getattr(task, "name", None)
    return name if isinstance(name, str) else None


class GatewayLLM(BaseLLM):
    """A CrewAI LLM whose every call goes through litellm and the run's hooks."""

    llm_type: str = "kasal-gateway"
    # kept out of reprs, dumps and CrewAI's serialisation of the crew
    api_key: str | None = Field(default=None, repr=False, exclude=True)
    max_retries: int = 3
    retry_base_delay: float = 0.1
    retry_max_delay: float = 8.0
    timeout: float | None = None

    _hooks: RunHooks = PrivateAttr()
    _task_name_of: Callable[[Any], str | None] | None = PrivateAttr(default=None)
    _limits: CallLimits | None = PrivateAttr(default=None)

    def __init__(
        self,
        model: str,
        hooks: RunHooks,
        *,
        api_base: str | None = None,
        api_key: str | None = None,
        max_retries: int = 3,
        retry_base_delay: float = 0.1,
        retry_max_delay: float = 8.0,
        timeout: float | None = None,
        temperature: float | None = None,
        stop: list[str] | None = None,
        task_name_of: Callable[[Any], str | None] | None = None,
        limits: CallLimits | None = None,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        super().__init__(
            model=model,
            base_url=api_base,
            api_key=api_key,
            max_retries=max_retries,
            retry_base_delay=retry_base_delay,
            retry_max_delay=retry_max_delay,
            timeout=timeout,
            temperature=temperature,
            stop=stop or [],
        )
        self._hooks = hooks
        self._task_name_of = task_name_of
        self._limits = limits

    # -- the one call -----------------------------------------------------------------

    def call(
        self,
        messages: str | list[LLMMessage],
        tools: list[dict[str, BaseTool]] | None = None,
        callbacks: list[Any] | None = None,
        available_functions: dict[str, Any] | None = None,
        from_task: Task | None = None,
        from_agent: BaseAgent | None = None,
        response_model: type[BaseModel] | None = None,
    ) -> str:
        hooks = self._hooks
        if hooks.cancelled():
            raise RunCancelled("the run was cancelled")
        if self._limits is not None:
            self._limits.run.raise_if_stopped()  # a coworker's, handed back as text
        formatted: list[dict[str, Any]] = [dict(m) for m in self._format_messages(messages)]
        stop = list(self.stop_sequences or [])
        digest = request_hash(self.model, formatted, stop)

        with llm_call_context():
            self._emit_call_started_event(
                messages=messages,
                tools=tools,
                callbacks=callbacks,
                available_functions=available_functions,
                from_task=from_task,
                from_agent=from_agent,
            )
            try:
                recorded = hooks.recorded_response(digest)
                if recorded is not None:
                    self._emit_call_completed_event(
                        response=recorded,
                        call_type=LLMCallType.LLM_CALL,
                        from_task=from_task,
                        from_agent=from_agent,
                        messages=messages,
                    )
                    return recorded

                self._admit(from_task)
                started = time.perf_counter()
                response, attempts = self._complete(formatted, stop)
                latency_ms = (time.perf_counter() - started) * 1000.0
                text = self._apply_stop_words(_response_text(response))
                prompt_tokens, completion_tokens = _usage(response)
                usage = {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                }
                hooks.llm_call(
                    LlmCall(
                        model=self.model,
                        request_hash=digest,
                        response=text,
                        prompt_tokens=prompt_tokens,
                        completion_tokens=completion_tokens,
                        cost=_cost(response),
                        latency_ms=latency_ms,
                        task_name=(self._task_name_of or _name_of)(from_task),
                        agent_role=getattr(from_agent, "role", None),
                        attempts=attempts,
                    )
                )
                self._track_token_usage_internal(usage)
                self._emit_call_completed_event(
                    response=text,
                    call_type=LLMCallType.LLM_CALL,
                    from_task=from_task,
                    from_agent=from_agent,
                    messages=messages,
                    usage=usage,
                    finish_reason=_finish_reason(response),
                )
                return text
            except Exception as error:
                self._emit_call_failed_event(
                    error=str(error), from_task=from_task, from_agent=from_agent
                )
                raise

    # Kasal owns the retry policy (and counts attempts): opt out of the rate-limit retry
    # wrapper that BaseLLM.__init_subclass__ puts around ``call`` (it would retry again,
    # with up to 8 s sleeps, outside the cancel checks).
    call.__dict__["_crewai_rate_limit_wrapped"] = True

    def _complete(self, messages: list[dict[str, Any]], stop: list[str]) -> tuple[Any, int]:
        """litellm.completion with retries on transient errors: (response, attempts)."""
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages}
        if stop:
            kwargs["stop"] = stop
        if self.base_url:
            kwargs["api_base"] = self.base_url
        if self.api_key:
            kwargs["api_key"] = self.api_key
        if self.timeout is not None:
            kwargs["timeout"] = self.timeout
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        attempt = 0
        while True:
            attempt += 1
            try:
                return litellm.completion(**kwargs), attempt
            except ContextWindowExceededError as error:
                # CrewAI's executor summarises the conversation on this one
                raise LLMContextLengthExceededError(str(error)) from error
            except RETRYABLE_ERRORS as error:
                if attempt > self.max_retries:
                    raise
                delay = min(self.retry_base_delay * 2 ** (attempt - 1), self.retry_max_delay)
                logger.info(
                    "model %s: %s (attempt %d), retrying in %.2fs",
                    self.model,
                    type(error).__name__,
                    attempt,
                    delay,
                )
                self._wait(delay)

    def _admit(self, task: Task | None) -> None:
        """Hold a paid call to the agent's limits (a replayed one costs nothing)."""
        limits = self._limits
        if limits is None:
            return
        key, name = (None if task is None else id(task)), (self._task_name_of or _name_of)(task)
        limits.check_time(key, name)
        while (wait := limits.take_call()) > 0:
            self._wait(min(wait, 1.0))  # honours a cancel
            limits.check_time(key, name)

    def _wait(self, seconds: float) -> None:
        """Sleep between retries, still honouring a cancel."""
        deadline = time.monotonic() + seconds
        while True:
            if self._hooks.cancelled():
                raise RunCancelled("the run was cancelled")
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, _WAIT_SLICE_SECONDS))

    # -- what CrewAI asks of an LLM ---------------------------------------------------

    def supports_function_calling(self) -> bool:
        return False  # ReAct text protocol: every provider, recordable as plain text

    def get_context_window_size(self) -> int:
        if self.model.startswith("kasal-offline/"):
            return OFFLINE_CONTEXT_WINDOW
        try:
            info = litellm.get_model_info(self.model)
        except Exception:
            return FALLBACK_CONTEXT_WINDOW
        window = info.get("max_input_tokens") or info.get("max_tokens")
        return int(window) if window else FALLBACK_CONTEXT_WINDOW

    def get_input_tokens_count(
        self,
        messages: str | list[LLMMessage],
        tools: list[dict[str, BaseTool]] | None = None,
        response_model: type[BaseModel] | None = None,
    ) -> int:
        """An estimate (4 characters a token), without BaseLLM's warning on every call."""
        if isinstance(messages, str):
            chars = len(messages)
        else:
            chars = sum(len(str(m.get("content") or "")) for m in messages)
        return (chars + 3) // 4


def _finish_reason(response: Any) -> str | None:
    try:
        reason = response.choices[0].finish_reason
    except (AttributeError, IndexError, TypeError):
        return None
    return reason if isinstance(reason, str) else None


__all__ = ["RETRYABLE_ERRORS", "GatewayLLM", "request_hash"]
