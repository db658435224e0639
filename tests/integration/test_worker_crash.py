"""A worker whose writer or mirror loop fails ends, loudly, instead of holding its
partitions while doing nothing (crash-only: a supervisor restarts it and the partitions
are rebuilt from the log). Here the mirror meets an event that does not continue its
aggregate's hash chain (written to the topic behind Kasal's back)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from adapters.kafka.records import encode_event
from adapters.kafka.topics import KafkaTopics
from domain.envelope import seal
from domain.errors import TamperedEvent
from domain.ids import new_id
from kasal.settings import Settings
from kasal.worker import run_worker
from tests.contract.conftest import new_events
from tests.kafka import BOOTSTRAP, PARTITIONS, delete_topics, new_prefix, provision
from tests.pg import create_database, drop_database

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def test_a_mirror_that_meets_a_broken_chain_ends_the_worker(tmp_path: Path) -> None:
    database_url = await create_database()
    prefix = new_prefix()
    provision(prefix)
    stop = asyncio.Event()
    settings = Settings(  # type: ignore[call-arg]
        KASAL_DATA_DIR=tmp_path, KASAL_MODE="distributed", DATABASE_TYPE="postgres",
        DATABASE_URL=database_url, KAFKA_BOOTSTRAP_SERVERS=BOOTSTRAP,
        KASAL_KAFKA_PREFIX=prefix, KASAL_KAFKA_PARTITIONS=PARTITIONS,
        KASAL_VECTOR_SEARCH=False,
    )
    leading = asyncio.Event()
    worker = asyncio.create_task(run_worker(settings, stop, leading=leading))
    try:
        await asyncio.wait({worker, asyncio.create_task(leading.wait())},
                           return_when=asyncio.FIRST_COMPLETED)
        assert not worker.done(), worker
        # version 2 of an aggregate the log has never seen: no writer would produce it
        aggregate_id = new_id()
        orphan = seal(replace(new_events(aggregate_id, 2)[1]), "f" * 64)
        producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP)
        await producer.start()
        try:
            await producer.send_and_wait(KafkaTopics(prefix).events("agent"),
                                         encode_event(orphan), key=aggregate_id.encode())
        finally:
            await producer.stop()

        with pytest.raises(TamperedEvent, match="does not continue the mirrored chain"):
            async with asyncio.timeout(60):
                await worker
    finally:
        stop.set()
        if not worker.done():
            await worker
        await drop_database(database_url)
        delete_topics(prefix)
