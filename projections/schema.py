"""Read-model tables: what the query API reads. Rebuildable from the log at any time."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

tracking = Table(
    "projection_tracking",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("position", BigInteger, nullable=False),
)

agents = Table(
    "agents",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant_id", String(100), nullable=False, index=True),
    Column("role", String(200), nullable=False),
    Column("goal", Text, nullable=False),
    Column("backstory", Text, nullable=False),
    Column("llm", String(200), nullable=False),
    Column("tools", JSON, nullable=False),
    Column("allow_delegation", Boolean, nullable=False),
    Column("max_iter", Integer, nullable=False),
    Column("archived", Boolean, nullable=False, default=False),
    Column("version", Integer, nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("updated_at", String(40), nullable=False),
)

crews = Table(
    "crews",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant_id", String(100), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("process", String(20), nullable=False),
    Column("agents", JSON, nullable=False),
    Column("tasks", JSON, nullable=False),
    Column("manager_llm", String(200)),
    Column("memory", Boolean, nullable=False),
    Column("archived", Boolean, nullable=False, default=False),
    Column("version", Integer, nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("updated_at", String(40), nullable=False),
)

executions = Table(
    "executions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant_id", String(100), nullable=False),
    Column("crew_id", String(64), nullable=False),
    Column("crew_name", String(200), nullable=False),
    Column("status", String(20), nullable=False),
    Column("inputs", JSON, nullable=False),
    Column("tasks", JSON, nullable=False),  # [{name, agent, status, output}]
    Column("result", Text),
    Column("error", Text),
    Column("cancel_reason", Text),
    Column("prompt_tokens", Integer, nullable=False, default=0),
    Column("completion_tokens", Integer, nullable=False, default=0),
    Column("total_tokens", Integer, nullable=False, default=0),
    Column("cost", Float, nullable=False, default=0.0),
    Column("llm_calls", Integer, nullable=False, default=0),
    Column("requested_by", String(200), nullable=False),
    Column("requested_at", String(40), nullable=False),
    Column("started_at", String(40)),
    Column("finished_at", String(40)),
    Column("updated_at", String(40), nullable=False),
    Column("version", Integer, nullable=False),
    Index("executions_tenant_status", "tenant_id", "status"),
    Index("executions_tenant_crew", "tenant_id", "crew_id"),
)

execution_timeline = Table(
    "execution_timeline",
    metadata,
    Column("execution_id", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("tenant_id", String(100), nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("type", String(100), nullable=False),
    Column("occurred_at", String(40), nullable=False),
    Column("task_name", String(200)),
    Column("summary", Text, nullable=False),
    Column("data", JSON, nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("aggregate_id", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("aggregate_type", String(32), nullable=False),
    Column("tenant_id", String(100), nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("type", String(100), nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("occurred_at", String(40), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("command_id", String(200), nullable=False),
    Column("correlation_id", String(200), nullable=False),
    Column("causation_id", String(200), nullable=False),
    Column("payload", JSON, nullable=False),  # as stored (ciphertext when encrypted)
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant_id", String(100), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(32), nullable=False),
    Column("revoked", Boolean, nullable=False, default=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("revoked_at", String(40)),
)
