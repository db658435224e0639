"""``kasal executions list|show|logs|cancel`` over a data dir where a crew ran."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from click.testing import CliRunner

from commands import messages as m
from commands.context import CommandContext
from kasal.bootstrap import bootstrap
from kasal.cli import main
from kasal.settings import Settings


def cli(*args: str, data_dir: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, [*args, "--data-dir", str(data_dir)],
                                env={"KASAL_VECTOR_SEARCH": "false"})
    return result.exit_code, result.output


async def requested_not_started(data_dir: Path) -> str:
    """An execution requested with no runner anywhere: it stays requested."""
    settings = Settings(KASAL_DATA_DIR=data_dir, KASAL_VECTOR_SEARCH=False)  # type: ignore[call-arg]
    kasal = await bootstrap(settings, run_executions=False, with_vectors=False)
    await kasal.start(run_processors=False)
    try:
        crews = (await kasal.read_models.list_crews("default")).items
        requested = await kasal.bus.dispatch(
            m.RequestExecution(crew_id=str(crews[0]["id"]), inputs={"units": "1", "price": "2"}),
            CommandContext(tenant_id="default", actor="test"))
        return requested.aggregate_id
    finally:
        await kasal.stop()


def test_executions_are_listed_shown_followed_and_cancelled(tmp_path: Path) -> None:
    code, output = cli("run", "examples/math_crew.yaml", "--input", "units=12", "--input",
                       "price=7", data_dir=tmp_path)
    assert code == 0, output

    code, listed = cli("executions", "list", data_dir=tmp_path)
    assert code == 0, listed
    (line,) = listed.strip().splitlines()
    execution_id, status, crew_name = line.split("\t")[:3]
    assert (status, crew_name) == ("completed", "budget-check")

    code, shown = cli("executions", "show", execution_id, data_dir=tmp_path)
    assert code == 0, shown
    view = json.loads(shown)
    assert view["status"] == "completed" and "84" in view["result"]
    assert [t["name"] for t in view["tasks"]] == ["total"]

    code, logs = cli("executions", "logs", execution_id, data_dir=tmp_path)
    assert code == 0, logs
    types = [entry.split("\t")[2] for entry in logs.strip().splitlines()]
    assert types[0] == "ExecutionRequested" and types[-1] == "ExecutionCompleted"
    assert "ExecutionToolUsed" in types  # the calculator

    code, refused = cli("executions", "cancel", execution_id, data_dir=tmp_path)
    assert code == 1 and f"execution {execution_id} is completed" in refused, refused
    for bad in ("nope", "0" * 36, "x" * 300):
        code, refused = cli("executions", "cancel", bad, data_dir=tmp_path)
        assert code == 1 and refused.startswith("Error: ") and "Traceback" not in refused
        assert refused.count("\n") == 1, refused
    code, typo = cli("executions", "list", "--status", "complete", data_dir=tmp_path)
    assert code == 2 and "'complete' is not one of" in typo
    code, unknown = cli("executions", "show", "nope", data_dir=tmp_path)
    assert code == 1 and "no execution nope in tenant 'default'" in unknown

    waiting = asyncio.run(requested_not_started(tmp_path))
    code, cancelled = cli("executions", "cancel", waiting, "--reason", "not needed",
                          data_dir=tmp_path)
    assert code == 0, cancelled
    assert f"{waiting}: cancel recorded" in cancelled
    # a cancel the log holds is projected by the next process with processors: the run
    code, rebuilt = cli("projections", "rebuild", data_dir=tmp_path)
    assert code == 0, rebuilt
    code, listed = cli("executions", "list", "--status", "cancelled", data_dir=tmp_path)
    assert [row.split("\t")[0] for row in listed.strip().splitlines()] == [waiting]
