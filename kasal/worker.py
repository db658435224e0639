"""``kasal worker``: a worker of the distributed deployment.

Workers share the partitions through two Kafka consumer groups: ``<prefix>-writers``
(the single writer of each ``<prefix>.commands`` partition) and ``<prefix>-mirror`` (the
log mirror). Stopping or losing one hands its partitions to the others. Each worker runs
the executions of the partitions it writes; the projectors, which follow the log's
global order, run on one worker at a time (the holder of a ``LeaderLock``). Everything
runs inside an asyncio loop Kasal owns, so the same code serves the CLI and the tests.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy.exc import DBAPIError

from adapters.kafka.log_worker import LogWorker, WorkerConfig, WorkerError
from adapters.postgres.leader import LeaderLock
from kasal.bootstrap import Kasal, bootstrap
from kasal.settings import Settings
from streams.engine import CrewEngine

log = logging.getLogger(__name__)
LEADER_LOCK_KEY = 0x6B6173616C01  # "kasal" + 1: the projectors' leader lock


async def run_worker(settings: Settings, stop: asyncio.Event, *,
                     engine: CrewEngine | None = None,
                     leading: asyncio.Event | None = None) -> None:
    """``kasal worker``. Every worker: the single writer of the partitions the group gives
    it, the log mirror, and the execution runner for the executions of those partitions
    (when partitions move, runs move: the new owner resumes them from the log). The
    worker holding the leader lock also runs the SQL and vector projectors (``leading``
    is set once they run)."""
    log_worker = LogWorker(WorkerConfig(
        settings.kafka_bootstrap_servers, settings.postgres_url, settings.kafka_partitions,
        settings.kafka_prefix, session_timeout_s=settings.kafka_session_timeout_s,
    ))
    runs: Kasal | None = None
    projectors: Kasal | None = None
    leadership = LeaderLock(settings.postgres_url, LEADER_LOCK_KEY)
    tasks: list[asyncio.Task[Any]] = []
    takeovers: list[asyncio.Task[None]] = []
    await asyncio.to_thread(log_worker.check_topics)  # a clear error before anything else
    # CrewAI's import blocks the loop for seconds: do it before joining the group
    try:
        runs = await bootstrap(settings, engine=engine, role="runner", owns=log_worker.owns)
    except (OSError, DBAPIError) as error:
        raise WorkerError(f"cannot reach PostgreSQL for the read models ({error})") from None
    try:
        await log_worker.start()
        await runs.start(resume=False)
        runs_ = runs

        async def take_over() -> None:
            assert runs_.runner is not None
            released = runs_.runner.release_unowned()
            if released:
                log.info("handing %s runs to their partitions' new owner", len(released))
            # the work list comes from the read model: wait until it has caught up
            while not await runs_.wait_until_projected(60.0):
                log.warning("the SQL projection is still catching up; taking over after it")
            launched = await runs_.runner.resume_unfinished(
                await runs_.read_models.unfinished_execution_ids()
            )
            if launched:
                log.info("resumed %s unfinished runs of this worker's partitions", launched)

        def assigned() -> None:
            for task in takeovers:
                task.cancel()
            takeovers[:] = [asyncio.create_task(take_over(), name="kasal-takeover")]

        log_worker.assignment_listeners.append(assigned)
        if log_worker.owned:
            assigned()

        async def lead() -> None:
            nonlocal projectors
            await leadership.acquire()
            log.info("this worker leads: starting the projectors")
            projectors = await bootstrap(settings, role="projectors", run_executions=False,
                                         with_vectors=True)
            await projectors.start()
            if leading is not None:
                leading.set()
            await leadership.lost.wait()
            if not stop.is_set():
                raise RuntimeError("lost the PostgreSQL connection holding the leader lock")

        tasks = [asyncio.create_task(lead(), name="kasal-lead"),
                 asyncio.create_task(stop.wait(), name="kasal-stop"),
                 asyncio.ensure_future(log_worker.crashed)]
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()  # the leader task's error ends the worker
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if projectors is not None:
            await projectors.stop()
        if runs is not None:
            for takeover in takeovers:
                takeover.cancel()
            await runs.stop()
        await leadership.release()
        await log_worker.stop()
