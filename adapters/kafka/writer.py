"""The single writer of each partition: turns append requests into events.

Kafka has no conditional append, so correctness comes from ownership: the consumer group
``<prefix>-writers`` gives each ``<prefix>.commands`` partition to exactly one worker, and
only that worker produces to the same partition number of the events topics. For every
aggregate of its partitions it keeps the version, the last hash, its most recent event ids
and the commands it accepted. A request is checked against that state exactly as the
embedded store checks an append (shape, duplicate command, expected version), sealed onto
the hash chain, produced in a transaction (``acks=all``), and only then recorded and
answered; the request's offset is committed after.

Fencing: each partition has its own transactional producer, ``<prefix>-writer-<n>``. A
worker given partition n starts that producer before it folds the log, and Kafka then
fences every earlier producer of that id: a worker that lost the partition while it was
paused or cut off (its session expired, but it still holds requests it fetched) fails on
its next send or commit with ``ProducerFenced``, and its open transaction is aborted. So
nothing it prepares afterwards reaches a reader: the mirror and the takeover read
committed records only.

The state is the log itself: when a worker is given a partition it folds the events
partitions from the start before answering anything, so events that reached the log but
whose writer died before answering are known. At-least-once throughout: a redelivered
request is recognised by its first event id (or its command id) and answered with the
first outcome. (A first cut used a Faust agent and a changelog-backed Faust table; with
two workers, partitions were left unconsumed after rebalances: see
docs/2026-11-27-kafka-event-store.md.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, ProducerFenced

from adapters.eventstore.append_rule import check_batch, seal_append
from adapters.kafka.groups import join_group, leave_group, read_records
from adapters.kafka.records import (
    APPENDED,
    CONFLICT,
    DUPLICATE,
    INVALID,
    AppendReply,
    AppendRequest,
    command_from_headers,
    command_header,
    decode_event,
    encode_event,
)
from adapters.kafka.topics import KafkaTopics, partition_for
from adapters.kafka.writer_state import AggregateState
from commands.errors import ConcurrencyError, DuplicateCommand

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 900_000  # one request's events: one record batch, under 1 MB
PRODUCER_START_S = 60.0  # a partition's transactional producer (InitProducerId) at takeover


class LogWriter:
    """The writers of the partitions this process owns in the ``<prefix>-writers`` group.

    ``owned`` is the current assignment; ``on_assignment`` listeners hear every change
    (the runner follows its worker's partitions).
    """

    def __init__(self, topics: KafkaTopics, bootstrap_servers: str, partitions: int, *,
                 session_timeout_s: float = 10.0) -> None:
        self.topics = topics
        self.bootstrap_servers = bootstrap_servers
        self.partitions = partitions
        self.session_timeout_s = session_timeout_s
        self.states: dict[int, dict[str, AggregateState]] = {}  # partition -> aggregate -> state
        self.owned: frozenset[int] = frozenset()
        self.on_assignment: list[Callable[[], None]] = []
        self.producer: AIOKafkaProducer | None = None  # the replies (not fenced: answers only)
        self.fenced: dict[int, AIOKafkaProducer] = {}  # partition -> its transactional producer
        self.in_transaction: set[int] = set()
        self.consumer: AIOKafkaConsumer | None = None
        self.to_rebuild: set[TopicPartition] = set()  # assigned, paused until rebuilt
        self.task: asyncio.Task[None] | None = None
        # held while a batch is processed: a rebalance waits for it (no zombie appends
        # after this process lost the partition)
        self.working = asyncio.Lock()

    async def start(self) -> None:
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap_servers, acks="all", enable_idempotence=True,
            linger_ms=0, client_id=f"{self.topics.prefix}-writer",
            max_batch_size=MAX_REQUEST_BYTES, max_request_size=MAX_REQUEST_BYTES + 65_536,
        )
        await self.producer.start()
        self.consumer = await join_group(
            self.bootstrap_servers, f"{self.topics.prefix}-writers", [self.topics.commands],
            _Rebalance(self), session_timeout_s=self.session_timeout_s,
        )
        self.task = asyncio.create_task(self._loop(), name="kasal-log-writer")

    async def stop(self) -> None:
        """Finish the batch in hand, flush the producer, and only then leave the group: a
        new owner's rebuild must see every event this writer sent."""
        async with self.working:  # the batch in hand keeps its consumer until it is done
            task, consumer, self.task, self.consumer = self.task, self.consumer, None, None
            if task is not None:
                task.cancel()
        for partition in list(self.fenced):
            await self._drop_producer(partition)
        if self.producer is not None:
            producer, self.producer = self.producer, None
            await producer.stop()
        await leave_group(task, consumer)

    async def _producer_for(self, partition: int) -> AIOKafkaProducer:
        """Partition ``partition``'s transactional producer; starting it fences the last
        owner's (and aborts its open transaction) before this worker reads the log."""
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap_servers, acks="all", enable_idempotence=True,
            transactional_id=f"{self.topics.prefix}-writer-{partition}", linger_ms=0,
            client_id=f"{self.topics.prefix}-writer-{partition}",
            max_batch_size=MAX_REQUEST_BYTES, max_request_size=MAX_REQUEST_BYTES + 65_536,
        )
        try:
            async with asyncio.timeout(PRODUCER_START_S):
                await producer.start()
        except BaseException as error:
            with contextlib.suppress(Exception):
                await producer.stop()
            if isinstance(error, TimeoutError):
                raise RuntimeError(
                    f"the transactional writer of partition {partition} could not start in "
                    f"{PRODUCER_START_S:g} s: can the broker host its transaction state log "
                    "(transaction.state.log.replication.factor and min.isr must fit the "
                    "cluster)?") from None
            raise
        return producer

    async def _drop_producer(self, partition: int) -> None:
        producer = self.fenced.pop(partition, None)
        opened = partition in self.in_transaction
        self.in_transaction.discard(partition)
        if producer is not None:
            with contextlib.suppress(Exception):  # fenced already, or the broker away
                if opened:  # readers past it would wait for the transaction's timeout
                    await producer.abort_transaction()
            with contextlib.suppress(Exception):
                await producer.stop()

    async def _sender(self, partition: int) -> AIOKafkaProducer:
        producer = self.fenced[partition]
        if partition not in self.in_transaction:
            await producer.begin_transaction()
            self.in_transaction.add(partition)
        return producer

    async def _commit(self) -> None:
        """Commit every transaction the batch opened. ``ProducerFenced``: another worker owns
        one of these partitions now; nothing of it was answered, and this worker stops."""
        open_now, self.in_transaction = sorted(self.in_transaction), set()
        try:
            await asyncio.gather(*(self.fenced[p].commit_transaction() for p in open_now))
        except ProducerFenced:
            log.error("this worker's writer of partitions %s was fenced (another worker owns "
                      "them now, or the transaction timed out): it stops without answering",
                      open_now)
            raise

    def owns(self, aggregate_id: str) -> bool:
        return partition_for(aggregate_id, self.partitions) in self.owned

    def _assigned(self, partitions: frozenset[int]) -> None:
        self.owned = partitions
        log.info("this worker owns partitions %s", sorted(partitions))
        for listener in self.on_assignment:
            listener()

    async def _loop(self) -> None:
        assert self.consumer is not None
        while True:
            if self.to_rebuild:
                await self._take_over()
            batches = await self.consumer.getmany(timeout_ms=200, max_records=200)
            if not batches:
                continue
            async with self.working:
                # pipelined: every request of the batch is checked (against the state the
                # earlier ones left) and its events are sent; then ONE wait for the acks of
                # all, then the answers, then the offsets. A failed send ends the loop (and
                # the worker): nothing was answered, the next owner rebuilds from the log.
                offsets = {}
                answers: list[tuple[str, AppendReply]] = []
                sends: list[asyncio.Future[Any]] = []
                for tp, records in batches.items():
                    if tp.partition not in self.states:
                        if tp in self.consumer.assignment():
                            raise RuntimeError(f"partition {tp.partition} has no writer state")
                        continue  # revoked while fetched
                    for record in records:
                        prepared = await self._prepare_record(tp.partition, record.offset,
                                                              record.value)
                        if prepared is not None:
                            answers.append(prepared[0])
                            sends.extend(prepared[1])
                    offsets[tp] = records[-1].offset + 1
                if sends:
                    await asyncio.gather(*sends)  # durable: acks=all
                await self._commit()  # visible to readers (read_committed) from here
                for client_id, reply in answers:
                    await self._reply(client_id, reply)
                if offsets:
                    with contextlib.suppress(CommitFailedError):  # rebalanced: redelivered
                        await self.consumer.commit(offsets)

    async def _take_over(self) -> None:
        """Rebuild the partitions given to this worker (paused until then). Done here, not
        in the rebalance callback: aiokafka sends no heartbeats during the callback, and a
        long rebuild there would get this member evicted in the middle of its takeover."""
        assert self.consumer is not None
        async with self.working:
            for tp in sorted(self.to_rebuild, key=lambda t: t.partition):
                if tp in self.consumer.assignment():
                    await self._drop_producer(tp.partition)
                    self.fenced[tp.partition] = await self._producer_for(tp.partition)
                    self.states[tp.partition] = await self.rebuild(tp.partition)
                    self.consumer.resume(tp)
            self.to_rebuild.clear()
        self._assigned(frozenset(self.states))

    async def _prepare_record(
        self, partition: int, offset: int, value: bytes
    ) -> tuple[tuple[str, AppendReply], list[asyncio.Future[Any]]] | None:
        try:
            request = AppendRequest.decode(value)
        except (ValueError, KeyError, TypeError) as error:
            log.error("dropping an undecodable append request at %s/%s: %s",
                      partition, offset, error)
            return None
        reply, sends = await self.prepare(request, partition)
        return (request.client_id, reply), sends

    async def prepare(
        self, request: AppendRequest, partition: int
    ) -> tuple[AppendReply, list[asyncio.Future[Any]]]:
        """Check ``request`` against the partition's state; if it appends, send its events
        (not yet acknowledged: the caller waits) and fold them into the state."""
        assert self.producer is not None, "LogWriter.start() was not awaited"
        events = request.events
        try:
            aggregate_id = check_batch(events, request.expected_version)
        except ValueError as error:
            aggregate = events[0].aggregate_id if events else ""
            return AppendReply(request.request_id, INVALID, aggregate, message=str(error)), []
        table = self.states[partition]
        state = table.get(aggregate_id, AggregateState())
        # a redelivered request: its first event is already in the log
        version = state.version_of(events[0].event_id)
        if version is not None:
            return AppendReply(request.request_id, APPENDED, aggregate_id,
                               version + len(events) - 1, events[-1].event_id), []
        prior = state.accepted(request.command) if request.command else None
        try:
            sealed = seal_append(events, request.expected_version, state.head,
                                 command=request.command, command_seen=prior is not None)
        except DuplicateCommand:
            assert prior is not None
            return AppendReply(request.request_id, DUPLICATE, aggregate_id, prior.version,
                               prior.last_event_id, prior.fingerprint), []
        except ConcurrencyError:
            return AppendReply(request.request_id, CONFLICT, aggregate_id,
                               state.head.version), []
        topic = self.topics.events(events[0].aggregate_type)
        producer = await self._sender(partition)
        # ONE record batch per request: the broker appends it whole or not at all, so a
        # crash never leaves a request's first events in the log without its last
        batch = producer.create_batch()
        for index, recorded in enumerate(sealed):
            last = index == len(sealed) - 1
            headers = [command_header(request.command)] if last and request.command else []
            if batch.append(key=aggregate_id.encode(), value=encode_event(recorded),
                            timestamp=None, headers=headers) is None:
                return AppendReply(
                    request.request_id, INVALID, aggregate_id,
                    message=f"the command's events exceed {MAX_REQUEST_BYTES} bytes",
                ), []
        futures = [await producer.send_batch(batch, topic, partition=partition)]
        for index, recorded in enumerate(sealed):
            last = index == len(sealed) - 1
            state = state.after(recorded, request.command if last else None)
        table[aggregate_id] = state
        return AppendReply(request.request_id, APPENDED, aggregate_id, sealed[-1].version,
                           sealed[-1].event_id), futures

    async def _reply(self, client_id: str, reply: AppendReply) -> None:
        assert self.producer is not None
        # not awaited to the broker's ack: a lost reply times out and the client retries
        await self.producer.send(
            self.topics.replies, reply.encode(), key=client_id.encode(),
            partition=partition_for(client_id, await self._reply_partitions()),
        )

    _reply_partition_count: int = 0

    async def _reply_partitions(self) -> int:
        if not self._reply_partition_count:
            assert self.producer is not None
            found = await self.producer.partitions_for(self.topics.replies)
            self._reply_partition_count = len(found)
        return self._reply_partition_count

    async def rebuild(self, partition: int) -> dict[str, AggregateState]:
        """Every aggregate's state on ``partition``, folded from the events partitions: the
        log is the writer's only state, so whatever reached the log (even if its writer
        died before answering) is known before this process answers anything."""
        states: dict[str, AggregateState] = {}
        folded = 0
        tps = [TopicPartition(t, partition) for t in self.topics.event_topics]
        async for _, record in read_records(self.bootstrap_servers, tps):
            event = decode_event(record.value)
            state = states.get(event.aggregate_id, AggregateState())
            states[event.aggregate_id] = state.after(event, command_from_headers(record.headers))
            folded += 1
        log.info("writer of partition %s is ready (%s events, %s aggregates)", partition,
                 folded, len(states))
        return states


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, writer: LogWriter) -> None:
        self.writer = writer

    async def on_partitions_revoked(self, revoked: Any) -> None:
        async with self.writer.working:  # the batch in hand finishes first
            for tp in revoked:
                self.writer.states.pop(tp.partition, None)
                self.writer.to_rebuild.discard(tp)
                await self.writer._drop_producer(tp.partition)
        self.writer._assigned(frozenset(self.writer.states))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        consumer = self.writer.consumer
        assert consumer is not None
        fresh = [tp for tp in assigned if tp.partition not in self.writer.states]
        if fresh:
            consumer.pause(*fresh)  # the loop rebuilds them, then resumes them
            self.writer.to_rebuild.update(fresh)
