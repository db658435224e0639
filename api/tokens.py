"""Bearer JWTs from an OpenID Connect provider, beside API keys.

A token is verified against the provider's JWKS (a URL, fetched and cached, or a file):
its header's ``alg`` must be one of the asymmetric algorithms configured (never ``none``,
never an HMAC one, so a token "signed" with a public key as an HMAC secret is refused
whatever the key), the key is the JWKS entry its ``kid`` names (or the only one that fits)
and must be of that algorithm's type, and the issuer, the audience, ``exp`` (required),
``nbf`` and ``iat`` are checked with a bounded clock skew. The tenant and the role come
from claims whose names are settings. A ``kid`` the cached JWKS lacks fetches it again, at
most once per ``refetch_s``: a provider's key rotation is picked up, a flood of made-up
kids is not a flood of fetches.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
from jwt.exceptions import InvalidKeyError, PyJWKError, PyJWTError

from api.problems import TokenKeysUnavailable, Unauthorized
from domain.vocabulary import Role

KEY_TYPES = {  # the algorithms a token may name, and the JWK key type each needs
    "RS256": "RSA", "RS384": "RSA", "RS512": "RSA", "PS256": "RSA", "PS384": "RSA",
    "PS512": "RSA", "ES256": "EC", "ES384": "EC", "ES512": "EC", "EdDSA": "OKP",
}
MAX_SUBJECT = 150  # the actor is "jwt:<sub>" in every event (200 characters at most)


@dataclass(frozen=True)
class TokenSettings:
    jwks: str  # an http(s) URL or a file
    issuer: str
    audience: str
    tenant_claim: str = "tenant"
    role_claim: str = "role"
    leeway_s: float = 30.0
    algorithms: tuple[str, ...] = ("RS256", "ES256", "EdDSA")
    cache_s: float = 600.0
    refetch_s: float = 30.0


@dataclass(frozen=True)
class VerifiedToken:
    subject: str
    tenant_id: str
    role: Role


def looks_like_jwt(credential: str) -> bool:
    """Three base64url parts: an API key (``kasal_`` and URL-safe base64) has no dot."""
    return credential.count(".") == 2


class TokenVerifier:
    def __init__(self, settings: TokenSettings,
                 fetch: Callable[[str], Awaitable[bytes]] | None = None) -> None:
        unknown = set(settings.algorithms) - set(KEY_TYPES)
        if unknown or not settings.algorithms:
            raise ValueError(f"token algorithms must be among {', '.join(KEY_TYPES)}; "
                             f"not {', '.join(sorted(unknown)) or 'none at all'}")
        self.settings = settings
        self.fetch = fetch or _fetch
        self.keys: list[dict[str, Any]] = []
        self.fetched_at = -float("inf")
        self.lock = asyncio.Lock()

    async def verify(self, token: str) -> VerifiedToken:
        s = self.settings
        try:
            header = jwt.get_unverified_header(token)
        except PyJWTError:
            raise Unauthorized("the bearer token is not a well-formed JWT") from None
        alg = header.get("alg")
        if alg not in s.algorithms:
            raise Unauthorized(f"the token's algorithm {alg!r} is not accepted; accepted: "
                               f"{', '.join(s.algorithms)}")
        key = await self._key(header.get("kid"), str(alg))
        try:
            claims = jwt.decode(
                token, key, algorithms=[str(alg)], audience=s.audience, issuer=s.issuer,
                leeway=s.leeway_s, options={"require": ["exp", "iss", "aud", "sub"]})
        except PyJWTError as error:
            raise Unauthorized(f"the bearer token is not valid: {error}") from None
        return self._principal(claims)

    def _principal(self, claims: dict[str, Any]) -> VerifiedToken:
        s = self.settings
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject.strip() or len(subject) > MAX_SUBJECT:
            raise Unauthorized(f"the token's sub must be text of 1 to {MAX_SUBJECT} characters")
        tenant = claims.get(s.tenant_claim)
        if not isinstance(tenant, str) or not tenant.strip() or len(tenant) > 100:
            raise Unauthorized(f"the token names no tenant: its claim {s.tenant_claim!r} must "
                               "be text of 1 to 100 characters (KASAL_JWT_TENANT_CLAIM)")
        granted = claims.get(s.role_claim)
        names = [granted] if isinstance(granted, str) else granted
        roles = [Role(n) for n in names if n in set(Role)] if isinstance(names, list) else []
        if not roles:
            raise Unauthorized(
                f"the token grants no role: its claim {s.role_claim!r} must be one of "
                f"{', '.join(Role)} or a list of them (KASAL_JWT_ROLE_CLAIM)")
        return VerifiedToken(subject, tenant.strip(), max(roles, key=lambda r: r.rank))

    async def _key(self, kid: Any, alg: str) -> Any:
        async with self.lock:
            now = time.monotonic()
            if now - self.fetched_at > self.settings.cache_s:
                await self._load(now)
            found = self._find(kid, alg)
            if found is None and now - self.fetched_at > self.settings.refetch_s:
                await self._load(now)  # a rotated key, perhaps
                found = self._find(kid, alg)
        if found is None:
            raise Unauthorized(f"no key of the token issuer's JWKS fits the token (kid {kid!r}, "
                               f"{alg})")
        return found

    def _find(self, kid: Any, alg: str) -> Any:
        fitting = [k for k in self.keys if k.get("kty") == KEY_TYPES[alg]
                   and k.get("alg", alg) == alg and k.get("use", "sig") == "sig"]
        if kid is not None:
            fitting = [k for k in fitting if k.get("kid") == kid]
        elif len(fitting) != 1:  # without a kid, only an unambiguous key
            return None
        for jwk in fitting:
            try:
                return jwt.PyJWK(jwk, algorithm=alg).key
            except (InvalidKeyError, PyJWKError, ValueError, TypeError):
                continue
        return None

    async def _load(self, now: float) -> None:
        try:
            raw = await self.fetch(self.settings.jwks)
            keys = json.loads(raw)["keys"]
            if not isinstance(keys, list):
                raise TypeError("keys is not a list")
        except (OSError, httpx.HTTPError, ValueError, KeyError, TypeError) as error:
            if self.keys:  # keep serving with the keys we have; try again at the next miss
                self.fetched_at = now
                return
            raise TokenKeysUnavailable(
                f"the token issuer's keys could not be loaded from {self.settings.jwks} "
                f"({type(error).__name__}); retry shortly", {"Retry-After": "5"}) from None
        self.keys = [k for k in keys if isinstance(k, dict)]
        self.fetched_at = now


async def _fetch(source: str) -> bytes:
    if source.startswith(("https://", "http://")):
        async with httpx.AsyncClient(timeout=5.0, follow_redirects=False) as client:
            response = await client.get(source, headers={"Accept": "application/json"})
            response.raise_for_status()
            return response.content
    return await asyncio.to_thread(Path(source).read_bytes)
