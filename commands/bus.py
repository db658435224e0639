"""The command bus: idempotency, optimistic concurrency, envelopes, one handler per command."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Callable
from uuid import UUID

from eventsourcing.domain import CanMutateAggregate

from commands.context import CommandContext, correlated
from commands.errors import ConcurrencyError, DuplicateCommand, IdempotencyKeyReused, StaleVersion
from commands.handlers import HANDLERS, Handler, HandlerDeps
from commands.messages import Command, fingerprint_source
from commands.ports import AppendResult, CommandRecord, EventStore
from commands.repository import Repository
from domain.base import KasalAggregate
from domain.envelope import NewEvent, canonical_json, format_time
from domain.errors import DomainError
from domain.ids import creating_for, new_id
from domain.registry import event_payload, event_type, schema_version_of

log = logging.getLogger(__name__)


def fingerprint(command: Command) -> str:
    return hashlib.sha256(canonical_json(fingerprint_source(command))).hexdigest()


def envelope(
    domain_event: CanMutateAggregate[UUID], aggregate: KasalAggregate, ctx: CommandContext
) -> NewEvent:
    return NewEvent(
        event_id=new_id(),
        aggregate_type=aggregate.AGGREGATE_TYPE.value,
        aggregate_id=aggregate.aggregate_id,
        version=domain_event.originator_version,
        type=event_type(domain_event).value,
        schema_version=schema_version_of(event_type(domain_event)),
        occurred_at=format_time(domain_event.timestamp),
        tenant_id=aggregate.tenant_id,
        actor=ctx.actor,
        command_id=ctx.command_id,
        correlation_id=ctx.correlation_id,
        causation_id=ctx.causation_id,
        payload=event_payload(domain_event),
    )


class CommandBus:
    """Dispatches a command to its handler and appends the events it causes.

    A command id seen before returns the first result and appends nothing (the store
    detects it inside the append's transaction); a command id reused for a different
    command is refused. Without ``expected_version`` a concurrent change is retried on the
    fresh state (up to ``max_attempts``, after a jittered, growing pause: writers that collided
    do not collide again in step); with it, a stale version is ``StaleVersion``.
    """

    def __init__(
        self,
        store: EventStore,
        deps: HandlerDeps | None = None,
        handlers: dict[type[Command], Handler] | None = None,
        max_attempts: int = 30,
        backoff_s: tuple[float, float] = (0.002, 0.2),
    ) -> None:
        self.store = store
        self.deps = deps or HandlerDeps()
        self.handlers = handlers if handlers is not None else HANDLERS
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.listeners: list[Callable[[AppendResult], None]] = []

    def subscribe(self, listener: Callable[[AppendResult], None]) -> None:
        """Call ``listener`` after every append (the in-process runtime wakes on it)."""
        self.listeners.append(listener)

    async def dispatch(self, command: Command, ctx: CommandContext) -> AppendResult:
        with correlated(ctx.correlation_id):
            return await self._dispatch(command, ctx)

    async def _dispatch(self, command: Command, ctx: CommandContext) -> AppendResult:
        handler = self.handlers[type(command)]
        print_ = fingerprint(command)
        attempt = 0
        while True:
            attempt += 1
            try:
                result = await self._attempt(handler, command, ctx, print_)
            except DomainError as error:  # ConcurrencyError among them
                # A retry of a command that already succeeded may be refused by the state
                # it left behind (archive twice, a stale version): answer with the first
                # result. The lookup costs a read only on this unhappy path.
                prior = await self._prior_result(ctx, print_)
                if prior is not None:
                    return prior
                if not isinstance(error, ConcurrencyError):
                    raise
                if ctx.expected_version is not None or attempt >= self.max_attempts:
                    raise StaleVersion(error.aggregate_id, error.expected, error.current) from None
                log.debug("retrying %s after a concurrent change", type(command).__name__)
                await asyncio.sleep(self.pause(attempt))
                continue
            except DuplicateCommand:
                prior = await self._prior_result(ctx, print_)
                assert prior is not None, "store reported a duplicate it cannot find"
                return prior
            for listener in self.listeners:
                listener(result)
            return result

    def pause(self, attempt: int) -> float:
        """Full jitter: uniform in [0, first * 2^attempt], capped at ``backoff_s[1]``."""
        first, cap = self.backoff_s
        return random.uniform(0, min(cap, first * 2 ** min(attempt, 20)))

    async def _attempt(
        self, handler: Handler, command: Command, ctx: CommandContext, print_: str
    ) -> AppendResult:
        repo = Repository(self.store, ctx.tenant_id)
        # a retry creates the same aggregate id: the store then sees the same command on
        # the same aggregate (the Kafka store's writers detect duplicates per aggregate)
        with creating_for(ctx.tenant_id, ctx.command_id):
            aggregate = await handler(command, repo, ctx, self.deps)
        loaded = repo.loaded_version(aggregate)
        if ctx.expected_version is not None and ctx.expected_version != loaded:
            raise StaleVersion(aggregate.aggregate_id, ctx.expected_version, loaded)
        events = [envelope(e, aggregate, ctx) for e in aggregate.collect_events()]
        record = CommandRecord(ctx.tenant_id, ctx.command_id, print_)
        return await self.store.append(events, expected_version=loaded, command=record)

    async def _prior_result(self, ctx: CommandContext, print_: str) -> AppendResult | None:
        prior = await self.store.find_command(ctx.tenant_id, ctx.command_id)
        if prior is None:
            return None
        if prior.fingerprint != print_:
            raise IdempotencyKeyReused(
                f"Idempotency-Key {ctx.command_id} was already used for a different request; "
                "send a new key for a new request"
            )
        return AppendResult(prior.aggregate_id, prior.version, prior.position)
