"""The composition root: the only place that constructs adapters and wires one deployment."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.encryption import EncryptingEventStore, PayloadCipher
from adapters.sql import make_engine
from adapters.sql_event_store import SqlEventStore
from commands.bus import CommandBus
from commands.handlers import HandlerDeps
from commands.ports import EventStore
from kasal.settings import Settings
from projections.clock import ProjectionClock
from projections.projector import SqlProjector
from projections.queries import ReadModels
from streams.runtime import InProcessRuntime


@dataclass
class Kasal:
    settings: Settings
    store: EventStore
    bus: CommandBus
    read_engine: AsyncEngine
    read_models: ReadModels
    projector: SqlProjector
    runtime: InProcessRuntime
    clock: ProjectionClock
    running: bool = field(default=False)

    async def start(self, *, run_processors: bool = True) -> None:
        """Create tables if missing and (by default) start the processors."""
        await self.projector.initialize()
        self.clock.advance(await self.projector.position())
        if run_processors:
            await self.runtime.start()
            self.running = True

    async def catch_up(self) -> int:
        """Project everything stored so far, now (CLI commands and tests)."""
        return await self.runtime.catch_up()

    async def stop(self) -> None:
        await self.runtime.stop()
        self.running = False
        await self.store.close()
        await self.read_engine.dispose()
        await self.projector.engine.dispose()

    async def wait_until_projected(self, timeout: float) -> bool:
        """Wake the processors and wait until the SQL projection reaches the store's head."""
        head = await self.store.head_position()
        self.runtime.notify()
        return await self.clock.wait_for(head, timeout) >= head


async def build_event_store(settings: Settings) -> EventStore:
    sql_store = SqlEventStore(settings.event_store_url, echo=settings.sql_debug)
    await sql_store.initialize()
    if settings.encryption_key:
        return EncryptingEventStore(sql_store, PayloadCipher(settings.encryption_key))
    return sql_store


async def bootstrap(settings: Settings, *, store: EventStore | None = None) -> Kasal:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = store or await build_event_store(settings)
    bus = CommandBus(store, HandlerDeps(default_llm=settings.default_llm))
    read_engine = make_engine(settings.read_model_url, echo=settings.sql_debug)
    # the projector writes through its own engine: on SQLite it takes the write lock up front
    projector_engine = make_engine(settings.read_model_url, echo=settings.sql_debug, immediate=True)
    projector = SqlProjector(projector_engine)
    read_models = ReadModels(read_engine)
    runtime = InProcessRuntime(store, [projector])
    clock = ProjectionClock(projector.position)
    bus.subscribe(runtime.notify)
    runtime.on_progress(lambda name, position: clock.advance(position))
    return Kasal(settings, store, bus, read_engine, read_models, projector, runtime, clock)
