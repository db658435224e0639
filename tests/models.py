"""Models for tests only, beside the offline model: ``kasal-test/slow`` (answers like the
offline model after ~0.3 s, as a fast provider would), ``kasal-test/error`` (fails every
call) and ``kasal-test/flaky`` (a rate-limit error on the first call of each distinct
request, then success). ``register_test_models()`` makes them available to litellm; a
``kasal`` subprocess gets them through ``python -m tests.kasal_cli``."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from litellm.exceptions import InternalServerError, RateLimitError
from litellm.types.utils import ModelResponse

from adapters.crewai.offline_llm import OfflineModel, register_offline_provider, request_key

PROVIDER = "kasal-test"
SLOW = f"{PROVIDER}/slow"
SLEEPY_SECONDS = 2.5
ERROR = f"{PROVIDER}/error"
FLAKY = f"{PROVIDER}/flaky"
SLOW_SECONDS = 0.3


class SimulatedModels(OfflineModel):
    provider = PROVIDER

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._flaky_seen: dict[str, int] = {}

    def respond(self, model: str, messages: list[Any], stop: Any) -> ModelResponse:
        model = f"{PROVIDER}/{model.rsplit('/', 1)[-1]}"
        if model.endswith("error"):
            raise InternalServerError(
                message=f"{model}: simulated provider failure (this test model fails every call)",
                llm_provider=PROVIDER, model=model,
            )
        if model.endswith("flaky"):
            key = request_key(model, messages)
            with self._lock:
                seen = self._flaky_seen.get(key, 0)
                self._flaky_seen[key] = seen + 1
            if seen == 0:
                raise RateLimitError(
                    message=f"{model}: simulated rate limit (first call of this request)",
                    llm_provider=PROVIDER, model=model,
                )
        return super().respond(model, messages, stop)

    def completion(self, model: str, messages: list[Any], *_: Any, **kwargs: Any) -> ModelResponse:
        if model.endswith("slow"):
            time.sleep(SLOW_SECONDS)
        if model.endswith("sleepy"):  # past a one-second max_execution_time
            time.sleep(SLEEPY_SECONDS)
        return super().completion(model, messages, **kwargs)

    async def acompletion(
        self, model: str, messages: list[Any], *_: Any, **kwargs: Any
    ) -> ModelResponse:
        if model.endswith("slow"):
            await asyncio.sleep(SLOW_SECONDS)
        return super().completion(model, messages, **kwargs)


def register_test_models() -> None:
    register_offline_provider()
    register_offline_provider(SimulatedModels())
