"""Bearer JWTs beside API keys (api/tokens.py), with keys and tokens the tests make: RS256,
ES256 and EdDSA accepted; the issuer, the audience, the times (with a bounded skew), the
algorithm, the key's type and the claims checked; ``none`` and the HS/RS confusion refused;
a JWKS served over HTTP picked up again when the provider rotates its keys."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import hmac
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from kasal.settings import Settings
from tests.e2e.conftest import AGENT, App, embedded_app, settings_for

ISSUER = "https://idp.example.test/"
AUDIENCE = "kasal-api"


@dataclass
class SigningKey:
    kid: str
    alg: str
    private: Any

    def jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        family: Any = {"RS256": RSAAlgorithm, "ES256": ECAlgorithm,
                       "EdDSA": OKPAlgorithm}[self.alg]
        jwk: dict[str, Any] = json.loads(family.to_jwk(public))
        return {**jwk, "kid": self.kid, "use": "sig"}


def new_key(alg: str, kid: str) -> SigningKey:
    private = {"RS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
               "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
               "EdDSA": ed25519.Ed25519PrivateKey.generate}[alg]()
    return SigningKey(kid, alg, private)


def token(key: SigningKey, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-42", "iat": now, "exp": now + 300,
            "tenant": "acme", "role": "editor", **claims}
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, key.private, algorithm=key.alg, headers={"kid": key.kid})


def unsigned(**claims: Any) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "mallory", "exp": now + 300,
            "tenant": "acme", "role": "admin", **claims}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(body)}."


@asynccontextmanager
async def kasal_with_jwks(tmp_path: Path, jwks: str, **env: object) -> AsyncIterator[App]:
    settings = settings_for(tmp_path, KASAL_JWT_JWKS=jwks, KASAL_JWT_ISSUER=ISSUER,
                            KASAL_JWT_AUDIENCE=AUDIENCE, **env)
    async with embedded_app(settings) as app:
        yield app


def write_jwks(path: Path, *keys: SigningKey) -> str:
    path.write_text(json.dumps({"keys": [k.jwk() for k in keys]}))
    return str(path)


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


@pytest.fixture
def keys() -> dict[str, SigningKey]:
    return {alg: new_key(alg, f"key-{alg}") for alg in ("RS256", "ES256", "EdDSA")}


async def test_tokens_of_each_algorithm_act_as_their_tenant_and_role(
    tmp_path: Path, keys: dict[str, SigningKey],
) -> None:
    async with kasal_with_jwks(tmp_path, write_jwks(tmp_path / "jwks.json",
                                                    *keys.values())) as app:
        for alg, key in keys.items():
            created = await app.http.post("/api/v1/agents", json=AGENT,
                                          headers=bearer(token(key, sub=f"user-{alg}")))
            assert created.status_code == 201, (alg, created.text)
            agent_id, position = created.json()["id"], created.json()["position"]
            trail = await app.kasal.store.read_stream(agent_id)
            assert trail[0].actor == f"jwt:user-{alg}" and trail[0].tenant_id == "acme"
        viewer = bearer(token(keys["ES256"], role="viewer"))
        seen = await app.http.get(f"/api/v1/agents/{agent_id}?min_position={position}",
                                  headers=viewer)
        assert seen.status_code == 200, seen.text
        refused = await app.http.post("/api/v1/agents", json=AGENT, headers=viewer)
        assert refused.status_code == 403 and "editor" in refused.json()["message"]
        # the highest of the roles a list grants; another tenant sees nothing of acme's
        listed = bearer(token(keys["RS256"], role=["viewer", "editor", "unknown", {"x": 1}]))
        assert (await app.http.post("/api/v1/agents", json=AGENT, headers=listed)
                ).status_code == 201
        globex = bearer(token(keys["RS256"], tenant="globex"))
        assert (await app.http.get(f"/api/v1/agents/{agent_id}", headers=globex)
                ).status_code == 404
        # API keys go on working beside tokens
        async with await app.client("acme", "viewer") as by_key:
            assert (await by_key.get(f"/api/v1/agents/{agent_id}")).status_code == 200


async def test_tokens_that_must_not_pass_are_401_with_the_reason(
    tmp_path: Path, keys: dict[str, SigningKey],
) -> None:
    rsa_key, ec_key = keys["RS256"], keys["ES256"]
    now = int(time.time())
    public_pem = rsa_key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    stranger = new_key("RS256", rsa_key.kid)  # the right kid, another key
    weak = SigningKey("weak", "RS256", rsa.generate_private_key(public_exponent=65537,
                                                                key_size=1024))
    confused = _hs256(public_pem, rsa_key.kid, now)  # the public key as an HMAC secret
    valid = token(rsa_key)
    header, payload, signature = valid.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    widened = base64.urlsafe_b64encode(json.dumps({**claims, "role": "admin"}).encode()
                                       ).rstrip(b"=").decode()
    cases = {
        "alg none": (unsigned(), "algorithm 'none' is not accepted"),
        "HS256 with the public key": (confused, "algorithm 'HS256' is not accepted"),
        "another issuer": (token(rsa_key, iss="https://evil.test/"), "Invalid issuer"),
        "another audience": (token(rsa_key, aud="someone-else"), "Audience doesn't match"),
        "expired past the skew": (token(rsa_key, exp=now - 120, iat=now - 600), "has expired"),
        "not yet valid": (token(rsa_key, nbf=now + 600), "not yet valid (nbf)"),
        "issued in the future": (token(rsa_key, iat=now + 600), "not yet valid (iat)"),
        "no exp": (token(rsa_key, exp=None), 'missing the "exp" claim'),
        "no sub": (token(rsa_key, sub=None), 'missing the "sub" claim'),
        "signed by another key": (token(stranger), "Signature verification failed"),
        "a claim changed after signing": (f"{header}.{widened}.{signature}",
                                         "Signature verification failed"),
        "an EC key's kid on an RS256 token": (
            jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": now + 60,
                        "tenant": "acme", "role": "admin"}, rsa_key.private,
                       algorithm="RS256", headers={"kid": ec_key.kid}),
            "no key of the token issuer's JWKS fits"),
        "a 1024-bit RSA key": (token(weak), "no key of the token issuer's JWKS fits"),
        "an unknown kid": (jwt.encode({"sub": "x"}, rsa_key.private, algorithm="RS256",
                                      headers={"kid": "nobody"}),
                           "no key of the token issuer's JWKS fits"),
        "no tenant": (token(rsa_key, tenant=None), "KASAL_JWT_TENANT_CLAIM"),
        "no known role": (token(rsa_key, role=["superuser"]), "KASAL_JWT_ROLE_CLAIM"),
        "roles that are not text": (token(rsa_key, role=["admin", {"x": 1}][1:]),
                                    "KASAL_JWT_ROLE_CLAIM"),
        "a NUL in the tenant": (token(rsa_key, tenant="ac\x00me"), "KASAL_JWT_TENANT_CLAIM"),
        "a lone surrogate in the tenant": (token(rsa_key, tenant="\ud800"),
                                           "KASAL_JWT_TENANT_CLAIM"),
        "a newline in the tenant": (token(rsa_key, tenant="acme\nglobex"),
                                    "KASAL_JWT_TENANT_CLAIM"),
        "a lone surrogate in sub": (token(rsa_key, sub="\udc80"), "printable characters"),
        "exp as text": (token(rsa_key, exp=str(now + 60)), "exp must be a number"),
        "a lifetime past the bound": (token(rsa_key, exp=now + 10 * 86_400),
                                      "KASAL_JWT_MAX_LIFETIME_S"),
        "an ID token's type": (jwt.encode({"sub": "x"}, rsa_key.private, algorithm="RS256",
                                          headers={"kid": rsa_key.kid, "typ": "id+jwt"}),
                               "not an access token's"),
        "not a JWT": ("a.b.c", "not a well-formed JWT"),
    }
    async with kasal_with_jwks(tmp_path, write_jwks(tmp_path / "jwks.json", rsa_key, ec_key,
                                                    weak),
                               KASAL_JWT_LEEWAY_S=60) as app:
        for name, (credential, reason) in cases.items():
            answer = await app.http.get("/api/v1/agents", headers=bearer(credential))
            assert answer.status_code == 401, (name, answer.text)
            assert reason in answer.json()["message"], (name, answer.json())
        head = await app.kasal.store.head_position()
        forged_write = await app.http.post("/api/v1/agents", json=AGENT,
                                           headers=bearer(unsigned()))
        assert forged_write.status_code == 401
        assert await app.kasal.store.head_position() == head
        # within the skew, an expired token still passes
        late = token(rsa_key, exp=now - 30, iat=now - 300)
        assert (await app.http.get("/api/v1/agents", headers=bearer(late))).status_code == 200


def _hs256(secret: bytes, kid: str, now: int) -> str:
    """What the confusion attack sends: PyJWT refuses to make it, so it is made by hand."""
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "mallory", "exp": now + 300,
              "tenant": "acme", "role": "admin"}
    signing_input = f"{part({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{part(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


@contextmanager
def jwks_server(document: dict[str, Any], *,
                delay_s: float = 0.0) -> Iterator[tuple[str, list[int]]]:
    """A provider's JWKS endpoint on localhost (answering after ``delay_s``); the list
    counts its fetches."""
    fetches: list[int] = []
    released = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fetches.append(1)
            released.wait(delay_s)  # a provider that answers late (or when let go)
            body = json.dumps(document).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # gave up
                self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks", fetches
    finally:
        released.set()
        server.shutdown()
        server.server_close()


async def test_a_jwks_url_is_cached_and_fetched_again_for_a_rotated_key(
    tmp_path: Path, keys: dict[str, SigningKey],
) -> None:
    old, new = keys["RS256"], new_key("RS256", "rotated-in")
    document: dict[str, Any] = {"keys": [old.jwk()]}
    with jwks_server(document) as (url, fetches):
        async with kasal_with_jwks(tmp_path, url) as app:
            asgi = app.http._transport.app  # type: ignore[attr-defined]
            verifier = asgi.state.query_services.tokens
            verifier.settings = dataclasses.replace(verifier.settings, refetch_s=0.0)
            for _ in range(3):
                answer = await app.http.get("/api/v1/agents", headers=bearer(token(old)))
                assert answer.status_code == 200, answer.text
            assert len(fetches) == 1  # cached
            document["keys"] = [old.jwk(), new.jwk()]  # the provider rotates
            answer = await app.http.get("/api/v1/agents", headers=bearer(token(new)))
            assert answer.status_code == 200, answer.text
            assert len(fetches) == 2


async def test_without_jwks_a_jwt_is_refused_by_name(app: App) -> None:
    answer = await app.http.get("/api/v1/agents", headers=bearer(unsigned()))
    assert answer.status_code == 401
    assert "KASAL_JWT_JWKS is not set" in answer.json()["message"]


async def test_an_unreachable_jwks_is_503_and_settings_refuse_what_cannot_be_safe(
    tmp_path: Path, keys: dict[str, SigningKey],
) -> None:
    async with kasal_with_jwks(tmp_path, "http://127.0.0.1:9/jwks") as app:
        answer = await app.http.get("/api/v1/agents", headers=bearer(token(keys["RS256"])))
        assert answer.status_code == 503
        assert answer.json()["error"] == "token_keys_unavailable"
        assert answer.headers["Retry-After"] == "5"
    for env, reason in (
        ({"KASAL_JWT_JWKS": "/x.json"}, "needs KASAL_JWT_ISSUER and KASAL_JWT_AUDIENCE"),
        ({"KASAL_JWT_JWKS": "/x.json", "KASAL_JWT_ISSUER": ISSUER, "KASAL_JWT_AUDIENCE": "a",
          "KASAL_JWT_ALGORITHMS": "RS256,HS256"}, "HS256 refused"),
        ({"KASAL_JWT_JWKS": "/x.json", "KASAL_JWT_ISSUER": ISSUER, "KASAL_JWT_AUDIENCE": "a",
          "KASAL_JWT_LEEWAY_S": "3600"}, "KASAL_JWT_LEEWAY_S"),
        ({"KASAL_ENV": "production", "KASAL_JWT_JWKS": "http://idp.test/jwks",
          "KASAL_JWT_ISSUER": ISSUER, "KASAL_JWT_AUDIENCE": "a"}, "must be an https URL"),
    ):
        with pytest.raises(ValueError, match=reason):
            Settings(KASAL_DATA_DIR=tmp_path, **env)  # type: ignore[arg-type]


async def test_made_up_kids_do_not_refetch_the_jwks_and_private_keys_are_not_used(
    tmp_path: Path, keys: dict[str, SigningKey],
) -> None:
    known = keys["RS256"]
    private_only = new_key("RS256", "leaked")
    leaked = {**json.loads(RSAAlgorithm.to_jwk(private_only.private)), "kid": "leaked"}
    document: dict[str, Any] = {"keys": [known.jwk(), leaked]}
    with jwks_server(document) as (url, fetches):
        async with kasal_with_jwks(tmp_path, url) as app:
            assert (await app.http.get("/api/v1/agents", headers=bearer(token(known)))
                    ).status_code == 200
            for n in range(10):  # within 30 s of the last load: no reload for any of them
                made_up = new_key("RS256", f"made-up-{n}")
                answer = await app.http.get("/api/v1/agents", headers=bearer(token(made_up)))
                assert answer.status_code == 401
            assert len(fetches) == 1
            # a private JWK in the set is skipped, not used to verify (nor a 500)
            answer = await app.http.get("/api/v1/agents", headers=bearer(token(private_only)))
            assert answer.status_code == 401
            assert "no key of the token issuer's JWKS fits" in answer.json()["message"]


async def test_a_provider_that_does_not_answer_is_503_and_not_asked_again_at_once(
    tmp_path: Path, keys: dict[str, SigningKey],
) -> None:
    with jwks_server({"keys": [keys["RS256"].jwk()]}, delay_s=8.0) as (url, fetches):
        async with kasal_with_jwks(tmp_path, url) as app:
            for _ in range(3):
                answer = await app.http.get("/api/v1/agents",
                                            headers=bearer(token(keys["RS256"])))
                assert answer.status_code == 503
                assert answer.json()["error"] == "token_keys_unavailable"
            assert len(fetches) == 1  # the failure is remembered for Retry-After
