"""A partition writer that stops at one point of its first batch until it gets SIGUSR1
(``python -m tests.zombie_writer PREFIX PARTITIONS SESSION_S WHERE``): ``prepare``,
before it prepares a request it fetched, or ``commit``, after its events are acknowledged
and before its transaction commits. The fencing test stops the process there (SIGSTOP)
until another writer owns its partitions, then lets it go on. It prints the type of the
error its loop ended with."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from adapters.kafka.topics import KafkaTopics
from adapters.kafka.writer import LogWriter
from tests.kafka import BOOTSTRAP


async def go_on(where: str, go: asyncio.Event) -> None:
    print(f"holding at {where}", flush=True)
    await go.wait()
    print(f"going on from {where}", flush=True)


async def main(prefix: str, partitions: int, session_s: float, where: str) -> None:
    go = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, go.set)
    writer = LogWriter(KafkaTopics(prefix), BOOTSTRAP, partitions, session_timeout_s=session_s)
    prepare, commit = writer._prepare_record, writer._commit

    async def held_prepare(partition: int, offset: int, value: bytes) -> object:
        await go_on("prepare", go)
        return await prepare(partition, offset, value)

    async def held_commit() -> None:
        if writer.in_transaction:
            await go_on("commit", go)
        await commit()

    if where == "prepare":
        writer._prepare_record = held_prepare  # type: ignore[method-assign, assignment]
    else:
        writer._commit = held_commit  # type: ignore[method-assign]
    await writer.start()
    assert writer.task is not None
    try:
        await writer.task
    except BaseException as error:
        print(f"the writer's loop ended with {type(error).__name__}", flush=True)
        raise
    finally:
        await writer.stop()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(name)s %(message)s")
    prefix, partitions, session_s, where = sys.argv[1:5]
    asyncio.run(main(prefix, int(partitions), float(session_s), where))
