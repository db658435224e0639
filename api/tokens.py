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
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
from jwt.exceptions import InvalidKeyError, PyJWKError, PyJWTError

from api.problems import TokenKeysUnavailable, Unauthorized
from domain.text import problem_of
from domain.vocabulary import Role

KEY_TYPES = {  # the algorithms a token may name, and the JWK key type each needs
    "RS256": "RSA", "RS384": "RSA", "RS512": "RSA", "PS256": "RSA", "PS384": "RSA",
    "PS512": "RSA", "ES256": "EC", "ES384": "EC", "ES512": "EC", "EdDSA": "OKP",
}
MAX_SUBJECT = 150  # the actor is "jwt:<sub>" in every event (200 characters at most)
TYPES = {"jwt", "at+jwt", "application/at+jwt"}  # an access token's typ, when it has one
MIN_RSA_BITS = 2048
FETCH_TIMEOUT_S = 5.0  # the whole fetch, however slowly the provider sends
MAX_JWKS_BYTES = 256 * 1024
RETRY_AFTER_S = 5
log = logging.getLogger(__name__)


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
    max_lifetime_s: float = 86_400.0


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
        self.fetched_at = -float("inf")  # the last load that worked
        self.tried_at = -float("inf")  # the last load tried
        self.failed_until = -float("inf")  # no keys, and the last load failed: 503 until
        self.loading: asyncio.Task[None] | None = None
        self.fetches = 0

    async def verify(self, token: str) -> VerifiedToken:
        s = self.settings
        try:
            header = jwt.get_unverified_header(token)
        except (PyJWTError, ValueError, TypeError, RecursionError):
            raise Unauthorized("the bearer token is not a well-formed JWT") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in s.algorithms:
            raise Unauthorized(f"the token's algorithm {alg!r} is not accepted; accepted: "
                               f"{', '.join(s.algorithms)}")
        typ = header.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.lower() not in TYPES):
            raise Unauthorized(f"the token's type {typ!r} is not an access token's (JWT, "
                               "at+jwt)")
        key = await self._key(header.get("kid"), alg)
        try:
            claims = jwt.decode(
                token, key, algorithms=[alg], audience=s.audience, issuer=s.issuer,
                leeway=s.leeway_s, options={"require": ["exp", "iss", "aud", "sub"]})
        except PyJWTError as error:
            raise Unauthorized(f"the bearer token is not valid: {error}") from None
        except (ValueError, TypeError, OverflowError, RecursionError):
            raise Unauthorized("the bearer token is not valid: its claims are malformed") \
                from None
        self._check_times(claims)
        return self._principal(claims)

    def _check_times(self, claims: dict[str, Any]) -> None:
        for name in ("exp", "nbf", "iat"):
            value = claims.get(name)
            if name in claims and (isinstance(value, bool)
                                   or not isinstance(value, int | float)):
                raise Unauthorized(f"the token's {name} must be a number of seconds")
        if claims["exp"] - time.time() > self.settings.max_lifetime_s:
            raise Unauthorized(f"the token expires more than {self.settings.max_lifetime_s:g} "
                               "s from now (KASAL_JWT_MAX_LIFETIME_S)")

    def _principal(self, claims: dict[str, Any]) -> VerifiedToken:
        s = self.settings
        subject = claims["sub"]
        if _unfit(subject, MAX_SUBJECT):
            raise Unauthorized(f"the token's sub must be text of 1 to {MAX_SUBJECT} printable "
                               "characters")
        tenant = claims.get(s.tenant_claim)
        if _unfit(tenant, 100):
            raise Unauthorized(f"the token names no tenant: its claim {s.tenant_claim!r} must "
                               "be text of 1 to 100 printable characters "
                               "(KASAL_JWT_TENANT_CLAIM)")
        granted = claims.get(s.role_claim)
        names = [granted] if isinstance(granted, str) else granted
        known = {r.value: r for r in Role}
        roles = [known[n] for n in names if isinstance(n, str) and n in known] \
            if isinstance(names, list) else []
        if not roles:
            raise Unauthorized(
                f"the token grants no role: its claim {s.role_claim!r} must be one of "
                f"{', '.join(Role)} or a list of them (KASAL_JWT_ROLE_CLAIM)")
        return VerifiedToken(str(subject), str(tenant), max(roles, key=lambda r: r.rank))

    async def _key(self, kid: Any, alg: str) -> Any:
        """The key for ``kid``. The cached keys serve while a reload runs (one at a time,
        in the background once they are old); a kid they lack waits for a reload, started
        at most once every ``refetch_s``; with no keys at all after a failed load, every
        token is 503 at once until ``Retry-After`` has passed."""
        now = time.monotonic()
        if not self.keys and now < self.failed_until:
            raise self._unavailable()
        if now - self.fetched_at > self.settings.cache_s and self.keys:
            self._reload()  # old keys: refreshed behind the requests
        found = self._find(kid, alg)
        if found is None and (not self.keys or now - self.tried_at > self.settings.refetch_s
                              or self.loading is not None):
            await asyncio.shield(self._reload())  # a rotated key, perhaps
            if not self.keys:
                raise self._unavailable()
            found = self._find(kid, alg)
        if found is None:
            raise Unauthorized(f"no key of the token issuer's JWKS fits the token (kid {kid!r}, "
                               f"{alg})")
        return found

    def _reload(self) -> asyncio.Task[None]:
        if self.loading is None:
            self.tried_at = time.monotonic()
            self.loading = asyncio.create_task(self._load(), name="kasal-jwks")
        return self.loading

    def _unavailable(self) -> TokenKeysUnavailable:
        return TokenKeysUnavailable(
            f"the token issuer's keys could not be loaded from {self.settings.jwks}; retry "
            "shortly", {"Retry-After": str(RETRY_AFTER_S)})

    def _find(self, kid: Any, alg: str) -> Any:
        fitting = [k for k in self.keys if k.get("kty") == KEY_TYPES[alg]
                   and k.get("alg", alg) == alg and k.get("use", "sig") == "sig"]
        if kid is not None:
            fitting = [k for k in fitting if k.get("kid") == kid]
        elif len(fitting) != 1:  # without a kid, only an unambiguous key
            return None
        for jwk in fitting:
            try:
                key = jwt.PyJWK(jwk, algorithm=alg).key
            except (InvalidKeyError, PyJWKError, ValueError, TypeError):
                continue
            if jwk.get("kty") != "RSA" or int(getattr(key, "key_size", 0)) >= MIN_RSA_BITS:
                return key
        return None

    async def _load(self) -> None:
        try:
            self.fetches += 1
            async with asyncio.timeout(FETCH_TIMEOUT_S):
                raw = await self.fetch(self.settings.jwks)
            keys = json.loads(raw)["keys"]
            if not isinstance(keys, list):
                raise TypeError("keys is not a list")
        except (OSError, TimeoutError, httpx.HTTPError, ValueError, KeyError, TypeError,
                RecursionError) as error:
            log.warning("the token issuer's keys could not be loaded from %s (%s)%s",
                        self.settings.jwks, type(error).__name__,
                        "; the keys loaded before go on serving" if self.keys else "")
            if not self.keys:
                self.failed_until = time.monotonic() + RETRY_AFTER_S
            return
        finally:
            self.loading = None
        public = [k for k in keys if isinstance(k, dict) and "d" not in k]
        if len(public) < len(keys):
            log.warning("the JWKS at %s holds %d entries that are not public keys (private "
                        "key material, or not objects): they are not used", self.settings.jwks,
                        len(keys) - len(public))
        self.keys, self.fetched_at = public, time.monotonic()


def _unfit(value: Any, longest: int) -> bool:
    """Not text Kasal can keep as an id: empty, too long, padded, or holding a control
    character, a NUL or a lone surrogate (every store must hold it)."""
    return (not isinstance(value, str) or not value or len(value) > longest
            or value != value.strip() or problem_of(value) is not None
            or any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value))


async def _fetch(source: str) -> bytes:
    if source.lower().startswith(("https://", "http://")):
        async with httpx.AsyncClient(timeout=FETCH_TIMEOUT_S, follow_redirects=False) as client, \
                client.stream("GET", source, headers={"Accept": "application/json"}) as response:
            response.raise_for_status()
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise ValueError(f"the JWKS is over {MAX_JWKS_BYTES} bytes")
            return bytes(body)
    return await asyncio.to_thread(Path(source).read_bytes)
