"""The Kafka event store as the command side sees it: the ``EventStore`` port over Kafka.

``append`` sends an append request to ``<prefix>.commands`` keyed by the aggregate id
(``acks=all``, idempotent producer), so the partition's single writer
(``adapters/kafka/writer.py``) checks and produces it, and waits for the writer's reply
on this client's partition of ``<prefix>.replies``. It returns once the events are
durable in Kafka AND copied by the log mirror (``adapters/kafka/mirror.py``), so the
position it returns is one every reader can wait for, and the caller's next read sees
its own write. Reads (``read_stream``, ``read_all``, ``find_command``) use the mirror.

When the broker cannot take the request, no writer answers, or the mirror does not copy
the events in time, ``append`` raises ``StoreUnavailable``: the outcome is unknown, and
a retry with the same command id either finds the first result or appends once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    KafkaError,
    MessageSizeTooLargeError,
    UnknownTopicOrPartitionError,
)
from sqlalchemy.exc import DBAPIError

from adapters.eventstore.append_rule import check_batch
from adapters.eventstore.sql_log import DatabaseUnavailable, SqlEventLog
from adapters.kafka.mirror_store import MIRROR_CHANNEL
from adapters.kafka.records import APPENDED, CONFLICT, DUPLICATE, AppendReply, AppendRequest
from adapters.kafka.topics import KafkaTopics, partition_for
from adapters.postgres.listen import PgListener
from commands.errors import ConcurrencyError, DuplicateCommand, StoreUnavailable
from commands.ports import AppendResult, CommandRecord
from domain.envelope import NewEvent, RecordedEvent
from domain.errors import InvalidDefinition
from domain.ids import new_id

log = logging.getLogger(__name__)

# the mirror's database cannot be reached (restarting, failing over, network)
DATABASE_DOWN = (OSError, DBAPIError, asyncpg.PostgresError, asyncpg.InterfaceError,
                 DatabaseUnavailable)


class KafkaEventStore:
    def __init__(
        self,
        bootstrap_servers: str,
        mirror: SqlEventLog,
        *,
        topics: KafkaTopics | None = None,
        postgres_dsn: str,
        request_timeout: float = 15.0,
        mirror_timeout: float = 15.0,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.mirror = mirror
        self.topics = topics or KafkaTopics()
        self.postgres_dsn = postgres_dsn.replace("postgresql+asyncpg://", "postgresql://")
        self.request_timeout = request_timeout
        self.mirror_timeout = mirror_timeout
        self.client_id = f"kasal-{new_id()}"
        self.pending: dict[str, asyncio.Future[AppendReply]] = {}
        self.producer: AIOKafkaProducer | None = None
        self.replies: AIOKafkaConsumer | None = None
        self.listener: PgListener | None = None  # LISTENs to the mirror's commits
        # replaced on every mirror commit; a waiter holds the one current when it checked
        self.mirrored = asyncio.Event()
        # appends waiting for the mirror to copy their last event
        self.awaiting: dict[str, asyncio.Future[int]] = {}
        self.resolving: asyncio.Task[None] | None = None
        self.resolve_again = False
        self.tasks: list[asyncio.Task[None]] = []
        self.listeners: list[Callable[[], None]] = []

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every batch the log mirror commits (any writer's)."""
        self.listeners.append(listener)

    # --- lifecycle -------------------------------------------------------------------------
    async def initialize(self) -> None:
        """Connect (PostgreSQL LISTEN, producer, reply consumer); on failure close what was
        opened and raise ``StoreUnavailable`` saying what is missing."""
        try:
            await self._open()
        except BaseException as error:
            await self.close()
            if isinstance(error, UnknownTopicOrPartitionError):
                raise StoreUnavailable(
                    f"topic {self.topics.replies} does not exist on {self.bootstrap_servers}: "
                    "run 'kasal kafka init'"
                ) from None
            if isinstance(error, KafkaError):
                raise StoreUnavailable(
                    f"no Kafka broker answers at {self.bootstrap_servers} ({error})"
                ) from None
            raise

    async def _open(self) -> None:
        await self.mirror.initialize()
        self.listener = PgListener(self.postgres_dsn)
        await self.listener.listen(MIRROR_CHANNEL, self._on_mirrored)
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap_servers, acks="all", enable_idempotence=True,
            linger_ms=0, client_id=self.client_id,
            request_timeout_ms=int(self.request_timeout * 1000),
        )
        await self.producer.start()
        partitions = await self.producer.partitions_for(self.topics.replies)
        if not partitions:
            raise StoreUnavailable(
                f"topic {self.topics.replies} does not exist: run 'kasal kafka init'"
            )
        mine = TopicPartition(self.topics.replies, partition_for(self.client_id, len(partitions)))
        self.replies = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers, enable_auto_commit=False,
            client_id=self.client_id, fetch_max_wait_ms=50,
        )
        await self.replies.start()
        self.replies.assign([mine])
        await self.replies.seek_to_end(mine)
        await self.replies.position(mine)  # resolve "the end" now, before the first request
        self.tasks.append(asyncio.create_task(self._read_replies(), name="kasal-replies"))

    async def close(self) -> None:
        if self.resolving is not None:  # a lookup for waiting appends: none wait any more
            self.tasks.append(self.resolving)
            self.resolving = None
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # it ended: closing
                await task
        self.tasks.clear()
        if self.replies is not None:
            replies, self.replies = self.replies, None
            await replies.stop()
        if self.producer is not None:
            producer, self.producer = self.producer, None
            await producer.stop()
        if self.listener is not None:
            listener, self.listener = self.listener, None
            await listener.close()
        await self.mirror.close()

    def _on_mirrored(self, *_: Any) -> None:
        committed, self.mirrored = self.mirrored, asyncio.Event()
        committed.set()
        if self.awaiting:
            self._resolve_soon()
        for listener in self.listeners:
            listener()

    async def _read_replies(self) -> None:
        assert self.replies is not None
        while True:
            batches = await self.replies.getmany(timeout_ms=1000)
            for records in batches.values():
                for record in records:
                    if record.key != self.client_id.encode():
                        continue
                    try:
                        reply = AppendReply.decode(record.value)
                    except (ValueError, TypeError) as error:
                        log.error("undecodable reply: %s", error)
                        continue
                    future = self.pending.pop(reply.request_id, None)
                    if future is not None and not future.done():
                        future.set_result(reply)

    # --- the port --------------------------------------------------------------------------
    async def append(self, events: Sequence[NewEvent], *, expected_version: int,
                     command: CommandRecord | None = None) -> AppendResult:
        aggregate_id = check_batch(events, expected_version)
        assert self.producer is not None, "KafkaEventStore.initialize() was not awaited"
        try:
            recorded = command is not None and await self.mirror.find_command(
                command.tenant_id, command.command_id
            )
        except DATABASE_DOWN as error:
            raise StoreUnavailable(
                f"the event store's database is unavailable ({type(error).__name__}); nothing "
                "was appended: retry shortly"
            ) from None
        if recorded:
            # recorded on any aggregate (the writers only see their partition's): refused
            # here as the embedded stores refuse it; a race within the mirror's lag remains
            raise DuplicateCommand(command.command_id if command else "")
        request = AppendRequest(new_id(), self.client_id, expected_version, tuple(events),
                                command)
        future: asyncio.Future[AppendReply] = asyncio.get_running_loop().create_future()
        self.pending[request.request_id] = future
        try:
            async with asyncio.timeout(self.request_timeout):
                await self.producer.send_and_wait(
                    self.topics.commands, request.encode(), key=aggregate_id.encode()
                )
                reply = await future
        except MessageSizeTooLargeError:
            raise InvalidDefinition(
                "the command's events are too large for the event log (over 1 MB)"
            ) from None
        except (TimeoutError, KafkaError) as error:
            raise StoreUnavailable(
                f"the event log did not confirm the append of {aggregate_id} within "
                f"{self.request_timeout:g}s ({type(error).__name__}): the outcome is unknown; "
                "retry with the same Idempotency-Key"
            ) from None
        finally:
            self.pending.pop(request.request_id, None)
        try:
            return await self._settle(reply, aggregate_id, expected_version, command)
        except DATABASE_DOWN as error:
            raise StoreUnavailable(
                f"the events of {aggregate_id} are durable in the log but its database is "
                f"unavailable ({type(error).__name__}); retry with the same Idempotency-Key "
                "to get the result"
            ) from None

    async def _settle(self, reply: AppendReply, aggregate_id: str, expected_version: int,
                      command: CommandRecord | None) -> AppendResult:
        """The writer's answer as the port's result: once the mirror holds what it says."""
        if reply.outcome == APPENDED:
            position = await self._position_of(reply.last_event_id)
            return AppendResult(aggregate_id, reply.version, position)
        if reply.outcome == CONFLICT:
            # let the caller's reload see at least the version the writer holds
            await self._wait("the mirror to reach the writer's version",
                             lambda: self._has_version(aggregate_id, reply.version))
            raise ConcurrencyError(aggregate_id, expected_version, reply.version)
        if reply.outcome == DUPLICATE:
            await self._position_of(reply.last_event_id)  # find_command sees it from now on
            raise DuplicateCommand(command.command_id if command else "")
        raise InvalidDefinition(reply.message)  # the writer refused its shape (a 422)

    async def read_stream(self, aggregate_id: str) -> list[RecordedEvent]:
        return await self.mirror.read_stream(aggregate_id)

    async def read_all(self, after: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        return await self.mirror.read_all(after, limit)

    async def find_command(self, tenant_id: str, command_id: str) -> CommandRecord | None:
        return await self.mirror.find_command(tenant_id, command_id)

    async def head_position(self) -> int:
        return await self.mirror.head_position()

    # --- waiting for the mirror --------------------------------------------------------------
    async def _position_of(self, event_id: str) -> int:
        """The mirror position of ``event_id`` once copied. Waiters share one lookup per
        mirror commit (``_resolve``), however many appends are in flight."""
        position = await self.mirror.position_of(event_id)
        if position is not None:
            return position
        future = self.awaiting.get(event_id)
        if future is None:
            future = self.awaiting[event_id] = asyncio.get_running_loop().create_future()
            self._resolve_soon()  # a commit may have landed between the lookup and now
        try:
            async with asyncio.timeout(self.mirror_timeout):
                return await asyncio.shield(future)
        except TimeoutError:
            log.warning("timed out after %ss waiting for the log mirror to copy event %s: is "
                        "a 'kasal worker' running the log mirror?", self.mirror_timeout, event_id)
            raise StoreUnavailable(
                f"the events are durable in the log but were not readable within "
                f"{self.mirror_timeout:g}s; retry with the same Idempotency-Key to get the result"
            ) from None
        finally:
            if self.awaiting.get(event_id) is future:
                del self.awaiting[event_id]

    def _resolve_soon(self) -> None:
        if self.resolving is None or self.resolving.done():
            self.resolving = asyncio.get_running_loop().create_task(self._resolve())
        else:
            self.resolve_again = True

    async def _resolve(self) -> None:
        while True:
            self.resolve_again = False
            wanted = [i for i, f in self.awaiting.items() if not f.done()]
            if wanted:
                for event_id, position in (await self.mirror.positions_of(wanted)).items():
                    future = self.awaiting.pop(event_id, None)
                    if future is not None and not future.done():
                        future.set_result(position)
            if not self.resolve_again:
                return

    async def _has_version(self, aggregate_id: str, version: int) -> bool:
        return (await self.mirror.stream_head(aggregate_id)).version >= version

    async def _wait(self, what: str, condition: Callable[[], Awaitable[bool]]) -> None:
        """Re-check ``condition`` after every mirror commit (NOTIFY), up to the timeout."""
        try:
            async with asyncio.timeout(self.mirror_timeout):
                while True:
                    commit = self.mirrored
                    if await condition():
                        return
                    await commit.wait()
        except TimeoutError:
            log.warning("timed out after %ss waiting for %s: is a 'kasal worker' running "
                        "the log mirror?", self.mirror_timeout, what)
            raise StoreUnavailable(
                f"the events are durable in the log but were not readable within "
                f"{self.mirror_timeout:g}s; retry with the same Idempotency-Key to get the result"
            ) from None
