"""``kasal audit verify`` over an embedded data dir: what a thorough attacker leaves behind
when they rewrite the log so that its own checks pass is still found through the read side,
which keeps its copy of the trail in another database."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from dataclasses import replace
from pathlib import Path

from click.testing import CliRunner

from adapters.eventstore.integrity import integrity_problems
from adapters.eventstore.sql_log import SqlEventLog
from commands import messages as m
from commands.context import CommandContext
from domain.envelope import GENESIS_HASH, RecordedEvent, compute_hash, log_link
from kasal.bootstrap import bootstrap
from kasal.cli import main
from kasal.settings import Settings


def verify(data_dir: Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["audit", "verify", "--data-dir", str(data_dir)],
                                env={"KASAL_VECTOR_SEARCH": "false"})
    return result.exit_code, result.stdout, result.stderr


def define_agents(data_dir: Path, count: int) -> list[str]:
    async def work() -> list[str]:
        settings = Settings(KASAL_DATA_DIR=data_dir, KASAL_VECTOR_SEARCH=False)  # type: ignore[call-arg]
        kasal = await bootstrap(settings, run_executions=False, with_vectors=False)
        await kasal.start()
        try:
            ids = []
            for n in range(count):
                done = await kasal.bus.dispatch(
                    m.RegisterAgent(role=f"Agent {n}", goal="g", backstory="b"),
                    CommandContext(tenant_id="default", actor="test"))
                ids.append(done.aggregate_id)
            assert await kasal.wait_until_projected(30.0)
            return ids
        finally:
            await kasal.stop()

    return asyncio.run(work())


def relink(db: sqlite3.Connection) -> None:
    """What an attacker who read Kasal's code does after an edit: every link and the head
    record recomputed, so the log's own checks pass."""
    link, position = GENESIS_HASH, 0
    for position, event_hash in db.execute(
            "SELECT position, hash FROM kasal_events ORDER BY position").fetchall():
        link = log_link(link, position, event_hash)
        db.execute("UPDATE kasal_events SET log_hash = ? WHERE position = ?", (link, position))
    db.execute("UPDATE kasal_log_head SET position = ?, log_hash = ?", (position, link))
    db.commit()


def log_problems(data_dir: Path) -> list[str]:
    async def check() -> list[str]:
        log = SqlEventLog(f"sqlite:///{data_dir / 'events.db'}")
        await log.initialize()  # as any start does
        try:
            return await integrity_problems(log)
        finally:
            await log.close()

    return asyncio.run(check())


def test_an_intact_data_dir_verifies(tmp_path: Path) -> None:
    define_agents(tmp_path, 3)
    code, out, err = verify(tmp_path)
    assert (code, err) == (0, "")
    assert out.strip().endswith("verified 3 events in 3 aggregates")


def test_a_forged_event_with_the_log_rewritten_is_found_by_the_trail(tmp_path: Path) -> None:
    [forged, *_] = define_agents(tmp_path, 3)
    with sqlite3.connect(tmp_path / "events.db") as db:
        db.row_factory = sqlite3.Row
        row = db.execute("SELECT * FROM kasal_events WHERE aggregate_id = ?",
                         (forged,)).fetchone()
        stored = dict(row)  # sqlite3.Row is a mapping
        del stored["log_hash"]
        event = RecordedEvent(**{**stored, "payload": json.loads(stored["payload"])})
        payload = {**event.payload, "role": "Forged"}
        new_hash = compute_hash(replace(event, payload=payload), event.prev_hash)
        db.execute("UPDATE kasal_events SET payload = ?, hash = ? WHERE position = ?",
                   (json.dumps(payload), new_hash, row["position"]))
        relink(db)
    assert log_problems(tmp_path) == []  # the log alone cannot tell
    code, _, err = verify(tmp_path)
    assert code == 1
    assert (f"TAMPERED: position 1 holds {forged} v1 in the log, but the audit trail recorded "
            f"{forged} v1 there with another hash: the event was changed") in err


def test_a_rollback_with_the_head_record_rewritten_is_found_by_the_read_side(
    tmp_path: Path,
) -> None:
    define_agents(tmp_path, 5)
    with sqlite3.connect(tmp_path / "events.db") as db:
        db.execute("DELETE FROM kasal_events WHERE position > 2")
        db.execute("DELETE FROM kasal_commands WHERE position > 2")
        relink(db)
    assert log_problems(tmp_path) == []
    code, _, err = verify(tmp_path)
    assert code == 1
    assert ("TAMPERED: the read models have applied the log up to position 5, but it ends at "
            "2: events were removed (a rollback or a truncation)") in err
    assert "position 3 (" in err and "is in the audit trail but not in the log" in err


def test_the_log_emptied_and_its_head_table_dropped_is_found_by_the_read_side(
    tmp_path: Path,
) -> None:
    define_agents(tmp_path, 2)
    with sqlite3.connect(tmp_path / "events.db") as db:
        for table in ("kasal_events", "kasal_commands"):
            db.execute(f"DELETE FROM {table}")
        db.execute("DROP TABLE kasal_log_head")
    assert log_problems(tmp_path) == []  # a start makes what looks like a new log of it
    code, out, err = verify(tmp_path)
    assert code == 1
    assert "verified 0 events in 0 aggregates" in out
    assert "the read models have applied the log up to position 2, but it ends at 0" in err


def test_restore_head_records_where_the_log_ends_once(tmp_path: Path) -> None:
    define_agents(tmp_path, 2)
    with sqlite3.connect(tmp_path / "events.db") as db:
        db.execute("DELETE FROM kasal_log_head")
    code, _, err = verify(tmp_path)
    assert code == 1 and "the log's head record is missing (the log ends at position 2)" in err

    def restore() -> tuple[int, str]:
        result = CliRunner().invoke(main, ["audit", "restore-head", "--reason", "ticket 7",
                                           "--data-dir", str(tmp_path)],
                                    env={"KASAL_VECTOR_SEARCH": "false"})
        return result.exit_code, result.output

    assert restore() == (0, "the log's head is recorded at position 2 (ticket 7)\n")
    assert verify(tmp_path)[0] == 0
    code, output = restore()
    assert code == 1 and "nothing to restore" in output
