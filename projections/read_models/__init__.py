"""The SQL read models, in the order the SQL projector applies them to each event, all in
one transaction. A new read model is one module in this package and one line below."""

from __future__ import annotations

from projections.read_models.agents import Agents
from projections.read_models.api_keys import ApiKeys
from projections.read_models.artifacts import Artifacts
from projections.read_models.audit_log import AuditLog
from projections.read_models.base import ReadModel
from projections.read_models.crews import Crews
from projections.read_models.executions import Executions
from projections.read_models.knowledge import KnowledgeSources
from projections.read_models.timeline import Timeline


def read_models() -> tuple[ReadModel, ...]:
    return (
        AuditLog(),
        Agents(),
        Crews(),
        Executions(),
        Timeline(),
        ApiKeys(),
        Artifacts(),
        KnowledgeSources(),
    )
