"""KASAL_ENV=production refuses insecure defaults: no encryption key, an admin key made and
written to the data dir, docs on by default, webhooks to private addresses. A production
server is started for real and answers with the operator's own admin key."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from adapters.eventstore.encryption import new_key
from kasal.cli import main
from kasal.settings import Settings
from tests.processes import Server

ADMIN_KEY = "kasal_" + "operator-chosen-admin-key-0123456789"


def production(**env: object) -> Settings:
    return Settings(KASAL_ENV="production", **env)


def test_production_refuses_each_insecure_default_by_name() -> None:
    with pytest.raises(ValidationError) as missing_key:
        production()
    assert "set KASAL_ENCRYPTION_KEY" in str(missing_key.value)
    with pytest.raises(ValidationError) as private:
        production(KASAL_ENCRYPTION_KEY=new_key(), KASAL_WEBHOOK_ALLOW_PRIVATE=True)
    assert "KASAL_WEBHOOK_ALLOW_PRIVATE" in str(private.value)
    assert "KASAL_ENCRYPTION_KEY" not in str(private.value)
    with pytest.raises(ValidationError) as debug:
        production(KASAL_ENCRYPTION_KEY=new_key(), SQL_DEBUG=True)
    assert "SQL_DEBUG" in str(debug.value)
    with pytest.raises(ValidationError) as short:
        Settings(KASAL_ADMIN_KEY="too-short")
    assert "KASAL_ADMIN_KEY must be at least 32" in str(short.value)


def test_docs_are_off_in_production_unless_asked_for() -> None:
    key = new_key()
    assert production(KASAL_ENCRYPTION_KEY=key).docs_enabled is False
    assert production(KASAL_ENCRYPTION_KEY=key, DOCS_ENABLED=True).docs_enabled is True
    assert Settings().docs_enabled is True
    assert Settings(DOCS_ENABLED=False).docs_enabled is False


def test_serve_in_production_refuses_without_the_operators_admin_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KASAL_ENV", "production")
    monkeypatch.setenv("KASAL_ENCRYPTION_KEY", new_key())
    monkeypatch.delenv("KASAL_ADMIN_KEY", raising=False)
    result = CliRunner().invoke(main, ["serve", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "set KASAL_ADMIN_KEY" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "admin.key").exists()
    monkeypatch.delenv("KASAL_ENCRYPTION_KEY")
    result = CliRunner().invoke(main, ["serve", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1, result.output  # one line naming what to set
    assert "KASAL_ENV=production: set KASAL_ENCRYPTION_KEY" in result.output


def test_a_production_server_serves_with_the_operators_key_and_writes_none(
    tmp_path: Path,
) -> None:
    env = {"KASAL_ENV": "production", "KASAL_ENCRYPTION_KEY": new_key(),
           "KASAL_ADMIN_KEY": ADMIN_KEY}
    os.environ.update(env)  # Server copies the environment at construction
    try:
        server = Server(tmp_path / "data", tmp_path / "serve.log")
    finally:
        for name in env:
            os.environ.pop(name)
    for restart in range(2):  # a restart registers nothing twice
        server.start()
        try:
            headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
            keys = httpx.get(f"{server.url}/api/v1/api-keys", headers=headers, timeout=30)
            assert keys.status_code == 200, keys.text
            assert [k["name"] for k in keys.json()["items"]] == ["first admin"], restart
            assert httpx.get(f"{server.url}/api-docs", timeout=30).status_code == 404
        finally:
            server.stop()
    output = server.output()
    assert ADMIN_KEY not in output  # never printed
    assert "$KASAL_ADMIN_KEY" in output
    assert not (tmp_path / "data" / "admin.key").exists()
