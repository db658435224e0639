"""Bearer API keys: hashed at rest, scoped to one tenant, with a role."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.problems import Forbidden, Unauthorized
from api.services import QueryServices, find_soon
from api.tokens import looks_like_jwt
from domain.api_key import hash_key
from domain.vocabulary import Role

bearer = HTTPBearer(auto_error=False, description=(
    "an API key (`Authorization: Bearer kasal_...`), or a JWT from the OpenID Connect "
    "provider the deployment trusts (KASAL_JWT_JWKS)"))


@dataclass(frozen=True)
class Principal:
    """Who calls: an API key of one tenant with its role, or a JWT's subject (``kind``
    ``jwt``) with the tenant and the role its claims name."""

    key_id: str
    tenant_id: str
    role: Role
    name: str
    kind: str = "api_key"

    @property
    def actor(self) -> str:
        return f"{self.kind}:{self.key_id}"


def get_query_services(request: Request) -> QueryServices:
    services: QueryServices = request.app.state.query_services
    return services


QueryServicesDep = Annotated[QueryServices, Depends(get_query_services)]


async def principal_for(services: QueryServices, authorization: str | None) -> Principal:
    """The caller an ``Authorization`` header names, or ``Unauthorized``."""
    scheme, _, key = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized("send an API key: Authorization: Bearer <key>")
    if looks_like_jwt(key.strip()):
        if services.tokens is None:
            raise Unauthorized("this deployment accepts no JWTs (KASAL_JWT_JWKS is not set): "
                               "send an API key")
        token = await services.tokens.verify(key.strip())
        return Principal(token.subject, token.tenant_id, token.role, "jwt", kind="jwt")
    digest = hash_key(key.strip())
    # a key issued a moment ago may not be projected yet: look again as it catches up (at
    # once when the read model already has all the log has)
    row = await find_soon(services, lambda: services.read_models.api_key_by_hash(digest))
    if row is None:
        raise Unauthorized("unknown API key")
    if row["revoked"]:
        raise Unauthorized("this API key was revoked")
    return Principal(row["id"], row["tenant_id"], Role(row["role"]), row["name"])


async def authenticate(
    request: Request,
    services: QueryServicesDep,
    # declared for the OpenAPI document's security scheme; the header is read below
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    # the request guard (api/limits.py) authenticated it before the body was read
    principal = getattr(request.state, "principal", None)
    if isinstance(principal, Principal):
        return principal
    return await principal_for(services, request.headers.get("authorization"))


PrincipalDep = Annotated[Principal, Depends(authenticate)]


def require(role: Role) -> Any:
    """A dependency: the caller, if its role is ``role`` or above (else 403)."""

    async def check(principal: PrincipalDep) -> Principal:
        if principal.role.rank < role.rank:
            raise Forbidden(f"this needs the {role} role; your key has {principal.role}")
        return principal

    return Depends(check)


Viewer = Annotated[Principal, require(Role.VIEWER)]
Operator = Annotated[Principal, require(Role.OPERATOR)]
Editor = Annotated[Principal, require(Role.EDITOR)]
Admin = Annotated[Principal, require(Role.ADMIN)]
