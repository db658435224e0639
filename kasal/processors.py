"""Which processors a Kasal process runs, by its role: one table.

``all`` is the embedded deployment (``kasal serve``, ``kasal run``): everything in one
process. The distributed deployment splits them: the API process (``api``) runs the live
feed; every ``kasal worker`` runs the executions of its partitions (``runner``); the worker
that holds the leader lock runs the projectors, which follow the log's global order
(``projectors``). A new processor is one line here and its construction in bootstrap.
"""

from __future__ import annotations

from typing import Literal

Role = Literal["all", "api", "projectors", "runner"]

LIVE_FEED = "live-feed"
SQL_PROJECTOR = "sql-projector"
EXECUTION_RUNNER = "execution-runner"
VECTOR_PROJECTOR = "vector-projector"

# processor -> the roles whose processes run it, in the order they are started
PROCESSORS: dict[str, frozenset[Role]] = {
    LIVE_FEED: frozenset({"all", "api"}),
    SQL_PROJECTOR: frozenset({"all", "projectors"}),
    EXECUTION_RUNNER: frozenset({"all", "runner"}),
    VECTOR_PROJECTOR: frozenset({"all", "projectors"}),
}


def runs(role: Role, processor: str) -> bool:
    return role in PROCESSORS[processor]
