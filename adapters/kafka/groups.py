"""Consumer helpers the partition writer and the log mirror share: joining and leaving a
consumer group, and reading partitions from offset 0 to their end (the writer's takeover)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition


async def read_records(
    bootstrap_servers: str, partitions: Sequence[TopicPartition]
) -> AsyncIterator[tuple[TopicPartition, ConsumerRecord[bytes, bytes]]]:
    """Every committed record of ``partitions`` from offset 0 to their end when called, in
    order per partition (a seek per partition: no offset-reset race; no consumer group)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False,
                                auto_offset_reset="earliest", isolation_level="read_committed")
    await consumer.start()
    try:
        consumer.assign(list(partitions))
        ends = await consumer.end_offsets(list(partitions))
        for tp in partitions:
            if not ends[tp]:
                continue
            consumer.seek(tp, 0)
            while await consumer.position(tp) < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                for record in batch.get(tp, []):
                    if record.offset < ends[tp]:
                        yield tp, record
    finally:
        await consumer.stop()


async def join_group(
    bootstrap_servers: str, group: str, topics: Sequence[str], listener: Any, *,
    session_timeout_s: float, **options: Any,
) -> AIOKafkaConsumer:
    """A started member of consumer group ``group`` (manual commits, from the earliest
    offset when the group has none), subscribed to ``topics`` with a rebalance listener."""
    session_ms = int(session_timeout_s * 1000)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, group_id=group, client_id=group,
        enable_auto_commit=False, auto_offset_reset="earliest",
        session_timeout_ms=session_ms, heartbeat_interval_ms=max(session_ms // 5, 500),
        isolation_level="read_committed",  # a fenced writer's aborted events are not read
        **options,
    )
    await consumer.start()
    consumer.subscribe(list(topics), listener=listener)
    return consumer


async def leave_group(task: asyncio.Task[None] | None, consumer: AIOKafkaConsumer | None) -> None:
    """Stop a member's loop, then the consumer (which leaves the group), even when the loop
    had ended with an error (raised after the consumer is stopped)."""
    try:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    finally:
        if consumer is not None:
            await consumer.stop()
