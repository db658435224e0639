"""Kasal's vocabulary: the names of aggregates, event types, execution statuses and roles.

Defined once, here, and imported wherever an event or a status is matched (projections,
processors, routes). These are the names the log stores, the audit trail shows, and the
public execution topic and the audit export publish: renaming one is a breaking change (a
new name and an upcaster), never an edit. ``domain.registry`` checks at import that the
aggregates define exactly the event types listed here.
"""

from __future__ import annotations

from enum import StrEnum


class AggregateType(StrEnum):
    AGENT = "agent"
    CREW = "crew"
    EXECUTION = "execution"
    API_KEY = "api_key"
    KNOWLEDGE = "knowledge"

    @property
    def label(self) -> str:
        """How messages name it: ``api key``."""
        return self.value.replace("_", " ")


class EventType(StrEnum):
    """Past tense; the aggregate's class name, then the event's."""

    AGENT_REGISTERED = "AgentRegistered"
    AGENT_UPDATED = "AgentUpdated"
    AGENT_ARCHIVED = "AgentArchived"

    CREW_DEFINED = "CrewDefined"
    CREW_UPDATED = "CrewUpdated"
    CREW_ARCHIVED = "CrewArchived"

    EXECUTION_REQUESTED = "ExecutionRequested"
    EXECUTION_STARTED = "ExecutionStarted"
    EXECUTION_TASK_STARTED = "ExecutionTaskStarted"
    EXECUTION_LLM_CALL_COMPLETED = "ExecutionLlmCallCompleted"
    EXECUTION_TOOL_USED = "ExecutionToolUsed"
    EXECUTION_TASK_COMPLETED = "ExecutionTaskCompleted"
    EXECUTION_TASK_OUTPUT_CHECKED = "ExecutionTaskOutputChecked"
    EXECUTION_ARTIFACT_STORED = "ExecutionArtifactStored"
    EXECUTION_CANCEL_REQUESTED = "ExecutionCancelRequested"
    EXECUTION_COMPLETED = "ExecutionCompleted"
    EXECUTION_FAILED = "ExecutionFailed"
    EXECUTION_CANCELLED = "ExecutionCancelled"

    API_KEY_ISSUED = "ApiKeyIssued"
    API_KEY_REVOKED = "ApiKeyRevoked"

    KNOWLEDGE_SOURCE_ADDED = "KnowledgeSourceAdded"
    KNOWLEDGE_SOURCE_ARCHIVED = "KnowledgeSourceArchived"


class ExecutionStatus(StrEnum):
    REQUESTED = "requested"
    RUNNING = "running"
    CANCEL_REQUESTED = "cancel_requested"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class TaskStatus(StrEnum):
    """A task of an execution, as the executions read model shows it."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"  # it was running when its execution failed (or timed out)
    CANCELLED = "cancelled"  # it was running when its execution was cancelled


class Role(StrEnum):
    """What an API key may do; each role may do what the ones below it may."""

    VIEWER = "viewer"  # read
    OPERATOR = "operator"  # + run and cancel executions
    EDITOR = "editor"  # + define agents and crews
    ADMIN = "admin"  # + API keys, audit

    @property
    def rank(self) -> int:
        return list(Role).index(self)


TERMINAL_STATUSES = frozenset(
    {ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED}
)
LIVE_STATUSES = frozenset({ExecutionStatus.RUNNING, ExecutionStatus.CANCEL_REQUESTED})
UNFINISHED_STATUSES = frozenset(set(ExecutionStatus) - TERMINAL_STATUSES)
# the event that ends an execution, one per terminal status
TERMINAL_EVENTS = frozenset(
    {EventType.EXECUTION_COMPLETED, EventType.EXECUTION_FAILED, EventType.EXECUTION_CANCELLED}
)


def events_of(aggregate_type: AggregateType) -> frozenset[EventType]:
    """Every event type of one aggregate (``EXECUTION_*`` for executions...)."""
    prefix = aggregate_type.name + "_"
    return frozenset(t for t in EventType if t.name.startswith(prefix))
