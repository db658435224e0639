"""Kasal's configuration: one class, read once in the composition root, passed down."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    environment: Literal["development", "production"] = Field(
        "development", validation_alias="KASAL_ENV"
    )
    mode: Literal["embedded", "distributed"] = Field("embedded", validation_alias="KASAL_MODE")
    data_dir: Path = Field(Path(".kasal"), validation_alias="KASAL_DATA_DIR")

    # SQL read models (names Kasal users know)
    database_type: Literal["sqlite", "postgres"] = Field("sqlite", validation_alias="DATABASE_TYPE")
    sqlite_db_path: Path | None = Field(None, validation_alias="SQLITE_DB_PATH")
    database_url: str | None = Field(
        None, validation_alias=AliasChoices("DATABASE_URL", "KASAL_DATABASE_URL")
    )
    postgres_server: str = Field("localhost", validation_alias="POSTGRES_SERVER")
    postgres_port: int = Field(5432, validation_alias="POSTGRES_PORT")
    postgres_user: str = Field("postgres", validation_alias="POSTGRES_USER")
    postgres_password: str = Field("", validation_alias="POSTGRES_PASSWORD")
    postgres_db: str = Field("kasal", validation_alias="POSTGRES_DB")

    # Event store: follows DATABASE_TYPE unless set
    event_store_type: Literal["sqlite", "postgres"] | None = Field(
        None, validation_alias="EVENT_STORE_TYPE"
    )
    event_store_path: Path | None = Field(None, validation_alias="EVENT_STORE_PATH")

    # None: on in development, off in production (unless DOCS_ENABLED=true)
    docs: bool | None = Field(None, validation_alias="DOCS_ENABLED")
    auto_seed_database: bool = Field(False, validation_alias="AUTO_SEED_DATABASE")
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")
    log_dir: Path | None = Field(None, validation_alias="LOG_DIR")
    log_format: Literal["text", "json"] = Field("text", validation_alias="LOG_FORMAT")
    sql_debug: bool = Field(False, validation_alias="SQL_DEBUG")

    default_llm: str = Field("kasal-offline/default", validation_alias="KASAL_DEFAULT_LLM")
    encryption_key: str | None = Field(None, validation_alias="KASAL_ENCRYPTION_KEY")
    # refuse a run whose models' provider keys this process lacks (off where only the
    # workers hold them)
    check_llm_credentials: bool = Field(True, validation_alias="KASAL_CHECK_LLM_CREDENTIALS")
    # refuse an agent (and a run) whose network tools' keys this process lacks (likewise)
    check_tool_credentials: bool = Field(True, validation_alias="KASAL_CHECK_TOOL_CREDENTIALS")
    # agents may name a project's own tools (code: it runs, in a subprocess, with the
    # workers' rights); the operator's setting, for every process of a deployment alike
    allow_project_code: bool = Field(False, validation_alias="KASAL_ALLOW_PROJECT_CODE")
    # seconds one call of a project's own tool may take before its process is killed
    project_tool_timeout_s: float = Field(
        120.0, gt=0, le=3600, validation_alias="KASAL_PROJECT_TOOL_TIMEOUT_S")
    # the first admin key, the operator's own (kept in their secret store); without it
    # development makes one and writes it to DATA_DIR/admin.key, production refuses to serve
    admin_key: str | None = Field(None, validation_alias="KASAL_ADMIN_KEY")
    # webhooks may call private addresses (development only; reserved: refused in production
    # now, read by the webhook deliveries when they come)
    webhook_allow_private: bool = Field(False, validation_alias="KASAL_WEBHOOK_ALLOW_PRIVATE")
    min_position_timeout: float = Field(5.0, validation_alias="KASAL_MIN_POSITION_TIMEOUT")
    default_tenant: str = Field("default", validation_alias="KASAL_DEFAULT_TENANT")
    max_concurrent_executions: int = Field(
        4, ge=1, le=256, validation_alias="KASAL_MAX_CONCURRENT_EXECUTIONS"
    )
    execution_timeout_s: float = Field(
        600.0, gt=0, le=86_400, validation_alias="KASAL_EXECUTION_TIMEOUT_S"
    )
    # requests: refused before a route runs (api/limits.py)
    max_body_bytes: int = Field(1_048_576, ge=1024, validation_alias="KASAL_MAX_BODY_BYTES")
    max_header_bytes: int = Field(32_768, ge=1024, validation_alias="KASAL_MAX_HEADER_BYTES")
    max_headers: int = Field(100, ge=10, le=10_000, validation_alias="KASAL_MAX_HEADERS")
    # sustained requests a second per API key and per tenant, in each API process; 0: none
    rate_limit_per_key: float = Field(100.0, ge=0, validation_alias="KASAL_RATE_LIMIT_PER_KEY")
    rate_limit_per_tenant: float = Field(
        300.0, ge=0, validation_alias="KASAL_RATE_LIMIT_PER_TENANT"
    )
    rate_limit_burst_s: float = Field(
        2.0, gt=0, le=3600, validation_alias="KASAL_RATE_LIMIT_BURST_S"
    )
    llm_max_retries: int = Field(3, ge=0, le=10, validation_alias="KASAL_LLM_MAX_RETRIES")

    kafka_bootstrap_servers: str = Field(
        "localhost:9092", validation_alias="KAFKA_BOOTSTRAP_SERVERS"
    )
    # partitions of kasal.commands and kasal.events.* (one count for all: keyed by aggregate id)
    kafka_partitions: int = Field(6, ge=1, le=10_000, validation_alias="KASAL_KAFKA_PARTITIONS")
    kafka_prefix: str = Field(
        "kasal", pattern=r"^[A-Za-z0-9._-]{1,100}$", validation_alias="KASAL_KAFKA_PREFIX"
    )
    kafka_session_timeout_s: float = Field(
        10.0, ge=1, le=300, validation_alias="KASAL_KAFKA_SESSION_TIMEOUT_S"
    )
    qdrant_url: str | None = Field(None, validation_alias="QDRANT_URL")
    qdrant_api_key: str | None = Field(None, validation_alias="QDRANT_API_KEY")
    # collections are named <prefix>_<model>_<dimension>: deployments sharing one Qdrant
    # server keep apart by prefix (as by KASAL_KAFKA_PREFIX on one broker)
    qdrant_collection_prefix: str = Field(
        "kasal", pattern=r"^[a-z0-9_]{1,60}$", validation_alias="KASAL_QDRANT_COLLECTION_PREFIX"
    )
    vector_search: bool = Field(True, validation_alias="KASAL_VECTOR_SEARCH")
    embedding_model: str = Field("wordllama", validation_alias="KASAL_EMBEDDING_MODEL")
    # file tools read and write KASAL_WORKSPACE_DIR/<tenant> only (distributed: a directory
    # every worker shares)
    workspace_root: Path | None = Field(None, validation_alias="KASAL_WORKSPACE_DIR")

    # bearer JWTs from an OpenID Connect provider, beside API keys (api/tokens.py): on when
    # KASAL_JWT_JWKS names the provider's keys (an https URL or a file)
    jwt_jwks: str | None = Field(None, validation_alias="KASAL_JWT_JWKS")
    jwt_issuer: str | None = Field(None, validation_alias="KASAL_JWT_ISSUER")
    jwt_audience: str | None = Field(None, validation_alias="KASAL_JWT_AUDIENCE")
    jwt_tenant_claim: str = Field("tenant", min_length=1, validation_alias="KASAL_JWT_TENANT_CLAIM")
    jwt_role_claim: str = Field("role", min_length=1, validation_alias="KASAL_JWT_ROLE_CLAIM")
    jwt_leeway_s: float = Field(30.0, ge=0, le=300, validation_alias="KASAL_JWT_LEEWAY_S")
    jwt_algorithms: str = Field("RS256,ES256,EdDSA", validation_alias="KASAL_JWT_ALGORITHMS")
    jwt_max_lifetime_s: float = Field(86_400.0, gt=0, le=31_536_000,
                                      validation_alias="KASAL_JWT_MAX_LIFETIME_S")

    @model_validator(mode="after")
    def _refuse_insecure_production(self) -> Settings:
        if self.admin_key is not None and (len(self.admin_key) < 32
                                           or not self.admin_key.isascii()
                                           or any(c.isspace() for c in self.admin_key)):
            raise ValueError("KASAL_ADMIN_KEY must be at least 32 printable ASCII characters "
                             "without spaces (e.g. from 'openssl rand -hex 32')")
        self._check_jwt()
        if self.environment == "production":
            refused = [why for bad, why in (
                (bool(self.jwt_jwks and self.jwt_jwks.lower().startswith("http://")),
                 "KASAL_JWT_JWKS must be an https URL (or a file)"),
                (self.sql_debug, "SQL_DEBUG logs every statement's data"),
                (not self.encryption_key, "set KASAL_ENCRYPTION_KEY ('kasal keygen'): the "
                 "log's payloads are encrypted at rest"),
                (self.webhook_allow_private, "KASAL_WEBHOOK_ALLOW_PRIVATE lets webhooks "
                 "reach private addresses"),
            ) if bad]
            if refused:
                raise ValueError("KASAL_ENV=production: " + "; ".join(refused))
        if self.mode == "distributed" and self.database_type != "postgres":
            raise ValueError(
                "KASAL_MODE=distributed keeps its read models and log mirror in PostgreSQL: "
                "set DATABASE_TYPE=postgres and DATABASE_URL (or POSTGRES_SERVER, ...)"
            )
        return self

    def _check_jwt(self) -> None:
        if self.jwt_jwks is None:
            return
        from api.tokens import KEY_TYPES  # only where tokens are on

        scheme = self.jwt_jwks.split("://", 1)[0].lower() if "://" in self.jwt_jwks else ""
        if scheme not in ("", "https", "http"):
            raise ValueError("KASAL_JWT_JWKS must be an https URL or a file, not "
                             f"{scheme}://")
        if not self.jwt_issuer or not self.jwt_audience:
            raise ValueError("KASAL_JWT_JWKS needs KASAL_JWT_ISSUER and KASAL_JWT_AUDIENCE: "
                             "a token is accepted only from that issuer, for that audience")
        refused = [a for a in self.jwt_algorithm_names if a not in KEY_TYPES]
        if refused or not self.jwt_algorithm_names:
            raise ValueError(f"KASAL_JWT_ALGORITHMS: {', '.join(refused) or 'none given'} "
                             f"refused; accepted: {', '.join(KEY_TYPES)} (asymmetric only)")

    @property
    def jwt_algorithm_names(self) -> tuple[str, ...]:
        return tuple(a.strip() for a in self.jwt_algorithms.split(",") if a.strip())

    @property
    def postgres_url(self) -> str:
        if self.database_url:
            return self.database_url
        password = f":{quote(self.postgres_password)}" if self.postgres_password else ""
        return (
            f"postgresql://{quote(self.postgres_user)}{password}@{self.postgres_server}:"
            f"{self.postgres_port}/{self.postgres_db}"
        )

    @property
    def docs_enabled(self) -> bool:
        return self.docs if self.docs is not None else self.environment != "production"

    @property
    def workspace_dir(self) -> Path:
        return self.workspace_root or self.data_dir / "workspaces"

    @property
    def read_model_url(self) -> str:
        if self.database_type == "postgres":
            return self.postgres_url
        path = self.sqlite_db_path or self.data_dir / "kasal.db"
        return f"sqlite:///{path}"

    @property
    def event_store_url(self) -> str:
        kind = self.event_store_type or self.database_type
        if kind == "postgres":
            return self.postgres_url
        path = self.event_store_path or self.data_dir / "events.db"
        return f"sqlite:///{path}"


def code_environment() -> dict[str, str]:
    """What a project's own tool's process gets: this process's environment without Kasal's
    settings (its database, broker, keys): the provider keys a tool may need stay."""
    settings_names: set[str] = set()
    for field_info in Settings.model_fields.values():
        alias = field_info.validation_alias
        if isinstance(alias, str):
            settings_names.add(alias.upper())
        elif isinstance(alias, AliasChoices):
            settings_names.update(str(choice).upper() for choice in alias.choices)
    # as pydantic-settings reads them: whatever their case
    return {name: value for name, value in os.environ.items()
            if name.upper() not in settings_names and not name.upper().startswith("KASAL_")}
