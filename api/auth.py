"""Bearer API keys: hashed at rest, scoped to one tenant, with a role."""

from __future__ import annotations

import hashlib
import secrets
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.problems import ApiError
from api.services import QueryServices, find_soon
from projections.queries import Principal

KEY_PREFIX = "kasal_"
ROLE_RANK = {"viewer": 0, "operator": 1, "editor": 2, "admin": 3}
bearer = HTTPBearer(auto_error=False, description="an API key: `Authorization: Bearer kasal_...`")


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """SHA-256 suffices: keys carry 256 random bits, so there is nothing to brute-force."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_prefix(key: str) -> str:
    return key[: len(KEY_PREFIX) + 6]


def get_query_services(request: Request) -> QueryServices:
    services: QueryServices = request.app.state.query_services
    return services


QueryServicesDep = Annotated[QueryServices, Depends(get_query_services)]
UNAUTHORIZED_HEADERS = {"WWW-Authenticate": "Bearer"}


async def authenticate(
    services: QueryServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(
            401,
            "unauthorized",
            "send an API key: Authorization: Bearer <key>",
            UNAUTHORIZED_HEADERS,
        )
    digest = hash_key(credentials.credentials)
    # a key issued a moment ago may not be projected yet: look again as it catches up
    principal = await find_soon(services, lambda: services.read_models.principal_for(digest))
    if principal is None:
        raise ApiError(401, "unauthorized", "unknown or revoked API key", UNAUTHORIZED_HEADERS)
    return principal


PrincipalDep = Annotated[Principal, Depends(authenticate)]


def require(role: str) -> object:
    async def check(principal: PrincipalDep) -> Principal:
        if ROLE_RANK[principal.role] < ROLE_RANK[role]:
            raise ApiError(
                403, "forbidden", f"this needs the {role} role; your key has {principal.role}"
            )
        return principal

    return Depends(check)


Viewer = Annotated[Principal, require("viewer")]
Operator = Annotated[Principal, require("operator")]
Editor = Annotated[Principal, require("editor")]
Admin = Annotated[Principal, require("admin")]
